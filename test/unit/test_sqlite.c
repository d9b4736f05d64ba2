/*
 * test_sqlite.c - the SQLite store's pieces that end-to-end tests reach badly: the bounded id
 * cache and its rollback invalidation, schema migrations (upgrade from an old version, refusal
 * of newer or foreign databases), and the sink's transaction edges (an aborted request leaves
 * nothing and no stale ids behind; a commit that cannot happen is reported; hostile bytes are
 * stored exactly; a resource's entity refs are stored and replayed in order). Expectations are
 * written by hand here.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "sinks/sqlite/sqlite.h"
#include "sinks/sqlite/internal.h"
#include "sinks/sqlite/replay.h"

static char dir[64];

static const char *path(const char *name)
{
    static char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* One integer from a fresh connection: what another process would see. */
static long long q1(const char *db, const char *sql)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    long long v = -999;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    } else {
        printf("#   q1(%s): %s\n", sql, sqlite3_errmsg(h));
    }
    sqlite3_close(h);
    return v;
}

/* ---------- cache and memo ---------- */

TEST(cache_hits_and_misses)
{
    struct idcache *c = idcache_new(4, 1 << 20, 64);
    CHECK(c != NULL);
    CHECK_EQ_INT(idcache_get(c, 42, "abc", 3), 0);
    idcache_put(c, 42, "abc", 3, 7, 1);
    CHECK_EQ_INT(idcache_get(c, 42, "abc", 3), 7);
    CHECK_EQ_INT(idcache_get(c, 42, "abd", 3), 0);    /* same hash, other content: a miss */
    CHECK_EQ_INT(idcache_get(c, 43, "abc", 3), 0);
    idcache_put(c, 44, "x", 1, 9, 1);
    idcache_put(c, 45, "long key over the limit of sixty-four bytes ........................", 69, 10, 1);
    CHECK_EQ_INT(idcache_get(c, 45, "long key over the limit of sixty-four bytes ........................", 69), 0);
    idcache_free(c);
}

TEST(cache_is_bounded)
{
    struct idcache *c = idcache_new(4, 40, 64);   /* 16 slots, 40 bytes of keys */
    char key[16];
    for (int i = 1; i <= 1000; i++) {
        snprintf(key, sizeof key, "k%07d", i);    /* 8 bytes */
        idcache_put(c, sqlstore_hash(key, 8), key, 8, i, 1);
    }
    struct idcache_stats s;
    idcache_stats(c, &s);
    CHECK(s.entries <= 5);
    CHECK(s.key_bytes <= 40);
    CHECK(s.evictions > 0);
    /* the most recent key survives (LRU evicts older ways first) */
    snprintf(key, sizeof key, "k%07d", 1000);
    CHECK_EQ_INT(idcache_get(c, sqlstore_hash(key, 8), key, 8), 1000);
    idcache_free(c);
}

TEST(cache_grows_and_keeps_every_entry)
{
    /* starts small and doubles: entries put before a growth are found after it, and the
     * ones of a rolled-back transaction are still forgotten */
    struct idcache *c = idcache_new(16, 1 << 20, 64);
    char key[16];
    for (int i = 1; i <= 5000; i++) {
        snprintf(key, sizeof key, "k%07d", i);
        idcache_put(c, hash64_lanes(key, 8), key, 8, i, (uint64_t)(i % 2));
    }
    struct idcache_stats s;
    idcache_stats(c, &s);
    CHECK_EQ_INT(s.entries, 5000);
    CHECK_EQ_INT(s.evictions, 0);
    int found = 0;
    for (int i = 1; i <= 5000; i++) {
        snprintf(key, sizeof key, "k%07d", i);
        found += idcache_get(c, hash64_lanes(key, 8), key, 8) == i;
    }
    CHECK_EQ_INT(found, 5000);
    idcache_drop_txn(c, 1);
    snprintf(key, sizeof key, "k%07d", 4001);
    CHECK_EQ_INT(idcache_get(c, hash64_lanes(key, 8), key, 8), 0);
    snprintf(key, sizeof key, "k%07d", 4000);
    CHECK_EQ_INT(idcache_get(c, hash64_lanes(key, 8), key, 8), 4000);
    idcache_free(c);
}

