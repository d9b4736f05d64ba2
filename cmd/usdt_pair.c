/*
 * usdt_pair.c - request_start and request_end events paired by request id into spans.
 *
 * Why it is more than a map from id to start: the Go bridge kept every start that never
 * ended for ever, overwrote (and so leaked) a start when its id came again, and dropped an
 * end that came before its start, which bpftrace 0.17/0.18 do produce (per-CPU perf buffers
 * are read one CPU after the other). Here every entry is in one of three states, each with
 * its own list in arrival order, so the oldest of each is at the head and giving up on
 * entries is O(1) each:
 *   OPEN    a start waiting for its end, for at most the TTL;
 *   PARKED  an end waiting for its start, for the grace period;
 *   DONE    an id that just ended, kept for the grace period so that a repeated end is
 *           recognised as a duplicate instead of becoming a second span.
 * The table holds at most max_open entries of all states. When it is full the oldest DONE
 * entry makes room, else the oldest OPEN or PARKED one, which is resolved as if its time had
 * run out (and counted as evicted).
 *
 * The index is open addressing with linear probing and backward-shift deletion over entry
 * numbers; the hash is seeded at random so that ids chosen by the traced program cannot
 * make every lookup walk the whole table.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cmd/usdt.h"

enum state { S_FREE, S_OPEN, S_PARKED, S_DONE, S_LISTS };

#define NIL UINT32_MAX

struct entry {
    uint64_t hash;
    uint64_t at_ms;          /* when it arrived (OPEN, PARKED) or ended (DONE) */
    int64_t ts;              /* OPEN: the start; PARKED: the end's "start" when has_start */
    int64_t duration;        /* PARKED */
    uint32_t prev, next;     /* its state's list; `next` links the free list */
    uint8_t state;
    bool has_start;
    uint16_t len;
    char reqid[USDT_REQID_MAX];
};

struct list {
    uint32_t head, tail;
    size_t n;
};

struct usdt_pairing {
    struct usdt_pair_options o;
    usdt_emit_fn emit;
    void *ud;
    uint64_t seed;
    struct entry *e;
    uint32_t n_alloc;        /* entries allocated (grows by doubling up to max_open) */
    uint32_t free_head;
    uint32_t *slot;          /* entry number + 1, 0 = empty */
    size_t mask;             /* slots - 1; slots >= 2 * n_alloc */
    struct list lists[S_LISTS];
    struct usdt_pair_stats st;
};

/* ---------------------------------------------------------------- hashing */

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

