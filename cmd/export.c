/*
 * export.c - `lazybackend export`: what a store (a SQLite file, or ClickHouse with
 * --clickhouse-url) holds, written back out, as OTLP
 * (a length-prefixed stream of ExportProfilesServiceRequests in the v1.11 layout, or sent to
 * an OTLP receiver) or as pprof files for `go tool pprof`.
 *
 * Why: a store that cannot give back what it was sent cannot be shown to be lossless, and
 * profiles kept in it were out of reach of every other tool. The store replays its requests
 * as profiles events (sinks/replay.h: sinks/sqlite/replay.h, sinks/clickhouse/clickhouse.h),
 * with the query commands' filters; an encoder
 * consumes them (otlp/encode.h, otlp/pprof.h); this file only moves bytes: to the file, to
 * the receiver (the `send` command's client, cmd/send.c), or to one gzipped file per sample
 * type. docs/export.md says what "lossless" means here.
 *
 * Exit status: 0 when everything was written (and, with --to, accepted whole); 1 when the
 * database could not be read, a file not written or a request not accepted; 2 for usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "lib/buf.h"
#include "otlp/encode.h"
#include "otlp/pprof.h"
#include "sinks/clickhouse/clickhouse.h"
#include "sinks/replay.h"
#include "sinks/sqlite/sqlite.h"
#include "sinks/sqlite/replay.h"

/* The largest request built (the receivers' default limit is 64 MiB too). */
#define EXPORT_MAX_REQUEST (64u << 20)

struct exporter {
    const struct export_opts *o;
    FILE *out;
    const char *out_name;
    struct otlp_client *client;
    unsigned written, sent, refused;
};

static int write_prefixed(struct exporter *x, const struct buf *req)
{
    uint8_t len[4] = { (uint8_t)(req->len >> 24), (uint8_t)(req->len >> 16), (uint8_t)(req->len >> 8),
                       (uint8_t)req->len };
    if (fwrite(len, 1, 4, x->out) != 4 || (req->len && fwrite(req->data, 1, req->len, x->out) != req->len)) {
        fprintf(stderr, "lazybackend export: writing %s: %s\n", x->out_name, strerror(errno));
        return -1;
    }
    x->written++;
    return 0;
}

/* One finished request: to the file, or to the receiver. */
static int emit_request(struct exporter *x, const struct buf *req)
{
    if (!x->client)
        return write_prefixed(x, req);
    x->sent++;
    if (otlp_client_send(x->client, req->data, req->len, x->sent) != 0)
        x->refused++;
    return 0;
}

static int export_otlp(struct exporter *x, const struct replay_source *r)
{
    struct otlp_encoder *enc = otlp_encoder_new(EXPORT_MAX_REQUEST);
    struct buf req;
    buf_init(&req, EXPORT_MAX_REQUEST + 64);
    if (!enc) {
        fprintf(stderr, "lazybackend export: out of memory\n");
        return 1;
    }
    char err[512];
    size_t in_batch = 0;
    int rc = 0, more;
    while ((more = r->next(r->ctx, otlp_encoder_consumer(enc))) > 0) {
        if (++in_batch < x->o->batch)
            continue;
        in_batch = 0;
        if (otlp_encoder_finish(enc, &req, err, sizeof err) != 0) {
            fprintf(stderr, "lazybackend export: %s\n", err);
            rc = 1;
            break;
        }
        if (emit_request(x, &req) != 0) {
            rc = 1;
            break;
        }
    }
    if (more < 0) {
        fprintf(stderr, "lazybackend export: %s\n", r->error(r->ctx));
        rc = 1;
    }
    if (rc == 0 && in_batch) {
        if (otlp_encoder_finish(enc, &req, err, sizeof err) != 0) {
            fprintf(stderr, "lazybackend export: %s\n", err);
            rc = 1;
        } else if (emit_request(x, &req) != 0) {
            rc = 1;
        }
    }
    otlp_encoder_free(enc);
    buf_free(&req);
    return rc;
}

static void said_file(void *ud, const char *path, const char *type, const char *unit)
{
    (void)ud;
    fprintf(stderr, "lazybackend export: %s: %s/%s\n", path, type, unit);
}

