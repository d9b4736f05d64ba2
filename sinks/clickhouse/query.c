/*
 * query.c - the reader of `lazybackend top|folded|flamegraph --clickhouse-url URL`: the same
 * questions as over a SQLite store (sinks/sqlite/query.c), asked of the tables the ClickHouse
 * sink writes, filling the same store-independent result (sinks/query/query.h), so the same
 * data gives the same answer whichever store holds it.
 *
 * Three SELECTs over HTTP (libcurl, blocking: this is a command, not the server's loop), each
 * answered in RowBinary, which is read with every length checked (query_rows.c):
 *   1. the matching samples summed in ClickHouse per (stack, group, sample type): the time
 *      window, --where and --sample-type are applied there, with the SQLite reader's weight
 *      rule (each timestamp inside the window counts 1, or its own value when values pair with
 *      timestamps; unpaired values count whole when the first timestamp is inside; a sample
 *      without timestamps counts whole when its time is inside);
 *   2. the frame hashes of those stacks; 3. the names and types of those frames.
 * Stacks and frames are joined in C and named as the SQLite reader names them; --frame-type
 * keeps the stacks with a frame of that type, as there.
 *
 * Groups and --where read the sample's attributes and its resource's (the ClickHouse tables
 * keep no profile attributes): executable and thread from the sample first, container from
 * the resource first. FINAL on samples folds a batch stored twice; the joins are GLOBAL, so
 * the same queries work over Distributed tables (docs/clickhouse.md).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/escape.h"
#include "sinks/clickhouse/clickhouse.h"
#include "sinks/clickhouse/query.h"
#include "sinks/query/query.h"


/* ---------- HTTP ---------- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    return buf_append(ud, p, size * n) ? size * n : 0;
}

bool ch_query_url(const char *base, char *url, size_t size)
{
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    if (n + 2 > size)
        return false;
    memcpy(url, base, n);
    memcpy(url + n, "/", 2);
    return true;
}

int ch_check_status(struct qresult *r, long status, const uint8_t *body, size_t len)
{
    if (status == 200)
        return 0;
    r->upstream = Q_UPSTREAM_FAILED;
    /* the first line of ClickHouse's message ("Code: 60, e.displayText() = ..."), made safe */
    size_t n = 0;
    while (n < len && n < 300 && body[n] != '\n')
        n++;
    struct buf msg;
    buf_init(&msg, 4096);
    bool shown = esc_text(&msg, body, n) && buf_putc(&msg, '\0');
    qresult_fail(r, "ClickHouse answered HTTP %ld: %s", status, shown ? (const char *)msg.data : "");
    buf_free(&msg);
    return -1;
}

