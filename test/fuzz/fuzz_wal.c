/*
 * fuzz_wal.c - libFuzzer target: arbitrary bytes as the write-ahead log a restart reads back
 * (sinks/wal.c), and as the records its two users put in it: the ClickHouse sink's batches
 * (sinks/clickhouse/walrec.c) and the forward sink's requests (a tag byte, then the request).
 * A segment on disk is hostile input too: a crash tears it, a disk flips its bits, anyone with
 * the directory's user may write into it.
 *
 * The first byte picks the mode:
 *   0  the rest is a segment's bytes, parsed in memory (wal_parse) for segment 7 (and, when
 *      the header names another, for that one too);
 *   1  the rest is records, each a u16 little-endian length then its bytes, appended to
 *      segment 1 of a fresh log with wal_append, synced, then read back with wal_read and
 *      as a ClickHouse batch (ch_wal_load);
 *   2  the rest is written as the file of segment 3 of a log directory, which wal_open then
 *      indexes and wal_read and ch_wal_load read.
 *
 * Checks beyond the sanitizers: what wal_parse reports adds up (the records' bytes and the
 * unreadable tail cover the segment exactly, the tail's reason is one printable line);
 * records appended come back byte for byte, in order, and nothing unreadable follows them;
 * a callback's non-zero answer stops the read and is returned; ch_wal_load gives a batch or
 * a one-line reason, never both missing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sinks/clickhouse/internal.h"
#include "sinks/wal.h"
#include "test/fuzz/harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER_BYTES 16u   /* "LBWAL001", u64 seq: the segment format of wal.h */
#define RECORD_HEADER 8u   /* u32 length, u32 CRC */

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* What the callback saw: every record, and when to answer non-zero. */
struct seen {
    size_t records, bytes;
    size_t stop_at;          /* 1-based record whose callback returns 5; 0: never */
    const uint8_t *expect;   /* mode 1: the records as appended (u16 length, bytes ...) */
    size_t expect_len, expect_off;
};

static int on_record(void *ud, const uint8_t *p, size_t n)
{
    struct seen *s = ud;
    s->records++;
    s->bytes += n;
    fuzz_must(n <= WAL_MAX_RECORD, "wal: a record past WAL_MAX_RECORD delivered");
    if (s->expect) {
        /* Record i must be the i-th appended, byte for byte. */
        fuzz_must(s->expect_off + 2 <= s->expect_len, "wal: more records read than appended");
        size_t len = (size_t)s->expect[s->expect_off] | (size_t)s->expect[s->expect_off + 1] << 8;
        fuzz_must(len == n && memcmp(s->expect + s->expect_off + 2, p, n) == 0,
                  "wal: a record read back differs from the one appended");
        s->expect_off += 2 + len;
    }
    return s->stop_at && s->records == s->stop_at ? 5 : 0;
}

static void check_report(const struct wal_read_report *rep, size_t n, const struct seen *s, int rc)
{
    fuzz_must(rep->records == s->records, "wal: report's record count differs from the callbacks");
    if (rc == 5)
        return;   /* stopped early: the rest was not looked at */
    if (rep->bad_bytes) {
        fuzz_must(fuzz_printable(rep->why) && rep->why[0], "wal: the tail's reason is not one printable line");
        fuzz_must(rep->bad_offset <= n && rep->bad_bytes == n - rep->bad_offset,
                  "wal: the unreadable tail does not run to the end of the segment");
    } else {
        fuzz_must(rep->bad_offset == 0, "wal: a bad offset without bad bytes");
    }
    /* The header, the records and the tail are the whole segment (a torn header alone is
     * all tail). */
    if (n >= HEADER_BYTES && (rep->bad_offset || !rep->bad_bytes))
        fuzz_must(HEADER_BYTES + s->records * RECORD_HEADER + s->bytes == (rep->bad_bytes ? rep->bad_offset : n),
                  "wal: the records do not cover the segment up to its tail");
}

static void parse_in_memory(const uint8_t *p, size_t n, size_t stop_at)
{
    uint64_t seqs[2] = { 7, n >= HEADER_BYTES ? le64(p + 8) : 7 };
    for (int i = 0; i < (seqs[1] == 7 ? 1 : 2); i++) {
        struct seen s = { .stop_at = stop_at };
        struct wal_read_report rep;
        char err[200] = "";
        int rc = wal_parse(p, n, seqs[i], on_record, &s, &rep, err, sizeof err);
        fuzz_must(rc == 0 || rc == -1 || (rc == 5 && stop_at), "wal_parse: an unexpected result");
        if (rc == -1) {
            fuzz_must(s.records == 0 && fuzz_printable(err) && err[0], "wal_parse: a refusal without one line");
            continue;
        }
        check_report(&rep, n, &s, rc);
    }
}

