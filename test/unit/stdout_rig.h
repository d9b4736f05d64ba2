/*
 * stdout_rig.h - what the stdout sink's unit tests share: views built by hand (frames,
 * attributes), a sink writing into a temporary file, and comparisons of what it wrote with
 * expected text that prints the first differing line.
 */
#ifndef LB_TEST_STDOUT_RIG_H
#define LB_TEST_STDOUT_RIG_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "sinks/stdout/stdout.h"

#define CALL(s, fn, ...) do { if ((s)->type->fn) (s)->type->fn((s), __VA_ARGS__); } while (0)

static inline lb_str S(const char *s) { return (lb_str){ s, strlen(s) }; }

/* ---- building views ---- */

static inline struct lb_attr a_str(const char *k, const char *v)
{
    return (struct lb_attr){ .key = S(k), .value = { .kind = LB_VALUE_STRING, .u.str = S(v) } };
}

static inline struct lb_attr a_raw(const char *k, enum lb_value_kind kind, const char *p, size_t n)
{
    return (struct lb_attr){ .key = S(k), .value = { .kind = kind, .u.str = { p, n } } };
}

static inline struct lb_frame sym(const char *type, const char *fn, const char *file, int64_t line, int64_t col)
{
    return (struct lb_frame){ .type = S(type), .symbolized = true, .function = S(fn),
                              .file = S(file), .line = line, .column = col, .line_count = 1 };
}

/* mapping NULL = the location has no mapping; bid "" = the mapping has no build id. The
 * frames point to their mapping: each call takes one of a ring of them, enough for a test. */
static inline struct lb_frame unsym(const char *type, uint64_t addr, const char *mapping,
                             const char *kind, const char *bid)
{
    static struct lb_mapping ring[256];
    static unsigned next;
    struct lb_mapping *m = &ring[next++ % 256];
    *m = (struct lb_mapping){ .file = S(mapping ? mapping : ""), .build_id = S(bid), .build_id_kind = S(kind) };
    return (struct lb_frame){ .type = S(type), .address = addr, .has_mapping = mapping != NULL, .mapping = m };
}

/* ---- capturing what the sink writes ---- */

struct capture {
    FILE *f;
    int fd;
};

static inline struct capture capture_open(void)
{
    struct capture c;
    c.f = tmpfile();
    c.fd = c.f ? fileno(c.f) : -1;
    return c;
}

/* Everything written so far, NUL-terminated; the caller frees it. */
static inline char *captured(const struct capture *c)
{
    struct stat st;
    if (fstat(c->fd, &st) != 0)
        return strdup("<fstat failed>");
    char *s = malloc((size_t)st.st_size + 1);
    ssize_t n = pread(c->fd, s, (size_t)st.st_size, 0);
    s[n < 0 ? 0 : n] = '\0';
    return s;
}

/* Compares whole outputs; on a difference prints the first differing line of each. */
static inline void check_text(const char *got, const char *want, int line)
{
    if (strcmp(got, want) == 0)
        return;
    check_current_failed = 1;
    int ln = 1;
    while (*got && *got == *want) {
        if (*got == '\n')
            ln++;
        got++, want++;
    }
    while (ln > 1 && got[-1] != '\n')
        got--, want--;
    printf("#   line %d of the test: output differs at output line %d\n", line, ln);
    printf("#   got:  %.*s\n", (int)strcspn(got, "\n"), got);
    printf("#   want: %.*s\n", (int)strcspn(want, "\n"), want);
}
#define CHECK_TEXT(got, want) check_text((got), (want), __LINE__)

/* No layout: the "  Layout:" line is covered by the golden file of test/e2e/decode_fixtures.py. */
static const struct lb_request REQ = { "grpc", "127.0.0.1:5000", NULL, 0, 0, 0, 1 };

static inline struct sink open_sink(enum stdout_format format, int fd, size_t max_buffer)
{
    struct sink s = { 0 };
    struct stdout_sink_options o = { format, fd, max_buffer };
    CHECK_EQ_INT(stdout_sink_open(&s, &o), 0);
    CHECK(s.type && s.type->name && strcmp(s.type->name, "stdout") == 0);
    return s;
}

/* Most tests: a sink writing into a capture. */
struct rig {
    struct capture c;
    struct sink s;
};

static inline struct rig rig_open(enum stdout_format format, size_t max_buffer)
{
    struct rig r;
    r.c = capture_open();
    r.s = open_sink(format, r.c.fd, max_buffer);
    return r;
}

static inline void rig_close(struct rig *r)
{
    CALL(&r->s, close, 0);
    fclose(r->c.f);
}

/* Ends the request, which must succeed. */
static inline void end_request_ok(struct sink *s)
{
    char why[64];
    CHECK_EQ_INT(s->type->request_end(s, &REQ, why, sizeof why), 0);
}

/* Everything written so far is `want` (compared as CHECK_TEXT does). */
static inline void check_captured(const struct capture *c, const char *want, int line)
{
    char *got = captured(c);
    check_text(got, want, line);
    free(got);
}
#define CHECK_CAPTURED(c, want) check_captured((c), (want), __LINE__)

/* Ends the request (which must succeed) and closes the rig; what was written, to be freed. */
static inline char *rig_end(struct rig *g)
{
    end_request_ok(&g->s);
    char *got = captured(&g->c);
    rig_close(g);
    return got;
}

static inline void check_nothing_captured(const struct capture *c)
{
    char *got = captured(c);
    CHECK_EQ_STR(got, "");
    free(got);
}

#endif
