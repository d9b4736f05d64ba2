/*
 * capture.c - reading captured requests (see capture.h for the forms and why one reader).
 */
#include "cmd/capture.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "lib/buf.h"
#include "lib/gzip.h"

/* A whole file (or stdin) into `out`, up to its limit. */
static int read_all(const char *path, size_t limit, struct buf *out, char *err, size_t errlen)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    int rc = 0;
    /* A regular file is read into room made once for all of it (and the one byte that
     * shows the end): no growing and copying a big request 64 KiB at a time. */
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size < limit)
        (void)buf_reserve(out, (size_t)st.st_size + 1);   /* if not: grown as it is read */
    for (;;) {
        if (out->cap - out->len == 0 && !buf_reserve(out, 65536) && !buf_reserve(out, 1)) {
            snprintf(err, errlen, "larger than %zu bytes", limit);
            rc = -1;
            break;
        }
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s", strerror(errno));
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        out->len += (size_t)n;
    }
    if (fd != STDIN_FILENO)
        close(fd);
    return rc;
}

/* A regular file is mapped, not read: reading copied it into fresh memory, and every page of
 * that memory had to be made (zeroed, mapped) by the kernel first, which cost more than
 * decoding it (2.4 MB: about 9 ms of CPU against 1.4 ms mapped, on a small VM). The mapping
 * is read-only and private; the decoder only reads its input. NULL (the caller reads the file
 * instead) for anything but a regular file of 1 byte to `limit`, or when mapping fails. */
static const uint8_t *map_file(const char *path, size_t limit, size_t *len)
{
    if (strcmp(path, "-") == 0)
        return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    void *p = MAP_FAILED;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size <= limit &&
        (uint64_t)st.st_size <= SIZE_MAX)
        p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return NULL;
    *len = (size_t)st.st_size;
    return p;
}

/* A mapped file cut shorter while it is decoded would make its missing pages fault (SIGBUS):
 * the command then says so and stops, rather than dying of the signal. */
static void on_sigbus(int sig)
{
    static const char msg[] = "lazybackend: an input file was truncated while it was being read\n";
    (void)sig;
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    _exit(1);
}

/* The Collector's file exporter writes lengths big-endian. */
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A stream of 4-byte big-endian length-prefixed requests (the Collector's file exporter)
 * tiles the file exactly; a raw protobuf request never starts with a zero byte (field 0
 * does not exist), and almost never tiles by chance. */
static bool is_length_prefixed(const uint8_t *p, size_t n)
{
    size_t pos = 0, count = 0;
    while (pos < n) {
        if (n - pos < 4)
            return false;
        uint32_t len = be32(p + pos);
        if (len > n - pos - 4)
            return false;
        pos += 4 + len;
        count++;
    }
    return count > 0 && (p[0] == 0 || count > 1);
}

/* JSON when forced, or (auto) when the first byte that is not white space is '{'. */
static bool is_json(enum capture_format format, const uint8_t *p, size_t n)
{
    if (format != CAPTURE_AUTO)
        return format == CAPTURE_JSON;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')
            continue;
        return p[i] == '{';
    }
    return false;
}

/* The next line of p[0..n) from *pos, white space trimmed at both ends: [*s, *e). False at
 * the end. */
static bool next_line(const uint8_t *p, size_t n, size_t *pos, size_t *s, size_t *e)
{
    if (*pos >= n)
        return false;
    const uint8_t *nl = memchr(p + *pos, '\n', n - *pos);
    size_t end = nl ? (size_t)(nl - p) : n;
    *s = *pos;
    *e = end;
    while (*s < *e && (p[*s] == ' ' || p[*s] == '\t' || p[*s] == '\r'))
        (*s)++;
    while (*e > *s && (p[*e - 1] == ' ' || p[*e - 1] == '\t' || p[*e - 1] == '\r'))
        (*e)--;
    *pos = end + 1;
    return true;
}

/* JSON lines: every line that is not blank is an object on its own ('{' ... '}'), and there
 * are several. A pretty-printed document has lines that are not. */
static bool is_json_lines(const uint8_t *p, size_t n)
{
    size_t docs = 0, pos = 0, s, e;
    while (next_line(p, n, &pos, &s, &e)) {
        if (s == e)
            continue;
        if (p[s] != '{' || p[e - 1] != '}')
            return false;
        docs++;
    }
    return docs > 1;
}

struct reading {
    const char *prog, *name;
    enum otlp_json_doc doc;
    size_t max;
    capture_request_fn fn;
    void *ud;
    struct buf pb;     /* one JSON document's protobuf form */
};