TEST(cache_forgets_rolled_back_transaction)
{
    struct idcache *c = idcache_new(8, 1 << 20, 64);
    idcache_put(c, 1, "old", 3, 11, 5);
    idcache_put(c, 2, "new", 3, 12, 6);
    idcache_drop_txn(c, 6);
    CHECK_EQ_INT(idcache_get(c, 1, "old", 3), 11);
    CHECK_EQ_INT(idcache_get(c, 2, "new", 3), 0);
    idcache_free(c);
}

TEST(hash_is_fixed)
{
    /* stored in databases: must never change for schema version 2 */
    CHECK(sqlstore_hash("", 0) == sqlstore_hash("", 0));
    CHECK(sqlstore_hash("a", 1) != sqlstore_hash("b", 1));
    CHECK(sqlstore_hash("abcdefgh", 8) != sqlstore_hash("abcdefgh\0", 9));
    /* the values themselves: databases written before hold them in their hash columns */
    CHECK(sqlstore_hash("", 0) == UINT64_C(0xfd537b06e63f9f03));
    CHECK(sqlstore_hash("abc", 3) == UINT64_C(0xb5ae2a565cd8e608));
    CHECK(sqlstore_hash("abcdefghijklmnopqrstuvwxyz", 26) == UINT64_C(0x49d0b2c852108fde));
}

TEST(cache_hash_sees_every_byte)
{
    /* the caches' own hash (never stored): a key over its four lanes and a tail, one byte
     * changed anywhere, another hash */
    uint8_t k[77];
    for (size_t i = 0; i < sizeof k; i++)
        k[i] = (uint8_t)(i * 7);
    uint64_t h = hash64_lanes(k, sizeof k);
    int differ = 0;
    for (size_t i = 0; i < sizeof k; i++) {
        k[i] ^= 1;
        differ += hash64_lanes(k, sizeof k) != h;
        k[i] ^= 1;
    }
    CHECK_EQ_INT(differ, (int)sizeof k);
    CHECK(hash64_lanes(k, 76) != h);
    CHECK(hash64_lanes("", 0) != hash64_lanes("\0", 1));
}

TEST(memo_put_get_clear_and_cap)
{
    struct memo m;
    int64_t v;
    memo_init(&m, 3);
    CHECK(!memo_get(&m, 0, &v));
    CHECK(memo_put(&m, 0, 100));
    CHECK(memo_put(&m, 5, 105));
    CHECK(memo_put(&m, 5, 106));                  /* replace: no new entry */
    CHECK(memo_put(&m, 6, 107));
    CHECK(!memo_put(&m, 7, 108));                 /* full */
    CHECK(memo_get(&m, 0, &v) && v == 100);
    CHECK(memo_get(&m, 5, &v) && v == 106);
    CHECK(!memo_get(&m, 7, &v));
    memo_clear(&m);
    CHECK(!memo_get(&m, 5, &v));
    CHECK(memo_put(&m, 7, 1));
    memo_free(&m);
}

/* ---------- schema ---------- */

