/*
 * schema.c - the SQLite store's schema, the steps that build and upgrade it, and the
 * two ways to open a database (the sink writes, the query commands read).
 *
 * A database outlives the binary that created it, so the schema is versioned with PRAGMA
 * user_version and reached through numbered steps: step N turns a version N-1 database into
 * version N, in one transaction, and leaves a row in schema_migrations. Opening an older
 * database for writing applies the missing steps; a database from a newer lazybackend is
 * refused rather than written in a shape it does not expect. Steps are append-only: a
 * released step is never edited, a change is a new step. docs/sqlite.md is the reference.
 */
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "sinks/sqlite/internal.h"

struct migration {
    const char *name;
    const char *sql;
};

/* Conventions: a *_id column naming a string refers to strings.id and is NULL for the empty
 * string; *_unix_nano are nanoseconds since the epoch; 64-bit unsigned wire values (addresses,
 * timestamps) are stored bit for bit in SQLite's signed INTEGER. */
static const char STEP1_TABLES[] =
    "CREATE TABLE schema_migrations ("
    "  version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_unix_nano INTEGER NOT NULL);"

    /* deduplicated content: each row once per database, found by (hash, content) */
    "CREATE TABLE strings (id INTEGER PRIMARY KEY, hash INTEGER NOT NULL, value TEXT NOT NULL);"
    "CREATE INDEX strings_hash ON strings(hash);"
    "CREATE TABLE attributes ("
    "  id INTEGER PRIMARY KEY, hash INTEGER NOT NULL, key_id INTEGER,"
    "  kind TEXT NOT NULL,"   /* string int double bool bytes array kvlist empty */
    "  value,"                /* see docs/sqlite.md: a strings.id for string/array/kvlist */
    "  unit_id INTEGER);"
    "CREATE INDEX attributes_hash ON attributes(hash);"
    "CREATE TABLE attribute_sets (id INTEGER PRIMARY KEY, hash INTEGER NOT NULL, size INTEGER NOT NULL);"
    "CREATE INDEX attribute_sets_hash ON attribute_sets(hash);"
    "CREATE TABLE attribute_set_items ("
    "  set_id INTEGER NOT NULL, pos INTEGER NOT NULL, attribute_id INTEGER NOT NULL,"
    "  PRIMARY KEY (set_id, pos)) WITHOUT ROWID;"
    "CREATE INDEX attribute_set_items_attribute ON attribute_set_items(attribute_id);"
    "CREATE TABLE mappings ("
    "  id INTEGER PRIMARY KEY, hash INTEGER NOT NULL, file_id INTEGER, build_id_id INTEGER,"
    "  build_id_kind_id INTEGER, memory_start INTEGER NOT NULL, memory_limit INTEGER NOT NULL,"
    "  file_offset INTEGER NOT NULL);"
    "CREATE INDEX mappings_hash ON mappings(hash);"
    "CREATE TABLE frames ("
    "  id INTEGER PRIMARY KEY, hash INTEGER NOT NULL, type_id INTEGER,"
    "  symbolized INTEGER NOT NULL, function_id INTEGER, system_name_id INTEGER, file_id INTEGER,"
    "  line INTEGER NOT NULL, column INTEGER NOT NULL, start_line INTEGER NOT NULL,"
    "  address INTEGER NOT NULL, mapping_id INTEGER);"
    "CREATE INDEX frames_hash ON frames(hash);"
    "CREATE TABLE stacks (id INTEGER PRIMARY KEY, hash INTEGER NOT NULL, depth INTEGER NOT NULL);"
    "CREATE INDEX stacks_hash ON stacks(hash);"
    "CREATE TABLE stack_frames ("   /* pos 0 is the leaf */
    "  stack_id INTEGER NOT NULL, pos INTEGER NOT NULL, frame_id INTEGER NOT NULL,"
    "  PRIMARY KEY (stack_id, pos)) WITHOUT ROWID;"
    "CREATE TABLE scopes ("
    "  id INTEGER PRIMARY KEY, hash INTEGER NOT NULL, name_id INTEGER, version_id INTEGER,"
    "  schema_url_id INTEGER, attributes_id INTEGER, dropped_attributes_count INTEGER NOT NULL);"
    "CREATE INDEX scopes_hash ON scopes(hash);"

    /* what arrived: one row per request, resource, profile, sample, timestamp, value */
    "CREATE TABLE requests ("
    "  id INTEGER PRIMARY KEY, sequence INTEGER NOT NULL, transport_id INTEGER, peer_id INTEGER,"
    "  layout_id INTEGER, received_unix_nano INTEGER NOT NULL, wire_bytes INTEGER NOT NULL,"
    "  message_bytes INTEGER NOT NULL, resources INTEGER, profiles INTEGER, samples INTEGER);"
    "CREATE INDEX requests_received ON requests(received_unix_nano);"
    "CREATE TABLE resources ("
    "  id INTEGER PRIMARY KEY, request_id INTEGER NOT NULL, idx INTEGER NOT NULL,"
    "  attributes_id INTEGER, schema_url_id INTEGER, dropped_attributes_count INTEGER NOT NULL);"
    "CREATE INDEX resources_request ON resources(request_id);"
    "CREATE TABLE profiles ("
    "  id INTEGER PRIMARY KEY, resource_id INTEGER NOT NULL, scope_id INTEGER,"
    "  scope_index INTEGER NOT NULL, idx INTEGER NOT NULL,"
    "  sample_type_id INTEGER, sample_unit_id INTEGER, period_type_id INTEGER,"
    "  period_unit_id INTEGER, period INTEGER NOT NULL,"
    "  time_unix_nano INTEGER NOT NULL, duration_nano INTEGER NOT NULL, profile_id BLOB,"
    "  dropped_attributes_count INTEGER NOT NULL, original_payload_format_id INTEGER,"
    "  original_payload_len INTEGER NOT NULL, attributes_id INTEGER,"
    /* filled when the profile ends: its samples are ids first_sample_id..last_sample_id */
    "  samples INTEGER, first_sample_id INTEGER, last_sample_id INTEGER,"
    "  first_time_unix_nano INTEGER, last_time_unix_nano INTEGER);"
    "CREATE INDEX profiles_resource ON profiles(resource_id);"
    "CREATE INDEX profiles_last_time ON profiles(last_time_unix_nano);"
    "CREATE TABLE samples ("
    "  id INTEGER PRIMARY KEY, profile_id INTEGER NOT NULL, idx INTEGER NOT NULL,"
    "  stack_id INTEGER NOT NULL, attributes_id INTEGER,"
    "  n_timestamps INTEGER NOT NULL, n_values INTEGER NOT NULL, weight INTEGER NOT NULL,"
    "  trace_id BLOB, span_id BLOB);"
    "CREATE TABLE sample_timestamps ("
    "  sample_id INTEGER NOT NULL, idx INTEGER NOT NULL, time_unix_nano INTEGER NOT NULL,"
    "  PRIMARY KEY (sample_id, idx)) WITHOUT ROWID;"
    "CREATE TABLE sample_values ("
    "  sample_id INTEGER NOT NULL, idx INTEGER NOT NULL, value INTEGER NOT NULL,"
    "  PRIMARY KEY (sample_id, idx)) WITHOUT ROWID;";

