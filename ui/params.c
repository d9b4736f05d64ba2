/*
 * params.c - the API's query parameters: percent-decoded, checked against the route's list,
 * bounded in length and count, and refused (400 with a message) when anything is off. A
 * mistyped parameter is an error, never silently a different answer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/store.h"

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes p[0..n) (percent escapes, '+' as space) into the store; NULL when malformed, too
 * long, or holding a NUL or control byte. */
static char *decode(struct ui_params *p, const char *s, size_t n)
{
    char *out = p->store + p->used;
    size_t room = sizeof p->store - p->used, k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n)
                return NULL;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return NULL;
            c = h * 16 + l;
            i += 2;
        }
        if (c < 0x20 || c == 0x7f || k + 1 >= room)
            return NULL;
        out[k++] = (char)c;
    }
    out[k++] = '\0';
    p->used += k;
    return out;
}

static bool allowed_name(const char *allowed, const char *name)
{
    size_t n = strlen(name);
    for (const char *a = allowed; *a;) {
        const char *e = strchr(a, ',');
        size_t len = e ? (size_t)(e - a) : strlen(a);
        if (len == n && memcmp(a, name, n) == 0)
            return true;
        if (!e)
            break;
        a = e + 1;
    }
    return false;
}

static bool int_value(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return false;
    *out = x;
    return true;
}

static int bad(char *err, size_t errlen, const char *name, const char *why)
{
    snprintf(err, errlen, "parameter %s: %s", name, why);
    return -1;
}

/* Times are unix seconds, from 1970 to 2^40 s (year 36812): anything else is a mistake. */
#define MAX_SECONDS ((int64_t)1 << 40)

static int one(struct ui_params *p, const char *name, char *v, char *err, size_t errlen)
{
    int64_t x;
    if (!strcmp(name, "from") || !strcmp(name, "to")) {
        if (!int_value(v, 0, MAX_SECONDS, &x))
            return bad(err, errlen, name, "unix seconds expected");
        if (name[0] == 'f') {
            p->has_from = true;
            p->from = x;
        } else {
            p->has_to = true;
            p->to = x;
        }
    } else if (!strcmp(name, "sample_type")) {
        p->sample_type = v[0] ? v : NULL;
    } else if (!strcmp(name, "frame_type")) {
        if (p->n_frame_types >= UI_MAX_LIST)
            return bad(err, errlen, name, "at most 16");
        if (v[0])
            p->frame_types[p->n_frame_types++] = v;
    } else if (!strcmp(name, "container")) {
        p->container = v[0] ? v : NULL;
    } else if (!strcmp(name, "executable")) {
        p->executable = v[0] ? v : NULL;
    } else if (!strcmp(name, "thread")) {
        p->thread = v[0] ? v : NULL;
    } else if (!strcmp(name, "attr")) {
        char *eq = strchr(v, '=');
        if (!eq || eq == v)
            return bad(err, errlen, name, "KEY=VALUE expected");
        if (p->n_attrs >= UI_MAX_ATTRS)
            return bad(err, errlen, name, "at most 4");
        *eq = '\0';
        p->attr_key[p->n_attrs] = v;
        p->attr_value[p->n_attrs++] = eq + 1;
    } else if (!strcmp(name, "by")) {
        static const char *const names[] = { "function", "executable", "container", "thread",
                                             "frame_type", "mapping" };
        size_t i = 0;
        while (i < sizeof names / sizeof names[0] && strcmp(names[i], v) != 0)
            i++;
        if (i == sizeof names / sizeof names[0])
            return bad(err, errlen, name, "function, executable, container, thread, frame_type or mapping");
        p->by = (enum ui_by)i;
    } else if (!strcmp(name, "sort")) {
        if (strcmp(v, "self") != 0 && strcmp(v, "total") != 0)
            return bad(err, errlen, name, "self or total");
        p->sort_total = v[0] == 't';
    } else if (!strcmp(name, "limit")) {
        if (!int_value(v, 1, 10000, &x))
            return bad(err, errlen, name, "1 to 10000");
        p->limit = (size_t)x;
    } else if (!strcmp(name, "q")) {
        p->name_filter = v[0] ? v : NULL;
    } else if (!strcmp(name, "max_nodes")) {
        if (!int_value(v, 1, 200000, &x))
            return bad(err, errlen, name, "1 to 200000");
        p->max_nodes = (size_t)x;
    } else {
        return bad(err, errlen, name, "unknown");
    }
    return 0;
}

int ui_parse_params(const char *query, const char *allowed, struct ui_params *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->limit = 100;
    p->max_nodes = 50000;
    for (const char *s = query; *s;) {
        const char *amp = strchr(s, '&');
        size_t n = amp ? (size_t)(amp - s) : strlen(s);
        const char *eq = memchr(s, '=', n);
        if (n > 0) {
            size_t nl = eq ? (size_t)(eq - s) : n;
            const char *name = decode(p, s, nl);
            char *value = name ? decode(p, eq ? eq + 1 : s + n, eq ? n - nl - 1 : 0) : NULL;
            if (!name || !value) {
                snprintf(err, errlen, "malformed or too long query string");
                return -1;
            }
            if (!allowed_name(allowed, name))
                return bad(err, errlen, name, "not taken here");
            if (strlen(value) > UI_VALUE_MAX)
                return bad(err, errlen, name, "longer than 256 bytes");
            if (one(p, name, value, err, errlen) != 0)
                return -1;
        }
        if (!amp)
            break;
        s = amp + 1;
    }
    if (p->has_from && p->has_to && p->from >= p->to) {
        snprintf(err, errlen, "parameter from: must be before to");
        return -1;
    }
    return 0;
}
