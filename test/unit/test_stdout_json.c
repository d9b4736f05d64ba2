/*
 * test_stdout_json.c - what the end-to-end tests of the stdout sink cannot reach cheaply:
 * the JSON output cap (a huge resource attribute repeated into every line makes the request
 * fail instead of filling a disk), a JSON line built by hand from docs/output.md, the
 * --output file (created 0644, appended to) and stdout_sink_reopen after a rename.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "sinks/stdout/stdout.h"

static lb_str S(const char *s) { return (lb_str){ s, strlen(s) }; }

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("<missing>");
    char *s = calloc(1, 1 << 16);
    size_t n = fread(s, 1, (1 << 16) - 1, f);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* One request: one resource with `rattr` as container.id, one profile, n samples. */
static int send_request(struct sink *s, const struct lb_request *req, const char *rattr, unsigned n,
                        char *why, size_t whylen)
{
    static const uint64_t ts[] = { 1761887343453558373ull };
    struct lb_attr ra[] = { { .key = S("container.id"), .value = { .kind = LB_VALUE_STRING, .u.str = S(rattr) } } };
    struct lb_frame fr[] = { { .type = S("go"), .symbolized = true, .function = S("main.main"),
                               .file = S("main.go"), .line = 7, .line_count = 1 } };
    struct lb_resource r = { .request = req, .attrs = { ra, 1 } };
    struct lb_profile p = { .resource = &r, .sample_type = S("samples"), .sample_unit = S("count"),
                            .period_type = S("cpu"), .period_unit = S("nanoseconds"), .period = 50000000,
                            .time_unix_nano = 1761887343253558841ull, .duration_nano = 5849910424ull };
    s->type->request_begin(s, req);
    s->type->resource_begin(s, &r);
    s->type->profile_begin(s, &p);
    for (unsigned i = 0; i < n; i++) {
        struct lb_sample smp = { .profile = &p, .index = i, .timestamps = ts, .n_timestamps = 1,
                                 .frames = fr, .n_frames = 1 };
        s->type->sample(s, &smp);
    }
    s->type->profile_end(s, &p);
    s->type->resource_end(s, &r);
    return s->type->request_end(s, req, why, whylen);
}

static const char WANT_LINE[] =
    "{\"request\":{\"sequence\":3,\"transport\":\"grpc\",\"peer\":\"127.0.0.1:9\",\"layout\":\"v1.11\","
    "\"received_unix_nano\":1000000001,\"received\":\"1970-01-01T00:00:01.000000001Z\","
    "\"unknown_fields_total\":0,\"unknown_fields\":[]},"
    "\"resource\":{\"index\":0,\"schema_url\":\"\",\"entity_refs\":[],\"dropped_attributes_count\":0,"
    "\"attributes\":[{\"key\":\"container.id\",\"type\":\"string\",\"value\":\"c\\\"1\"}]},"
    "\"scope\":{\"name\":\"\",\"version\":\"\",\"schema_url\":\"\",\"dropped_attributes_count\":0,\"attributes\":[]},"
    "\"profile\":{\"scope_index\":0,\"index\":0,\"profile_id\":\"\",\"time_unix_nano\":1761887343253558841,"
    "\"time\":\"2025-10-31T05:09:03.253558841Z\",\"duration_nano\":5849910424,"
    "\"period_type\":{\"type\":\"cpu\",\"unit\":\"nanoseconds\",\"aggregation_temporality\":0},\"period\":50000000,"
    "\"sample_type\":{\"type\":\"samples\",\"unit\":\"count\",\"aggregation_temporality\":0},"
    "\"sample_types\":[{\"type\":\"samples\",\"unit\":\"count\",\"aggregation_temporality\":0}],"
    "\"default_sample_type_index\":0,\"comments\":[],\"original_payload_format\":\"\",\"original_payload_size\":0,"
    "\"dropped_attributes_count\":0,\"attributes\":[]},"
    "\"sample\":{\"index\":0,\"timestamps_unix_nano\":[1761887343453558373],"
    "\"timestamps\":[\"2025-10-31T05:09:03.453558373Z\"],\"values\":[],\"weight\":1,\"link\":null,"
    "\"attributes\":[],\"frames\":[{\"type\":\"go\",\"symbolized\":true,\"function\":\"main.main\","
    "\"file\":\"main.go\",\"line\":7,\"column\":0,\"address\":\"0x0\",\"mapping\":null,"
    "\"build_id\":\"\",\"build_id_kind\":\"\",\"system_name\":\"\",\"start_line\":0,\"is_folded\":false,"
    "\"location_attributes\":[],\"mapping_info\":null}]}}\n";

