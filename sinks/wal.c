/*
 * wal.c - the write-ahead log behind wal.h: segment files of length-prefixed, CRC-checked
 * records in one locked directory.
 *
 * Why segments and not one file: the caller delivers in units (the ClickHouse sink: batches)
 * and frees a unit by deleting its segment, so the log never needs compaction or rewriting.
 * Why fdatasync of the directory: a new segment's name must survive a power loss as much as
 * its records. Why a failed sync ends the open segment: after a failed fsync Linux may drop
 * the dirty pages and report success next time, so records appended after them could sit
 * behind a hole; a fresh file starts clean.
 */
#include "sinks/wal.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "lib/seqfile.h"

#define MAGIC "LBWAL001"
#define HEADER_BYTES 16u
#define RECORD_HEADER 8u
/* A segment larger than this is not ours (wal_read would refuse to load it). */
#define MAX_SEGMENT_BYTES ((uint64_t)4 << 30)

struct segment {
    uint64_t seq;
    uint64_t bytes;
    uint64_t records;      /* known for segments appended to or read */
};

struct wal {
    char *dir;
    int dirfd;
    uint64_t max_bytes;
    struct segment *seg;   /* oldest first */
    size_t n, cap;
    uint64_t last_seq;
    /* the open segment (the last of seg[] when open_fd >= 0) */
    int open_fd;
    uint64_t open_seq;
    /* ended segments whose records are not synced yet (closed by wal_sync) */
    int *pending_fd;
    size_t n_pending, cap_pending;
    bool dirty, dir_dirty;
    bool failed;           /* a deferred sync failed: the next wal_sync fails */
    struct {               /* the group commit's sync in flight (wal_commit_*) */
        struct wal_sync_job *job;   /* first: wal_commit_run reads only this */
        int inline_rc;     /* no job could be made: synced inline, with this outcome */
        char err[200];
    } commit;
    struct wal_stats st;
};

/* ---- little helpers ---- */

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) { return get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static uLong crc_more(uLong c, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, k);
        p += k;
        n -= k;
    }
    return c;
}

static uint32_t record_crc(const uint8_t len[4], const uint8_t *p, size_t n)
{
    return (uint32_t)crc_more(crc32(crc32(0L, Z_NULL, 0), len, 4), p, n);
}


/* ---- the segment index ---- */

static struct segment *find(struct wal *w, uint64_t seq, size_t *at)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->seg[i].seq == seq) {
            if (at)
                *at = i;
            return &w->seg[i];
        }
    return NULL;
}

static bool push_segment(struct wal *w, uint64_t seq, uint64_t bytes)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct segment *s = realloc(w->seg, cap * sizeof *s);
        if (!s)
            return false;
        w->seg = s;
        w->cap = cap;
    }
    w->seg[w->n++] = (struct segment){ .seq = seq, .bytes = bytes };
    w->st.bytes += bytes;
    if (seq > w->last_seq)
        w->last_seq = seq;
    return true;
}

static void drop_segment(struct wal *w, size_t i)
{
    assert(i < w->n && w->st.bytes >= w->seg[i].bytes && w->st.records >= w->seg[i].records);
    w->st.bytes -= w->seg[i].bytes;
    w->st.records -= w->seg[i].records;
    memmove(w->seg + i, w->seg + i + 1, (w->n - i - 1) * sizeof *w->seg);
    w->n--;
}

static int seg_cmp(const void *a, const void *b)
{
    const struct segment *x = a, *y = b;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* ---- the directory ---- */

/* The checks on an existing directory, by its stat. */
static int check_stat(const char *dir, const struct stat *st, char *err, size_t errlen)
{
    if (S_ISLNK(st->st_mode)) {
        snprintf(err, errlen, "%s is a symbolic link: give the real directory", dir);
        return -1;
    }
    if (!S_ISDIR(st->st_mode)) {
        snprintf(err, errlen, "%s is not a directory", dir);
        return -1;
    }
    if (st->st_uid != geteuid()) {
        snprintf(err, errlen, "%s belongs to uid %u, not to this user (uid %u): another user could alter or "
                 "delete acknowledged data", dir, (unsigned)st->st_uid, (unsigned)geteuid());
        return -1;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen, "%s is writable by %s (mode %04o): another user could alter or delete acknowledged "
                 "data; chmod go-w it", dir, (st->st_mode & S_IWOTH) ? "everyone" : "its group",
                 (unsigned)(st->st_mode & 07777));
        return -1;
    }
    return 0;
}

