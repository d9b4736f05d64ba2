/*
 * spool.c - the ClickHouse sink's on-disk spool: acknowledged batches that could not stay
 * in memory (ClickHouse slow or down, or the process shutting down) wait here, one file per
 * batch, and are replayed oldest first.
 *
 * A file is written whole or not at all: into a hidden temporary name, fsync'ed, renamed to
 * "<seq>.batch" and the directory fsync'ed, so after a crash a batch file is either complete
 * or absent (stale temporaries are removed at start). The file carries a CRC-32 and the
 * schema version of its rows; a file that fails either check is renamed "<seq>.bad" and
 * kept for inspection instead of being inserted or deleted.
 *
 * The directory is locked (flock) while open: one process per spool.
 *
 * Layout (little-endian): "LBCHB001", u32 schema version, u64 batch id, u64 seq, u32 tables,
 * per table u32 rows + u64 length, then the parts' bytes, then u32 CRC-32 of all before.
 * The magic says how the parts are held: "LBCHB001" gzip'd (as every earlier version wrote
 * them, so their files and an older version reading ours keep working), "LBCHB002" plain
 * RowBinary (--clickhouse-compression none); the rest of the layout is the same.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "lib/seqfile.h"
#include "sinks/clickhouse/internal.h"
#include "sinks/wal.h"

#define MAGIC_GZIP "LBCHB001"
#define MAGIC_PLAIN "LBCHB002"
#define HEADER_BYTES_FOR(tables) (8 + 4 + 8 + 8 + 4 + (size_t)(tables) * (4 + 8))
#define HEADER_BYTES HEADER_BYTES_FOR(CH_TABLES_V1)   /* the smallest header */

/* The tables of a batch file of schema `version`, in file order: 0 when not readable. */
static int file_tables(uint32_t version, const enum ch_table **order)
{
    static const enum ch_table current[CH_TABLES] = { CH_FRAMES, CH_STACKS, CH_RESOURCES, CH_REQUESTS, CH_SAMPLES };
    if (version == 1) {
        *order = ch_v1_tables;
        return CH_TABLES_V1;
    }
    *order = current;
    return version == CH_SCHEMA_VERSION ? CH_TABLES : 0;
}
/* A batch is at most the open batch's limit compressed; anything larger is not ours. */
#define MAX_FILE_BYTES ((uint64_t)4 << 30)

struct entry {
    uint64_t seq;
    uint64_t bytes;
};

struct ch_spool {
    char *dir;
    int dirfd;
    uint64_t max_bytes, bytes;
    struct entry *e;
    size_t head, n, cap;     /* live entries are e[head .. n) */
    uint64_t last_seq;
};

/* ---- encoding ---- */

static bool put_u32(struct buf *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    return buf_append(b, x, 4);
}

static bool put_u64(struct buf *b, uint64_t v)
{
    return put_u32(b, (uint32_t)v) && put_u32(b, (uint32_t)(v >> 32));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) { return get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static uint32_t crc(const uint8_t *p, size_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)c;
}

int ch_spool_encode(const struct ch_batch *b, struct buf *out)
{
    size_t start = out->len;
    /* a batch keeps the schema version it was written for (an older version's, read back) */
    uint32_t version = b->schema == 1 ? 1 : CH_SCHEMA_VERSION;
    const enum ch_table *order;
    int tables = file_tables(version, &order);
    bool ok = buf_append(out, b->gzip ? MAGIC_GZIP : MAGIC_PLAIN, 8) && put_u32(out, version) && put_u64(out, b->id) &&
              put_u64(out, b->seq) && put_u32(out, (uint32_t)tables);
    for (int i = 0; ok && i < tables; i++)
        ok = put_u32(out, b->part[order[i]].rows) && put_u64(out, b->part[order[i]].len);
    for (int i = 0; ok && i < tables; i++)
        ok = buf_append(out, b->part[order[i]].data, b->part[order[i]].len);
    ok = ok && put_u32(out, crc(out->data + start, out->len - start));
    if (!ok)
        out->len = start;
    return ok ? 0 : -1;
}