/* Views for people writing SQL by hand: names instead of ids. The commands do not use them. */
static const char STEP2_VIEWS[] =
    "CREATE VIEW attributes_v AS SELECT a.id AS id, COALESCE(k.value, '') AS key, a.kind AS kind,"
    "  CASE a.kind"
    "    WHEN 'string' THEN COALESCE((SELECT value FROM strings WHERE id = a.value), '')"
    "    WHEN 'array' THEN (SELECT value FROM strings WHERE id = a.value)"
    "    WHEN 'kvlist' THEN (SELECT value FROM strings WHERE id = a.value)"
    "    WHEN 'bool' THEN CASE a.value WHEN 0 THEN 'false' ELSE 'true' END"
    "    WHEN 'bytes' THEN lower(hex(a.value))"
    "    WHEN 'double' THEN COALESCE(CAST(a.value AS TEXT), 'NaN')"
    "    WHEN 'empty' THEN NULL"
    "    ELSE CAST(a.value AS TEXT) END AS value,"
    "  u.value AS unit"
    "  FROM attributes a LEFT JOIN strings k ON k.id = a.key_id LEFT JOIN strings u ON u.id = a.unit_id;"
    "CREATE VIEW attribute_sets_v AS SELECT i.set_id AS set_id, i.pos AS pos, v.key AS key,"
    "  v.value AS value FROM attribute_set_items i JOIN attributes_v v ON v.id = i.attribute_id;"
    "CREATE VIEW frames_v AS SELECT f.id AS id,"
    "  COALESCE(t.value, 'unknown') AS type, f.symbolized AS symbolized,"
    "  COALESCE(fn.value, '') AS function, COALESCE(sn.value, '') AS system_name,"
    "  COALESCE(fi.value, '') AS file, f.line AS line, f.column AS column,"
    "  f.start_line AS start_line, f.address AS address, f.mapping_id AS mapping_id,"
    "  COALESCE(mf.value, '') AS mapping_file, COALESCE(bi.value, '') AS build_id,"
    "  COALESCE(bk.value, '') AS build_id_kind,"
    "  CASE WHEN f.symbolized THEN COALESCE(fn.value, '')"
    "       ELSE COALESCE(mf.value, '') || printf('+0x%x', f.address) END AS name"
    "  FROM frames f LEFT JOIN strings t ON t.id = f.type_id"
    "  LEFT JOIN strings fn ON fn.id = f.function_id LEFT JOIN strings sn ON sn.id = f.system_name_id"
    "  LEFT JOIN strings fi ON fi.id = f.file_id LEFT JOIN mappings m ON m.id = f.mapping_id"
    "  LEFT JOIN strings mf ON mf.id = m.file_id LEFT JOIN strings bi ON bi.id = m.build_id_id"
    "  LEFT JOIN strings bk ON bk.id = m.build_id_kind_id;"
    "CREATE VIEW stack_frames_v AS SELECT sf.stack_id AS stack_id, sf.pos AS pos, f.*"
    "  FROM stack_frames sf JOIN frames_v f ON f.id = sf.frame_id;"
    "CREATE VIEW profiles_v AS SELECT p.id AS id, p.resource_id AS resource_id,"
    "  r.request_id AS request_id, st.value AS sample_type, su.value AS sample_unit,"
    "  pt.value AS period_type, pu.value AS period_unit, p.period AS period,"
    "  p.time_unix_nano AS time_unix_nano, p.duration_nano AS duration_nano,"
    "  p.samples AS samples, p.first_time_unix_nano AS first_time_unix_nano,"
    "  p.last_time_unix_nano AS last_time_unix_nano"
    "  FROM profiles p JOIN resources r ON r.id = p.resource_id"
    "  LEFT JOIN strings st ON st.id = p.sample_type_id LEFT JOIN strings su ON su.id = p.sample_unit_id"
    "  LEFT JOIN strings pt ON pt.id = p.period_type_id LEFT JOIN strings pu ON pu.id = p.period_unit_id;"
    "CREATE VIEW requests_v AS SELECT q.id AS id, q.sequence AS sequence, t.value AS transport,"
    "  p.value AS peer, l.value AS layout, q.received_unix_nano AS received_unix_nano,"
    "  q.wire_bytes AS wire_bytes, q.message_bytes AS message_bytes, q.resources AS resources,"
    "  q.profiles AS profiles, q.samples AS samples"
    "  FROM requests q LEFT JOIN strings t ON t.id = q.transport_id"
    "  LEFT JOIN strings p ON p.id = q.peer_id LEFT JOIN strings l ON l.id = q.layout_id;";

