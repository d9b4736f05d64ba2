/*
 * peers.h - how many connections each client address has open: the per-IP connection limit
 * (--max-connections-per-ip) asks it before a connection is served.
 *
 * A client address is an IPv4 address, or the /64 prefix of an IPv6 address (one host, or one
 * site, usually owns a whole /64: counting whole addresses would let it open a connection per
 * address). IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, from a dual-stack listener) count as
 * their IPv4 address. Anything else (a Unix socket, as the fuzz harness uses) is one address.
 *
 * The table is a fixed array sized at creation for the most connections the server keeps
 * open (twice that many slots, a power of two), open addressing with linear probing and
 * backward-shift deletion: no allocation while serving, no tombstones to pile up. The hash is
 * seeded per table, so a client cannot pick addresses that collide on every server.
 */
#ifndef LB_H2_PEERS_H
#define LB_H2_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A client address as the limit counts it; compare with memcmp. */
struct peer_key {
    uint8_t b[16];
};

/* The key of an accepted peer's address (see above). */
void peer_key_from(const struct sockaddr_storage *ss, struct peer_key *k);
/* "203.0.113.7" or "2001:db8:1:2::/64", for log lines. */
void peer_key_format(const struct peer_key *k, char *out, size_t outlen);

struct peer_slot {
    struct peer_key key;
    unsigned count;   /* open connections; 0 = the slot is free */
};

struct peer_table {
    struct peer_slot *slots;
    size_t mask;      /* slots - 1 */
    size_t used;      /* slots with count > 0 */
    size_t max_used;  /* addresses it promises to hold: the connection limit */
    uint64_t seed;
};

/* Room for `max_entries` addresses at once. 0, or -1 when out of memory. */
int peer_table_init(struct peer_table *t, size_t max_entries, uint64_t seed);
void peer_table_free(struct peer_table *t);
/* Connections open from that address now. */
unsigned peer_table_count(const struct peer_table *t, const struct peer_key *k);
/* One more connection from that address; false (nothing changed) when the table already holds
 * max_entries addresses and this is a new one. */
bool peer_table_add(struct peer_table *t, const struct peer_key *k);
/* One connection fewer; the address must have one (asserted). */
void peer_table_remove(struct peer_table *t, const struct peer_key *k);

#endif
