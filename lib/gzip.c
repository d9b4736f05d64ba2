/*
 * gzip.c - bounded gzip inflate (and a plain deflate) on top of zlib.
 *
 * Exists because every OTLP profiles agent compresses with gzip, and a naive "inflate until
 * done" lets a 100 KiB request expand into gigabytes. Here the output buffer's own limit is
 * lowered to the caller's bound for the duration of the call, so the buffer can never even
 * *allocate* past it; once it is full, one probe byte tells "exactly at the limit" from "more
 * to come" (GZIP_TOO_LARGE).
 */
#include "lib/gzip.h"

#include <assert.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

enum { GZIP_CHUNK = 64 * 1024, GZIP_WINDOW = 15 + 16 /* 32 KiB window, gzip wrapper only */ };

static enum gzip_result fail(enum gzip_result r, char *err, size_t errlen, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", why);
    return r;
}

/* Hands zlib the next slice of input (zlib counts in uInt, inputs may be larger). */
static void feed_input(z_stream *z, const uint8_t *in, size_t len, size_t *off)
{
    if (z->avail_in != 0 || *off >= len)
        return;
    size_t n = len - *off;
    if (n > UINT_MAX)
        n = UINT_MAX;
    z->next_in = (Bytef *)(uintptr_t)(in + *off);   /* zlib never writes through next_in */
    z->avail_in = (uInt)n;
    *off += n;
}

/* Points zlib's output at free space in `out` (growing it by up to a chunk), or at the probe
 * byte when `out` already holds `limit` bytes. Returns false on allocation failure. */
static bool set_output(z_stream *z, struct buf *out, size_t limit, uint8_t *probe)
{
    size_t room = limit - out->len;
    if (room == 0) {
        z->next_out = probe;
        z->avail_out = 1;
        return true;
    }
    if (out->cap == out->len) {
        size_t want = room < GZIP_CHUNK ? room : GZIP_CHUNK;
        if (!buf_reserve(out, want))
            return false;
    }
    size_t avail = out->cap - out->len;
    if (avail > room)
        avail = room;
    if (avail > UINT_MAX)
        avail = UINT_MAX;
    z->next_out = out->data + out->len;
    z->avail_out = (uInt)avail;
    return true;
}

/* After a member ends: more input must be another member (it starts with the gzip magic). */
static bool next_member_follows(const z_stream *z)
{
    return z->avail_in >= 2 && z->next_in[0] == 0x1f && z->next_in[1] == 0x8b;
}

static enum gzip_result inflate_all(z_stream *z, const uint8_t *in, size_t len, size_t limit,
                                    struct buf *out, char *err, size_t errlen)
{
    size_t in_off = 0;
    uint8_t probe;
    for (;;) {
        feed_input(z, in, len, &in_off);
        bool probing = out->len == limit;
        if (!set_output(z, out, limit, &probe))
            return fail(GZIP_NOMEM, err, errlen, "out of memory");
        uInt before = z->avail_out;
        int rc = inflate(z, Z_NO_FLUSH);
        size_t produced = before - z->avail_out;
        if (probing && produced > 0)
            return fail(GZIP_TOO_LARGE, err, errlen, "inflated size exceeds the limit");
        if (!probing)
            out->len += produced;
        assert(out->len <= limit);
        bool input_done = z->avail_in == 0 && in_off == len;
        switch (rc) {
        case Z_STREAM_END:
            if (input_done)
                return GZIP_OK;
            feed_input(z, in, len, &in_off);
            if (!next_member_follows(z))
                return fail(GZIP_CORRUPT, err, errlen, "trailing garbage after gzip data");
            if (inflateReset(z) != Z_OK)
                return fail(GZIP_CORRUPT, err, errlen, "inflateReset failed");
            continue;
        case Z_OK:
        case Z_BUF_ERROR:   /* no progress possible: only legitimate when output is full */
            if (input_done && z->avail_out > 0)
                return fail(GZIP_CORRUPT, err, errlen, "truncated gzip data");
            continue;
        case Z_MEM_ERROR:
            return fail(GZIP_NOMEM, err, errlen, "out of memory");
        default:   /* Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR */
            return fail(GZIP_CORRUPT, err, errlen, z->msg ? z->msg : "invalid gzip data");
        }
    }
}

enum gzip_result gzip_inflate(const uint8_t *in, size_t len, size_t limit, struct buf *out,
                              char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (len == 0)
        return fail(GZIP_CORRUPT, err, errlen, "empty gzip data");
    /* Never let `out` grow (allocate) past the tighter of its own limit and ours. */
    size_t saved_limit = out->limit;
    if (limit > out->limit)
        limit = out->limit;
    if (out->len > limit)
        return fail(GZIP_TOO_LARGE, err, errlen, "inflated size exceeds the limit");
    out->limit = limit;

    z_stream z;
    memset(&z, 0, sizeof z);
    enum gzip_result r;
    int rc = inflateInit2(&z, GZIP_WINDOW);
    if (rc != Z_OK)
        r = fail(rc == Z_MEM_ERROR ? GZIP_NOMEM : GZIP_CORRUPT, err, errlen, "inflateInit failed");
    else
        r = inflate_all(&z, in, len, limit, out, err, errlen);
    inflateEnd(&z);
    out->limit = saved_limit;
    return r;
}

int gzip_deflate(const uint8_t *in, size_t len, struct buf *out, int level)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, level, Z_DEFLATED, GZIP_WINDOW, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t in_off = 0;
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        feed_input(&z, in, len, &in_off);
        if (out->cap == out->len && !buf_reserve(out, GZIP_CHUNK)) {
            rc = Z_MEM_ERROR;
            break;
        }
        size_t avail = out->cap - out->len;
        z.next_out = out->data + out->len;
        z.avail_out = avail > UINT_MAX ? UINT_MAX : (uInt)avail;
        uInt before = z.avail_out;
        int flush = (z.avail_in == 0 && in_off == len) ? Z_FINISH : Z_NO_FLUSH;
        rc = deflate(&z, flush);
        out->len += before - z.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            break;
    }
    deflateEnd(&z);
    return rc == Z_STREAM_END ? 0 : -1;
}