static const struct lb_request REQ = { "grpc", "127.0.0.1:9", "v1.11", 1000000001ull, 10, 10, 3 };

TEST(json_line_and_file)
{
    char dir[] = "/tmp/lb-json-unit-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128], moved[128];
    snprintf(path, sizeof path, "%s/out.jsonl", dir);
    snprintf(moved, sizeof moved, "%s/out.jsonl.1", dir);
    mode_t old = umask(022);
    struct stdout_sink_options o = { .format = STDOUT_FORMAT_JSON, .fd = -1, .path = path };
    struct sink s = { 0 };
    CHECK_EQ_INT(stdout_sink_open(&s, &o), 0);
    umask(old);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);
    char why[256] = "";
    CHECK_EQ_INT(send_request(&s, &REQ, "c\"1", 1, why, sizeof why), 0);
    char *got = slurp(path);
    CHECK_EQ_STR(got, WANT_LINE);
    free(got);

    /* logrotate: rename, reopen, the next request goes to a new file at the path */
    CHECK(rename(path, moved) == 0);
    CHECK_EQ_INT(stdout_sink_reopen(&s), 0);
    CHECK_EQ_INT(send_request(&s, &REQ, "c\"1", 1, why, sizeof why), 0);
    got = slurp(path);
    CHECK_EQ_STR(got, WANT_LINE);
    free(got);
    got = slurp(moved);
    CHECK_EQ_STR(got, WANT_LINE);
    free(got);

    /* a failed reopen (the path is a directory) keeps the old file */
    CHECK(unlink(moved) == 0 && rename(path, moved) == 0 && mkdir(path, 0755) == 0);
    CHECK_EQ_INT(stdout_sink_reopen(&s), -1);
    CHECK_EQ_INT(send_request(&s, &REQ, "c\"1", 1, why, sizeof why), 0);
    got = slurp(moved);
    CHECK(strlen(got) == 2 * strlen(WANT_LINE));
    free(got);
    s.type->close(&s, 0);
    rmdir(path);
    unlink(moved);
    rmdir(dir);

    /* a path that cannot be opened fails the open with errno */
    struct stdout_sink_options bad = { .format = STDOUT_FORMAT_JSON, .path = "/nonexistent-dir/x" };
    errno = 0;
    CHECK_EQ_INT(stdout_sink_open(&s, &bad), -1);
    CHECK_EQ_INT(errno, ENOENT);
}

/* 1 MiB of resource attribute in each of 80 lines passes the cap (64 MiB + 256 x a 10-byte
 * request): the request fails with a message, and what was streamed is marked cut. */
TEST(json_cap)
{
    size_t big = (size_t)1 << 20;
    char *attr = malloc(big + 1);
    memset(attr, 'x', big);
    attr[big] = '\0';
    int fd = open("/dev/null", O_WRONLY);
    struct stdout_sink_options o = { .format = STDOUT_FORMAT_JSON, .fd = fd, .max_buffer = 1 << 20 };
    struct sink s = { 0 };
    CHECK_EQ_INT(stdout_sink_open(&s, &o), 0);
    char why[256] = "";
    CHECK_EQ_INT(send_request(&s, &REQ, attr, 80, why, sizeof why), -1);
    CHECK(strstr(why, "json output of the request exceeds 256 times its size plus 64 MiB") != NULL);
    /* under the cap the same sink works again */
    CHECK_EQ_INT(send_request(&s, &REQ, attr, 10, why, sizeof why), 0);
    s.type->close(&s, 0);
    close(fd);
    free(attr);
}

int main(void)
{
    RUN(json_line_and_file);
    RUN(json_cap);
    return check_done();
}