int ch_post(const struct qopts *o, struct qresult *r, const char *sql, struct buf *out)
{
    if (o->ch_ask) {
        buf_reset(out);
        return o->ch_ask(o->ch_ask_ud, sql, out, r);
    }
    char url[2048];
    if (!ch_query_url(o->ch_url, url, sizeof url))
        return qresult_fail(r, "--clickhouse-url is too long");
    buf_reset(out);
    CURL *e = curl_easy_init();
    if (!e)
        return qresult_oom(r);
    char errbuf[CURL_ERROR_SIZE] = "";
    long timeout = o->ch_timeout_s > 0 ? o->ch_timeout_s : 600;
    bool ok = curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_POSTFIELDS, sql) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_WRITEDATA, out) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, timeout < 10 ? timeout : 10L) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_TIMEOUT, timeout) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
    if (ok && o->ch_user)
        ok = curl_easy_setopt(e, CURLOPT_USERNAME, o->ch_user) == CURLE_OK;
    if (ok && o->ch_password)
        ok = curl_easy_setopt(e, CURLOPT_PASSWORD, o->ch_password) == CURLE_OK;
    if (!ok) {
        curl_easy_cleanup(e);
        return qresult_fail(r, "setting up libcurl failed");
    }
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    if (rc == CURLE_WRITE_ERROR)
        return qresult_fail(r, "ClickHouse's answer is larger than %zu MiB (narrow the query)", MAX_RESPONSE >> 20);
    if (rc != CURLE_OK) {
        r->upstream = rc == CURLE_OPERATION_TIMEDOUT ? Q_UPSTREAM_TIMEOUT : Q_UPSTREAM_FAILED;
        return qresult_fail(r, "ClickHouse at %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
    return ch_check_status(r, status, out->data, out->len);
}

/* ---------- SQL ---------- */

/* s as a ClickHouse string literal: quoted, with \ and ' escaped (and so every other byte
 * passes as it is: ClickHouse reads the literal's bytes). */
bool ch_put_literal(struct buf *b, const char *s)
{
    bool ok = buf_putc(b, '\'');
    for (; ok && *s; s++)
        ok = (*s == '\\' || *s == '\'' ? buf_putc(b, '\\') : true) && buf_putc(b, *s);
    return ok && buf_putc(b, '\'');
}

/* The window as a condition on the time expression t ("1" when there is no window). */
static bool put_in_window(struct buf *b, const struct qopts *o, const char *t)
{
    int64_t since = o->since < 0 ? 0 : o->since, until = o->until < 0 ? 0 : o->until;
    if (!o->has_since && !o->has_until)
        return buf_printf(b, "1");
    return buf_printf(b, "(") &&
           (!o->has_since || buf_printf(b, "%s >= %lld", t, (long long)since)) &&
           (!o->has_since || !o->has_until || buf_printf(b, " AND ")) &&
           (!o->has_until || buf_printf(b, "%s < %lld", t, (long long)until)) && buf_printf(b, ")");
}

/* What the sample weighs inside the window (query.c's rule, in the header), and whether it
 * counts at all. 18.16's lambdas see only their arguments, so the values are resized to the
 * timestamps' length rather than indexed from inside. */
static bool put_weight(struct buf *b, const struct qopts *o)
{
    if (!o->has_since && !o->has_until)
        return buf_printf(b, "weight AS w, 1 AS c");
    return buf_printf(b, "multiIf(length(timestamps) = 0, if(") && put_in_window(b, o, "time_unix_nano") &&
           buf_printf(b, ", weight, 0), length(sample_values) = 0, toInt64(length(arrayFilter(t -> ") &&
           put_in_window(b, o, "t") &&
           buf_printf(b, ", timestamps))), length(sample_values) = length(timestamps), "
                         "arraySum(arrayMap((t, v) -> if(") && put_in_window(b, o, "t") &&
           buf_printf(b, ", v, 0), timestamps, arrayResize(sample_values, length(timestamps)))), if(") &&
           put_in_window(b, o, "timestamps[1]") && buf_printf(b, ", weight, 0)) AS w, ") &&
           buf_printf(b, "multiIf(length(timestamps) = 0, ") && put_in_window(b, o, "time_unix_nano") &&
           buf_printf(b, ", length(sample_values) = 0 OR length(sample_values) = length(timestamps), "
                         "arrayExists(t -> ") && put_in_window(b, o, "t") &&
           buf_printf(b, ", timestamps), ") && put_in_window(b, o, "timestamps[1]") && buf_printf(b, ") AS c");
}

/* The group value: found (UInt8) and text, from the sample's attributes and its resource's in
 * the group's order. */
static bool put_group(struct buf *b, const struct group_attr *g)
{
    if (!g)
        return buf_printf(b, "toUInt8(0) AS g_found, '' AS g_val");
    bool resource_first = g->order[0] == 2;
    const char *k1 = resource_first ? "rk" : "attr_keys", *v1 = resource_first ? "rv" : "attr_values";
    const char *k2 = resource_first ? "attr_keys" : "rk", *v2 = resource_first ? "attr_values" : "rv";
    return buf_printf(b, "has(%s, ", k1) && ch_put_literal(b, g->key) && buf_printf(b, ") OR has(%s, ", k2) &&
           ch_put_literal(b, g->key) && buf_printf(b, ") AS g_found, if(has(%s, ", k1) && ch_put_literal(b, g->key) &&
           buf_printf(b, "), %s[indexOf(%s, ", v1, k1) && ch_put_literal(b, g->key) &&
           buf_printf(b, ")], %s[indexOf(%s, ", v2, k2) && ch_put_literal(b, g->key) && buf_printf(b, ")]) AS g_val");
}

/* The conditions SQL can check on samples alone, with indexes: sample types, the window's end
 * (a sample's time is its earliest timestamp, so nothing of a later one can count). */
bool ch_put_prefilter(struct buf *b, const struct qopts *o)
{
    bool ok = buf_printf(b, "WHERE 1");
    if (o->n_sample_type) {
        ok = ok && buf_printf(b, " AND sample_type IN (");
        for (size_t i = 0; i < o->n_sample_type; i++)
            ok = ok && (i == 0 || buf_putc(b, ',')) && ch_put_literal(b, o->sample_type[i]);
        ok = ok && buf_putc(b, ')');
    }
    if (o->has_until)
        ok = ok && buf_printf(b, " AND time_unix_nano < %lld", (long long)(o->until < 0 ? 0 : o->until));
    return ok;
}

bool ch_put_where(struct buf *b, const struct qopts *o)
{
    bool ok = true;
    for (size_t i = 0; ok && i < o->n_where; i++) {
        const char *lists[2][2] = { { "attr_keys", "attr_values" }, { "rk", "rv" } };
        ok = buf_printf(b, " AND (");
        for (int j = 0; ok && j < 2; j++)
            ok = buf_printf(b, "%sarrayExists((k, v) -> k = ", j ? " OR " : "") && ch_put_literal(b, o->where[i].key) &&
                 buf_printf(b, " AND v = ") && ch_put_literal(b, o->where[i].value) &&
                 buf_printf(b, ", %s, %s)", lists[j][0], lists[j][1]);
        ok = ok && buf_putc(b, ')');
    }
    return ok;
}

/* 1: weight per (stack, group, sample type) of the matching samples. */
static bool sql_sums(struct buf *b, const struct qopts *o, const char *db)
{
    const struct group_attr *g = q_group_attr(o);
    bool resources = g || o->n_where;
    return buf_printf(b, "SELECT stack_hash, g_found, g_val, sample_type, sample_unit, sum(w), count() FROM "
                         "(SELECT stack_hash, sample_type, sample_unit, ") &&
           put_weight(b, o) && buf_printf(b, ", ") && put_group(b, g) &&
           buf_printf(b, " FROM (SELECT stack_hash, resource_hash, sample_type, sample_unit, weight, "
                         "time_unix_nano, timestamps, sample_values, attr_keys, attr_values "
                         "FROM `%s`.samples FINAL ", db) && ch_put_prefilter(b, o) && buf_putc(b, ')') &&
           (!resources || buf_printf(b, " GLOBAL ANY LEFT JOIN (SELECT resource_hash, attr_keys AS rk, "
                                        "attr_values AS rv FROM `%s`.resources) USING resource_hash", db)) &&
           buf_printf(b, " WHERE c") && ch_put_where(b, o) &&
           buf_printf(b, ") GROUP BY stack_hash, g_found, g_val, sample_type, sample_unit FORMAT RowBinary") &&
           buf_putc(b, '\0');
}

/* The stacks of samples that pass the prefilter: a superset of those the sums name. */
static bool put_stacks_of_samples(struct buf *b, const struct qopts *o, const char *db)
{
    return buf_printf(b, "SELECT stack_hash FROM `%s`.samples ", db) && ch_put_prefilter(b, o);
}

/* 2: their frame hashes. */
static bool sql_stacks(struct buf *b, const struct qopts *o, const char *db)
{
    return buf_printf(b, "SELECT stack_hash, frame_hashes FROM `%s`.stacks WHERE stack_hash GLOBAL IN (", db) &&
           put_stacks_of_samples(b, o, db) && buf_printf(b, ") FORMAT RowBinary") && buf_putc(b, '\0');
}

/* 3: the names and types of their frames. */
static bool sql_frames(struct buf *b, const struct qopts *o, const char *db)
{
    return buf_printf(b, "SELECT frame_hash, name, frame_type FROM `%s`.frames WHERE frame_hash GLOBAL IN "
                         "(SELECT arrayJoin(frame_hashes) FROM `%s`.stacks WHERE stack_hash GLOBAL IN (", db, db) &&
           put_stacks_of_samples(b, o, db) && buf_printf(b, ")) FORMAT RowBinary") && buf_putc(b, '\0');
}

/* ---------- the reader ---------- */

int clickhouse_query_load(const struct qopts *o, struct qresult *r)
{
    const char *db = o->ch_database ? o->ch_database : CLICKHOUSE_DEFAULT_DATABASE;
    struct buf sql, sums, stacks, frames;
    buf_init(&sql, 1 << 20);
    buf_init(&sums, MAX_RESPONSE);
    buf_init(&stacks, MAX_RESPONSE);
    buf_init(&frames, MAX_RESPONSE);
    int rc = -1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        qresult_fail(r, "libcurl failed to initialise");
        goto done;
    }
    if (!sql_sums(&sql, o, db)) {
        qresult_oom(r);
        goto done;
    }
    if (ch_post(o, r, (const char *)sql.data, &sums) != 0)
        goto done;
    buf_reset(&sql);
    if (!sql_stacks(&sql, o, db)) {
        qresult_oom(r);
        goto done;
    }
    if (ch_post(o, r, (const char *)sql.data, &stacks) != 0)
        goto done;
    buf_reset(&sql);
    if (!sql_frames(&sql, o, db)) {
        qresult_oom(r);
        goto done;
    }
    if (ch_post(o, r, (const char *)sql.data, &frames) != 0)
        goto done;
    rc = ch_query_fill(o, r, &sums, &stacks, &frames);
done:
    buf_free(&sql);
    buf_free(&sums);
    buf_free(&stacks);
    buf_free(&frames);
    curl_global_cleanup();
    return rc;
}
