/*
 * usdt_parse.c - one line of bpftrace's output (or of a replay file) into one event.
 *
 * Why this shape: `bpftrace -f json` wraps every printf in an envelope,
 * {"type": "printf", "data": "<the text, escaped>"}, and adds lines of its own
 * (attached_probes, lost_events, maps and histograms at exit, errors, blank lines before it
 * exits). The Go bridge this replaces expected bare event lines and so never saw a single
 * event from real bpftrace; replay files and text-mode bpftrace do have bare lines. So both
 * are read: a line with a "type" is an envelope, a line with an "event" is the event itself.
 * Unknown types are ignored (bpftrace adds types over versions: 0.17 to 0.26 are described in
 * the bridge reference), and numbers are taken as numbers or numeric strings (0.24+ quotes
 * big integers).
 */
#include <stdlib.h>
#include <string.h>

#include "cmd/usdt.h"

#define MAX_MEMBERS 16

const char *const usdt_bad_names[USDT_BAD_KINDS] = {
    [USDT_BAD_JSON] = "not a JSON object",
    [USDT_BAD_SHAPE] = "neither a bpftrace message nor an event",
    [USDT_BAD_EVENT] = "unknown event",
    [USDT_BAD_EVENT_JSON] = "printf text is not a JSON object",
    [USDT_BAD_REQID] = "bad reqid",
    [USDT_BAD_TIME] = "bad timestamp",
    [USDT_BAD_DURATION] = "bad duration",
    [USDT_BAD_TOO_LONG] = "line too long",
};

int usdt_parser_init(struct usdt_parser *p, size_t max_line)
{
    p->cap = max_line ? max_line : 1;
    p->scratch = malloc(p->cap);
    return p->scratch ? 0 : -1;
}

void usdt_parser_free(struct usdt_parser *p)
{
    free(p->scratch);
    p->scratch = NULL;
}

static bool is_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return false;
    return true;
}

static bool equals(const struct uj_member *m, const char *s)
{
    size_t n = strlen(s);
    return m && m->type == UJ_STRING && m->raw_len == n && memcmp(m->raw, s, n) == 0;
}

/* Well-formed UTF-8 without NUL bytes: the id becomes an OTLP string. */
static bool utf8_ok(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (c == 0 || k == 0 || n - i < k)
            return false;
        unsigned cp = k == 1 ? c : c & (0x7f >> k);
        for (size_t j = 1; j < k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp < 0xe000))
            return false;
        i += k;
    }
    return true;
}

static bool bad(struct usdt_event *ev, enum usdt_bad why)
{
    ev->kind = USDT_BAD;
    ev->bad = why;
    return false;
}

/* An integer id is kept as its digits, so a 64-bit id is never rounded: 0 to 2^64-1. */
static bool u64_digits(const struct uj_member *m)
{
    static const char max[] = "18446744073709551615";
    if (m->raw_len == 0 || m->raw_len > sizeof max - 1 || (m->raw[0] == '0' && m->raw_len > 1))
        return false;
    for (size_t i = 0; i < m->raw_len; i++)
        if (m->raw[i] < '0' || m->raw[i] > '9')
            return false;
    return m->raw_len < sizeof max - 1 || memcmp(m->raw, max, m->raw_len) <= 0;
}

/* A string id, or an integer one. */
static bool read_reqid(const struct uj_member *m, struct usdt_event *ev)
{
    if (m && m->type == UJ_NUMBER) {
        if (!u64_digits(m))
            return bad(ev, USDT_BAD_REQID);
        memcpy(ev->reqid, m->raw, m->raw_len);
        ev->reqid_len = m->raw_len;
        return true;
    }
    if (!m || m->type != UJ_STRING || !uj_string(m, ev->reqid, sizeof ev->reqid, &ev->reqid_len) ||
        ev->reqid_len == 0 || !utf8_ok((const unsigned char *)ev->reqid, ev->reqid_len))
        return bad(ev, USDT_BAD_REQID);
    return true;
}

/* The app event's members into ev. */
static void read_event(const struct uj_member *m, int n, struct usdt_event *ev)
{
    const struct uj_member *event = uj_find(m, n, "event");
    bool start = equals(event, "request_start");
    if (!start && !equals(event, "request_end")) {
        bad(ev, USDT_BAD_EVENT);
        return;
    }
    if (!read_reqid(uj_find(m, n, "reqid"), ev))
        return;
    if (start) {
        const struct uj_member *ts = uj_find(m, n, "timestamp");
        if (!ts || !uj_int64(ts, &ev->timestamp) || ev->timestamp <= 0) {
            bad(ev, USDT_BAD_TIME);
            return;
        }
        ev->kind = USDT_START;
        return;
    }
    const struct uj_member *d = uj_find(m, n, "duration"), *s = uj_find(m, n, "start");
    if (!d || !uj_int64(d, &ev->duration) || ev->duration < 0) {
        bad(ev, USDT_BAD_DURATION);
        return;
    }
    if (s) {
        if (!uj_int64(s, &ev->start) || ev->start <= 0 || ev->start > INT64_MAX - ev->duration) {
            bad(ev, USDT_BAD_TIME);
            return;
        }
        ev->has_start = true;
    }
    ev->kind = USDT_END;
}