struct ch_batch *ch_spool_decode(const uint8_t *p, size_t n, char *err, size_t errlen)
{
    if (n < HEADER_BYTES + 4 || (memcmp(p, MAGIC_GZIP, 8) != 0 && memcmp(p, MAGIC_PLAIN, 8) != 0)) {
        snprintf(err, errlen, "not a batch file (%zu bytes)", n);
        return NULL;
    }
    if (get_u32(p + n - 4) != crc(p, n - 4)) {
        snprintf(err, errlen, "CRC mismatch (truncated or damaged)");
        return NULL;
    }
    const enum ch_table *order;
    uint32_t version = get_u32(p + 8);
    int tables = file_tables(version, &order);
    if (tables == 0 || get_u32(p + 28) != (uint32_t)tables || n < HEADER_BYTES_FOR(tables) + 4) {
        snprintf(err, errlen, "written for schema version %u, this is %u", version, CH_SCHEMA_VERSION);
        return NULL;
    }
    struct ch_batch *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->id = get_u64(p + 12);
    b->seq = get_u64(p + 20);
    b->schema = version;
    b->gzip = memcmp(p, MAGIC_GZIP, 8) == 0;
    size_t off = HEADER_BYTES_FOR(tables), body = n - 4;
    for (int i = 0; i < tables; i++) {
        int t = (int)order[i];
        const uint8_t *h = p + 32 + (size_t)i * 12;
        uint64_t len = get_u64(h + 4);
        b->part[t].rows = get_u32(h);
        if (len > body - off || (len == 0) != (b->part[t].rows == 0)) {
            snprintf(err, errlen, "part %d: bad length %llu", t, (unsigned long long)len);
            ch_batch_free(b);
            return NULL;
        }
        if (len) {
            b->part[t].data = malloc((size_t)len);
            if (!b->part[t].data) {
                snprintf(err, errlen, "out of memory");
                ch_batch_free(b);
                return NULL;
            }
            memcpy(b->part[t].data, p + off, (size_t)len);
        }
        b->part[t].len = (size_t)len;
        b->bytes += (size_t)len;
        off += (size_t)len;
    }
    if (off != body) {
        snprintf(err, errlen, "%zu trailing bytes", body - off);
        ch_batch_free(b);
        return NULL;
    }
    return b;
}

/* ---- the index ---- */

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static bool push(struct ch_spool *sp, uint64_t seq, uint64_t bytes)
{
    if (sp->head > 0 && sp->head == sp->n) {
        sp->head = sp->n = 0;
    }
    if (sp->n == sp->cap) {
        if (sp->head > 0) {   /* reuse the consumed front before growing */
            memmove(sp->e, sp->e + sp->head, (sp->n - sp->head) * sizeof *sp->e);
            sp->n -= sp->head;
            sp->head = 0;
        } else {
            size_t cap = sp->cap ? sp->cap * 2 : 64;
            struct entry *e = realloc(sp->e, cap * sizeof *e);
            if (!e)
                return false;
            sp->e = e;
            sp->cap = cap;
        }
    }
    sp->e[sp->n++] = (struct entry){ seq, bytes };
    sp->bytes += bytes;
    if (seq > sp->last_seq)
        sp->last_seq = seq;
    return true;
}

static void path_of(const struct ch_spool *sp, uint64_t seq, const char *suffix, char *out, size_t n)
{
    snprintf(out, n, "%s/%020llu%s", sp->dir, (unsigned long long)seq, suffix);
}