/* Pre-aggregated weights for the web UI (ui/): the weight of each (stack, sample type, attribute
 * sets) per minute and per hour, so a flame graph or a top table over millions of samples sums
 * thousands of rows instead of scanning every sample. Minutes are whole UTC minutes since the
 * epoch (unix nanoseconds / 60e9), hours likewise. The weight follows the query commands' rule
 * (query.c), placed by timestamp: each timestamp counts 1 (no values) or its own value (as
 * many values as timestamps); a sample whose values do not pair with its timestamps counts
 * whole at its first timestamp; a sample without timestamps at its profile's time. Ids that
 * are NULL elsewhere are 0 here (a primary key column cannot be NULL). The writer adds each
 * request's sums in the request's transaction (writer_rollup.c); this step fills both tables
 * from what an older database already holds. */
static const char STEP3_ROLLUPS[] =
    "CREATE TABLE rollup_minute ("
    "  bucket INTEGER NOT NULL, sample_type_id INTEGER NOT NULL, sample_unit_id INTEGER NOT NULL,"
    "  stack_id INTEGER NOT NULL, resource_attributes_id INTEGER NOT NULL,"
    "  profile_attributes_id INTEGER NOT NULL, sample_attributes_id INTEGER NOT NULL,"
    "  weight INTEGER NOT NULL,"
    "  PRIMARY KEY (bucket, sample_type_id, sample_unit_id, stack_id, resource_attributes_id,"
    "               profile_attributes_id, sample_attributes_id)) WITHOUT ROWID;"
    "CREATE TABLE rollup_hour ("
    "  bucket INTEGER NOT NULL, sample_type_id INTEGER NOT NULL, sample_unit_id INTEGER NOT NULL,"
    "  stack_id INTEGER NOT NULL, resource_attributes_id INTEGER NOT NULL,"
    "  profile_attributes_id INTEGER NOT NULL, sample_attributes_id INTEGER NOT NULL,"
    "  weight INTEGER NOT NULL,"
    "  PRIMARY KEY (bucket, sample_type_id, sample_unit_id, stack_id, resource_attributes_id,"
    "               profile_attributes_id, sample_attributes_id)) WITHOUT ROWID;"
    "INSERT INTO rollup_minute SELECT b, st, su, k, ra, pa, sa, SUM(w) FROM ("
    "  SELECT p.time_unix_nano / 60000000000 AS b, COALESCE(p.sample_type_id, 0) AS st,"
    "    COALESCE(p.sample_unit_id, 0) AS su, s.stack_id AS k, COALESCE(r.attributes_id, 0) AS ra,"
    "    COALESCE(p.attributes_id, 0) AS pa, COALESCE(s.attributes_id, 0) AS sa, s.weight AS w"
    "  FROM samples s JOIN profiles p ON p.id = s.profile_id JOIN resources r ON r.id = p.resource_id"
    "  WHERE s.n_timestamps = 0"
    "  UNION ALL"
    "  SELECT t.time_unix_nano / 60000000000, COALESCE(p.sample_type_id, 0),"
    "    COALESCE(p.sample_unit_id, 0), s.stack_id, COALESCE(r.attributes_id, 0),"
    "    COALESCE(p.attributes_id, 0), COALESCE(s.attributes_id, 0),"
    "    CASE WHEN s.n_values = 0 THEN 1 WHEN s.n_values = s.n_timestamps THEN v.value ELSE s.weight END"
    "  FROM samples s JOIN sample_timestamps t ON t.sample_id = s.id"
    "  JOIN profiles p ON p.id = s.profile_id JOIN resources r ON r.id = p.resource_id"
    "  LEFT JOIN sample_values v ON v.sample_id = s.id AND v.idx = t.idx AND s.n_values = s.n_timestamps"
    "  WHERE s.n_values = 0 OR s.n_values = s.n_timestamps OR t.idx = 0"
    ") GROUP BY b, st, su, k, ra, pa, sa;"
    "INSERT INTO rollup_hour SELECT bucket / 60, sample_type_id, sample_unit_id, stack_id,"
    "  resource_attributes_id, profile_attributes_id, sample_attributes_id, SUM(weight)"
    "  FROM rollup_minute GROUP BY 1, 2, 3, 4, 5, 6, 7;";

