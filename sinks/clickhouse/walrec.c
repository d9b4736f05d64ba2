/*
 * walrec.c - the ClickHouse sink's records in the write-ahead log (sinks/wal.h): one record per
 * acknowledged request, one log segment per batch, so a segment read back is its batch.
 *
 * A record holds the request's RowBinary rows for each table exactly as they stand in the
 * open batch (batch_id and row_index included): concatenated in order, the records of a
 * segment are the batch's rows, and the batch sent after a restart is the one that would have
 * been sent before it (same batch_id, so ClickHouse can be asked whether it has it already).
 *
 * Record (little-endian): "CHR" + schema version byte, u64 batch id, per table u32 rows and
 * u32 length, then the tables' bytes in CH_TABLES order. Records of schema version 1 (no
 * requests table: CH_TABLES_V1 tables, ch_v1_tables' order) are read too, so a log an older
 * version left is delivered by this one, with that version's columns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "lib/buf.h"
#include "lib/gzip.h"
#include "sinks/clickhouse/internal.h"
#include "sinks/wal.h"

#define REC_HEADER (4 + 8 + CH_TABLES * 8)
#define REC_HEADER_V1 (4 + 8 + CH_TABLES_V1 * 8)

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int ch_wal_append(struct wal *w, uint64_t seq, const struct ch_rows *r, char *err, size_t errlen)
{
    const uint8_t *p[CH_TABLES];
    size_t n[CH_TABLES];
    uint32_t rows[CH_TABLES];
    for (int t = 0; t < CH_TABLES; t++) {
        ch_rows_pending(r, t, &p[t], &n[t], &rows[t]);
        if (n[t] > UINT32_MAX) {
            snprintf(err, errlen, "a request's rows pass 4 GiB");
            return -1;
        }
    }
    uint8_t rec[REC_HEADER];
    memcpy(rec, "CHR", 3);
    rec[3] = (uint8_t)CH_SCHEMA_VERSION;
    uint64_t id = ch_rows_batch_id(r);
    put_u32(rec + 4, (uint32_t)id);
    put_u32(rec + 8, (uint32_t)(id >> 32));
    /* The header, then the rows straight from the open batch's buffers (no copy). */
    struct iovec iov[1 + CH_TABLES];
    int k = 0;
    iov[k++] = (struct iovec){ .iov_base = rec, .iov_len = sizeof rec };
    for (int t = 0; t < CH_TABLES; t++) {
        put_u32(rec + 12 + t * 8, rows[t]);
        put_u32(rec + 16 + t * 8, (uint32_t)n[t]);
        if (n[t])
            iov[k++] = (struct iovec){ .iov_base = (void *)p[t], .iov_len = n[t] };
    }
    enum wal_append_status st = wal_appendv(w, seq, iov, k, err, errlen);
    return st == WAL_APPENDED ? 0 : st == WAL_FULL ? 1 : -1;
}

/* Reading a segment back: the records' rows appended table by table. */
struct loader {
    uint64_t id;
    uint32_t schema;
    bool have_id;
    struct buf part[CH_TABLES];
    uint32_t rows[CH_TABLES];
    char why[120];
};

static int on_record(void *ud, const uint8_t *p, size_t n)
{
    struct loader *ld = ud;
    uint32_t schema = n >= 4 ? p[3] : 0;
    bool v1 = schema == 1;
    size_t header = v1 ? REC_HEADER_V1 : REC_HEADER;
    int tables = v1 ? CH_TABLES_V1 : CH_TABLES;
    if (n < header || memcmp(p, "CHR", 3) != 0 || (schema != 1 && schema != CH_SCHEMA_VERSION)) {
        snprintf(ld->why, sizeof ld->why, "a record of another format or schema version");
        return 1;
    }
    uint64_t id = get_u32(p + 4) | (uint64_t)get_u32(p + 8) << 32;
    if (ld->have_id && (id != ld->id || schema != ld->schema)) {
        snprintf(ld->why, sizeof ld->why, "records of two batches in one segment");
        return 1;
    }
    size_t off = header;
    for (int t = 0; t < tables; t++) {
        uint32_t len = get_u32(p + 16 + t * 8);
        if (len > n - off) {
            snprintf(ld->why, sizeof ld->why, "a record's table lengths pass its size");
            return 1;
        }
        off += len;
    }
    if (off != n) {
        snprintf(ld->why, sizeof ld->why, "a record with %zu trailing bytes", n - off);
        return 1;
    }
    off = header;
    for (int i = 0; i < tables; i++) {
        uint32_t len = get_u32(p + 16 + i * 8);
        int t = v1 ? (int)ch_v1_tables[i] : i;
        if (!buf_append(&ld->part[t], p + off, len)) {
            snprintf(ld->why, sizeof ld->why, "out of memory");
            return 1;
        }
        ld->rows[t] += get_u32(p + 12 + i * 8);
        off += len;
    }
    ld->schema = schema;
    ld->id = id;
    ld->have_id = true;
    return 0;
}

struct ch_batch *ch_wal_load(struct wal *w, uint64_t seq, bool gzip, bool *empty, char *err, size_t errlen)
{
    struct loader ld;
    memset(&ld, 0, sizeof ld);
    for (int t = 0; t < CH_TABLES; t++)
        buf_init(&ld.part[t], SIZE_MAX);
    struct wal_read_report rep;
    *empty = false;
    struct ch_batch *b = NULL;
    int rc = wal_read(w, seq, on_record, &ld, &rep, err, errlen);
    if (rc > 0) {
        snprintf(err, errlen, "segment %llu, record %llu: %s", (unsigned long long)seq,
                 (unsigned long long)rep.records, ld.why);
    } else if (rc == 0 && !ld.have_id) {
        *empty = true;
        snprintf(err, errlen, "segment %llu holds no complete record%s%s", (unsigned long long)seq,
                 rep.why[0] ? ": " : "", rep.why);
    } else if (rc == 0) {
        b = calloc(1, sizeof *b);
        if (!b)
            snprintf(err, errlen, "out of memory");
    }
    for (int t = 0; b && t < CH_TABLES; t++) {
        b->part[t].rows = ld.rows[t];
        if (ld.rows[t] == 0)
            continue;
        if (!gzip) {   /* the segment's rows are the part: take the buffer as it is */
            b->part[t].data = ld.part[t].data;
            b->part[t].len = ld.part[t].len;
            b->bytes += ld.part[t].len;
            buf_init(&ld.part[t], SIZE_MAX);
            continue;
        }
        struct buf gz;
        buf_init(&gz, SIZE_MAX);
        if (gzip_deflate(ld.part[t].data, ld.part[t].len, &gz, 1) != 0) {
            buf_free(&gz);
            ch_batch_free(b);
            b = NULL;
            snprintf(err, errlen, "out of memory compressing segment %llu", (unsigned long long)seq);
            break;
        }
        b->part[t].data = gz.data;
        b->part[t].len = gz.len;
        b->bytes += gz.len;
    }
    if (b) {
        b->id = ld.id;
        b->seq = seq;
        b->schema = ld.schema;
        b->gzip = gzip;
        if (rep.bad_bytes)   /* a torn tail: records the crash cut short were never acknowledged */
            snprintf(err, errlen, "segment %llu: %llu bytes after record %llu unreadable (%s)",
                     (unsigned long long)seq, (unsigned long long)rep.bad_bytes, (unsigned long long)rep.records,
                     rep.why);
        else
            err[0] = 0;
    }
    for (int t = 0; t < CH_TABLES; t++)
        buf_free(&ld.part[t]);
    return b;
}