TEST(migrates_an_old_database)
{
    sqlite3 *db;
    char err[512];
    const char *p = path("old.db");
    CHECK(sqlite3_open(p, &db) == SQLITE_OK);
    CHECK_EQ_INT(sqlstore_migrate(db, 1, err, sizeof err), 0);
    sqlite3_close(db);
    CHECK_EQ_INT(q1(p, "PRAGMA user_version"), 1);
    CHECK_EQ_INT(q1(p, "SELECT count(*) FROM sqlite_schema WHERE type='view'"), 0);
    /* the reader refuses it, telling how to upgrade */
    CHECK_EQ_INT(sqlstore_open_reader(p, &db, err, sizeof err), -1);
    CHECK(strstr(err, "older") != NULL);
    /* the writer upgrades it */
    CHECK_EQ_INT(sqlstore_open_writer(p, "NORMAL", &db, err, sizeof err), 0);
    sqlite3_close(db);
    CHECK_EQ_INT(q1(p, "PRAGMA user_version"), SQLSTORE_SCHEMA_VERSION);
    CHECK_EQ_INT(q1(p, "SELECT count(*) FROM schema_migrations"), SQLSTORE_SCHEMA_VERSION);
    CHECK_EQ_INT(q1(p, "SELECT count(*) FROM sqlite_schema WHERE name='frames_v'"), 1);
    /* opening again changes nothing */
    CHECK_EQ_INT(sqlstore_open_writer(p, "FULL", &db, err, sizeof err), 0);
    sqlite3_close(db);
    CHECK_EQ_INT(q1(p, "SELECT count(*) FROM schema_migrations"), SQLSTORE_SCHEMA_VERSION);
}

