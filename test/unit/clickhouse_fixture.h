/*
 * clickhouse_fixture.h - what the ClickHouse sink's two unit tests share: a request built by
 * hand (resource, profile, samples with frames of every kind) and temporary spool directories.
 * Header-only (static inline), so each test binary stays one .c file.
 */
#ifndef LB_TEST_CLICKHOUSE_FIXTURE_H
#define LB_TEST_CLICKHOUSE_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sinks/clickhouse/internal.h"


/* ---------------------------------------------------------------- a request, by hand */

struct fixture {
    struct lb_request req;
    struct lb_attr rattr[2];
    struct lb_resource res;
    struct lb_scope scope;
    struct lb_profile prof;
    struct lb_attr sattr[2];
    struct lb_frame frames[3];
    struct lb_mapping map;
    uint64_t ts[2];
    int64_t values[2];
    struct lb_sample smp[3];
};

static inline struct lb_value str_value(const char *s)
{
    return (struct lb_value){ .kind = LB_VALUE_STRING, .u.str = { s, strlen(s) } };
}

static inline lb_str S(const char *s) { return (lb_str){ s, strlen(s) }; }

/* Three samples: 0 and 1 share a stack (leaf jvm frame, then an unsymbolized native frame),
 * 2 has another (the native frame alone) under the same stack_index, as v1.7 requests can
 * (their "stack index" is the start of a slice). */
static inline void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    f->req = (struct lb_request){ .transport = "test", .peer = "-", .layout = "v1.11",
                                  .received_unix_nano = 1700000000000000000ull, .sequence = 1 };
    f->rattr[0] = (struct lb_attr){ .key = S("service.name"), .value = str_value("svc") };
    f->rattr[1] = (struct lb_attr){ .key = S("container.id"), .value = str_value("c1") };
    f->res = (struct lb_resource){ .request = &f->req, .attrs = { f->rattr, 2 }, .schema_url = S("https://x") };
    f->scope = (struct lb_scope){ .name = S("scope-a") };
    f->prof = (struct lb_profile){ .resource = &f->res, .scope = &f->scope, .sample_type = S("samples"),
                                   .sample_unit = S("count"), .period_type = S("cpu"),
                                   .period_unit = S("nanoseconds"), .period = 50000000,
                                   .time_unix_nano = 1761887343000000000ull, .profile_id = { "\x01\xab", 2 } };
    f->sattr[0] = (struct lb_attr){ .key = S("thread.name"), .value = str_value("worker") };
    f->sattr[1] = (struct lb_attr){ .key = S("thread.id"), .value = { .kind = LB_VALUE_INT, .u.integer = 42 } };
    f->frames[0] = (struct lb_frame){ .type = S("jvm"), .symbolized = true, .function = S("leaf()"),
                                      .file = S("A.java"), .line = 9, .location_index = 1, .line_count = 1 };
    f->map = (struct lb_mapping){ .file = S("libc.so"), .build_id = S("abcd"), .build_id_kind = S("gnu") };
    f->frames[1] = (struct lb_frame){ .type = S("native"), .address = 0x1234, .has_mapping = true,
                                      .mapping = &f->map, .location_index = 2 };
    f->frames[2] = f->frames[1];
    f->ts[0] = 1761887345500000000ull;   /* not sorted: the earliest is the second */
    f->ts[1] = 1761887344250000000ull;
    f->values[0] = 5;
    f->values[1] = 7;
    for (int i = 0; i < 3; i++)
        f->smp[i] = (struct lb_sample){ .profile = &f->prof, .index = (unsigned)i, .stack_index = 7,
                                        .timestamps = f->ts, .n_timestamps = 2, .attrs = { f->sattr, 2 },
                                        .frames = f->frames, .n_frames = 2 };
    f->smp[1].n_timestamps = 0;
    f->smp[1].values = f->values;
    f->smp[1].n_values = 2;
    f->smp[1].attrs.n = 0;
    f->smp[2].stack_index = 7;
    f->smp[2].frames = &f->frames[2];
    f->smp[2].n_frames = 1;
    f->smp[2].has_link = true;
    f->smp[2].trace_id = (lb_str){ "\x00\x11", 2 };
    f->smp[2].span_id = (lb_str){ "\xff", 1 };
}

static inline void feed(struct ch_rows *r, struct fixture *f, size_t n_samples)
{
    ch_rows_request_begin(r, &f->req, 0x1122334455667788ull);
    ch_rows_resource(r, &f->res);
    ch_rows_profile(r, &f->prof);
    for (size_t i = 0; i < n_samples; i++)
        ch_rows_sample(r, &f->smp[i]);
}


static inline char *temp_dir(void)
{
    char tmpl[] = "/tmp/lb-test-spool-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static inline int count_suffix(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), k = strlen(suffix);
        n += l > k && strcmp(e->d_name + l - k, suffix) == 0;
    }
    if (d)
        closedir(d);
    return n;
}

static inline void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0)))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}


#endif