/* printf's data: an event when it is a JSON object, the script's own text otherwise. */
static void read_printf(struct usdt_parser *p, const struct uj_member *data, struct usdt_event *ev)
{
    size_t len;
    if (!data || data->type != UJ_STRING || !uj_string(data, p->scratch, p->cap, &len)) {
        bad(ev, USDT_BAD_SHAPE);
        return;
    }
    while (len && (p->scratch[len - 1] == '\n' || p->scratch[len - 1] == '\r'))
        len--;
    size_t lead = 0;
    while (lead < len && (p->scratch[lead] == ' ' || p->scratch[lead] == '\t'))
        lead++;
    if (lead == len || p->scratch[lead] != '{') {
        ev->kind = USDT_TEXT;
        ev->text = p->scratch;
        ev->text_len = len;
        return;
    }
    struct uj_member m[MAX_MEMBERS];
    int n = uj_object(p->scratch, len, m, MAX_MEMBERS);
    if (n < 0)
        bad(ev, USDT_BAD_EVENT_JSON);
    else if (!uj_find(m, n, "event"))
        bad(ev, USDT_BAD_SHAPE);
    else
        read_event(m, n, ev);
}

/* N from {"data": {"<name>": N}} or, from 0.24, the top-level "count". */
static uint64_t message_count(const struct uj_member *m, int n, const char *name)
{
    int64_t v = 0;
    const struct uj_member *data = uj_find(m, n, "data"), *count = uj_find(m, n, "count");
    if (data && data->type == UJ_OBJECT) {
        struct uj_member in[MAX_MEMBERS];
        int k = uj_object(data->raw, data->raw_len, in, MAX_MEMBERS);
        const struct uj_member *c = k > 0 ? uj_find(in, k, name) : NULL;
        if (c && uj_int64(c, &v) && v >= 0)
            return (uint64_t)v;
    }
    return count && uj_int64(count, &v) && v >= 0 ? (uint64_t)v : 0;
}

void usdt_parse_line(struct usdt_parser *p, const char *line, size_t len, struct usdt_event *ev)
{
    ev->bad = USDT_BAD_JSON;
    ev->reqid_len = 0;
    ev->timestamp = ev->start = ev->duration = 0;
    ev->has_start = false;
    ev->count = 0;
    ev->text = NULL;
    ev->text_len = 0;
    if (is_blank(line, len)) {
        ev->kind = USDT_BLANK;
        return;
    }
    if (len > p->cap) {
        bad(ev, USDT_BAD_TOO_LONG);
        return;
    }
    struct uj_member m[MAX_MEMBERS];
    int n = uj_object(line, len, m, MAX_MEMBERS);
    if (n < 0) {
        bad(ev, USDT_BAD_JSON);
        return;
    }
    const struct uj_member *type = uj_find(m, n, "type");
    if (!type || type->type != UJ_STRING) {
        if (uj_find(m, n, "event"))
            read_event(m, n, ev);
        else
            bad(ev, USDT_BAD_SHAPE);
        return;
    }
    if (equals(type, "printf")) {
        read_printf(p, uj_find(m, n, "data"), ev);
    } else if (equals(type, "attached_probes")) {
        ev->kind = USDT_ATTACHED;
        ev->count = message_count(m, n, "probes");
    } else if (equals(type, "lost_events")) {
        ev->kind = USDT_LOST;
        ev->count = message_count(m, n, "events");
    } else if (equals(type, "helper_error") || equals(type, "runtime_error") || equals(type, "errorf") ||
               equals(type, "warnf")) {
        const struct uj_member *msg = uj_find(m, n, "msg");
        size_t mlen;
        ev->kind = USDT_NOTE;
        ev->text = line;   /* the whole line when there is no readable msg (0.17-0.19) */
        ev->text_len = len;
        if (msg && uj_string(msg, p->scratch, p->cap, &mlen)) {
            ev->text = p->scratch;
            ev->text_len = mlen;
        }
    } else {
        ev->kind = USDT_OTHER;
    }
}
