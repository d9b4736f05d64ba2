/*
 * test_peers.c - the per-address connection table (h2/peers.h): which addresses count as one
 * (IPv4, an IPv6 /64, IPv4-mapped IPv6 as IPv4), and the counts it keeps through any sequence
 * of adds and removes, checked against a plain list kept beside it (small tables, many
 * addresses, so that probe runs collide and wrap and deletions shift them).
 */
#include "h2/peers.h"
#include "test/unit/check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static struct peer_key key_of(const char *addr)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(1234);
    } else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(4321);
    } else {
        ss.ss_family = AF_UNIX;
    }
    struct peer_key k;
    peer_key_from(&ss, &k);
    return k;
}

static bool same(const char *a, const char *b)
{
    struct peer_key ka = key_of(a), kb = key_of(b);
    return memcmp(&ka, &kb, sizeof ka) == 0;
}

static const char *formatted(const char *addr)
{
    static char out[64];
    struct peer_key k = key_of(addr);
    peer_key_format(&k, out, sizeof out);
    return out;
}

TEST(which_addresses_are_one)
{
    CHECK(same("127.0.0.1", "127.0.0.1"));
    CHECK(!same("127.0.0.1", "127.0.0.2"));
    CHECK(same("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"));   /* one /64 */
    CHECK(!same("2001:db8:1:2::1", "2001:db8:1:3::1"));
    CHECK(same("::ffff:192.0.2.7", "192.0.2.7"));                          /* v4-mapped */
    CHECK(!same("::ffff:192.0.2.7", "192.0.2.8"));
    CHECK(!same("::1", "127.0.0.1"));
    CHECK_EQ_STR(formatted("192.0.2.7"), "192.0.2.7");
    CHECK_EQ_STR(formatted("::ffff:192.0.2.7"), "192.0.2.7");
    CHECK_EQ_STR(formatted("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
}

TEST(counts_and_capacity)
{
    struct peer_table t;
    CHECK(peer_table_init(&t, 2, 7) == 0);
    struct peer_key a = key_of("10.0.0.1"), b = key_of("10.0.0.2"), c = key_of("10.0.0.3");
    CHECK_EQ_INT(peer_table_count(&t, &a), 0);
    CHECK(peer_table_add(&t, &a));
    CHECK(peer_table_add(&t, &a));
    CHECK(peer_table_add(&t, &b));
    CHECK(!peer_table_add(&t, &c));   /* a third address: over what it promised */
    CHECK_EQ_INT(peer_table_count(&t, &c), 0);
    CHECK_EQ_INT(peer_table_count(&t, &a), 2);
    peer_table_remove(&t, &b);
    CHECK(peer_table_add(&t, &c));    /* room again */
    CHECK_EQ_INT(peer_table_count(&t, &b), 0);
    CHECK_EQ_INT(peer_table_count(&t, &c), 1);
    peer_table_remove(&t, &a);
    peer_table_remove(&t, &a);
    peer_table_remove(&t, &c);
    CHECK_EQ_INT((int)t.used, 0);
    peer_table_free(&t);
}

/* Random adds and removes over 200 addresses in a table for 64 of them at a time, against a
 * plain array of counts; every count is compared after every step. */
TEST(against_a_plain_list)
{
    enum { ADDRS = 200, CAP = 64, STEPS = 20000 };
    struct peer_key keys[ADDRS];
    unsigned want[ADDRS] = { 0 };
    for (int i = 0; i < ADDRS; i++) {
        char addr[48];
        if (i % 2)
            snprintf(addr, sizeof addr, "10.%d.%d.1", i / 7, i % 7);
        else
            snprintf(addr, sizeof addr, "2001:db8:%x::1", i);
        keys[i] = key_of(addr);
    }
    struct peer_table t;
    CHECK(peer_table_init(&t, CAP, 12345) == 0);
    unsigned seed = 1, distinct = 0;
    int mismatches = 0;
    for (int step = 0; step < STEPS; step++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)((seed >> 8) % ADDRS);
        bool add = ((seed >> 20) & 3) != 0 || want[i] == 0;
        if (add && want[i] == 0 && distinct >= CAP)
            add = false;
        if (add) {
            CHECK(peer_table_add(&t, &keys[i]));
            if (want[i]++ == 0)
                distinct++;
        } else if (want[i] > 0) {
            peer_table_remove(&t, &keys[i]);
            if (--want[i] == 0)
                distinct--;
        }
        if (step % 97 == 0 || step == STEPS - 1)
            for (int j = 0; j < ADDRS; j++)
                mismatches += peer_table_count(&t, &keys[j]) != want[j];
        /* drain everything now and then, so that the table empties and refills */
        if (step % 5000 == 4999)
            for (int j = 0; j < ADDRS; j++)
                while (want[j]) {
                    peer_table_remove(&t, &keys[j]);
                    if (--want[j] == 0)
                        distinct--;
                }
    }
    CHECK_EQ_INT(mismatches, 0);
    CHECK_EQ_INT((int)t.used, (int)distinct);
    peer_table_free(&t);
}

int main(void)
{
    RUN(which_addresses_are_one);
    RUN(counts_and_capacity);
    RUN(against_a_plain_list);
    return check_done();
}