TEST(refuses_newer_and_foreign_databases)
{
    sqlite3 *db;
    char err[512];
    const char *p = path("newer.db");
    CHECK(sqlite3_open(p, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "CREATE TABLE t(x); PRAGMA user_version = 99;", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    CHECK_EQ_INT(sqlstore_open_writer(p, "FULL", &db, err, sizeof err), -1);
    CHECK(strstr(err, "schema version 99") != NULL && strstr(err, "newer") != NULL);
    CHECK_EQ_INT(sqlstore_open_reader(p, &db, err, sizeof err), -1);
    CHECK(strstr(err, "newer") != NULL);
    CHECK_EQ_INT(q1(p, "PRAGMA user_version"), 99);   /* untouched */

    p = path("foreign.db");
    CHECK(sqlite3_open(p, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "CREATE TABLE customers(name TEXT);", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    CHECK_EQ_INT(sqlstore_open_writer(p, "FULL", &db, err, sizeof err), -1);
    CHECK(strstr(err, "not a lazybackend database") != NULL);
    CHECK_EQ_INT(q1(p, "SELECT count(*) FROM sqlite_schema"), 1);

    p = path("garbage.db");
    FILE *f = fopen(p, "wb");
    fputs("this is not a database, just text that is long enough to have a header .....................", f);
    fclose(f);
    CHECK_EQ_INT(sqlstore_open_writer(p, "FULL", &db, err, sizeof err), -1);
    CHECK(err[0] != '\0');
    CHECK_EQ_INT(sqlstore_open_reader(path("missing.db"), &db, err, sizeof err), -1);
}

/* ---------- the sink through its vtable ---------- */

struct fixture {
    struct lb_request req;
    struct lb_attr rattr[1], sattr[2];
    struct lb_resource res;
    struct lb_scope scope;
    struct lb_profile prof;
    struct lb_frame frames[2];
    struct lb_mapping map;
    uint64_t ts[3];
    int64_t values[3];
    struct lb_sample smp;
};

static void fixture_init(struct fixture *f, const char *function)
{
    memset(f, 0, sizeof *f);
    f->req = (struct lb_request){ .transport = "file", .peer = "unit", .layout = "v1.11",
                                  .received_unix_nano = 5, .wire_bytes = 10, .message_bytes = 10, .sequence = 1 };
    f->rattr[0] = (struct lb_attr){ LB_STR_LIT("container.id"), { .kind = LB_VALUE_STRING, .u.str = LB_STR_LIT("c1") } };
    f->sattr[0] = (struct lb_attr){ LB_STR_LIT("thread.name"), { .kind = LB_VALUE_STRING, .u.str = LB_STR_LIT("main") } };
    f->sattr[1] = (struct lb_attr){ LB_STR_LIT("thread.id"), { .kind = LB_VALUE_INT, .u.integer = -7 } };
    f->res = (struct lb_resource){ .request = &f->req, .attrs = { f->rattr, 1 } };
    f->scope = (struct lb_scope){ .name = LB_STR_LIT("scope"), .version = LB_STR_LIT("1") };
    f->prof = (struct lb_profile){ .resource = &f->res, .scope = &f->scope, .sample_type = LB_STR_LIT("off_cpu"),
                                   .sample_unit = LB_STR_LIT("nanoseconds"), .time_unix_nano = 1000, .period = 1 };
    f->map = (struct lb_mapping){ .file = LB_STR_LIT("libc.so"), .build_id = LB_STR_LIT("abcd"),
                                  .build_id_kind = LB_STR_LIT("gnu") };
    f->frames[0] = (struct lb_frame){ .type = LB_STR_LIT("native"), .address = 0xfffffffffffffff0ull,
                                      .has_mapping = true, .mapping = &f->map, .location_index = 1 };
    f->frames[1] = (struct lb_frame){ .type = LB_STR_LIT("go"), .symbolized = true,
                                      .function = { function, strlen(function) + 1 },   /* the NUL too */
                                      .file = LB_STR_LIT("main.go"), .line = 3, .location_index = 2, .line_count = 1 };
    f->ts[0] = 2000; f->ts[1] = 1500; f->ts[2] = 3000;
    f->values[0] = 10; f->values[1] = 20; f->values[2] = 30;
    f->smp = (struct lb_sample){ .profile = &f->prof, .stack_index = 1, .timestamps = f->ts, .n_timestamps = 3,
                                 .values = f->values, .n_values = 3, .attrs = { f->sattr, 2 },
                                 .frames = f->frames, .n_frames = 2 };
}

/* Drives one request; `abort_it` ends it with request_abort. Returns request_end's result. */
static int send(struct sink *s, struct fixture *f, bool abort_it)
{
    char why[256] = "";
    s->type->request_begin(s, &f->req);
    s->type->resource_begin(s, &f->res);
    s->type->profile_begin(s, &f->prof);
    s->type->sample(s, &f->smp);
    s->type->sample(s, &f->smp);
    s->type->profile_end(s, &f->prof);
    if (s->type->resource_end)
        s->type->resource_end(s, &f->res);
    if (abort_it) {
        s->type->request_abort(s, &f->req, "test");
        return 0;
    }
    int rc = s->type->request_end(s, &f->req, why, sizeof why);
    if (rc)
        printf("#   request_end: %s\n", why);
    return rc;
}

static const char DANGLING[] =
    "SELECT (SELECT count(*) FROM stack_frames sf LEFT JOIN frames f ON f.id = sf.frame_id WHERE f.id IS NULL)"
    " + (SELECT count(*) FROM frames f LEFT JOIN strings s ON s.id = f.function_id WHERE f.function_id IS NOT NULL AND s.id IS NULL)"
    " + (SELECT count(*) FROM frames f LEFT JOIN mappings m ON m.id = f.mapping_id WHERE f.mapping_id IS NOT NULL AND m.id IS NULL)"
    " + (SELECT count(*) FROM samples x LEFT JOIN stacks s ON s.id = x.stack_id WHERE s.id IS NULL)"
    " + (SELECT count(*) FROM samples x LEFT JOIN attribute_sets s ON s.id = x.attributes_id WHERE x.attributes_id IS NOT NULL AND s.id IS NULL)"
    " + (SELECT count(*) FROM attribute_set_items i LEFT JOIN attributes a ON a.id = i.attribute_id WHERE a.id IS NULL)"
    " + (SELECT count(*) FROM attributes a LEFT JOIN strings s ON s.id = a.value WHERE a.kind = 'string' AND s.id IS NULL)";

/* The connection's synchronous level, as SQLite reports it (1 NORMAL, 2 FULL). */
static long long sink_synchronous(const struct sink *s)
{
    sqlite3_stmt *st;
    long long v = -1;
    const struct sq *q = s->ctx;
    if (sqlite3_prepare_v2(q->db, "PRAGMA synchronous", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The level asked for is the one the connection runs at (sqlite3.h has macros of its own
 * named SQLITE_SYNC_*, which once shadowed this option's names and made NORMAL mean FULL). */
TEST(sink_runs_at_the_synchronous_level_asked_for)
{
    struct sink s;
    char err[256];
    struct sqlite_sink_options o = { .path = path("sync.db"), .sync = SQLITE_SINK_SYNC_NORMAL };
    CHECK_EQ_INT(sqlite_sink_open(&s, &o, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(sink_synchronous(&s), 1);
    s.type->close(&s, 0);
    o.sync = SQLITE_SINK_SYNC_FULL;
    CHECK_EQ_INT(sqlite_sink_open(&s, &o, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(sink_synchronous(&s), 2);
    s.type->close(&s, 0);
}

TEST(sink_stores_once_and_rolls_back_cleanly)
{
    struct sink s;
    struct sqlite_sink_options o = { .path = path("sink.db"), .sync = SQLITE_SINK_SYNC_NORMAL, .batch_requests = 1 };
    char err[256];
    struct fixture f;
    fixture_init(&f, "main.main");
    CHECK_EQ_INT(sqlite_sink_open(&s, &o, NULL, err, sizeof err), 0);

    /* an aborted first request: its strings, frames and stacks are created then rolled back */
    CHECK_EQ_INT(send(&s, &f, true), 0);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM strings"), 0);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM requests"), 0);
    /* the same content again: the cache must not hand out the rolled-back ids */
    CHECK_EQ_INT(send(&s, &f, false), 0);
    CHECK_EQ_INT(q1(o.path, DANGLING), 0);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM samples"), 2);
    long long strings = q1(o.path, "SELECT count(*) FROM strings");
    long long frames = q1(o.path, "SELECT count(*) FROM frames");
    CHECK_EQ_INT(frames, 2);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM stacks"), 1);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM attribute_sets"), 2);   /* resource, sample */

    /* a second request with the same content adds rows, not content */
    CHECK_EQ_INT(send(&s, &f, false), 0);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM samples"), 4);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM strings"), strings);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM frames"), frames);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM stacks"), 1);
    struct sqlite_sink_stats st;
    CHECK_EQ_INT(sqlite_sink_stats(&s, &st), 0);
    CHECK_EQ_INT(st.committed, 2);
    CHECK_EQ_INT(st.rolled_back, 1);
    CHECK_EQ_INT(st.commit_ns.count, 2);   /* only commits are timed */
    CHECK(st.commit_ns.sum > 0);
    s.type->close(&s, 0);

    /* a new sink (cold caches) finds the content in the database */
    CHECK_EQ_INT(sqlite_sink_open(&s, &o, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(send(&s, &f, false), 0);
    s.type->close(&s, 0);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM samples"), 6);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM strings"), strings);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM stacks"), 1);
    CHECK_EQ_INT(q1(o.path, DANGLING), 0);

    /* what was stored, checked against the fixture */
    CHECK_EQ_INT(q1(o.path, "SELECT sum(weight) FROM samples"), 6 * 60);
    /* the series packed by hand (docs/sqlite.md): timestamps 2000, 1500, 3000 differ by 2000,
     * -500, 1500: zigzag 4000, 999, 3000, varints A0 1F, E7 07, B8 17; values 10, 20, 30 differ
     * by 10 each: zigzag 20 = 0x14 */
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM samples WHERE hex(timestamps_packed) = 'A01FE707B817'"), 6);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM samples WHERE hex(values_packed) = '141414'"), 6);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM sample_timestamps"), 0);
    CHECK_EQ_INT(q1(o.path, "SELECT first_time_unix_nano FROM profiles LIMIT 1"), 1500);
    CHECK_EQ_INT(q1(o.path, "SELECT last_time_unix_nano FROM profiles LIMIT 1"), 3000);
    CHECK_EQ_INT(q1(o.path, "SELECT last_sample_id - first_sample_id FROM profiles LIMIT 1"), 1);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM frames_v WHERE name = 'libc.so+0xfffffffffffffff0'"
                            " AND type = 'native' AND build_id = 'abcd' AND build_id_kind = 'gnu'"), 1);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM attributes_v WHERE key = 'thread.id' AND value = '-7'"), 1);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM stack_frames_v WHERE pos = 0 AND type = 'native'"), 1);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM requests_v WHERE layout = 'v1.11' AND transport = 'file' AND peer = 'unit'"), 3);
    CHECK_EQ_INT(q1(o.path, "SELECT samples FROM requests LIMIT 1"), 2);
}

