/*
 * test_wal.c - the write-ahead log (sinks/wal.c) on a real directory: records read back in
 * order across segments and a reopen, torn tails and bad CRCs end a segment's readable part,
 * the byte cap refuses, release and quarantine, and the directory checks (mode, symlink,
 * lock). Expected bytes are built here by hand (CRC-32 from zlib), not by the code under test.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "sinks/wal.h"
#include "test/unit/check.h"

static char root[256];

static void make_root(void)
{
    snprintf(root, sizeof root, "/tmp/test_wal.XXXXXX");
    if (!mkdtemp(root))
        abort();
}

static void path(char *out, size_t n, const char *sub)
{
    snprintf(out, n, "%s/%s", root, sub);
}

/* Collects records as "payload|payload|..." */
struct got {
    char text[4096];
    int n;
};

static int collect(void *ud, const uint8_t *p, size_t n)
{
    struct got *g = ud;
    size_t len = strlen(g->text);
    snprintf(g->text + len, sizeof g->text - len, "%s%.*s", g->n ? "|" : "", (int)n, (const char *)p);
    g->n++;
    return 0;
}

static int append(struct wal *w, uint64_t seq, const char *s)
{
    char err[256];
    return (int)wal_append(w, seq, s, strlen(s), err, sizeof err);
}

static struct got read_seg(struct wal *w, uint64_t seq, struct wal_read_report *rep, int *rc)
{
    struct got g = { "", 0 };
    char err[256];
    *rc = wal_read(w, seq, collect, &g, rep, err, sizeof err);
    return g;
}

/* A segment file written by hand: header, then records. */
static void put32(FILE *f, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    fwrite(b, 1, 4, f);
}

static void hand_record(FILE *f, const char *payload, bool break_crc)
{
    uint32_t n = (uint32_t)strlen(payload);
    uint8_t len[4] = { (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24) };
    uLong c = crc32(crc32(0L, Z_NULL, 0), len, 4);
    c = crc32(c, (const Bytef *)payload, n);
    put32(f, n);
    put32(f, (uint32_t)c ^ (break_crc ? 1u : 0u));
    fwrite(payload, 1, n, f);
}

