/*
 * options.c - the ClickHouse sink's options: their defaults and checks, and what they make
 * once at open: the URL of the CREATE statements and one INSERT URL per table.
 *
 * Everything that goes into a URL or a statement is checked or escaped here, so the sender
 * only ever posts strings made at open: the database must be an identifier (it is pasted into
 * the DDL and the queries), the URL must not carry a query string (ours is appended), and the
 * INSERT statements are percent-encoded into the query parameter.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/clickhouse/internal.h"

void clickhouse_sink_defaults(struct clickhouse_sink_options *o)
{
    memset(o, 0, sizeof *o);
    o->url = CLICKHOUSE_DEFAULT_URL;
    o->database = CLICKHOUSE_DEFAULT_DATABASE;
    o->batch_rows = CLICKHOUSE_DEFAULT_BATCH_ROWS;
    o->flush_interval_ms = CLICKHOUSE_DEFAULT_FLUSH_INTERVAL_MS;
    o->max_queue_bytes = CLICKHOUSE_DEFAULT_MAX_QUEUE_BYTES;
    o->spool_max_bytes = CLICKHOUSE_DEFAULT_SPOOL_MAX_BYTES;
    o->request_timeout_ms = CLICKHOUSE_DEFAULT_REQUEST_TIMEOUT_MS;
}

static char *url_encode(const char *in)
{
    size_t n = strlen(in);
    char *out = malloc(3 * n + 1), *p = out;
    if (!out)
        return NULL;
    for (; *in; in++) {
        unsigned char c = (unsigned char)*in;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            *p++ = (char)c;
        } else {
            static const char hex[] = "0123456789ABCDEF";
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = 0;
    return out;
}

/* A malloc'ed snprintf; NULL on out of memory. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static char *format(const char *fmt, ...)
{
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *p = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (p)
        vsnprintf(p, (size_t)n + 1, fmt, again);
    va_end(again);
    va_end(ap);
    return p;
}

static bool is_identifier(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_') || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return false;
    return true;
}

int ch_check_options(const struct clickhouse_sink_options *o, char *err, size_t errlen)
{
    if (!o->url || (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0) ||
        strpbrk(o->url, "?# \t\r\n")) {
        snprintf(err, errlen, "--clickhouse-url must be http[s]://host:port[/path] without a query string");
        return -1;
    }
    if (!is_identifier(o->database)) {
        snprintf(err, errlen, "--clickhouse-database must be an identifier ([A-Za-z_][A-Za-z0-9_]*, at most 64)");
        return -1;
    }
    if (o->batch_rows == 0 || o->flush_interval_ms == 0 || o->max_queue_bytes < 4096) {
        snprintf(err, errlen, "batch rows and flush interval must be positive, the queue at least 4 KiB");
        return -1;
    }
    return 0;
}

/* One block, so the strings are freed at once with the sink. */
int ch_copy_strings(struct ch_sink *s, char *err, size_t errlen)
{
    const char **f[] = { &s->o.url, &s->o.database, &s->o.user, &s->o.password, &s->o.spool_dir };
    size_t total = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        total += *f[i] ? strlen(*f[i]) + 1 : 0;
    char *p = s->strings = malloc(total + 1);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (!*f[i])
            continue;
        size_t n = strlen(*f[i]) + 1;
        memcpy(p, *f[i], n);
        *f[i] = p;
        p += n;
    }
    return 0;
}

int ch_build_statements(struct ch_sink *s, char *err, size_t errlen)
{
    size_t base_len = strlen(s->o.url);
    while (base_len > 0 && s->o.url[base_len - 1] == '/')
        base_len--;
    char base[2048];
    if (base_len >= sizeof base - 1) {
        snprintf(err, errlen, "--clickhouse-url is too long");
        return -1;
    }
    memcpy(base, s->o.url, base_len);
    base[base_len] = 0;
    s->ddl_url = format("%s/", base);
    s->ddl[0] = format(ch_create_database, s->o.database);
    for (int t = 0; t < CH_TABLES; t++) {
        s->ddl[1 + t] = format(ch_create_table[t], s->o.database);
        for (int v = 1; v <= 2; v++) {
            const char *cols = v == 1 ? ch_table_columns_v1[t] : ch_table_columns[t];
            if (!cols)
                continue;
            char *q = format("INSERT INTO `%s`.%s (%s) FORMAT RowBinary", s->o.database, ch_table_name[t], cols);
            char *enc = q ? url_encode(q) : NULL;
            char **url = v == 1 ? &s->insert_url_v1[t] : &s->insert_url[t];
            *url = enc ? format("%s/?query=%s", base, enc) : NULL;
            free(q);
            free(enc);
            if (!*url) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
        }
        if (!s->ddl[1 + t]) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    for (int i = 0; i < CH_ADD_COLUMNS; i++) {
        if (!(s->ddl[1 + CH_TABLES + i] = format(ch_add_columns[i], s->o.database))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    if (!s->ddl_url || !s->ddl[0]) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}