int wal_check_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(dir, &st) != 0) {
        if (errno == ENOENT)
            return 0;   /* wal_open creates it */
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    return check_stat(dir, &st, err, errlen);
}

static int scan(struct wal *w, char *err, size_t errlen)
{
    int fd = dup(w->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        snprintf(err, errlen, "%s: %s", w->dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t seq;
        struct stat st;
        if (!seqfile_parse(de->d_name, ".wal", &seq) || fstatat(w->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (!push_segment(w, seq, (uint64_t)st.st_size)) {
            closedir(d);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    closedir(d);
    if (w->n > 1)
        qsort(w->seg, w->n, sizeof *w->seg, seg_cmp);
    w->st.segments = w->n;
    return 0;
}

struct wal *wal_open(const char *dir, uint64_t max_bytes, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    struct wal *w = calloc(1, sizeof *w);
    if (!w || !(w->dir = strdup(dir))) {
        free(w);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->open_fd = -1;
    w->dirfd = -1;
    w->max_bytes = max_bytes;
    struct stat lst, st;
    /* lstat for the message, then the opened directory itself (O_NOFOLLOW): what is checked
     * is what is used. */
    if (lstat(dir, &lst) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    if (check_stat(dir, &lst, err, errlen) != 0)
        goto fail;
    w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (w->dirfd < 0 || fstat(w->dirfd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    if (st.st_dev != lst.st_dev || st.st_ino != lst.st_ino || check_stat(dir, &st, err, errlen) != 0) {
        if (st.st_ino != lst.st_ino)
            snprintf(err, errlen, "%s changed while it was opened", dir);
        goto fail;
    }
    if (flock(w->dirfd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "%s is in use by another process (%s)", dir, strerror(errno));
        goto fail;
    }
    if (scan(w, err, errlen) != 0)
        goto fail;
    return w;
fail:
    wal_close(w);
    return NULL;
}

void wal_close(struct wal *w)
{
    if (!w)
        return;
    if (w->open_fd >= 0)
        close(w->open_fd);
    for (size_t i = 0; i < w->n_pending; i++)
        close(w->pending_fd[i]);
    if (w->dirfd >= 0)
        close(w->dirfd);
    free(w->pending_fd);
    free(w->seg);
    free(w->dir);
    free(w);
}

/* ---- appending ---- */

/* The open segment is done: its fd waits for the next sync, or is closed now when clean. */
static void end_open_segment(struct wal *w)
{
    if (w->open_fd < 0)
        return;
    if (w->dirty) {
        if (w->n_pending == w->cap_pending) {
            size_t cap = w->cap_pending ? w->cap_pending * 2 : 8;
            int *p = realloc(w->pending_fd, cap * sizeof *p);
            if (!p) {
                /* Cannot defer its sync: sync it now; a failure fails the next wal_sync. */
                if (fdatasync(w->open_fd) != 0)
                    w->failed = true;
                close(w->open_fd);
                w->open_fd = -1;
                return;
            }
            w->pending_fd = p;
            w->cap_pending = cap;
        }
        w->pending_fd[w->n_pending++] = w->open_fd;
    } else {
        close(w->open_fd);
    }
    w->open_fd = -1;
}

static int start_segment(struct wal *w, uint64_t seq, char *err, size_t errlen)
{
    char name[32];
    seqfile_name(seq, ".wal", name, sizeof name);
    int fd = openat(w->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s/%s: %s", w->dir, name, strerror(errno));
        return -1;
    }
    uint8_t h[HEADER_BYTES];
    memcpy(h, MAGIC, 8);
    put_u32(h + 8, (uint32_t)seq);
    put_u32(h + 12, (uint32_t)(seq >> 32));
    if (seqfile_write_all(fd, h, sizeof h) != 0 || !push_segment(w, seq, sizeof h)) {
        snprintf(err, errlen, "cannot write %s/%s: %s", w->dir, name, strerror(errno));
        close(fd);
        unlinkat(w->dirfd, name, 0);
        return -1;
    }
    w->st.segments = w->n;
    w->open_fd = fd;
    w->open_seq = seq;
    w->dir_dirty = true;
    w->dirty = true;
    return 0;
}

/* writev until everything is written; the iovecs are consumed. */
static int writev_all(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t k = writev(fd, iov, cnt > IOV_MAX ? IOV_MAX : cnt);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0) {
            errno = ENOSPC;
            return -1;
        }
        size_t done = (size_t)k;
        while (cnt > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

enum wal_append_status wal_append(struct wal *w, uint64_t seq, const void *p, size_t n, char *err, size_t errlen)
{
    struct iovec one = { .iov_base = (void *)p, .iov_len = n };
    return wal_appendv(w, seq, &one, 1, err, errlen);
}

enum wal_append_status wal_appendv(struct wal *w, uint64_t seq, const struct iovec *parts, int nparts, char *err,
                                   size_t errlen)
{
    enum { MAX_PARTS = 16 };
    if (nparts < 0 || nparts > MAX_PARTS) {
        snprintf(err, errlen, "a record in %d parts (at most %d)", nparts, MAX_PARTS);
        return WAL_FAILED;
    }
    size_t n = 0;
    for (int i = 0; i < nparts; i++)
        n += parts[i].iov_len;
    if (n > WAL_MAX_RECORD) {
        snprintf(err, errlen, "record of %zu bytes is larger than the log takes", n);
        return WAL_FAILED;
    }
    bool new_segment = w->open_fd < 0 || seq != w->open_seq;
    if (new_segment && seq <= w->last_seq) {
        snprintf(err, errlen, "segment %llu is not after the last one (%llu)", (unsigned long long)seq,
                 (unsigned long long)w->last_seq);
        return WAL_FAILED;
    }
    uint64_t need = RECORD_HEADER + n + (new_segment ? HEADER_BYTES : 0);
    if (w->st.bytes + need > w->max_bytes) {
        w->st.refused_full++;
        snprintf(err, errlen, "write-ahead log full (%llu of %llu bytes)", (unsigned long long)w->st.bytes,
                 (unsigned long long)w->max_bytes);
        return WAL_FULL;
    }
    if (new_segment) {
        end_open_segment(w);
        if (start_segment(w, seq, err, errlen) != 0)
            return WAL_FAILED;   /* nothing written */
    }
    uint8_t h[RECORD_HEADER];
    put_u32(h, (uint32_t)n);
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, h, 4);
    struct iovec iov[1 + MAX_PARTS];
    iov[0] = (struct iovec){ .iov_base = h, .iov_len = sizeof h };
    for (int i = 0; i < nparts; i++) {
        c = crc_more(c, parts[i].iov_base, parts[i].iov_len);
        iov[1 + i] = parts[i];
    }
    put_u32(h + 4, (uint32_t)c);
    struct segment *s = &w->seg[w->n - 1];
    assert(s->seq == seq);
    w->dirty = true;
    /* One writev: header and payload leave together (a kill cuts a record, never interleaves). */
    if (writev_all(w->open_fd, iov, 1 + nparts) != 0) {
        snprintf(err, errlen, "cannot write to %s/%020llu.wal: %s", w->dir, (unsigned long long)seq,
                 strerror(errno));
        /* A partial record may be in the file: nothing more goes after it. Its size is what
         * the file may now hold. */
        struct stat st;
        if (fstat(w->open_fd, &st) == 0 && (uint64_t)st.st_size >= s->bytes) {
            w->st.bytes += (uint64_t)st.st_size - s->bytes;
            s->bytes = (uint64_t)st.st_size;
        }
        end_open_segment(w);   /* synced with the others: its complete records stand */
        return WAL_FAILED;
    }
    s->bytes += RECORD_HEADER + n;
    s->records++;
    w->st.bytes += RECORD_HEADER + n;
    w->st.records++;
    return WAL_APPENDED;
}

bool wal_dirty(const struct wal *w) { return w->dirty || w->n_pending > 0 || w->failed; }

/* What one sync covers: descriptors of its own (duplicates, or the ended segments' own), so
 * the loop may append, end segments and release files while it runs on another thread. */
struct wal_sync_job {
    int *fd;                 /* fdatasync'ed */
    size_t n;
    int dirfd;               /* fsync'ed when >= 0 */
    bool failed_before;      /* a deferred sync failed already */
    int err;                 /* errno of the first failure */
    const char *what;
};

struct wal_sync_job *wal_sync_begin(struct wal *w)
{
    if (!wal_dirty(w))
        return NULL;
    struct wal_sync_job *j = calloc(1, sizeof *j);
    int *fd = malloc((w->n_pending + 1) * sizeof *fd);
    if (!j || !fd) {
        free(j);
        free(fd);
        return NULL;   /* out of memory: the caller syncs with wal_sync instead */
    }
    j->fd = fd;
    for (size_t i = 0; i < w->n_pending; i++)
        j->fd[j->n++] = w->pending_fd[i];
    w->n_pending = 0;
    if (w->open_fd >= 0 && w->dirty) {
        int d = dup(w->open_fd);
        if (d >= 0)
            j->fd[j->n++] = d;
        else
            j->failed_before = true;
    }
    j->dirfd = -1;
    if (w->dir_dirty) {
        j->dirfd = dup(w->dirfd);
        if (j->dirfd < 0)
            j->failed_before = true;
        w->dir_dirty = false;
    }
    j->failed_before |= w->failed;
    w->failed = false;
    w->dirty = false;
    return j;
}

void wal_sync_run(struct wal_sync_job *j)
{
    for (size_t i = 0; i < j->n; i++) {
        if (fdatasync(j->fd[i]) != 0 && !j->err) {
            j->err = errno;
            j->what = "fdatasync";
        }
    }
    if (j->dirfd >= 0 && fsync(j->dirfd) != 0 && !j->err) {
        j->err = errno;
        j->what = "fsync of the directory";
    }
}

int wal_sync_end(struct wal *w, struct wal_sync_job *j, char *err, size_t errlen)
{
    if (!j)
        return wal_sync(w, err, errlen);
    for (size_t i = 0; i < j->n; i++)
        close(j->fd[i]);
    if (j->dirfd >= 0)
        close(j->dirfd);
    w->st.syncs++;
    int rc = 0;
    if (j->failed_before || j->err) {
        rc = -1;
        w->st.sync_failures++;
        if (j->dirfd >= 0 && j->err)
            w->dir_dirty = true;
        /* Records appended while this ran may sit behind pages the failed sync lost: they fail
         * too, and nothing more goes into the open segment. */
        if (w->dirty)
            w->failed = true;
        end_open_segment(w);
        if (j->err)
            snprintf(err, errlen, "%s: %s: %s", w->dir, j->what, strerror(j->err));
        else
            snprintf(err, errlen, "%s: an earlier sync failed", w->dir);
    }
    free(j->fd);
    free(j);
    return rc;
}

void *wal_commit_begin(struct wal *w)
{
    if (!wal_dirty(w))
        return NULL;
    w->commit.job = wal_sync_begin(w);
    if (!w->commit.job)   /* out of memory for the job: sync here */
        w->commit.inline_rc = wal_sync(w, w->commit.err, sizeof w->commit.err);
    return &w->commit;
}

void wal_commit_run(void *token)
{
    struct wal_sync_job *j = *(struct wal_sync_job **)token;
    if (j)
        wal_sync_run(j);
}

int wal_commit_end(struct wal *w, char *err, size_t errlen)
{
    int rc;
    if (w->commit.job) {
        rc = wal_sync_end(w, w->commit.job, err, errlen);
    } else {
        rc = w->commit.inline_rc;
        snprintf(err, errlen, "%s", w->commit.err);
    }
    w->commit.job = NULL;
    return rc;
}

int wal_sync(struct wal *w, char *err, size_t errlen)
{
    if (!wal_dirty(w))
        return 0;
    struct wal_sync_job *j = wal_sync_begin(w);
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    wal_sync_run(j);
    return wal_sync_end(w, j, err, errlen);
}

/* ---- the index, release ---- */

size_t wal_segment_count(const struct wal *w) { return w->n; }
uint64_t wal_segment_seq(const struct wal *w, size_t i) { return i < w->n ? w->seg[i].seq : 0; }
uint64_t wal_last_seq(const struct wal *w) { return w->last_seq; }
uint64_t wal_max_bytes(const struct wal *w) { return w->max_bytes; }
const char *wal_dir(const struct wal *w) { return w->dir; }

void wal_get_stats(const struct wal *w, struct wal_stats *out)
{
    *out = w->st;
    out->segments = w->n;
}

/* Closes the segment's fd if it is the open one; pending ones are synced and closed by the
 * next wal_sync (harmless on a deleted file). */
static void forget_fd(struct wal *w, uint64_t seq)
{
    if (w->open_fd >= 0 && w->open_seq == seq) {
        end_open_segment(w);
    }
}

void wal_release(struct wal *w, uint64_t seq)
{
    size_t i;
    if (!find(w, seq, &i))
        return;
    forget_fd(w, seq);
    char name[32];
    seqfile_name(seq, ".wal", name, sizeof name);
    unlinkat(w->dirfd, name, 0);
    drop_segment(w, i);
}

void wal_quarantine(struct wal *w, uint64_t seq)
{
    size_t i;
    if (!find(w, seq, &i))
        return;
    forget_fd(w, seq);
    char from[32], to[32];
    seqfile_name(seq, ".wal", from, sizeof from);
    seqfile_name(seq, ".bad", to, sizeof to);
    renameat(w->dirfd, from, w->dirfd, to);
    drop_segment(w, i);
}

/* ---- reading ---- */

int wal_parse(const uint8_t *p, size_t n, uint64_t seq, wal_record_fn fn, void *ud, struct wal_read_report *rep,
              char *err, size_t errlen)
{
    memset(rep, 0, sizeof *rep);
    if (n < HEADER_BYTES && memcmp(p, MAGIC, n < 8 ? n : 8) == 0) {
        /* Killed between creating the file and writing its header: nothing was ever in it. */
        rep->bad_bytes = n;
        snprintf(rep->why, sizeof rep->why, "torn segment header");
        return 0;
    }
    if (n < HEADER_BYTES || memcmp(p, MAGIC, 8) != 0) {
        snprintf(err, errlen, "not a log segment (%zu bytes)", n);
        return -1;
    }
    if (get_u64(p + 8) != seq) {
        snprintf(err, errlen, "holds segment %llu", (unsigned long long)get_u64(p + 8));
        return -1;
    }
    size_t off = HEADER_BYTES;
    while (off < n) {
        const char *bad = NULL;
        size_t len = 0;
        if (n - off < RECORD_HEADER) {
            bad = "torn record header";
        } else {
            len = get_u32(p + off);
            if (len > WAL_MAX_RECORD)
                bad = "impossible record length";
            else if (len > n - off - RECORD_HEADER)
                bad = "torn record";
            else if (record_crc(p + off, p + off + RECORD_HEADER, len) != get_u32(p + off + 4))
                bad = "CRC mismatch";
        }
        if (bad) {
            rep->bad_offset = off;
            rep->bad_bytes = n - off;
            snprintf(rep->why, sizeof rep->why, "%s", bad);
            return 0;
        }
        int rc = fn(ud, p + off + RECORD_HEADER, len);
        rep->records++;
        if (rc != 0)
            return rc;
        off += RECORD_HEADER + len;
    }
    return 0;
}

int wal_read(struct wal *w, uint64_t seq, wal_record_fn fn, void *ud, struct wal_read_report *rep, char *err,
             size_t errlen)
{
    memset(rep, 0, sizeof *rep);
    struct segment *s = find(w, seq, NULL);
    char name[32];
    seqfile_name(seq, ".wal", name, sizeof name);
    int fd = s ? openat(w->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s/%s: %s", w->dir, name, s ? strerror(errno) : "no such segment");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > MAX_SEGMENT_BYTES) {
        snprintf(err, errlen, "%s/%s: %llu bytes is too large", w->dir, name, (unsigned long long)st.st_size);
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size ? size : 1);
    size_t got = 0;
    while (data && got < size) {
        ssize_t k = read(fd, data + got, size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    int e = errno;
    close(fd);
    if (!data || got < size) {
        snprintf(err, errlen, "%s/%s: %s", w->dir, name, data ? strerror(e) : "out of memory");
        free(data);
        return -1;
    }
    int rc = wal_parse(data, size, seq, fn, ud, rep, err, errlen);
    free(data);
    if (rc == 0 && s->records == 0) {   /* an earlier run's segment: now counted */
        s->records = rep->records;
        w->st.records += rep->records;
    }
    return rc;
}