static int scan(struct ch_spool *sp, char *err, size_t errlen)
{
    DIR *d = opendir(sp->dir);
    if (!d) {
        snprintf(err, errlen, "%s: %s", sp->dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t seq;
        struct stat st;
        if (de->d_name[0] == '.' && strstr(de->d_name, ".tmp")) {
            unlinkat(sp->dirfd, de->d_name, 0);   /* a write cut short by a crash */
            continue;
        }
        if (!seqfile_parse(de->d_name, ".batch", &seq) || fstatat(sp->dirfd, de->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (!push(sp, seq, (uint64_t)st.st_size)) {
            closedir(d);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    closedir(d);
    if (sp->n > 1)
        qsort(sp->e, sp->n, sizeof *sp->e, entry_cmp);
    return 0;
}

bool ch_spool_has_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    struct dirent *de;
    uint64_t seq;
    bool found = false;
    while (!found && (de = readdir(d)) != NULL)
        found = seqfile_parse(de->d_name, ".batch", &seq);
    closedir(d);
    return found;
}

static struct ch_spool *spool_open(const char *dir, uint64_t max_bytes, bool lock, char *err, size_t errlen)
{
    /* Acknowledged data must not be open to other users, nor reached through a link. */
    if (wal_check_dir(dir, err, errlen) != 0)
        return NULL;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    struct ch_spool *sp = calloc(1, sizeof *sp);
    if (!sp || !(sp->dir = strdup(dir))) {
        free(sp);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    sp->max_bytes = max_bytes;
    sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sp->dirfd < 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        ch_spool_free(sp);
        return NULL;
    }
    /* Two processes replaying one spool would send every batch twice and race on deletes. */
    if (lock && flock(sp->dirfd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "%s is in use by another process (%s)", dir, strerror(errno));
        ch_spool_free(sp);
        return NULL;
    }
    if (scan(sp, err, errlen) != 0) {
        ch_spool_free(sp);
        return NULL;
    }
    return sp;
}

struct ch_spool *ch_spool_open(const char *dir, uint64_t max_bytes, char *err, size_t errlen)
{
    return spool_open(dir, max_bytes, true, err, errlen);
}

struct ch_spool *ch_spool_open_unlocked(const char *dir, uint64_t max_bytes, char *err, size_t errlen)
{
    return spool_open(dir, max_bytes, false, err, errlen);
}

void ch_spool_free(struct ch_spool *sp)
{
    if (!sp)
        return;
    if (sp->dirfd >= 0)
        close(sp->dirfd);
    free(sp->e);
    free(sp->dir);
    free(sp);
}

size_t ch_spool_count(const struct ch_spool *sp) { return sp->n - sp->head; }
uint64_t ch_spool_bytes(const struct ch_spool *sp) { return sp->bytes; }
uint64_t ch_spool_max_bytes(const struct ch_spool *sp) { return sp->max_bytes; }
uint64_t ch_spool_last_seq(const struct ch_spool *sp) { return sp->last_seq; }
uint64_t ch_spool_head_seq(const struct ch_spool *sp) { return ch_spool_count(sp) ? sp->e[sp->head].seq : 0; }

/* ---- writing ---- */

static int write_file(struct ch_spool *sp, const struct buf *data, uint64_t seq, char *err, size_t errlen)
{
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof tmp, "%s/.%020llu.tmp", sp->dir, (unsigned long long)seq);
    path_of(sp, seq, ".batch", final, sizeof final);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    if (seqfile_write_all(fd, data->data, data->len) != 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "writing %s: %s", tmp, errno ? strerror(errno) : "short write");
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, final) != 0) {
        snprintf(err, errlen, "rename to %s: %s", final, strerror(errno));
        unlink(tmp);
        return -1;
    }
    fsync(sp->dirfd);   /* the rename itself must survive a power loss */
    return 0;
}

int ch_spool_write(struct ch_spool *sp, const struct ch_batch *b, bool force, char *err, size_t errlen)
{
    if (!force && sp->bytes >= sp->max_bytes) {
        snprintf(err, errlen, "spool full (%llu of %llu bytes)", (unsigned long long)sp->bytes,
                 (unsigned long long)sp->max_bytes);
        return -1;
    }
    if (b->seq <= sp->last_seq && ch_spool_count(sp) > 0 && !force) {
        /* Order on disk is the order of delivery: never write behind the tail. */
        snprintf(err, errlen, "batch %llu is older than the spool's tail %llu", (unsigned long long)b->seq,
                 (unsigned long long)sp->last_seq);
        return -1;
    }
    struct buf data;
    buf_init(&data, (size_t)MAX_FILE_BYTES);
    if (ch_spool_encode(b, &data) != 0) {
        buf_free(&data);
        snprintf(err, errlen, "out of memory encoding batch %llu", (unsigned long long)b->seq);
        return -1;
    }
    errno = 0;
    int rc = write_file(sp, &data, b->seq, err, errlen);
    uint64_t bytes = data.len;
    buf_free(&data);
    if (rc != 0)
        return -1;
    if (!push(sp, b->seq, bytes)) {
        snprintf(err, errlen, "out of memory indexing the spool");
        return -1;
    }
    /* Shutdown writes older (in-memory) batches after newer spooled ones. */
    if (sp->n - sp->head > 1 && sp->e[sp->n - 2].seq > b->seq)
        qsort(sp->e + sp->head, sp->n - sp->head, sizeof *sp->e, entry_cmp);
    return 0;
}

/* ---- reading ---- */

static int read_file(const char *path, uint64_t size, struct buf *out, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    if (size > MAX_FILE_BYTES || !buf_reserve(out, (size_t)size + 1)) {
        snprintf(err, errlen, "%llu bytes is too large", (unsigned long long)size);
        close(fd);
        return -1;
    }
    for (;;) {
        if (out->len == out->cap && !buf_reserve(out, 65536))
            break;
        ssize_t k = read(fd, out->data + out->len, out->cap - out->len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            snprintf(err, errlen, "%s", strerror(errno));
            close(fd);
            return -1;
        }
        if (k == 0)
            break;
        out->len += (size_t)k;
    }
    close(fd);
    return 0;
}

struct ch_batch *ch_spool_load_head(struct ch_spool *sp, char *err, size_t errlen)
{
    if (!ch_spool_count(sp)) {
        snprintf(err, errlen, "spool empty");
        return NULL;
    }
    const struct entry *e = &sp->e[sp->head];
    char path[4096];
    path_of(sp, e->seq, ".batch", path, sizeof path);
    struct buf data;
    buf_init(&data, (size_t)MAX_FILE_BYTES + 65536);
    struct ch_batch *b = NULL;
    char why[200];
    if (read_file(path, e->bytes, &data, why, sizeof why) == 0) {
        b = ch_spool_decode(data.data, data.len, why, sizeof why);
        if (b && b->seq != e->seq) {
            snprintf(why, sizeof why, "holds batch seq %llu", (unsigned long long)b->seq);
            ch_batch_free(b);
            b = NULL;
        }
    }
    buf_free(&data);
    if (!b)
        snprintf(err, errlen, "%s: %s", path, why);
    return b;
}

static void pop_head(struct ch_spool *sp)
{
    assert(sp->head < sp->n && sp->bytes >= sp->e[sp->head].bytes);
    sp->bytes -= sp->e[sp->head].bytes;
    sp->head++;
    if (sp->head == sp->n)
        sp->head = sp->n = 0;
}

void ch_spool_remove_head(struct ch_spool *sp)
{
    if (!ch_spool_count(sp))
        return;
    char path[4096];
    path_of(sp, sp->e[sp->head].seq, ".batch", path, sizeof path);
    unlink(path);
    pop_head(sp);
}

void ch_spool_quarantine_head(struct ch_spool *sp)
{
    if (!ch_spool_count(sp))
        return;
    char from[4096], to[4096];
    path_of(sp, sp->e[sp->head].seq, ".batch", from, sizeof from);
    path_of(sp, sp->e[sp->head].seq, ".bad", to, sizeof to);
    rename(from, to);
    pop_head(sp);
}
