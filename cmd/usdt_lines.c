/*
 * usdt_lines.c - a byte stream cut into lines, with a cap on a line's length.
 *
 * Why its own piece: bpftrace's stdout, its stderr and a replay file are all read the same
 * way, from a non-blocking descriptor in chunks, and the Go bridge died on its first line
 * over 64 KiB (bufio.Scanner's limit). Here a line longer than the limit is reported once and
 * skipped up to its newline, and reading goes on; the buffer never holds more than one
 * line's limit plus one read. Lines are handed out in place (no copy) and stay valid until
 * the next read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/usdt_internal.h"

#define READ_CHUNK ((size_t)64 << 10)

int usdt_lines_init(struct usdt_lines *l, size_t max_line)
{
    memset(l, 0, sizeof *l);
    l->max_line = max_line;
    l->cap = max_line + READ_CHUNK;
    l->buf = malloc(l->cap);
    return l->buf ? 0 : -1;
}

void usdt_lines_free(struct usdt_lines *l)
{
    free(l->buf);
    l->buf = NULL;
}

ssize_t usdt_lines_read(struct usdt_lines *l, int fd)
{
    if (l->pos) {
        memmove(l->buf, l->buf + l->pos, l->len - l->pos);
        l->len -= l->pos;
        l->pos = 0;
    }
    ssize_t n;
    do
        n = read(fd, l->buf + l->len, l->cap - l->len);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        l->eof = true;
    else if (n > 0)
        l->len += (size_t)n;
    return n;
}

int usdt_lines_next(struct usdt_lines *l, const char **line, size_t *len)
{
    while (l->pos < l->len) {
        char *from = l->buf + l->pos;
        size_t left = l->len - l->pos;
        char *nl = memchr(from, '\n', left);
        if (l->skipping) {
            l->pos = nl ? (size_t)(nl + 1 - l->buf) : l->len;
            l->skipping = nl == NULL;
            continue;
        }
        if (nl && (size_t)(nl - from) > l->max_line) {
            l->pos = (size_t)(nl + 1 - l->buf);
            *line = NULL;
            return 2;
        }
        if (nl || l->eof) {
            *line = from;
            *len = nl ? (size_t)(nl - from) : left;
            l->pos = nl ? (size_t)(nl + 1 - l->buf) : l->len;
            if (*len > l->max_line) {
                *line = NULL;
                return 2;
            }
            return 1;
        }
        if (left > l->max_line) {
            l->skipping = true;
            l->pos = l->len;
            *line = NULL;
            return 2;
        }
        return 0;
    }
    return 0;
}