TEST(records_come_back_in_order_across_segments_and_reopen)
{
    char dir[300], err[256];
    path(dir, sizeof dir, "order");
    struct wal *w = wal_open(dir, 1 << 20, err, sizeof err);
    CHECK(w != NULL);
    if (!w)
        return;
    CHECK_EQ_INT(append(w, 5, "a1"), WAL_APPENDED);
    CHECK_EQ_INT(append(w, 5, "a2"), WAL_APPENDED);
    CHECK_EQ_INT(append(w, 7, "b1"), WAL_APPENDED);   /* ends segment 5 */
    CHECK_EQ_INT(append(w, 6, "late"), WAL_FAILED);   /* never behind the last segment */
    CHECK(wal_dirty(w));
    CHECK_EQ_INT(wal_sync(w, err, sizeof err), 0);
    CHECK(!wal_dirty(w));
    CHECK_EQ_INT(append(w, 7, "b2"), WAL_APPENDED);
    CHECK_EQ_INT(wal_sync(w, err, sizeof err), 0);
    struct wal_stats st;
    wal_get_stats(w, &st);
    CHECK_EQ_INT(st.records, 4);
    CHECK_EQ_INT(st.segments, 2);
    CHECK_EQ_INT(st.syncs, 2);
    CHECK_EQ_INT(st.bytes, 2 * 16 + 4 * (8 + 2));
    /* the files themselves: mode 0600 */
    char f[400];
    snprintf(f, sizeof f, "%s/00000000000000000005.wal", dir);
    struct stat sb;
    CHECK(stat(f, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    wal_close(w);

    /* a second process cannot open it while it is open; after close, the next start reads it */
    w = wal_open(dir, 1 << 20, err, sizeof err);
    CHECK(w != NULL);
    if (!w)
        return;
    struct wal *again = wal_open(dir, 1 << 20, err, sizeof err);
    CHECK(again == NULL && strstr(err, "in use"));
    CHECK_EQ_INT(wal_segment_count(w), 2);
    CHECK_EQ_INT(wal_segment_seq(w, 0), 5);
    CHECK_EQ_INT(wal_segment_seq(w, 1), 7);
    CHECK_EQ_INT(wal_last_seq(w), 7);
    struct wal_read_report rep;
    int rc;
    struct got g = read_seg(w, 5, &rep, &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_STR(g.text, "a1|a2");
    CHECK_EQ_INT(rep.records, 2);
    CHECK_EQ_INT(rep.bad_bytes, 0);
    g = read_seg(w, 7, &rep, &rc);
    CHECK_EQ_STR(g.text, "b1|b2");
    /* release deletes the file and its bytes */
    wal_release(w, 5);
    CHECK_EQ_INT(wal_segment_count(w), 1);
    CHECK(access(f, F_OK) != 0);
    wal_get_stats(w, &st);
    CHECK_EQ_INT(st.bytes, 16 + 2 * 10);
    /* new segments continue after the last one */
    CHECK_EQ_INT(append(w, 7, "x"), WAL_FAILED);
    CHECK_EQ_INT(append(w, 8, "c1"), WAL_APPENDED);
    CHECK_EQ_INT(wal_sync(w, err, sizeof err), 0);
    wal_close(w);
}

TEST(torn_tail_and_bad_crc_end_the_readable_part)
{
    char dir[300], err[256], f[400];
    path(dir, sizeof dir, "torn");
    mkdir(dir, 0700);
    /* segment 1: two good records, then a record cut short */
    snprintf(f, sizeof f, "%s/00000000000000000001.wal", dir);
    FILE *fp = fopen(f, "wb");
    fwrite("LBWAL001", 1, 8, fp);
    put32(fp, 1);
    put32(fp, 0);
    hand_record(fp, "one", false);
    hand_record(fp, "two", false);
    put32(fp, 100);   /* says 100 bytes, holds 3 */
    put32(fp, 0);
    fwrite("thr", 1, 3, fp);
    fclose(fp);
    /* segment 2: a good record, one with a bad CRC, a good one after it (not trusted) */
    snprintf(f, sizeof f, "%s/00000000000000000002.wal", dir);
    fp = fopen(f, "wb");
    fwrite("LBWAL001", 1, 8, fp);
    put32(fp, 2);
    put32(fp, 0);
    hand_record(fp, "four", false);
    hand_record(fp, "five", true);
    hand_record(fp, "six", false);
    fclose(fp);
    /* segment 3: only half a record header */
    snprintf(f, sizeof f, "%s/00000000000000000003.wal", dir);
    fp = fopen(f, "wb");
    fwrite("LBWAL001", 1, 8, fp);
    put32(fp, 3);
    put32(fp, 0);
    fwrite("\x05\x00", 1, 2, fp);
    fclose(fp);
    /* segment 4: not a segment at all; and a file whose name is not ours */
    snprintf(f, sizeof f, "%s/00000000000000000004.wal", dir);
    fp = fopen(f, "wb");
    fwrite("garbage!garbage!", 1, 16, fp);
    fclose(fp);
    snprintf(f, sizeof f, "%s/notes.txt", dir);
    fp = fopen(f, "wb");
    fclose(fp);

    struct wal *w = wal_open(dir, 1 << 20, err, sizeof err);
    CHECK(w != NULL);
    if (!w)
        return;
    CHECK_EQ_INT(wal_segment_count(w), 4);
    struct wal_read_report rep;
    int rc;
    struct got g = read_seg(w, 1, &rep, &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_STR(g.text, "one|two");
    CHECK_EQ_INT(rep.bad_offset, 16 + 2 * (8 + 3));
    CHECK_EQ_INT(rep.bad_bytes, 8 + 3);
    CHECK_EQ_STR(rep.why, "torn record");
    g = read_seg(w, 2, &rep, &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_STR(g.text, "four");
    CHECK_EQ_STR(rep.why, "CRC mismatch");
    CHECK_EQ_INT(rep.bad_bytes, (8 + 4) + (8 + 3));
    g = read_seg(w, 3, &rep, &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(g.n, 0);
    CHECK_EQ_STR(rep.why, "torn record header");
    g = read_seg(w, 4, &rep, &rc);
    CHECK_EQ_INT(rc, -1);
    wal_quarantine(w, 4);
    snprintf(f, sizeof f, "%s/00000000000000000004.bad", dir);
    CHECK(access(f, F_OK) == 0);
    CHECK_EQ_INT(wal_segment_count(w), 3);
    /* a record appended by this run after an earlier run's segments starts a new file */
    CHECK_EQ_INT(append(w, 4, "x"), WAL_FAILED);
    CHECK_EQ_INT(append(w, 5, "seven"), WAL_APPENDED);
    CHECK_EQ_INT(wal_sync(w, err, sizeof err), 0);
    g = read_seg(w, 5, &rep, &rc);
    CHECK_EQ_STR(g.text, "seven");
    wal_close(w);
}

TEST(parse_rejects_a_length_beyond_the_record_limit)
{
    uint8_t seg[16 + 8] = "LBWAL001";
    seg[8] = 9;
    seg[16 + 0] = 0xff;
    seg[16 + 1] = 0xff;
    seg[16 + 2] = 0xff;
    seg[16 + 3] = 0xff;
    struct got g = { "", 0 };
    struct wal_read_report rep;
    char err[128];
    CHECK_EQ_INT(wal_parse(seg, sizeof seg, 9, collect, &g, &rep, err, sizeof err), 0);
    CHECK_EQ_INT(g.n, 0);
    CHECK_EQ_STR(rep.why, "impossible record length");
    /* a header cut short (killed right after creating the file): an empty segment */
    CHECK_EQ_INT(wal_parse((const uint8_t *)"LBWAL", 5, 9, collect, &g, &rep, err, sizeof err), 0);
    CHECK_EQ_INT(g.n, 0);
    CHECK_EQ_STR(rep.why, "torn segment header");
    CHECK_EQ_INT(wal_parse((const uint8_t *)"", 0, 9, collect, &g, &rep, err, sizeof err), 0);
    CHECK_EQ_INT(wal_parse((const uint8_t *)"LBXAL", 5, 9, collect, &g, &rep, err, sizeof err), -1);
    /* the header names another segment */
    CHECK_EQ_INT(wal_parse(seg, sizeof seg, 8, collect, &g, &rep, err, sizeof err), -1);
    CHECK(strstr(err, "holds segment 9") != NULL);
}

TEST(cap_refuses_when_full_and_takes_again_after_release)
{
    char dir[300], err[256];
    path(dir, sizeof dir, "cap");
    /* header 16 + two records of 8 + 40 = 112 bytes; the third does not fit in 150 */
    struct wal *w = wal_open(dir, 150, err, sizeof err);
    CHECK(w != NULL);
    if (!w)
        return;
    char rec[41];
    memset(rec, 'r', 40);
    rec[40] = 0;
    CHECK_EQ_INT(append(w, 1, rec), WAL_APPENDED);
    CHECK_EQ_INT(append(w, 1, rec), WAL_APPENDED);
    CHECK_EQ_INT(append(w, 1, rec), WAL_FULL);
    CHECK_EQ_INT(append(w, 2, rec), WAL_FULL);
    struct wal_stats st;
    wal_get_stats(w, &st);
    CHECK_EQ_INT(st.refused_full, 2);
    CHECK_EQ_INT(st.records, 2);
    CHECK_EQ_INT(wal_sync(w, err, sizeof err), 0);
    wal_release(w, 1);
    CHECK_EQ_INT(append(w, 2, rec), WAL_APPENDED);
    wal_get_stats(w, &st);
    CHECK_EQ_INT(st.bytes, 16 + 48);
    CHECK_EQ_INT(st.records, 1);
    CHECK_EQ_INT(wal_sync(w, err, sizeof err), 0);
    wal_close(w);
}

TEST(unsafe_directories_are_refused)
{
    char dir[300], link[300], err[256];
    path(dir, sizeof dir, "open-to-all");
    mkdir(dir, 0700);
    chmod(dir, 0777);
    struct wal *w = wal_open(dir, 1 << 20, err, sizeof err);
    CHECK(w == NULL && strstr(err, "writable by everyone"));
    CHECK(wal_check_dir(dir, err, sizeof err) == -1);
    chmod(dir, 0770);
    w = wal_open(dir, 1 << 20, err, sizeof err);
    CHECK(w == NULL && strstr(err, "writable by its group"));
    chmod(dir, 0755);
    w = wal_open(dir, 1 << 20, err, sizeof err);
    CHECK(w != NULL);
    wal_close(w);
    path(link, sizeof link, "link");
    CHECK(symlink(dir, link) == 0);
    w = wal_open(link, 1 << 20, err, sizeof err);
    CHECK(w == NULL && strstr(err, "symbolic link"));
    char file[300];
    path(file, sizeof file, "plain-file");
    close(open(file, O_CREAT | O_WRONLY, 0600));
    w = wal_open(file, 1 << 20, err, sizeof err);
    CHECK(w == NULL && strstr(err, "not a directory"));
    /* a missing parent: a clear message, nothing created */
    char deep[300];
    path(deep, sizeof deep, "missing/wal");
    w = wal_open(deep, 1 << 20, err, sizeof err);
    CHECK(w == NULL && strstr(err, "cannot create"));
    if (geteuid() == 0) {   /* another owner (only root can make one) */
        char other[300];
        path(other, sizeof other, "other-owner");
        mkdir(other, 0700);
        CHECK(chown(other, 65534, 65534) == 0);
        w = wal_open(other, 1 << 20, err, sizeof err);
        CHECK(w == NULL && strstr(err, "belongs to uid 65534"));
    }
}

TEST(segment_file_already_there_is_not_overwritten)
{
    char dir[300], err[256], f[400];
    path(dir, sizeof dir, "excl");
    struct wal *w = wal_open(dir, 1 << 20, err, sizeof err);
    CHECK(w != NULL);
    if (!w)
        return;
    /* planted after the scan: a symlink where the next segment goes */
    snprintf(f, sizeof f, "%s/00000000000000000001.wal", dir);
    CHECK(symlink("/tmp/should-not-be-written", f) == 0);
    CHECK_EQ_INT(append(w, 1, "x"), WAL_FAILED);
    CHECK(access("/tmp/should-not-be-written", F_OK) != 0);
    CHECK(wal_sync(w, err, sizeof err) == 0);   /* nothing was written: nothing to fail */
    struct wal_stats st;
    wal_get_stats(w, &st);
    CHECK_EQ_INT(st.sync_failures, 0);
    CHECK_EQ_INT(st.segments, 0);
    CHECK_EQ_INT(append(w, 2, "y"), WAL_APPENDED);
    CHECK_EQ_INT(wal_sync(w, err, sizeof err), 0);
    wal_close(w);
}

int main(void)
{
    make_root();
    RUN(records_come_back_in_order_across_segments_and_reopen);
    RUN(torn_tail_and_bad_crc_end_the_readable_part);
    RUN(parse_rejects_a_length_beyond_the_record_limit);
    RUN(cap_refuses_when_full_and_takes_again_after_release);
    RUN(unsafe_directories_are_refused);
    RUN(segment_file_already_there_is_not_overwritten);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        return 1;
    return check_done();
}
