/*
 * seqfile.c - numbered files' names and whole writes (seqfile.h), shared by the write-ahead
 * log and the ClickHouse sink's spool.
 */
#include "lib/seqfile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void seqfile_name(uint64_t seq, const char *suffix, char *out, size_t n)
{
    snprintf(out, n, "%020llu%s", (unsigned long long)seq, suffix);
}

bool seqfile_parse(const char *name, const char *suffix, uint64_t *seq)
{
    if (strlen(name) != SEQFILE_DIGITS + strlen(suffix) || strcmp(name + SEQFILE_DIGITS, suffix) != 0)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < SEQFILE_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');   /* wraps past UINT64_MAX, as the writers never name */
    }
    *seq = v;
    return true;
}

int seqfile_write_all(int fd, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0) {
            errno = ENOSPC;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}
