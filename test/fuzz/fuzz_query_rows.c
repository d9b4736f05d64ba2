/*
 * fuzz_query_rows.c - libFuzzer target: arbitrary bytes as ClickHouse's RowBinary answers to
 * the three SELECTs of `top|folded|flamegraph --clickhouse-url` (sinks/clickhouse/query_rows.c:
 * the weights per stack, the stacks' frame hashes, the frames' names and types), then the
 * result rendered by every renderer of sinks/query/ (the table, folded lines, the SVG and the
 * JSON forms). The answer comes over the network from whatever answers at the URL.
 *
 * Input: one options byte, then the sums answer's length and the stacks answer's length (u16
 * little-endian each, cut to what is there), then the three answers back to back (frames
 * takes the rest). The options byte: bits 0-1 the command (top, folded, flamegraph, and top
 * again), bit 2 JSON, bits 3-4 the grouping (top's --by, folded's and flamegraph's --root),
 * bit 5 a --frame-type filter, bit 6 --limit 0.
 *
 * Checks beyond the sanitizers: ch_query_fill gives 0 or -1 with a reason that is one
 * printable line; on 0 every renderer succeeds (or says why in one line); each JSON form is JSON our reader takes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "sinks/clickhouse/query.h"
#include "sinks/query/query.h"
#include "test/fuzz/harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t take_len(const uint8_t **p, size_t *n)
{
    if (*n < 2) {
        *n = 0;
        return 0;
    }
    size_t len = (size_t)(*p)[0] | (size_t)(*p)[1] << 8;
    *p += 2;
    *n -= 2;
    return len;
}

/* A borrowed view of input bytes as the struct buf ch_query_fill reads (never grown). */
static struct buf view(const uint8_t *p, size_t n)
{
    struct buf b;
    buf_init(&b, n);
    b.data = (uint8_t *)p;
    b.len = n;
    return b;
}

static void render_all(const struct qopts *o, struct qresult *r)
{
    static const enum cmd cmds[] = { CMD_TOP, CMD_FOLDED, CMD_FLAMEGRAPH };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        for (int json = 0; json < 2; json++) {
            struct qopts ro = *o;
            ro.cmd = cmds[i];
            ro.format = json ? QFORMAT_JSON : QFORMAT_TEXT;
            char *text = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&text, &len);
            fuzz_must(f != NULL, "open_memstream");
            int rc = ro.cmd == CMD_TOP      ? q_out_top(&ro, r, f)
                     : ro.cmd == CMD_FOLDED ? q_out_folded(&ro, r, f)
                                            : q_out_flamegraph(&ro, r, f);
            fclose(f);
            fuzz_must(rc == 0 || (rc == -1 && fuzz_printable(r->err)), "query: a renderer failed without a reason");
            if (rc == 0 && json && len) {
                /* One JSON document, then the line's end. */
                fuzz_must(text[len - 1] == '\n', "query --format json: no line end");
                struct buf out = view((const uint8_t *)text, len - 1);
                fuzz_check_json_out(&out, "query --format json");
            }
            free(text);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init_logs();
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    size_t sums_len = take_len(&p, &n);
    size_t stacks_len = take_len(&p, &n);
    /* Cut to what is there once both lengths are read. */
    if (sums_len > n)
        sums_len = n;
    if (stacks_len > n - sums_len)
        stacks_len = n - sums_len;
    struct buf sums = view(p, sums_len);
    struct buf stacks = view(p + sums_len, stacks_len);
    struct buf frames = view(p + sums_len + stacks_len, n - sums_len - stacks_len);

    static const enum cmd cmds[] = { CMD_TOP, CMD_FOLDED, CMD_FLAMEGRAPH, CMD_TOP };
    static const enum by bys[] = { BY_FUNCTION, BY_EXECUTABLE, BY_CONTAINER, BY_THREAD };
    static const struct group_attr *const roots[] = { NULL, &GROUP_EXECUTABLE, &GROUP_CONTAINER, &GROUP_THREAD };
    struct qopts o = { .cmd = cmds[opt & 3], .name = "query", .limit = 20, .width = 1200 };
    o.format = opt & 4 ? QFORMAT_JSON : QFORMAT_TEXT;
    if (o.cmd == CMD_TOP)
        o.by = bys[(opt >> 3) & 3];
    else
        o.root = roots[(opt >> 3) & 3];
    if (opt & 32) {
        o.frame_type[0] = "native";
        o.n_frame_type = 1;
    }
    if (opt & 64)
        o.limit = 0;

    struct qresult r = { 0 };
    fuzz_must(qresult_init(&r, &o) == 0, "qresult_init");
    int rc = ch_query_fill(&o, &r, &sums, &stacks, &frames);
    fuzz_must(rc == 0 || rc == -1, "ch_query_fill: neither 0 nor -1");
    if (rc == -1) {
        fuzz_must(r.err[0] && fuzz_printable(r.err), "ch_query_fill: a refusal without one printable line");
    } else {
        render_all(&o, &r);
    }
    qresult_free(&r);
    return 0;
}