/* The fields of a request that its proto layout does not have (otlp/detect.h): protobuf keeps
 * going past them, and so does lazybackend; the first 32 of a request are kept here as sent
 * (`value`: the LEN payload, else the value's own encoding), and the request counts them all. */
static const char STEP4_UNKNOWN_FIELDS[] =
    "CREATE TABLE unknown_fields ("
    "  request_id INTEGER NOT NULL, idx INTEGER NOT NULL, path TEXT NOT NULL, message TEXT NOT NULL,"
    "  field INTEGER NOT NULL, wire_type INTEGER NOT NULL, size INTEGER NOT NULL, value BLOB NOT NULL,"
    "  PRIMARY KEY (request_id, idx)) WITHOUT ROWID;"
    "ALTER TABLE requests ADD COLUMN unknown_fields INTEGER NOT NULL DEFAULT 0;";

/* What `export` needs to give back everything a request held: every attribute of a mapping
 * (all its build ids) and of a location (not only the frame type), where a location's lines
 * begin and end within a stack (line_index of line_count), and the original payload's bytes.
 * Rows written before this step keep NULL / 0 there: they export as before (docs/export.md). */
static const char STEP5_LOSSLESS[] =
    "ALTER TABLE mappings ADD COLUMN attributes_id INTEGER;"
    "ALTER TABLE frames ADD COLUMN attributes_id INTEGER;"
    "ALTER TABLE frames ADD COLUMN line_index INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE frames ADD COLUMN line_count INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE profiles ADD COLUMN original_payload BLOB;";

