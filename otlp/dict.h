/*
 * dict.h - the request's dictionary as the resolver and the view iterators see it.
 *
 * Index 0 of every table is the null entry ("unset"): it resolves to the empty value even
 * when a sender omitted the entry itself. Any other index must lie inside its table.
 */
#ifndef LB_OTLP_DICT_H
#define LB_OTLP_DICT_H

#include "otlp/layout.h"
#include "otlp/view.h"

struct lb_dict {
    struct dict_tables tables;
    const struct otlp_layout *layout;
};

static inline size_t dict_len(const struct lb_dict *d, enum dict_table t) { return d->tables.t[t].n; }

/* The encoded entry `idx` of table `t`; false when out of range. */
static inline bool dict_entry(const struct lb_dict *d, enum dict_table t, int64_t idx, pb_ref_t *out)
{
    const dictrefvec *v = &d->tables.t[t];
    if (idx == 0 && v->n == 0) {
        *out = (pb_ref_t){ d->tables.base, 0 };
        return true;
    }
    if (idx < 0 || (uint64_t)idx >= v->n)
        return false;
    *out = (pb_ref_t){ d->tables.base + v->v[idx].off, v->v[idx].len };
    return true;
}

static inline bool dict_string(const struct lb_dict *d, int64_t idx, lb_str *out)
{
    pb_ref_t r;
    if (!dict_entry(d, DICT_STRING, idx, &r))
        return false;
    *out = (lb_str){ (const char *)r.p, r.n };
    return true;
}

/* raw_value -> lb_value; false when a string index is out of range. */
bool dict_value(const struct lb_dict *d, const struct raw_value *rv, unsigned depth, struct lb_value *out);

#endif