static int export_pprof(struct exporter *x, const struct replay_source *r)
{
    struct pprof_writer *pw = pprof_writer_new();
    if (!pw) {
        fprintf(stderr, "lazybackend export: out of memory\n");
        return 1;
    }
    int more, rc = 0;
    while ((more = r->next(r->ctx, pprof_writer_consumer(pw))) > 0)
        ;
    if (more < 0) {
        fprintf(stderr, "lazybackend export: %s\n", r->error(r->ctx));
        rc = 1;
    }
    char err[512];
    const char *prefix = x->o->output ? x->o->output : "profile";
    /* one chosen sample type: the file is --output itself */
    bool exact = x->o->sample_type && x->o->output;
    if (rc == 0 && pprof_writer_write_files(pw, prefix, exact, &x->written, said_file, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "lazybackend export: %s\n", err);
        rc = 1;
    }
    pprof_writer_free(pw);
    return rc;
}

static int sqlite_next(void *ctx, struct otlp_consumer c) { return sqlite_replay_next(ctx, c); }
static const char *sqlite_error(const void *ctx) { return sqlite_replay_error(ctx); }
static void sqlite_close(void *ctx) { sqlite_replay_close(ctx); }
static int ch_next(void *ctx, struct otlp_consumer c) { return clickhouse_replay_next(ctx, c); }
static const char *ch_error(const void *ctx) { return clickhouse_replay_error(ctx); }
static void ch_close(void *ctx) { clickhouse_replay_close(ctx); }

/* Parses the options and opens the store they name: 0 with *r set, else the exit status. */
static int open_store(int argc, char **argv, struct export_opts *eo, struct replay_source *r)
{
    struct qopts q = { .cmd = CMD_EXPORT, .name = "export" };
    q.exp.batch = 1;
    int rc = q_parse_args(&q, argc, argv);
    if (rc != 0) {
        q_free_args(&q);
        return rc;
    }
    *eo = q.exp;
    if (q.ch_url) {
        struct clickhouse_replay *ch;
        rc = clickhouse_replay_open(&q, &ch);
        *r = (struct replay_source){ ch, ch_next, ch_error, ch_close };
    } else {
        struct sqlite_replay *sq;
        rc = sqlite_replay_open(&q, &sq);
        *r = (struct replay_source){ sq, sqlite_next, sqlite_error, sqlite_close };
    }
    return rc;
}

int export_command(int argc, char **argv)
{
    struct export_opts o;
    struct replay_source src;
    int rc = open_store(argc, argv, &o, &src);
    if (rc != 0)
        return rc;
    const struct replay_source *r = &src;
    struct exporter x = { .o = &o, .out = stdout, .out_name = "stdout" };
    if (o.format == EXPORT_OTLP && o.to) {
        char err[512];
        x.client = otlp_client_open(o.to, o.http, o.gzip, 30, "lazybackend export", err, sizeof err);
        if (!x.client) {
            fprintf(stderr, "lazybackend export: %s\n", err);
            r->close(r->ctx);
            return 2;
        }
    } else if (o.format == EXPORT_OTLP && o.output && strcmp(o.output, "-") != 0) {
        x.out_name = o.output;
        if (!(x.out = fopen(o.output, "wb"))) {
            fprintf(stderr, "lazybackend export: %s: %s\n", o.output, strerror(errno));
            r->close(r->ctx);
            return 1;
        }
    }
    rc = o.format == EXPORT_PPROF ? export_pprof(&x, r) : export_otlp(&x, r);
    r->close(r->ctx);
    if (x.client) {
        fprintf(stderr, "lazybackend export: %u of %u request(s) accepted whole\n", x.sent - x.refused, x.sent);
        if (x.refused)
            rc = 1;
        otlp_client_close(x.client);
    } else if (o.format == EXPORT_OTLP) {
        if (fflush(x.out) != 0 || ferror(x.out)) {
            fprintf(stderr, "lazybackend export: writing %s: %s\n", x.out_name, strerror(errno));
            rc = 1;
        }
        if (x.out != stdout && fclose(x.out) != 0 && rc == 0) {
            fprintf(stderr, "lazybackend export: closing %s: %s\n", x.out_name, strerror(errno));
            rc = 1;
        }
        if (rc == 0)
            fprintf(stderr, "lazybackend export: %u request(s) written to %s\n", x.written, x.out_name);
    } else if (rc == 0) {
        fprintf(stderr, "lazybackend export: %u pprof file(s) written\n", x.written);
    }
    return rc;
}
