/*
 * test_query.c - the store-independent query result and its renderers, fed by the ClickHouse
 * reader's RowBinary parser (sinks/clickhouse/query_rows.c) with hand-made answers.
 *
 * Why: the answers come from the network, so the parser must turn every malformed one
 * (truncated rows, lengths and counts past the end, endless varints) into an error, never a
 * read past the buffer (run under ASan by `make test SANITIZE=1`); and a well-formed one must
 * give exactly the names, groups and weights the renderers then print: checked here on the
 * folded lines and on the JSON of `top`, written out by hand.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lib/buf.h"
#include "sinks/clickhouse/query.h"
#include "sinks/query/query.h"

/* ---- RowBinary by hand ---- */

static void put_u64(struct buf *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        buf_putc(b, (char)(v >> (8 * i)));
}

static void put_varint(struct buf *b, uint64_t v)
{
    do {
        buf_putc(b, (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
        v >>= 7;
    } while (v);
}

static void put_str(struct buf *b, const char *s)
{
    put_varint(b, strlen(s));
    buf_append(b, s, strlen(s));
}

static void sum_row(struct buf *b, uint64_t stack, int found, const char *group, int64_t w, uint64_t n)
{
    put_u64(b, stack);
    buf_putc(b, (char)found);
    put_str(b, group);
    put_str(b, "samples");
    put_str(b, "count");
    put_u64(b, (uint64_t)w);
    put_u64(b, n);
}

/* STACK is the largest hash there is: no value may stand for "none" in the reader's lookups. */
#define STACK UINT64_MAX
#define MISSING 7u
#define LEAF 11u
#define ROOT 12u

/* Stack STACK = [LEAF, ROOT] (leaf first); LEAF is "leaf<ESC>" (native), ROOT has no type; the
 * sums: 10 in STACK for executable "java" (2 samples), 5 in an unknown stack with no group. */
static void answers(struct buf *sums, struct buf *stacks, struct buf *frames)
{
    buf_init(sums, SIZE_MAX);
    buf_init(stacks, SIZE_MAX);
    buf_init(frames, SIZE_MAX);
    put_u64(stacks, STACK);
    put_varint(stacks, 2);
    put_u64(stacks, LEAF);
    put_u64(stacks, ROOT);
    put_u64(frames, ROOT);
    put_str(frames, "root");
    put_str(frames, "");
    put_u64(frames, LEAF);
    put_str(frames, "leaf\x1b");
    put_str(frames, "native");
    sum_row(sums, STACK, 1, "java", 10, 2);
    sum_row(sums, MISSING, 0, "", 5, 1);
}

static char *render(int (*out)(const struct qopts *, struct qresult *, FILE *), const struct qopts *o,
                    struct qresult *r)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    CHECK_EQ_INT(out(o, r, f), 0);
    fclose(f);
    return text;
}

TEST(well_formed_answers_render_as_expected)
{
    struct buf sums, stacks, frames;
    answers(&sums, &stacks, &frames);
    struct qopts o = { .cmd = CMD_FOLDED, .name = "folded", .root = &GROUP_EXECUTABLE };
    struct qresult r = { 0 };
    CHECK_EQ_INT(qresult_init(&r, &o), 0);
    CHECK_EQ_INT(ch_query_fill(&o, &r, &sums, &stacks, &frames), 0);
    CHECK_EQ_INT(r.n_samples, 3);
    CHECK_EQ_INT(r.total_w, 15);
    CHECK(r.unit_type && r.unit_unit);
    if (r.unit_type)
        CHECK_EQ_STR(r.unit_type, "samples");
    char *text = render(q_out_folded, &o, &r);
    /* root first, the group as the root frame, the escape escaped, the missing stack empty */
    CHECK_EQ_STR(text, "[unknown] 5\njava;root;leaf\\x1b 10\n");
    free(text);
    qresult_free(&r);

    struct qopts t = { .cmd = CMD_TOP, .name = "top", .by = BY_EXECUTABLE, .limit = 20, .format = QFORMAT_JSON };
    struct qresult r2 = { 0 };
    CHECK_EQ_INT(qresult_init(&r2, &t), 0);
    CHECK_EQ_INT(ch_query_fill(&t, &r2, &sums, &stacks, &frames), 0);
    text = render(q_out_top, &t, &r2);
    CHECK_EQ_STR(text, "{\"command\":\"top\",\"samples\":3,\"weight\":15,\"sample_type\":\"samples\","
                       "\"sample_unit\":\"count\",\"mixed_sample_types\":false,\"by\":\"executable\","
                       "\"order\":\"self\",\"limit\":20,\"rows\":["
                       "{\"name\":\"java\",\"self\":10,\"self_percent\":66.66666666666667,\"total\":10,"
                       "\"total_percent\":66.66666666666667},"
                       "{\"name\":\"[unknown]\",\"self\":5,\"self_percent\":33.333333333333336,\"total\":5,"
                       "\"total_percent\":33.333333333333336}]}\n");
    free(text);
    qresult_free(&r2);

    /* --frame-type native keeps the stack holding the native frame, drops the empty one */
    const char *native[] = { "native" };
    struct qopts ft = { .cmd = CMD_FOLDED, .name = "folded", .n_frame_type = 1 };
    ft.frame_type[0] = native[0];
    struct qresult r3 = { 0 };
    CHECK_EQ_INT(qresult_init(&r3, &ft), 0);
    CHECK_EQ_INT(ch_query_fill(&ft, &r3, &sums, &stacks, &frames), 0);
    CHECK_EQ_INT(r3.total_w, 10);
    CHECK_EQ_INT(r3.n_samples, 2);
    qresult_free(&r3);
    buf_free(&sums);
    buf_free(&stacks);
    buf_free(&frames);
}

/* Runs the parser on answers cut or corrupted by `spoil`, which must be refused. */
static void check_refused(const char *what, void (*spoil)(struct buf *, struct buf *, struct buf *))
{
    struct buf sums, stacks, frames;
    answers(&sums, &stacks, &frames);
    spoil(&sums, &stacks, &frames);
    struct qopts o = { .cmd = CMD_TOP, .name = "top", .limit = 20 };
    struct qresult r = { 0 };
    CHECK_EQ_INT(qresult_init(&r, &o), 0);
    int rc = ch_query_fill(&o, &r, &sums, &stacks, &frames);
    if (rc != -1 || !strstr(r.err, "malformed"))
        printf("#   %s: rc %d, err '%s'\n", what, rc, r.err);
    CHECK_EQ_INT(rc, -1);
    CHECK(strstr(r.err, "malformed") != NULL);
    qresult_free(&r);
    buf_free(&sums);
    buf_free(&stacks);
    buf_free(&frames);
}

static void cut_sums(struct buf *s, struct buf *st, struct buf *f)
{
    (void)st, (void)f;
    s->len -= 3;   /* the last row's samples count is cut */
}

static void cut_stacks(struct buf *s, struct buf *st, struct buf *f)
{
    (void)s, (void)f;
    st->len -= 1;
}

static void huge_array(struct buf *s, struct buf *st, struct buf *f)
{
    (void)s, (void)f;
    buf_reset(st);
    put_u64(st, 1);
    put_varint(st, (uint64_t)1 << 60);   /* 2^60 frame hashes announced, none there */
    put_u64(st, 2);
}

static void long_string(struct buf *s, struct buf *st, struct buf *f)
{
    (void)s, (void)st;
    buf_reset(f);
    put_u64(f, 1);
    put_varint(f, UINT64_MAX);           /* a name longer than anything */
    buf_append(f, "abc", 3);
}

static void endless_varint(struct buf *s, struct buf *st, struct buf *f)
{
    (void)st, (void)f;
    buf_reset(s);
    put_u64(s, 1);
    buf_putc(s, 1);
    for (int i = 0; i < 12; i++)          /* more continuation bytes than 64 bits need */
        buf_putc(s, (char)0x80);
    buf_putc(s, 0);
}

TEST(malformed_answers_are_refused)
{
    check_refused("cut sums", cut_sums);
    check_refused("cut stacks", cut_stacks);
    check_refused("huge array count", huge_array);
    check_refused("string past the end", long_string);
    check_refused("endless varint", endless_varint);
}

TEST(empty_answers_are_an_empty_result)
{
    struct buf none;
    buf_init(&none, SIZE_MAX);
    struct qopts o = { .cmd = CMD_FLAMEGRAPH, .name = "flamegraph", .format = QFORMAT_JSON };
    struct qresult r = { 0 };
    CHECK_EQ_INT(qresult_init(&r, &o), 0);
    CHECK_EQ_INT(ch_query_fill(&o, &r, &none, &none, &none), 0);
    char *text = render(q_out_flamegraph, &o, &r);
    CHECK_EQ_STR(text, "{\"command\":\"flamegraph\",\"samples\":0,\"weight\":0,\"sample_type\":null,"
                       "\"sample_unit\":null,\"mixed_sample_types\":false,\"root\":\"none\","
                       "\"tree\":{\"name\":\"all\",\"type\":\"root\",\"value\":0,\"children\":[]}}\n");
    free(text);
    qresult_free(&r);
    buf_free(&none);
}

/* The web UI's store drops its names and fills them again per request (ui/clickhouse.c): a
 * freed table must be empty and usable, giving ids from 0 again. */
TEST(a_freed_string_table_is_usable_again)
{
    struct strtab t;
    memset(&t, 0, sizeof t);
    for (int round = 0; round < 3; round++) {
        CHECK_EQ_INT(strtab_cstr(&t, ""), 0);
        for (int i = 0; i < 100; i++) {
            char name[16];
            snprintf(name, sizeof name, "f%d", i);
            CHECK_EQ_INT(strtab_cstr(&t, name), i + 1);
        }
        CHECK_EQ_INT(strtab_cstr(&t, "f7"), 8);
        CHECK_EQ_INT(t.n, 101);
        strtab_free(&t);
        CHECK(t.n == 0 && t.v == NULL && t.slots == NULL);
    }
}

int main(void)
{
    RUN(well_formed_answers_render_as_expected);
    RUN(malformed_answers_are_refused);
    RUN(empty_answers_are_an_empty_result);
    RUN(a_freed_string_table_is_usable_again);
    return check_done();
}