static int json_document(struct reading *r, unsigned index, const uint8_t *p, size_t n)
{
    char err[256];
    r->pb.len = 0;
    enum otlp_json_result jr = otlp_json_to_protobuf(r->doc, p, n, &r->pb, err, sizeof err);
    if (jr == OTLP_JSON_TOO_LARGE) {
        fprintf(stderr, "%s: %s: request %u: its protobuf form is over --max-message-size\n", r->prog,
                r->name, index);
        return 1;
    }
    if (jr != OTLP_JSON_OK) {
        fprintf(stderr, "%s: %s: request %u: not OTLP/JSON: %s\n", r->prog, r->name, index, err);
        return 1;
    }
    struct capture_request req = { r->name, index, r->pb.data, r->pb.len, p, n };
    return r->fn(r->ud, &req);
}

static int json_requests(struct reading *r, const uint8_t *p, size_t n)
{
    if (!is_json_lines(p, n))
        return json_document(r, 0, p, n);
    int rc = 0;
    unsigned index = 0;
    size_t pos = 0, s, e;
    while (next_line(p, n, &pos, &s, &e))
        if (s < e)
            rc |= json_document(r, index++, p + s, e - s);
    return rc;
}

static int one_request(struct reading *r, unsigned index, const uint8_t *p, size_t n)
{
    if (n > r->max) {
        fprintf(stderr, "%s: %s: request %u: %zu bytes is over --max-message-size\n", r->prog, r->name,
                index, n);
        return 1;
    }
    struct capture_request req = { r->name, index, p, n, NULL, 0 };
    return r->fn(r->ud, &req);
}

/* A file's requests, decompressed: a length-prefixed stream of them, or one raw request. */
static int proto_requests(struct reading *r, const uint8_t *p, size_t n)
{
    if (!is_length_prefixed(p, n))
        return one_request(r, 0, p, n);
    int rc = 0;
    unsigned index = 0;
    for (size_t pos = 0; pos < n; index++) {
        uint32_t len = be32(p + pos);
        rc |= one_request(r, index, p + pos + 4, len);
        pos += 4 + (size_t)len;
    }
    return rc;
}

static int requests(struct reading *r, enum capture_format format, const uint8_t *p, size_t n)
{
    if (n == 0) {
        fprintf(stderr, "%s: %s: empty input\n", r->prog, r->name);
        return 1;
    }
    return is_json(format, p, n) ? json_requests(r, p, n) : proto_requests(r, p, n);
}

int capture_read(const char *prog, const char *path, enum capture_format format, enum otlp_json_doc doc,
                 size_t max_message_size, capture_request_fn fn, void *ud)
{
    struct reading r = { prog, strcmp(path, "-") == 0 ? "<stdin>" : path, doc, max_message_size, fn, ud,
                         { 0 } };
    struct buf raw, inflated;
    char err[256];
    int rc = 1;
    buf_init(&raw, max_message_size * 16);   /* a file may hold many requests */
    buf_init(&inflated, max_message_size * 16);
    buf_init(&r.pb, max_message_size);
    size_t len = 0;
    const uint8_t *mapped = map_file(path, raw.limit, &len), *data = mapped;
    struct sigaction bus = { .sa_handler = on_sigbus }, saved_bus;
    bool have = true;
    if (mapped) {
        sigaction(SIGBUS, &bus, &saved_bus);
    } else if (read_all(path, raw.limit, &raw, err, sizeof err) == 0) {
        data = raw.data;
        len = raw.len;
    } else {
        fprintf(stderr, "%s: %s: %s\n", prog, r.name, err);
        have = false;
    }
    if (!have)
        ;   /* said why above */
    else if (len < 2 || data[0] != 0x1f || data[1] != 0x8b)   /* no gzip magic */
        rc = requests(&r, format, data, len);
    else if (gzip_inflate(data, len, inflated.limit, &inflated, err, sizeof err) != GZIP_OK)
        fprintf(stderr, "%s: %s: gzip: %s\n", prog, r.name, err);
    else
        rc = requests(&r, format, inflated.data, inflated.len);
    if (mapped) {
        munmap((void *)mapped, len);
        sigaction(SIGBUS, &saved_bus, NULL);
    }
    buf_free(&raw);
    buf_free(&inflated);
    buf_free(&r.pb);
    return rc;
}

bool capture_format_parse(const char *s, enum capture_format *out)
{
    if (strcmp(s, "auto") == 0)
        *out = CAPTURE_AUTO;
    else if (strcmp(s, "json") == 0)
        *out = CAPTURE_JSON;
    else if (strcmp(s, "proto") == 0 || strcmp(s, "protobuf") == 0)
        *out = CAPTURE_PROTO;
    else
        return false;
    return true;
}
