/*
 * fuzz_store_blobs.c - libFuzzer target: arbitrary bytes as the strings `export
 * --clickhouse-url` reads back from ClickHouse and parses itself: an attribute list
 * (sinks/attrblob.c, the *_attrs columns) and a request's content (sinks/clickhouse/content.c,
 * the requests table). Whoever can write to the database can put any bytes there.
 *
 * The first byte picks: even, the rest is an attribute list; odd, the rest is a content
 * string, every item read and every attribute list in it read as above.
 *
 * Checks beyond the sanitizers: attrblob_count and attrblob_get agree on what is malformed;
 * arrays and kvlists in a list read back walk to their end or stop with a reason, within the
 * depth bound; a list read back and written again reads back with the same keys, units, kinds
 * and scalar values, and writing that once more gives the same bytes (the writer is a fixed
 * point of the reader); content items are 'R' or 'P' and the reader always moves forward.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "sinks/attrblob.h"
#include "sinks/clickhouse/content.h"
#include "test/fuzz/harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks an array or kvlist to its end, nested ones too; the iterator bounds the depth. */
static void walk(const struct lb_value *v, size_t *budget)
{
    if (v->kind != LB_VALUE_ARRAY && v->kind != LB_VALUE_KVLIST)
        return;
    fuzz_must(v->depth <= LB_VALUE_MAX_DEPTH, "attrblob: a value nested past the depth bound");
    struct lb_value_iter it;
    lb_value_iter_init(&it, v);
    struct lb_value child;
    lb_str key;
    while (*budget > 0 && (v->kind == LB_VALUE_ARRAY ? lb_array_next(&it, &child) : lb_kvlist_next(&it, &key, &child))) {
        (*budget)--;
        walk(&child, budget);
    }
    fuzz_must(!it.err || fuzz_printable(it.err), "attrblob: a walk's reason is not one printable line");
}

static bool same_str(lb_str a, lb_str b) { return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0); }

/* Reads a list; NULL (and *n = 0) when malformed. */
static struct lb_attr *read_list(lb_str blob, size_t *n)
{
    *n = attrblob_count(blob);
    if (*n == (size_t)-1) {
        *n = 0;
        return NULL;
    }
    fuzz_must(*n <= blob.n, "attrblob: more attributes than bytes");
    struct lb_attr *v = calloc(*n ? *n : 1, sizeof *v);
    fuzz_must(v != NULL, "calloc");
    fuzz_must(attrblob_get(blob, v, *n), "attrblob: counted, then refused");
    return v;
}

static void check_list(lb_str blob)
{
    size_t n;
    struct lb_attr *a = read_list(blob, &n);
    if (!a)
        return;
    size_t budget = 4096;
    for (size_t i = 0; i < n; i++)
        walk(&a[i].value, &budget);

    struct buf once, twice, scratch;
    buf_init(&once, (size_t)1 << 24);
    buf_init(&twice, (size_t)1 << 24);
    buf_init(&scratch, (size_t)1 << 24);
    fuzz_must(attrblob_put(&once, &scratch, (struct lb_attrs){ a, n }), "attrblob_put of a list read back");
    size_t m;
    struct lb_attr *b = read_list((lb_str){ (const char *)once.data, once.len }, &m);
    fuzz_must(b && m == n, "attrblob: a list written back does not read back whole");
    for (size_t i = 0; i < n; i++) {
        fuzz_must(same_str(a[i].key, b[i].key) && same_str(a[i].unit, b[i].unit), "attrblob: a key or unit changed");
        enum lb_value_kind k = a[i].value.kind;
        if (k == LB_VALUE_ARRAY || k == LB_VALUE_KVLIST)
            continue;   /* a malformed nested value is written back empty */
        fuzz_must(b[i].value.kind == k, "attrblob: a kind changed");
        const struct lb_value *x = &a[i].value, *y = &b[i].value;
        fuzz_must(k == LB_VALUE_EMPTY || (k == LB_VALUE_BOOL && x->u.boolean == y->u.boolean) ||
                      (k == LB_VALUE_INT && x->u.integer == y->u.integer) ||
                      (k == LB_VALUE_DOUBLE && memcmp(&x->u.dbl, &y->u.dbl, sizeof x->u.dbl) == 0) ||
                      ((k == LB_VALUE_STRING || k == LB_VALUE_BYTES) && same_str(x->u.str, y->u.str)),
                  "attrblob: a value changed");
    }
    fuzz_must(attrblob_put(&twice, &scratch, (struct lb_attrs){ b, m }), "attrblob_put, second time");
    fuzz_must(twice.len == once.len && (once.len == 0 || memcmp(twice.data, once.data, once.len) == 0),
              "attrblob: writing what was read back is not a fixed point");
    free(b);
    free(a);
    buf_free(&once);
    buf_free(&twice);
    buf_free(&scratch);
}

static void check_content(const uint8_t *p, size_t n)
{
    const uint8_t *pos = p, *end = p + n;
    struct ch_content_item it;
    int rc;
    while (pos < end && (rc = ch_content_next(&pos, end, &it)) == 1) {
        fuzz_must(pos > p && pos <= end, "content: the reader did not move forward within the bytes");
        p = pos;
        fuzz_must(it.tag == 'R' || it.tag == 'E' || it.tag == 'P', "content: an item neither 'R', 'E' nor 'P'");
        if (it.tag == 'E') {   /* the keys it counted lie within the bytes it checked */
            lb_str keys[64];
            if (it.n_id_keys <= 64)
                ch_content_keys(it.id_keys, keys, it.n_id_keys);
            if (it.n_description_keys <= 64)
                ch_content_keys(it.description_keys, keys, it.n_description_keys);
            continue;
        }
        check_list(it.attrs);
        if (it.tag == 'P')
            check_list(it.scope_attrs);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init_logs();
    if (size < 1)
        return 0;
    if (data[0] % 2 == 0)
        check_list((lb_str){ (const char *)data + 1, size - 1 });
    else
        check_content(data + 1, size - 1);
    return 0;
}
