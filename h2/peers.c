/*
 * peers.c - the per-address connection counts behind peers.h.
 */
#include "h2/peers.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void peer_key_from(const struct sockaddr_storage *ss, struct peer_key *k)
{
    memset(k, 0, sizeof *k);
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        k->b[10] = k->b[11] = 0xff;   /* the IPv4-mapped form: one key space for both */
        memcpy(k->b + 12, &a->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
            memcpy(k->b, &a->sin6_addr, 16);
        else
            memcpy(k->b, &a->sin6_addr, 8);   /* the /64 */
    }
}

static bool key_is_v4(const struct peer_key *k)
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    return memcmp(k->b, mapped, sizeof mapped) == 0;
}

void peer_key_format(const struct peer_key *k, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (key_is_v4(k)) {
        inet_ntop(AF_INET, k->b + 12, host, sizeof host);
        snprintf(out, outlen, "%s", host);
    } else {
        inet_ntop(AF_INET6, k->b, host, sizeof host);
        snprintf(out, outlen, "%s/64", host);
    }
}

/* FNV-1a over the key, from a per-table seed, with a final mix so that the low bits (the
 * slot index) depend on every byte. */
static size_t slot_of(const struct peer_table *t, const struct peer_key *k)
{
    uint64_t h = 0xcbf29ce484222325ull ^ t->seed;
    for (size_t i = 0; i < sizeof k->b; i++) {
        h ^= k->b[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (size_t)h & t->mask;
}

int peer_table_init(struct peer_table *t, size_t max_entries, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    size_t n = 16;
    while (n < 2 * max_entries && n < ((size_t)1 << 30))
        n *= 2;
    t->slots = calloc(n, sizeof *t->slots);
    if (!t->slots)
        return -1;
    t->mask = n - 1;
    t->max_used = max_entries < n / 2 ? max_entries : n / 2;
    t->seed = seed;
    return 0;
}

void peer_table_free(struct peer_table *t)
{
    free(t->slots);
    memset(t, 0, sizeof *t);
}

/* The slot holding `k`, or the free slot where it would go. The table is never full (at most
 * half its slots are used), so the probe ends. */
static size_t find(const struct peer_table *t, const struct peer_key *k)
{
    size_t i = slot_of(t, k);
    while (t->slots[i].count && memcmp(&t->slots[i].key, k, sizeof *k) != 0)
        i = (i + 1) & t->mask;
    return i;
}

unsigned peer_table_count(const struct peer_table *t, const struct peer_key *k)
{
    return t->slots ? t->slots[find(t, k)].count : 0;
}

bool peer_table_add(struct peer_table *t, const struct peer_key *k)
{
    if (!t->slots)
        return false;
    struct peer_slot *s = &t->slots[find(t, k)];
    if (!s->count) {
        if (t->used >= t->max_used)
            return false;
        s->key = *k;
        t->used++;
    }
    s->count++;
    return true;
}

void peer_table_remove(struct peer_table *t, const struct peer_key *k)
{
    size_t i = find(t, k);
    assert(t->slots[i].count > 0);
    if (--t->slots[i].count)
        return;
    t->used--;
    /* Backward-shift deletion: move later members of the probe run into the hole when their
     * home slot does not lie (cyclically) between the hole and them. */
    size_t hole = i;
    for (size_t j = (i + 1) & t->mask; t->slots[j].count; j = (j + 1) & t->mask) {
        size_t home = slot_of(t, &t->slots[j].key);
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (stays)
            continue;
        t->slots[hole] = t->slots[j];
        t->slots[j].count = 0;
        hole = j;
    }
    t->slots[hole].count = 0;
}
