/*
 * render.c - attribute values as the text the ClickHouse sink stores in its attr_values
 * columns (what the SQL in docs/clickhouse.md and `top --where` compare): strings as they are,
 * numbers in decimal, booleans as true/false, bytes in hex, arrays and kvlists as compact JSON.
 */
#include <stdio.h>

#include "sinks/clickhouse/internal.h"

static bool text_put(struct buf *b, const char *p, size_t n) { return buf_append(b, p, n); }

static bool json_string(struct buf *b, lb_str s)
{
    static const char digits[] = "0123456789abcdef";
    if (!buf_putc(b, '"'))
        return false;
    for (size_t i = 0; i < s.n; i++) {
        uint8_t c = (uint8_t)s.p[i];
        bool ok;
        if (c == '"' || c == '\\') {
            char e[2] = { '\\', (char)c };
            ok = text_put(b, e, 2);
        } else if (c < 0x20) {
            char e[6] = { '\\', 'u', '0', '0', digits[c >> 4], digits[c & 15] };
            ok = text_put(b, e, 6);
        } else {
            ok = buf_putc(b, (char)c);
        }
        if (!ok)
            return false;
    }
    return buf_putc(b, '"');
}

/* An integer in decimal, as %lld writes it: every sample's integer attributes (a thread id, a
 * pid) go through here, and printf costs more than the rest of their row. */
static bool put_decimal(struct buf *b, int64_t v)
{
    char digits[20];
    size_t n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        digits[sizeof digits - ++n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0 && !buf_putc(b, '-'))
        return false;
    return text_put(b, digits + sizeof digits - n, n);
}

/* Arrays and kvlists as compact JSON; the iterator bounds their depth. */
static bool render_container(struct buf *b, const struct lb_value *v)
{
    struct lb_value_iter it;
    struct lb_value e;
    lb_str key;
    bool kv = v->kind == LB_VALUE_KVLIST, first = true;
    lb_value_iter_init(&it, v);
    if (!buf_putc(b, kv ? '{' : '['))
        return false;
    while (kv ? lb_kvlist_next(&it, &key, &e) : lb_array_next(&it, &e)) {
        if (!first && !buf_putc(b, ','))
            return false;
        first = false;
        if (kv && (!json_string(b, key) || !buf_putc(b, ':')))
            return false;
        if (!ch_render_value(b, &e, true))
            return false;
    }
    return buf_putc(b, kv ? '}' : ']');
}

/* As text: strings raw, bytes in hex, numbers in decimal; inside JSON, strings quoted. */
bool ch_render_value(struct buf *b, const struct lb_value *v, bool json)
{
    char num[40];
    int n;
    switch (v->kind) {
    case LB_VALUE_EMPTY:
        return json ? text_put(b, "null", 4) : true;
    case LB_VALUE_STRING:
        return json ? json_string(b, v->u.str) : text_put(b, v->u.str.p, v->u.str.n);
    case LB_VALUE_BOOL:
        return v->u.boolean ? text_put(b, "true", 4) : text_put(b, "false", 5);
    case LB_VALUE_INT:
        return put_decimal(b, v->u.integer);
    case LB_VALUE_DOUBLE:
        n = snprintf(num, sizeof num, "%.17g", v->u.dbl);
        return text_put(b, num, (size_t)n);
    case LB_VALUE_BYTES: {
        static const char digits[] = "0123456789abcdef";
        if (json && !buf_putc(b, '"'))
            return false;
        for (size_t i = 0; i < v->u.str.n; i++) {
            char h[2] = { digits[(uint8_t)v->u.str.p[i] >> 4], digits[(uint8_t)v->u.str.p[i] & 15] };
            if (!text_put(b, h, 2))
                return false;
        }
        return json ? buf_putc(b, '"') : true;
    }
    case LB_VALUE_ARRAY:
    case LB_VALUE_KVLIST:
        return render_container(b, v);
    }
    return true;
}