TEST(sink_keeps_hostile_bytes_exactly)
{
    struct sink s;
    struct sqlite_sink_options o = { .path = path("bytes.db") };
    char err[256];
    struct fixture f;
    fixture_init(&f, "f\xff\x01\n\xe2\x80\xae");   /* invalid UTF-8, control, newline, bidi, + the NUL */
    CHECK_EQ_INT(sqlite_sink_open(&s, &o, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(send(&s, &f, false), 0);
    s.type->close(&s, 0);
    CHECK_EQ_INT(q1(o.path, "SELECT length(CAST(value AS BLOB)) FROM strings WHERE CAST(value AS BLOB) = "
                            "x'66ff010ae280ae00'"), 8);
}

TEST(sink_reports_a_commit_it_cannot_make)
{
    struct sink s;
    struct sqlite_sink_options o = { .path = path("locked.db"), .sync = SQLITE_SINK_SYNC_NORMAL, .batch_requests = 1 };
    char err[256];
    struct fixture f;
    sqlite3 *other;
    fixture_init(&f, "main.main");
    CHECK_EQ_INT(sqlite_sink_open(&s, &o, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(send(&s, &f, false), 0);
    /* another writer holds the lock longer than the sink waits */
    CHECK(sqlite3_open(o.path, &other) == SQLITE_OK);
    CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(send(&s, &f, false) != 0);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    /* and the next request goes through */
    CHECK_EQ_INT(send(&s, &f, false), 0);
    struct sqlite_sink_stats st;
    CHECK_EQ_INT(sqlite_sink_stats(&s, &st), 0);
    CHECK_EQ_INT(st.committed, 2);
    CHECK_EQ_INT(st.commit_ns.count, 2);
    struct sink other_type = { NULL, NULL };
    CHECK_EQ_INT(sqlite_sink_stats(&other_type, &st), -1);
    CHECK_EQ_INT(st.committed, 0);
    s.type->close(&s, 0);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM requests"), 2);
    CHECK_EQ_INT(q1(o.path, DANGLING), 0);
}

/* ---------- entity refs: stored, then replayed ---------- */

struct refs_seen {
    char text[512];
    size_t n;
};

static void put_keys(struct refs_seen *w, const lb_str *k, size_t n)
{
    w->n += (size_t)snprintf(w->text + w->n, sizeof w->text - w->n, "[");
    for (size_t i = 0; i < n && w->n < sizeof w->text; i++)
        w->n += (size_t)snprintf(w->text + w->n, sizeof w->text - w->n, "%s%.*s", i ? "," : "", (int)k[i].n, k[i].p);
    if (w->n < sizeof w->text)
        w->n += (size_t)snprintf(w->text + w->n, sizeof w->text - w->n, "]");
}

/* Each resource_begin's refs as "url type [ids][descriptions];" */
static void seen_resource(void *ctx, const struct lb_resource *r)
{
    struct refs_seen *w = ctx;
    for (size_t i = 0; i < r->n_entity_refs && w->n < sizeof w->text; i++) {
        const struct lb_entity_ref *e = &r->entity_refs[i];
        w->n += (size_t)snprintf(w->text + w->n, sizeof w->text - w->n, "%.*s %.*s ", (int)e->schema_url.n,
                                 e->schema_url.p, (int)e->type.n, e->type.p);
        put_keys(w, e->id_keys, e->n_id_keys);
        put_keys(w, e->description_keys, e->n_description_keys);
        if (w->n < sizeof w->text)
            w->n += (size_t)snprintf(w->text + w->n, sizeof w->text - w->n, ";");
    }
}

static int seen_admit(void *c, enum otlp_signal s, char *w, size_t l) { (void)c, (void)s, (void)w, (void)l; return 0; }
static void seen_req(void *c, enum otlp_signal s, const struct lb_request *r) { (void)c, (void)s, (void)r; }
static void seen_prof(void *c, const struct lb_profile *p) { (void)c, (void)p; }
static void seen_sample(void *c, const struct lb_sample *x) { (void)c, (void)x; }
static void seen_res(void *c, const struct lb_resource *r) { (void)c, (void)r; }
static void seen_span(void *c, const struct lb_span *x) { (void)c, (void)x; }
static int seen_end(void *c, enum otlp_signal s, const struct lb_request *r, char *w, size_t l)
{
    (void)c, (void)s, (void)r, (void)w, (void)l;
    return 0;
}
static void seen_abort(void *c, enum otlp_signal s, const struct lb_request *r, const char *x) { (void)c, (void)s, (void)r, (void)x; }

static const struct otlp_events SEEN = {
    .admit = seen_admit, .request_begin = seen_req, .resource_begin = seen_resource, .profile_begin = seen_prof,
    .sample = seen_sample, .profile_end = seen_prof, .resource_end = seen_res, .span_resource_begin = seen_res,
    .span = seen_span, .span_resource_end = seen_res, .request_end = seen_end, .request_abort = seen_abort,
};

TEST(sink_keeps_entity_refs_in_order)
{
    struct sink s;
    struct sqlite_sink_options o = { .path = path("entity.db"), .sync = SQLITE_SINK_SYNC_NORMAL, .batch_requests = 1 };
    char err[256];
    struct fixture f;
    fixture_init(&f, "main.main");
    const lb_str ids0[] = { LB_STR_LIT("service.name"), LB_STR_LIT("service.namespace") };
    const lb_str desc0[] = { LB_STR_LIT(""), LB_STR_LIT("service.version") };   /* an empty key kept */
    const lb_str ids1[] = { LB_STR_LIT("host.id") };
    const struct lb_entity_ref refs[] = {
        { LB_STR_LIT("https://s/1"), LB_STR_LIT("service"), ids0, 2, desc0, 2 },
        { LB_STR_LIT(""), LB_STR_LIT("host"), ids1, 1, NULL, 0 },
    };
    f.res.entity_refs = refs;
    f.res.n_entity_refs = 2;
    CHECK_EQ_INT(sqlite_sink_open(&s, &o, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(send(&s, &f, false), 0);
    f.res.n_entity_refs = 0;   /* a second request: a resource without any */
    CHECK_EQ_INT(send(&s, &f, false), 0);
    s.type->close(&s, 0);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM entity_refs"), 2);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM entity_ref_keys"), 5);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM entity_refs e JOIN strings t ON t.id = e.type_id "
                            "WHERE e.idx = 1 AND t.value = 'host' AND e.schema_url_id IS NULL"), 1);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM entity_ref_keys WHERE ref_idx = 0 AND description = 1 "
                            "AND pos = 0 AND key_id IS NULL"), 1);
    CHECK_EQ_INT(q1(o.path, "SELECT count(*) FROM entity_ref_keys k JOIN strings v ON v.id = k.key_id "
                            "WHERE k.ref_idx = 0 AND k.description = 0 AND k.pos = 1 AND v.value = 'service.namespace'"), 1);

    /* replayed: the same refs, keys in order, only on the first request's resource */
    struct qopts qo = { .cmd = CMD_EXPORT, .name = "export", .db = o.path };
    struct sqlite_replay *r;
    struct refs_seen w = { "", 0 };
    CHECK_EQ_INT(sqlite_replay_open(&qo, &r), 0);
    CHECK_EQ_INT(sqlite_replay_next(r, (struct otlp_consumer){ &SEEN, &w }), 1);
    CHECK(strcmp(w.text, "https://s/1 service [service.name,service.namespace][,service.version]; host [host.id][];") == 0);
    printf("#   replayed: %s\n", w.text);
    w.n = 0;
    w.text[0] = '\0';
    CHECK_EQ_INT(sqlite_replay_next(r, (struct otlp_consumer){ &SEEN, &w }), 1);
    CHECK(strcmp(w.text, "") == 0);
    CHECK_EQ_INT(sqlite_replay_next(r, (struct otlp_consumer){ &SEEN, &w }), 0);
    sqlite_replay_close(r);
}

