/*
 * test_grpc_frame.c - the pure gRPC wire helpers (h2/grpc.h): the length-prefix parser must
 * reassemble messages no matter how DATA frames cut them (checked by feeding the same bytes
 * in every split and one byte at a time), report partial prefixes and payloads exactly, and
 * grpc-message percent-encoding must follow PROTOCOL-HTTP2.md byte for byte. Also the hand
 * reader of grpc.health.v1.HealthCheckRequest (h2/grpc_health.h) on hand-encoded messages.
 */
#include "h2/grpc.h"
#include "h2/grpc_health.h"
#include "test/unit/check.h"

#include <stdlib.h>

/* What a caller sees while feeding: message payloads concatenated, plus prefix facts. */
struct seen {
    int prefixes, ends;
    uint8_t flags[8];
    uint32_t lengths[8];
    uint8_t payload[256];
    size_t npayload;
};

static void feed(struct grpc_framer *f, const uint8_t *p, size_t n, struct seen *s)
{
    for (int guard = 0; guard < 10000; guard++) {
        size_t used;
        enum grpc_step step = grpc_framer_step(f, p, n, &used);
        CHECK(used <= n);
        switch (step) {
        case GRPC_STEP_NEED_MORE:
            CHECK_EQ_INT(used, n);
            return;
        case GRPC_STEP_PREFIX:
            if (s->prefixes < 8) {
                s->flags[s->prefixes] = f->flag;
                s->lengths[s->prefixes] = f->length;
            }
            s->prefixes++;
            break;
        case GRPC_STEP_BODY:
            CHECK(used > 0);
            if (s->npayload + used <= sizeof s->payload) {
                memcpy(s->payload + s->npayload, p, used);
                s->npayload += used;
            }
            break;
        case GRPC_STEP_END:
            CHECK_EQ_INT(used, 0);
            s->ends++;
            break;
        }
        p += used;
        n -= used;
    }
    CHECK(!"framer did not terminate");
}

