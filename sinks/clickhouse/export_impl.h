/*
 * export_impl.h - what the two halves of the ClickHouse export reader share (private to
 * export*.c): export.c asks the questions and reads the content answers (resources, stacks,
 * frames), export_rows.c walks the sample rows and the requests and emits the events.
 */
#ifndef LB_SINKS_CH_EXPORT_IMPL_H
#define LB_SINKS_CH_EXPORT_IMPL_H

#include "sinks/clickhouse/clickhouse.h"
#include "sinks/clickhouse/query.h"
#include "sinks/replay.h"

enum { A_SAMPLES, A_REQUESTS, A_RESOURCES, A_STACKS, A_FRAMES, A_COUNT };

struct cres {
    uint64_t hash;
    lb_str schema_url;
    struct lb_attrs attrs;
};

struct cframe {
    uint64_t hash;
    struct lb_frame f;
    struct lb_mapping m;       /* f.mapping: every frame row carries its mapping's fields */
};

struct cstack {
    uint64_t hash;
    const uint8_t *hashes;     /* n little-endian UInt64 frame hashes, in the stacks answer */
    size_t n;
    struct lb_frame *frames;   /* built on first use */
    bool built, type_ok;
};

/* One sample row as read (strings point into the samples answer). */
struct crow {
    uint64_t batch, resource, stack, time;
    lb_str layout, scope, stype, sunit, ptype, punit, profile_id, trace_id, span_id;
    lb_str attributes;                  /* typed (attrblob.h); empty: none, or an older row */
    uint32_t request_index, resource_index, profile_index;
    int64_t period;
    struct rd ts, vals, keys, values;   /* the arrays' bytes, counted */
    size_t n_ts, n_vals, n_attrs;
};

struct clickhouse_replay {
    struct qopts o;
    struct qresult res;           /* only its err */
    struct buf ans[A_COUNT];
    struct rd next;               /* the next sample row */
    struct rd next_req;           /* the next requests row */
    struct cres *resources;
    size_t n_resources;
    struct cframe *frames;
    size_t n_frames;
    struct cstack *stacks;
    size_t n_stacks;
    void **owned;                 /* frame arrays and attribute arrays the events point into */
    size_t n_owned, cap_owned;
    /* one sample's series and attributes, reused */
    uint64_t *ts;
    int64_t *vals;
    struct lb_attr *attrs;
    size_t cap_ts, cap_vals, cap_attrs;
    uint8_t ids[3][64];           /* profile id, trace id, span id as bytes */
    char layout[32], transport[64], peer[256];
    bool curl_up;
};

/* export.c */
int chx_fail(struct clickhouse_replay *r, const char *what);
void *chx_keep(struct clickhouse_replay *r, size_t size);
bool chx_room(void **v, size_t n, size_t *cap, size_t size);
lb_str chx_unhex(lb_str s, uint8_t out[64]);
bool chx_read_attrs(struct rd *keys, struct rd *values, size_t n, struct lb_attr *out);
bool chx_same_str(lb_str a, lb_str b);
struct cstack *chx_stack_of(struct clickhouse_replay *r, uint64_t hash);
/* A typed attribute list (sinks/attrblob.h) into kept memory; false with the error set. */
bool chx_blob_attrs(struct clickhouse_replay *r, lb_str blob, struct lb_attrs *out);
/* The resource row of this hash, NULL when there is none. */
const struct cres *chx_resource(const struct clickhouse_replay *r, uint64_t hash);

/* export_rows.c: the next request into c: 1 emitted, 0 nothing of it kept, -1 error */
int chx_replay_one(struct clickhouse_replay *r, struct otlp_consumer c);

#endif