/* Packing round-trips every 8-byte number, and unpacking refuses a blob that does not hold
 * exactly the count asked for. */
TEST(series_round_trip_and_refuse_malformed)
{
    const uint64_t nums[] = { 0, UINT64_MAX, 1, (uint64_t)INT64_MIN, (uint64_t)INT64_MAX, 1761887345123456789ull,
                              1761887345123456789ull, 1761887344000000000ull, 0x80, 0x7f };
    const size_t n = sizeof nums / sizeof nums[0];
    struct buf b;
    uint64_t out[sizeof nums / sizeof nums[0] + 1];
    buf_init(&b, SIZE_MAX);
    CHECK(sq_series_pack(&b, nums, n));
    CHECK_EQ_INT(sq_series_unpack(b.data, b.len, out, n), 0);
    CHECK(memcmp(out, nums, sizeof nums) == 0);
    CHECK_EQ_INT(sq_series_unpack(b.data, b.len, out, n - 1), -1);      /* bytes left over */
    CHECK_EQ_INT(sq_series_unpack(b.data, b.len, out, n + 1), -1);      /* too few numbers */
    CHECK_EQ_INT(sq_series_unpack(b.data, b.len - 1, out, n), -1);      /* cut short */
    const uint8_t eleven[11] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
    CHECK_EQ_INT(sq_series_unpack(eleven, sizeof eleven, out, 1), -1);  /* a varint past 64 bits */
    const uint64_t two[] = { 1, 0 };
    CHECK(sq_series_pack(&b, two, 2));
    CHECK_EQ_INT((long long)b.len, 2);
    CHECK_EQ_INT(b.data[0], 2);   /* +1 -> zigzag 2 */
    CHECK_EQ_INT(b.data[1], 1);   /* -1 -> zigzag 1 */
    CHECK(sq_series_pack(&b, nums, 0));
    CHECK_EQ_INT((long long)b.len, 0);
    CHECK_EQ_INT(sq_series_unpack(b.data, 0, out, 0), 0);
    buf_free(&b);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/lb-test-sqlite-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(cache_hits_and_misses);
    RUN(cache_is_bounded);
    RUN(cache_grows_and_keeps_every_entry);
    RUN(cache_forgets_rolled_back_transaction);
    RUN(hash_is_fixed);
    RUN(cache_hash_sees_every_byte);
    RUN(memo_put_get_clear_and_cap);
    RUN(series_round_trip_and_refuse_malformed);
    RUN(migrates_an_old_database);
    RUN(refuses_newer_and_foreign_databases);
    RUN(sink_runs_at_the_synchronous_level_asked_for);
    RUN(sink_stores_once_and_rolls_back_cleanly);
    RUN(sink_keeps_hostile_bytes_exactly);
    RUN(sink_reports_a_commit_it_cannot_make);
    RUN(sink_keeps_entity_refs_in_order);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return check_done();
}