/* Arrays and kvlists keep their JSON text (for people and --where) and, since this step, their
 * content with every element's type (the self-contained encoding lb_value_encode makes), so
 * `export` gives them back as they were; older rows have NULL and come back as the JSON text. */
static const char STEP6_TYPED_CONTAINERS[] =
    "ALTER TABLE attributes ADD COLUMN encoded BLOB;";

/* The weight per minute and sample type, whatever the stack and attributes: the web UI's
 * timeline without filters reads one row per minute instead of every rollup row of it. Kept
 * by the writer beside rollup_minute (writer_rollup.c), filled here from it. */
static const char STEP7_ROLLUP_TOTALS[] =
    "CREATE TABLE rollup_minute_totals ("
    "  bucket INTEGER NOT NULL, sample_type_id INTEGER NOT NULL, weight INTEGER NOT NULL,"
    "  PRIMARY KEY (bucket, sample_type_id)) WITHOUT ROWID;"
    "INSERT INTO rollup_minute_totals SELECT bucket, sample_type_id, SUM(weight) FROM rollup_minute GROUP BY 1, 2;";

/* A sample's timestamps and values packed into its own row (series.c: zigzag varints of the
 * differences), written with the sample in one INSERT instead of one row per number: about a
 * fifth of the bytes and of the writer's time. Rows written before this step keep NULL there
 * and their series in sample_timestamps / sample_values, which the readers still consult. */
static const char STEP8_PACKED_SERIES[] =
    "ALTER TABLE samples ADD COLUMN timestamps_packed BLOB;"
    "ALTER TABLE samples ADD COLUMN values_packed BLOB;";

/* The weight per minute, sample type and attribute sets (resource, profile, sample), whatever
 * the stack: the web UI's timeline under filters on attributes reads one row per minute and
 * combination of sets (a few thousand) instead of every rollup row of it (one per stack too).
 * Kept by the writer beside rollup_minute (writer_rollup.c), filled here from it. */
static const char STEP9_ROLLUP_SETS[] =
    "CREATE TABLE rollup_minute_sets ("
    "  bucket INTEGER NOT NULL, sample_type_id INTEGER NOT NULL, resource_attributes_id INTEGER NOT NULL,"
    "  profile_attributes_id INTEGER NOT NULL, sample_attributes_id INTEGER NOT NULL, weight INTEGER NOT NULL,"
    "  PRIMARY KEY (bucket, sample_type_id, resource_attributes_id, profile_attributes_id,"
    "               sample_attributes_id)) WITHOUT ROWID;"
    "INSERT INTO rollup_minute_sets SELECT bucket, sample_type_id, resource_attributes_id,"
    "  profile_attributes_id, sample_attributes_id, SUM(weight) FROM rollup_minute GROUP BY 1, 2, 3, 4, 5;";

/* The weight per minute, sample type and the frame types of the stack (",id,id,": the strings
 * ids of the types its frames have, ascending, 0 for a frame without one), whatever the
 * stack and attributes: the web UI's timeline under a frame type filter reads one row per
 * minute and mix of frame types (a few) instead of every rollup row. Kept by the writer beside
 * rollup_minute (writer_rollup.c), filled here from it. */
static const char STEP10_ROLLUP_FRAME_TYPES[] =
    "CREATE TABLE rollup_minute_frame_types ("
    "  bucket INTEGER NOT NULL, sample_type_id INTEGER NOT NULL, frame_types TEXT NOT NULL,"
    "  weight INTEGER NOT NULL, PRIMARY KEY (bucket, sample_type_id, frame_types)) WITHOUT ROWID;"
    "INSERT INTO rollup_minute_frame_types SELECT r.bucket, r.sample_type_id, COALESCE(t.types, ','), SUM(r.weight)"
    "  FROM rollup_minute r LEFT JOIN ("
    "    SELECT stack_id, ',' || group_concat(type_id, ',') || ',' AS types FROM ("
    "      SELECT DISTINCT sf.stack_id, COALESCE(f.type_id, 0) AS type_id FROM stack_frames sf"
    "      JOIN frames f ON f.id = sf.frame_id ORDER BY 1, 2) GROUP BY stack_id"
    "  ) t ON t.stack_id = r.stack_id GROUP BY 1, 2, 3;";