static uint64_t hash_id(const struct usdt_pairing *pt, const char *p, size_t n)
{
    uint64_t h = pt->seed ^ (n * 0x9e3779b97f4a7c15ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = mix(h ^ w) + 0x9e3779b97f4a7c15ULL;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    return mix(h ^ w);
}

/* ---------------------------------------------------------------- lists */

static void list_push(struct usdt_pairing *pt, uint32_t i, enum state s)
{
    struct list *l = &pt->lists[s];
    struct entry *e = &pt->e[i];
    e->state = (uint8_t)s;
    e->next = NIL;
    e->prev = l->tail;
    if (l->tail != NIL)
        pt->e[l->tail].next = i;
    else
        l->head = i;
    l->tail = i;
    l->n++;
}

static void list_unlink(struct usdt_pairing *pt, uint32_t i)
{
    struct entry *e = &pt->e[i];
    struct list *l = &pt->lists[e->state];
    if (e->prev != NIL)
        pt->e[e->prev].next = e->next;
    else
        l->head = e->next;
    if (e->next != NIL)
        pt->e[e->next].prev = e->prev;
    else
        l->tail = e->prev;
    l->n--;
}

/* ---------------------------------------------------------------- the index */

static uint32_t *find_slot(struct usdt_pairing *pt, uint64_t h, const char *id, size_t len)
{
    for (size_t i = h & pt->mask;; i = (i + 1) & pt->mask) {
        uint32_t s = pt->slot[i];
        if (s == 0)
            return &pt->slot[i];
        const struct entry *e = &pt->e[s - 1];
        if (e->hash == h && e->len == len && memcmp(e->reqid, id, len) == 0)
            return &pt->slot[i];
    }
}

/* Removes the slot's entry from the index, moving later entries of the run back into the
 * hole so that no lookup stops early. */
static void index_delete(struct usdt_pairing *pt, uint32_t *slot)
{
    size_t hole = (size_t)(slot - pt->slot);
    for (size_t i = (hole + 1) & pt->mask; pt->slot[i]; i = (i + 1) & pt->mask) {
        size_t home = pt->e[pt->slot[i] - 1].hash & pt->mask;
        /* the entry at i may move to the hole when its home is not in (hole, i] */
        if (((i - home) & pt->mask) >= ((i - hole) & pt->mask)) {
            pt->slot[hole] = pt->slot[i];
            hole = i;
        }
    }
    pt->slot[hole] = 0;
}

/* Doubles entries and index, up to max_open entries. False when at the cap or without
 * memory (the caller then makes room by eviction). */
static bool grow(struct usdt_pairing *pt)
{
    size_t want = pt->n_alloc ? (size_t)pt->n_alloc * 2 : 64;
    if (want > pt->o.max_open)
        want = pt->o.max_open;
    if (want <= pt->n_alloc)
        return false;
    size_t slots = 1;
    while (slots < want * 2)
        slots <<= 1;
    struct entry *e = realloc(pt->e, want * sizeof *e);
    if (!e)
        return false;
    pt->e = e;
    uint32_t *slot = calloc(slots, sizeof *slot);
    if (!slot)
        return false;
    for (size_t i = want; i-- > pt->n_alloc;) {
        e[i].state = S_FREE;
        e[i].next = pt->free_head;
        pt->free_head = (uint32_t)i;
    }
    pt->n_alloc = (uint32_t)want;
    free(pt->slot);
    pt->slot = slot;
    pt->mask = slots - 1;
    for (uint32_t i = 0; i < pt->n_alloc; i++) {
        if (e[i].state == S_FREE)
            continue;
        size_t k = e[i].hash & pt->mask;
        while (slot[k])
            k = (k + 1) & pt->mask;
        slot[k] = i + 1;
    }
    return true;
}

/* ---------------------------------------------------------------- spans out */

static void emit(struct usdt_pairing *pt, const struct entry *e, int64_t start, int64_t duration, enum usdt_how how)
{
    struct usdt_span sp = { e->reqid, e->len, start, start, 0, how };
    if (!USDT_UNFINISHED(how)) {
        sp.duration_ns = duration;
        sp.end_ns = start > INT64_MAX - duration ? INT64_MAX : start + duration;
    }
    pt->emit(pt->ud, &sp);
}

static void release(struct usdt_pairing *pt, uint32_t i)
{
    uint32_t *slot = find_slot(pt, pt->e[i].hash, pt->e[i].reqid, pt->e[i].len);
    index_delete(pt, slot);
    list_unlink(pt, i);
    pt->e[i].state = S_FREE;
    pt->e[i].next = pt->free_head;
    pt->free_head = i;
}

/* An entry whose time is up (or that is pushed out): its span, if any, then DONE or free. */
static void give_up(struct usdt_pairing *pt, uint32_t i, enum usdt_how why)
{
    struct entry *e = &pt->e[i];
    if (e->state == S_OPEN) {
        if (why == USDT_UNF_TTL)
            pt->st.ttl++;
        else if (why == USDT_UNF_EVICTED)
            pt->st.evicted++;
        else
            pt->st.shutdown++;
        emit(pt, e, e->ts, 0, why);
    } else if (e->state == S_PARKED && e->has_start) {
        pt->st.no_start++;
        emit(pt, e, e->ts, e->duration, USDT_NO_START);
    } else if (e->state == S_PARKED) {
        pt->st.orphan_ends++;
    }
    release(pt, i);
}

/* A free entry for a new id (the slot is found again: growing moves everything). */
static uint32_t take_entry(struct usdt_pairing *pt)
{
    if (pt->free_head == NIL && !grow(pt)) {
        struct list *done = &pt->lists[S_DONE], *open = &pt->lists[S_OPEN], *parked = &pt->lists[S_PARKED];
        if (done->head != NIL) {
            release(pt, done->head);
        } else {
            bool use_open = parked->head == NIL ||
                            (open->head != NIL && pt->e[open->head].at_ms <= pt->e[parked->head].at_ms);
            if (!use_open)
                pt->st.evicted++;
            give_up(pt, use_open ? open->head : parked->head, USDT_UNF_EVICTED);
        }
    }
    uint32_t i = pt->free_head;
    pt->free_head = pt->e[i].next;
    return i;
}

static uint32_t insert(struct usdt_pairing *pt, uint64_t h, const char *id, size_t len, enum state s, uint64_t now)
{
    uint32_t i = take_entry(pt);
    struct entry *e = &pt->e[i];
    e->hash = h;
    e->at_ms = now;
    e->len = (uint16_t)len;
    memcpy(e->reqid, id, len);
    e->has_start = false;
    *find_slot(pt, h, id, len) = i + 1;
    list_push(pt, i, s);
    return i;
}

/* The entry moves to DONE (the end of that list: it ended now). */
static void to_done(struct usdt_pairing *pt, uint32_t i, uint64_t now)
{
    list_unlink(pt, i);
    pt->e[i].at_ms = now;
    list_push(pt, i, S_DONE);
}

/* ---------------------------------------------------------------- the interface */

struct usdt_pairing *usdt_pair_new(const struct usdt_pair_options *o, usdt_emit_fn fn, void *ud)
{
    struct usdt_pairing *pt = calloc(1, sizeof *pt);
    if (!pt)
        return NULL;
    pt->o = *o;
    if (pt->o.max_open < 1)
        pt->o.max_open = 1;
    if (pt->o.max_open > (1u << 24))
        pt->o.max_open = 1u << 24;
    pt->emit = fn;
    pt->ud = ud;
    pt->free_head = NIL;
    for (int s = 0; s < S_LISTS; s++)
        pt->lists[s] = (struct list){ NIL, NIL, 0 };
    if (getrandom(&pt->seed, sizeof pt->seed, GRND_NONBLOCK) != (ssize_t)sizeof pt->seed)
        pt->seed = (uint64_t)(uintptr_t)pt * 0x9e3779b97f4a7c15ULL;
    if (!grow(pt)) {
        usdt_pair_free(pt);
        return NULL;
    }
    return pt;
}

void usdt_pair_free(struct usdt_pairing *pt)
{
    if (!pt)
        return;
    free(pt->e);
    free(pt->slot);
    free(pt);
}

/* The entry holding this id, or NIL; *h gets the id's hash either way. */
static uint32_t lookup(struct usdt_pairing *pt, const char *reqid, size_t len, uint64_t *h)
{
    *h = hash_id(pt, reqid, len);
    return *find_slot(pt, *h, reqid, len) - 1;   /* an empty slot (0) gives NIL */
}

void usdt_pair_start(struct usdt_pairing *pt, const char *reqid, size_t len, int64_t ts, uint64_t now_ms)
{
    uint64_t h;
    if (len > USDT_REQID_MAX)
        return;
    uint32_t i = lookup(pt, reqid, len, &h);
    if (i == NIL) {
        i = insert(pt, h, reqid, len, S_OPEN, now_ms);
        pt->e[i].ts = ts;
        return;
    }
    struct entry *e = &pt->e[i];
    if (e->state == S_PARKED) {       /* its end came first */
        pt->st.complete++;
        pt->st.reordered++;
        if (e->has_start && e->ts != ts)
            pt->st.start_mismatch++;
        emit(pt, e, ts, e->duration, USDT_COMPLETE);
        to_done(pt, i, now_ms);
        return;
    }
    if (e->state == S_OPEN) {
        pt->st.duplicate_starts++;
        emit(pt, e, e->ts, 0, USDT_UNF_DUPLICATE);
    }
    list_unlink(pt, i);               /* OPEN (replaced) or DONE (the id is used again) */
    e->at_ms = now_ms;
    e->ts = ts;
    list_push(pt, i, S_OPEN);
}

void usdt_pair_end(struct usdt_pairing *pt, const char *reqid, size_t len, int64_t duration,
                   bool has_start, int64_t start, uint64_t now_ms)
{
    uint64_t h;
    if (len > USDT_REQID_MAX)
        return;
    uint32_t i = lookup(pt, reqid, len, &h);
    if (i != NIL) {
        struct entry *e = &pt->e[i];
        if (e->state != S_OPEN) {     /* DONE, or PARKED: an end was already seen */
            pt->st.duplicate_ends++;
            return;
        }
        pt->st.complete++;
        if (has_start && start != e->ts)
            pt->st.start_mismatch++;
        emit(pt, e, e->ts, duration, USDT_COMPLETE);
        to_done(pt, i, now_ms);
        return;
    }
    i = insert(pt, h, reqid, len, S_PARKED, now_ms);
    pt->e[i].duration = duration;
    pt->e[i].has_start = has_start;
    pt->e[i].ts = start;
}

static void expire_list(struct usdt_pairing *pt, enum state s, uint64_t age_ms, uint64_t now_ms)
{
    struct list *l = &pt->lists[s];
    while (l->head != NIL && now_ms >= pt->e[l->head].at_ms && now_ms - pt->e[l->head].at_ms >= age_ms) {
        if (s == S_DONE)
            release(pt, l->head);
        else
            give_up(pt, l->head, USDT_UNF_TTL);
    }
}

void usdt_pair_expire(struct usdt_pairing *pt, uint64_t now_ms)
{
    expire_list(pt, S_OPEN, pt->o.ttl_ms, now_ms);
    expire_list(pt, S_PARKED, pt->o.grace_ms, now_ms);
    expire_list(pt, S_DONE, pt->o.grace_ms, now_ms);
}

void usdt_pair_drain(struct usdt_pairing *pt)
{
    while (pt->lists[S_PARKED].head != NIL)
        give_up(pt, pt->lists[S_PARKED].head, USDT_UNF_SHUTDOWN);
    while (pt->lists[S_OPEN].head != NIL)
        give_up(pt, pt->lists[S_OPEN].head, USDT_UNF_SHUTDOWN);
    while (pt->lists[S_DONE].head != NIL)
        release(pt, pt->lists[S_DONE].head);
}

size_t usdt_pair_pending(const struct usdt_pairing *pt)
{
    return pt->lists[S_OPEN].n + pt->lists[S_PARKED].n;
}

const struct usdt_pair_stats *usdt_pair_stats(const struct usdt_pairing *pt)
{
    return &pt->st;
}