/* Two messages back to back: "hello" (flag 0) and an empty one (flag 1). */
static const uint8_t two[] = { 0, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o', 1, 0, 0, 0, 0 };

static void check_two(const struct seen *s)
{
    CHECK_EQ_INT(s->prefixes, 2);
    CHECK_EQ_INT(s->ends, 2);
    CHECK_EQ_INT(s->flags[0], 0);
    CHECK_EQ_INT(s->lengths[0], 5);
    CHECK_EQ_INT(s->flags[1], 1);
    CHECK_EQ_INT(s->lengths[1], 0);
    CHECK_EQ_INT(s->npayload, 5);
    CHECK(memcmp(s->payload, "hello", 5) == 0);
}

TEST(whole_buffer)
{
    struct grpc_framer f;
    grpc_framer_init(&f);
    struct seen s = { 0 };
    feed(&f, two, sizeof two, &s);
    check_two(&s);
    bool in_prefix;
    size_t got, want;
    CHECK(!grpc_framer_partial(&f, &in_prefix, &got, &want));
}

TEST(every_two_way_split)
{
    for (size_t cut = 0; cut <= sizeof two; cut++) {
        struct grpc_framer f;
        grpc_framer_init(&f);
        struct seen s = { 0 };
        feed(&f, two, cut, &s);
        feed(&f, two + cut, sizeof two - cut, &s);
        check_two(&s);
    }
}

TEST(one_byte_at_a_time)
{
    struct grpc_framer f;
    grpc_framer_init(&f);
    struct seen s = { 0 };
    for (size_t i = 0; i < sizeof two; i++) {
        feed(&f, two + i, 1, &s);
        feed(&f, two + i, 0, &s);   /* empty DATA frames change nothing */
    }
    check_two(&s);
}

TEST(big_endian_length)
{
    const uint8_t p[] = { 0, 0x01, 0x02, 0x03, 0x04 };
    struct grpc_framer f;
    grpc_framer_init(&f);
    struct seen s = { 0 };
    feed(&f, p, sizeof p, &s);
    CHECK_EQ_INT(s.lengths[0], 0x01020304);
    const uint8_t q[] = { 7, 0xff, 0xff, 0xff, 0xff };
    grpc_framer_init(&f);
    struct seen t = { 0 };
    feed(&f, q, sizeof q, &t);
    CHECK_EQ_INT(t.flags[0], 7);   /* the framer reports; the server judges the flag */
    CHECK_EQ_INT(t.lengths[0], 0xffffffffu);
}

TEST(partial_prefix)
{
    struct grpc_framer f;
    grpc_framer_init(&f);
    struct seen s = { 0 };
    feed(&f, two, 3, &s);
    bool in_prefix = false;
    size_t got = 0, want = 0;
    CHECK(grpc_framer_partial(&f, &in_prefix, &got, &want));
    CHECK(in_prefix);
    CHECK_EQ_INT(got, 3);
    CHECK_EQ_INT(want, 5);
}

TEST(partial_payload)
{
    struct grpc_framer f;
    grpc_framer_init(&f);
    struct seen s = { 0 };
    feed(&f, two, 7, &s);   /* prefix + "he" */
    bool in_prefix = true;
    size_t got = 0, want = 0;
    CHECK(grpc_framer_partial(&f, &in_prefix, &got, &want));
    CHECK(!in_prefix);
    CHECK_EQ_INT(got, 2);
    CHECK_EQ_INT(want, 5);
    CHECK_EQ_INT(s.ends, 0);
}

TEST(nothing_is_not_partial)
{
    struct grpc_framer f;
    grpc_framer_init(&f);
    bool in_prefix;
    size_t got, want;
    CHECK(!grpc_framer_partial(&f, &in_prefix, &got, &want));
}

TEST(percent_encode)
{
    char out[64];
    CHECK_EQ_INT(grpc_percent_encode("plain text ~!", out, sizeof out), 13);
    CHECK_EQ_STR(out, "plain text ~!");
    grpc_percent_encode("100% done", out, sizeof out);
    CHECK_EQ_STR(out, "100%25 done");
    grpc_percent_encode("a\nb\tc\x7f", out, sizeof out);
    CHECK_EQ_STR(out, "a%0Ab%09c%7F");
    grpc_percent_encode("caf\xc3\xa9", out, sizeof out);   /* UTF-8 bytes each encoded */
    CHECK_EQ_STR(out, "caf%C3%A9");
    /* Truncation never splits an escape: "ab%" + "25" would need 5 bytes + NUL. */
    char tiny[5];
    CHECK_EQ_INT(grpc_percent_encode("ab%cd", tiny, sizeof tiny), 2);
    CHECK_EQ_STR(tiny, "ab");
    CHECK_EQ_INT(grpc_percent_encode("x", tiny, 0), 0);
}

TEST(content_type)
{
    CHECK(grpc_content_type_ok("application/grpc"));
    CHECK(grpc_content_type_ok("application/grpc+proto"));
    CHECK(grpc_content_type_ok("application/grpc;charset=utf-8"));
    CHECK(grpc_content_type_ok("Application/GRPC"));
    CHECK(!grpc_content_type_ok("application/grpc-web"));
    CHECK(!grpc_content_type_ok("application/json"));
    CHECK(!grpc_content_type_ok("application/grp"));
    CHECK(!grpc_content_type_ok(""));
}

TEST(status_names)
{
    CHECK_EQ_STR(grpc_status_name(0), "OK");
    CHECK_EQ_STR(grpc_status_name(3), "INVALID_ARGUMENT");
    CHECK_EQ_STR(grpc_status_name(8), "RESOURCE_EXHAUSTED");
    CHECK_EQ_STR(grpc_status_name(12), "UNIMPLEMENTED");
    CHECK_EQ_STR(grpc_status_name(13), "INTERNAL");
    CHECK_EQ_STR(grpc_status_name(16), "UNAUTHENTICATED");
    CHECK_EQ_STR(grpc_status_name(17), "?");
    CHECK_EQ_STR(grpc_status_name(-1), "?");
}

/* `msg` is a string literal (embedded NULs count): its service, or "<refused>". */
#define HEALTH(msg, want)                                                                  \
    do {                                                                                   \
        const char *svc_;                                                                  \
        size_t n_;                                                                         \
        char got_[64] = "<refused>";                                                       \
        if (grpc_health_read_request((const uint8_t *)(msg), sizeof(msg) - 1, &svc_, &n_)) \
            snprintf(got_, sizeof got_, "%.*s", (int)n_, svc_);                            \
        CHECK_EQ_STR(got_, want);                                                          \
    } while (0)

TEST(health_check_request)
{
    HEALTH("", "");                                          /* the default: the whole server */
    HEALTH("\x0a\x03" "abc", "abc");
    HEALTH("\x0a\x00", "");
    HEALTH("\x10\x96\x01\x0a\x01x", "x");                   /* an unknown varint field first */
    HEALTH("\x1d\x01\x02\x03\x04\x19" "12345678" "\x0a\x01y", "y");   /* fixed32, fixed64 */
    HEALTH("\x0a\x01" "a" "\x0a\x02" "bc", "bc");                 /* repeated: the last wins */
    HEALTH("\x12\x02" "zz", "");                                /* field 2 is not the service */
    HEALTH("\x0a\x05" "abc", "<refused>");                      /* runs past the end */
    HEALTH("\x0a", "<refused>");
    HEALTH("\x00\x00", "<refused>");                             /* field 0 */
    HEALTH("\x0b\x0c", "<refused>");                             /* a group */
    HEALTH("\x1d\x01\x02", "<refused>");                         /* fixed32 cut short */
    HEALTH("\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "<refused>");   /* varint over 64 bits */
}

int main(void)
{
    RUN(whole_buffer);
    RUN(every_two_way_split);
    RUN(one_byte_at_a_time);
    RUN(big_endian_length);
    RUN(partial_prefix);
    RUN(partial_payload);
    RUN(nothing_is_not_partial);
    RUN(percent_encode);
    RUN(content_type);
    RUN(status_names);
    RUN(health_check_request);
    return check_done();
}