/* Resource.entity_refs, in order: one row per reference (idx its position in the resource),
 * one per key (description 0 for id_keys, 1 for description_keys; pos its position there), so
 * `export` gives them back as sent. Resources stored before this step have none. */
static const char STEP11_ENTITY_REFS[] =
    "CREATE TABLE entity_refs ("
    "  resource_id INTEGER NOT NULL, idx INTEGER NOT NULL, schema_url_id INTEGER, type_id INTEGER,"
    "  PRIMARY KEY (resource_id, idx)) WITHOUT ROWID;"
    "CREATE TABLE entity_ref_keys ("
    "  resource_id INTEGER NOT NULL, ref_idx INTEGER NOT NULL, description INTEGER NOT NULL,"
    "  pos INTEGER NOT NULL, key_id INTEGER,"
    "  PRIMARY KEY (resource_id, ref_idx, description, pos)) WITHOUT ROWID;";

static const struct migration MIGRATIONS[] = {
    { "tables", STEP1_TABLES },
    { "views", STEP2_VIEWS },
    { "rollups", STEP3_ROLLUPS },
    { "unknown fields", STEP4_UNKNOWN_FIELDS },
    { "lossless", STEP5_LOSSLESS },
    { "typed containers", STEP6_TYPED_CONTAINERS },
    { "rollup totals", STEP7_ROLLUP_TOTALS },
    { "packed series", STEP8_PACKED_SERIES },
    { "rollup sets", STEP9_ROLLUP_SETS },
    { "rollup frame types", STEP10_ROLLUP_FRAME_TYPES },
    { "entity refs", STEP11_ENTITY_REFS },
};
_Static_assert(sizeof MIGRATIONS / sizeof MIGRATIONS[0] == SQLSTORE_SCHEMA_VERSION,
               "one migration step per schema version");

int sqlstore_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -1;
}

/* A single integer from a query such as a PRAGMA; -1 on error. */
static int64_t query_int(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return -1;
    }
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return v;
}

static uint64_t now_unix_nano(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Refuses what this build must not touch. Called with the version and table count read in
 * the same transaction. */
static int check_version(int64_t version, int64_t tables, char *err, size_t errlen)
{
    if (version > SQLSTORE_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "the database has schema version %lld, newer than the %d this lazybackend "
                 "knows: use a newer lazybackend, or another --sqlite-path",
                 (long long)version, SQLSTORE_SCHEMA_VERSION);
        return -1;
    }
    if (version == 0 && tables > 0) {
        snprintf(err, errlen, "not a lazybackend database (it has tables but no schema version)");
        return -1;
    }
    return 0;
}

/* One step, inside its own transaction; returns 1 when there was nothing left to do. */
static int migrate_one(sqlite3 *db, int target, char *err, size_t errlen)
{
    if (sqlstore_exec(db, "BEGIN IMMEDIATE", err, errlen) != 0)
        return -1;
    /* read inside the transaction: another process may have just upgraded it */
    int64_t version = query_int(db, "PRAGMA user_version", err, errlen);
    int64_t tables = query_int(db, "SELECT count(*) FROM sqlite_schema", err, errlen);
    if (version < 0 || tables < 0 || check_version(version, tables, err, errlen) != 0)
        goto fail;
    if (version >= target) {
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        return 1;
    }
    const struct migration *m = &MIGRATIONS[version];
    char sql[256];
    if (sqlstore_exec(db, m->sql, err, errlen) != 0)
        goto fail;
    snprintf(sql, sizeof sql,
             "INSERT INTO schema_migrations(version, name, applied_unix_nano) VALUES (%lld, '%s', %llu);"
             "PRAGMA user_version = %lld;",
             (long long)version + 1, m->name, (unsigned long long)now_unix_nano(),
             (long long)version + 1);
    if (sqlstore_exec(db, sql, err, errlen) != 0 || sqlstore_exec(db, "COMMIT", err, errlen) != 0)
        goto fail;
    return 0;
fail:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

int sqlstore_migrate(sqlite3 *db, int target, char *err, size_t errlen)
{
    if (target < 1 || target > SQLSTORE_SCHEMA_VERSION) {
        snprintf(err, errlen, "no schema version %d", target);
        return -1;
    }
    for (int i = 0; i <= SQLSTORE_SCHEMA_VERSION; i++) {
        int rc = migrate_one(db, target, err, errlen);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
    }
    snprintf(err, errlen, "schema migration did not converge");
    return -1;
}

static int open_failed(sqlite3 *db, const char *path, char *err, size_t errlen, const char *what)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", what ? what : db ? sqlite3_errmsg(db) : "out of memory");
    snprintf(err, errlen, "%s: %s", path, tmp);
    sqlite3_close(db);
    return -1;
}

