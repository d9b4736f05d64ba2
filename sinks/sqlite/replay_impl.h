/*
 * replay_impl.h - what the two halves of the store's replay share (private to replay*.c):
 * replay_load.c reads content rows once and keeps them for the whole export, replay.c walks
 * the stored requests and emits them (replay.h is the public side).
 */
#ifndef LB_SINKS_SQLITE_REPLAY_IMPL_H
#define LB_SINKS_SQLITE_REPLAY_IMPL_H

#include "sinks/sqlite/internal.h"
#include "sinks/sqlite/replay.h"

/* Growable arrays (q_grow doubles them). */
#define VEC_OF(T) struct { T *v; size_t n, cap; }
#define VEC_ADD(vec, x)                                                                        \
    (((vec).n < (vec).cap || rp_grow((void **)&(vec).v, (vec).n, &(vec).cap, sizeof *(vec).v))  \
         ? ((vec).v[(vec).n++] = (x), true)                                                    \
         : false)

/* Room for one more of `size` bytes in *v (n used of *cap): false when out of memory. */
bool rp_grow(void **v, size_t n, size_t *cap, size_t size);

/* Everything read once per export: id -> position in one of these arrays (memo). */

struct rstack {
    struct lb_frame *f;
    size_t n;
    bool type_ok;
};

enum {
    R_REQ, R_RES, R_PROF, R_SAMPLE, R_TS, R_VAL,
    R_STR, R_ATTR, R_SET, R_MAP, R_FRAME, R_STACK, R_SCOPE, R_ENT, R_ENT_KEY, R_COUNT
};

struct sqlite_replay {
    struct qopts o;
    struct q q;                 /* the query commands' state: --where sets */
    struct qresult res;         /* only its err: the first error */
    sqlite3_stmt *st[R_COUNT];
    bool filtered;              /* any filter: only what keeps a sample is replayed */
    int64_t last_request;
    struct memo ix[R_COUNT];    /* id -> index + 1 in the arrays below, per content kind */
    VEC_OF(lb_str) strs;
    VEC_OF(struct lb_attr) attrs;
    VEC_OF(struct lb_attrs) sets;
    VEC_OF(const struct lb_mapping *) maps;   /* each in owned: frames point to them */
    VEC_OF(struct lb_frame) frames;
    VEC_OF(struct rstack) stacks;
    VEC_OF(struct lb_scope) scopes;
    VEC_OF(void *) owned;       /* every allocation the views point into */
    /* the current resource's entity refs, their stored positions and their keys (reused) */
    VEC_OF(struct lb_entity_ref) erefs;
    VEC_OF(int64_t) eidx;
    VEC_OF(lb_str) ekeys;
    uint64_t *ts;
    int64_t *vals;
    size_t ts_cap, vals_cap;
    uint32_t frame_type_ids[MAX_FILTERS];
    char transport[64], peer[256], layout[32];
};

/* replay_load.c: each 0 / true on success; false with the first error in r->res.err. */
int rp_fail(struct sqlite_replay *r, const char *what);
void *rp_keep(struct sqlite_replay *r, size_t size);
int rp_step(struct sqlite_replay *r, int s, const char *what);
bool rp_load_str(struct sqlite_replay *r, int64_t id, lb_str *out);
bool rp_load_set(struct sqlite_replay *r, int64_t id, struct lb_attrs *out);
bool rp_load_stack(struct sqlite_replay *r, int64_t id, struct rstack *out);
bool rp_load_scope(struct sqlite_replay *r, int64_t id, struct lb_scope *out);
/* The entity refs of resource `id` into out (valid until the next call). */
bool rp_load_entity_refs(struct sqlite_replay *r, int64_t id, struct lb_resource *out);

#endif