/* A directory of its own for the log, made once (tmpfs when there is one). */
static const char *log_dir(void)
{
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/fuzz-wal-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        fuzz_must(mkdtemp(dir) != NULL, "wal: mkdtemp");
    }
    return dir;
}

static void empty_dir(const char *dir)
{
    static const char *const names[] = { "00000000000000000001.wal", "00000000000000000003.wal",
                                         "00000000000000000001.bad", "00000000000000000003.bad" };
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
}

/* Both ways a segment is loaded: its rows gzip'd into a batch's parts, or taken as they are. */
static void load_batch(struct wal *w, uint64_t seq)
{
    for (int gzip = 0; gzip <= 1; gzip++) {
        bool empty = false;
        char err[300] = "";
        struct ch_batch *b = ch_wal_load(w, seq, gzip, &empty, err, sizeof err);
        fuzz_must(b || err[0], "ch_wal_load: no batch and no reason");
        fuzz_must(fuzz_printable(err), "ch_wal_load: a reason that is not one printable line");
        fuzz_must(!(b && empty), "ch_wal_load: a batch from an empty segment");
        if (b) {
            fuzz_must(b->seq == seq, "ch_wal_load: the batch names another segment");
            ch_batch_free(b);
        }
    }
}

static void appended_then_read(const uint8_t *p, size_t n, size_t stop_at)
{
    const char *dir = log_dir();
    empty_dir(dir);
    char err[300] = "";
    struct wal *w = wal_open(dir, (uint64_t)1 << 24, err, sizeof err);
    fuzz_must(w != NULL, "wal_open on a fresh directory");
    /* The records the input names, cut where the input ends (a record's bytes cut short are
     * left out: what is appended is exactly what must come back). */
    size_t off = 0, appended_len = 0, count = 0;
    while (off + 2 <= n) {
        size_t len = (size_t)p[off] | (size_t)p[off + 1] << 8;
        if (len > n - off - 2)
            break;
        fuzz_must(wal_append(w, 1, p + off + 2, len, err, sizeof err) == WAL_APPENDED, "wal_append");
        off += 2 + len;
        appended_len = off;
        count++;
    }
    fuzz_must(wal_sync(w, err, sizeof err) == 0, "wal_sync");
    if (count) {
        struct seen s = { .stop_at = stop_at, .expect = p, .expect_len = appended_len };
        struct wal_read_report rep;
        int rc = wal_read(w, 1, on_record, &s, &rep, err, sizeof err);
        fuzz_must(rc == 0 || (rc == 5 && stop_at), "wal_read of appended records");
        if (rc == 0) {
            fuzz_must(s.records == count && s.expect_off == appended_len, "wal: not every appended record read back");
            fuzz_must(rep.bad_bytes == 0, "wal: appended records read back with an unreadable tail");
        }
        load_batch(w, 1);
    }
    wal_release(w, 1);
    wal_close(w);
}

static void file_then_read(const uint8_t *p, size_t n, size_t stop_at)
{
    const char *dir = log_dir();
    empty_dir(dir);
    char path[128];
    snprintf(path, sizeof path, "%s/00000000000000000003.wal", dir);
    FILE *f = fopen(path, "wb");
    fuzz_must(f && fwrite(p, 1, n, f) == n && fclose(f) == 0, "wal: writing a segment file");
    char err[300] = "";
    struct wal *w = wal_open(dir, (uint64_t)1 << 24, err, sizeof err);
    fuzz_must(w != NULL, "wal_open over a hostile segment");
    fuzz_must(wal_segment_count(w) == 1 && wal_segment_seq(w, 0) == 3, "wal_open: the segment not indexed");
    struct seen s = { .stop_at = stop_at };
    struct wal_read_report rep;
    int rc = wal_read(w, 3, on_record, &s, &rep, err, sizeof err);
    fuzz_must(rc == 0 || rc == -1 || (rc == 5 && stop_at), "wal_read: an unexpected result");
    if (rc == -1)
        fuzz_must(fuzz_printable(err) && err[0], "wal_read: a refusal without one line");
    else
        check_report(&rep, n, &s, rc);
    load_batch(w, 3);
    wal_quarantine(w, 3);
    wal_close(w);
    empty_dir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init_logs();
    if (size < 1)
        return 0;
    /* The high bits of the mode byte: after which record a callback says stop (0: never). */
    size_t stop_at = data[0] >> 4;
    switch (data[0] % 3) {
    case 0:
        parse_in_memory(data + 1, size - 1, stop_at);
        break;
    case 1:
        appended_then_read(data + 1, size - 1, stop_at);
        break;
    default:
        file_then_read(data + 1, size - 1, stop_at);
        break;
    }
    return 0;
}