/* Before SQLite's first use in the process: no memory statistics (nothing here reads them).
 * With them on, every allocation SQLite makes (a few for each statement the writer runs: its
 * cursors, its record) takes a global mutex to count it, 7% of the writer's instructions on
 * a big request. The writer is opened at start, before any other thread uses SQLite; too late
 * (SQLite already in use) is harmless: the call is refused and nothing changes. */
static void quiet_malloc(void)
{
    static bool done;
    if (!done) {
        done = true;
        (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    }
}

int sqlstore_open_writer(const char *path, const char *synchronous, sqlite3 **out,
                         char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    char e[512], pragma[192];
    *out = NULL;
    quiet_malloc();
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        return open_failed(db, path, err, errlen, NULL);
    sqlite3_busy_timeout(db, SQLSTORE_WRITER_BUSY_MS);
    sqlite3_extended_result_codes(db, 1);
    /* journal_mode answers with the mode it ended up in: "wal", or the old one on failure */
    sqlite3_stmt *st;
    bool wal = false;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            const unsigned char *mode = sqlite3_column_text(st, 0);
            wal = mode && strcmp((const char *)mode, "wal") == 0;
        }
        sqlite3_finalize(st);
    }
    if (!wal) {
        snprintf(e, sizeof e, "cannot switch to WAL journal mode: %s", sqlite3_errmsg(db));
        return open_failed(db, path, err, errlen, e);
    }
    /* journal_size_limit: a WAL grown while readers held old snapshots shrinks back;
     * temp_store=MEMORY: each request of a batch is a savepoint, whose sub-journal (the pages
     * it changed, as they were) would otherwise spill to a temporary file past 64 KiB */
    snprintf(pragma, sizeof pragma,
             "PRAGMA synchronous=%s; PRAGMA cache_size=-16384; PRAGMA journal_size_limit=67108864; "
             "PRAGMA temp_store=MEMORY;",
             synchronous);
    if (sqlstore_exec(db, pragma, e, sizeof e) != 0 || sqlstore_migrate(db, SQLSTORE_SCHEMA_VERSION, e, sizeof e) != 0)
        return open_failed(db, path, err, errlen, e);
    *out = db;
    return 0;
}

int sqlstore_open_reader(const char *path, sqlite3 **out, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    char e[512];
    *out = NULL;
    if (access(path, F_OK) != 0 && errno == ENOENT)   /* the usual first mistake: say the way out */
        return open_failed(NULL, path, err, errlen,
                           "no such database: the server writes one with `lazybackend --sink sqlite` "
                           "(lazybackend.db, or --sqlite-path FILE); query it with --db FILE");
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        return open_failed(db, path, err, errlen, NULL);
    sqlite3_busy_timeout(db, SQLSTORE_READER_BUSY_MS);
    int64_t version = query_int(db, "PRAGMA user_version", e, sizeof e);
    if (version < 0)
        return open_failed(db, path, err, errlen, e);
    int64_t tables = query_int(db, "SELECT count(*) FROM sqlite_schema", e, sizeof e);
    if (tables < 0 || check_version(version, tables, e, sizeof e) != 0)
        return open_failed(db, path, err, errlen, e);
    if (version == 0)
        return open_failed(db, path, err, errlen, "empty: nothing was stored in it yet");
    if (version < SQLSTORE_SCHEMA_VERSION) {
        snprintf(e, sizeof e,
                 "schema version %lld is older than %d: start `lazybackend --sink sqlite "
                 "--sqlite-path FILE` on it once to upgrade it",
                 (long long)version, SQLSTORE_SCHEMA_VERSION);
        return open_failed(db, path, err, errlen, e);
    }
    *out = db;
    return 0;
}
