/*
 * test_encode.c - the encoders that turn profiles events back into bytes: the OTLP encoder
 * (otlp/encode.c) and the pprof writer (otlp/pprof.c).
 *
 * What end-to-end tests reach badly: a request decoded, encoded and decoded again gives the
 * same views, field by field (a recording consumer writes every field of every event into a
 * text, and the two texts must be equal); batching and an aborted request; an array or kvlist
 * re-encoded self-contained walks the same without the request's dictionary; the pprof writer
 * writes a gzipped profile with the functions of the request. Comparing against the reference
 * protobuf library is test/e2e/export_roundtrip.py's job.
 */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "lib/gzip.h"
#include "otlp/decode.h"
#include "otlp/encode.h"
#include "otlp/pprof.h"

#define EXAMPLE "examples/ebpf-profiler.pb"

static struct buf read_file(const char *path)
{
    struct buf b;
    buf_init(&b, 64u << 20);
    FILE *f = fopen(path, "rb");
    char tmp[65536];
    size_t n;
    while (f && (n = fread(tmp, 1, sizeof tmp, f)) > 0)
        buf_append(&b, tmp, n);
    if (f)
        fclose(f);
    return b;
}

/* ---------- a consumer that writes down every field it is given ---------- */

struct rec {
    struct buf out;
    unsigned requests, aborted;
};

static void put_str(struct buf *b, const char *what, lb_str s)
{
    buf_printf(b, "%s=%zu:", what, s.n);
    buf_append(b, s.n ? s.p : "", s.n);
    buf_putc(b, ' ');
}

static void put_value(struct buf *b, const struct lb_value *v)
{
    struct lb_value_iter it;
    struct lb_value el;
    lb_str key;
    buf_printf(b, "k%d ", (int)v->kind);
    switch (v->kind) {
    case LB_VALUE_STRING: case LB_VALUE_BYTES: put_str(b, "v", v->u.str); break;
    case LB_VALUE_BOOL: buf_printf(b, "%d ", v->u.boolean); break;
    case LB_VALUE_INT: buf_printf(b, "%lld ", (long long)v->u.integer); break;
    case LB_VALUE_DOUBLE: buf_printf(b, "%.17g ", v->u.dbl); break;
    case LB_VALUE_ARRAY:
        lb_value_iter_init(&it, v);
        buf_putc(b, '[');
        while (lb_array_next(&it, &el))
            put_value(b, &el);
        buf_printf(b, "]%s ", it.err ? "ERR" : "");
        break;
    case LB_VALUE_KVLIST:
        lb_value_iter_init(&it, v);
        buf_putc(b, '{');
        while (lb_kvlist_next(&it, &key, &el)) {
            put_str(b, "key", key);
            put_value(b, &el);
        }
        buf_printf(b, "}%s ", it.err ? "ERR" : "");
        break;
    case LB_VALUE_EMPTY: break;
    }
}

static void put_attrs(struct buf *b, const char *what, struct lb_attrs a)
{
    buf_printf(b, "%s(%zu): ", what, a.n);
    for (size_t i = 0; i < a.n; i++) {
        put_str(b, "key", a.v[i].key);
        put_value(b, &a.v[i].value);
        put_str(b, "unit", a.v[i].unit);
    }
    buf_putc(b, '\n');
}

static int r_admit(void *c, enum otlp_signal s, char *w, size_t n) { (void)c, (void)s, (void)w, (void)n; return 0; }
static void r_request_begin(void *c, enum otlp_signal s, const struct lb_request *r) { (void)c, (void)s, (void)r; }
static void r_resource_begin(void *ctx, const struct lb_resource *r)
{
    struct rec *x = ctx;
    /* not its index: batched requests number their resources on */
    buf_printf(&x->out, "resource dropped %u ", r->dropped_attributes_count);
    put_str(&x->out, "url", r->schema_url);
    put_attrs(&x->out, "attrs", r->attrs);
    for (size_t i = 0; i < r->n_entity_refs; i++) {
        const struct lb_entity_ref *e = &r->entity_refs[i];
        buf_printf(&x->out, "entity ");
        put_str(&x->out, "url", e->schema_url);
        put_str(&x->out, "type", e->type);
        for (size_t k = 0; k < e->n_id_keys; k++)
            put_str(&x->out, "id", e->id_keys[k]);
        for (size_t k = 0; k < e->n_description_keys; k++)
            put_str(&x->out, "desc", e->description_keys[k]);
    }
}
static void r_profile_begin(void *ctx, const struct lb_profile *p)
{
    struct buf *b = &((struct rec *)ctx)->out;
    buf_printf(b, "profile %u/%u period %lld time %llu dur %llu dropped %u ", p->scope_index, p->index,
               (long long)p->period, (unsigned long long)p->time_unix_nano,
               (unsigned long long)p->duration_nano, p->dropped_attributes_count);
    put_str(b, "type", p->sample_type);
    put_str(b, "unit", p->sample_unit);
    put_str(b, "ptype", p->period_type);
    put_str(b, "punit", p->period_unit);
    put_str(b, "id", p->profile_id);
    put_str(b, "fmt", p->original_payload_format);
    put_str(b, "payload", p->original_payload);
    if (p->scope) {
        put_str(b, "scope", p->scope->name);
        put_str(b, "version", p->scope->version);
        put_attrs(b, "scope attrs", p->scope->attrs);
    }
    put_attrs(b, "attrs", p->attrs);
}
static void r_sample(void *ctx, const struct lb_sample *s)
{
    struct buf *b = &((struct rec *)ctx)->out;
    buf_printf(b, "sample %u link %d ", s->index, s->has_link);
    put_str(b, "trace", s->trace_id);
    put_str(b, "span", s->span_id);
    for (size_t i = 0; i < s->n_values; i++)
        buf_printf(b, "v%lld ", (long long)s->values[i]);
    for (size_t i = 0; i < s->n_timestamps; i++)
        buf_printf(b, "t%llu ", (unsigned long long)s->timestamps[i]);
    put_attrs(b, "attrs", s->attrs);
    for (size_t i = 0; i < s->n_frames; i++) {
        const struct lb_frame *f = &s->frames[i];
        buf_printf(b, "  frame sym %d line %lld col %lld start %lld addr %llx map %d %llx-%llx+%llx li %u/%u ",
                   f->symbolized, (long long)f->line, (long long)f->column, (long long)f->start_line,
                   (unsigned long long)f->address, f->has_mapping, (unsigned long long)lb_mapping_of(f)->start,
                   (unsigned long long)lb_mapping_of(f)->limit, (unsigned long long)lb_mapping_of(f)->offset,
                   f->line_index, f->line_count);
        put_str(b, "fn", f->function);
        put_str(b, "sys", f->system_name);
        put_str(b, "file", f->file);
        put_str(b, "mapfile", lb_mapping_of(f)->file);
        put_str(b, "type", f->type);
        put_attrs(b, "loc", f->location_attrs);
        put_attrs(b, "map", lb_mapping_of(f)->attrs);
    }
}
static void r_profile_end(void *c, const struct lb_profile *p) { (void)c, (void)p; }
static void r_resource_end(void *c, const struct lb_resource *r) { (void)c, (void)r; }
static void r_span(void *c, const struct lb_span *s) { (void)c, (void)s; }
static int r_request_end(void *ctx, enum otlp_signal s, const struct lb_request *r, char *w, size_t n)
{
    (void)s, (void)r, (void)w, (void)n;
    ((struct rec *)ctx)->requests++;
    return 0;
}
static void r_request_abort(void *ctx, enum otlp_signal s, const struct lb_request *r, const char *why)
{
    (void)s, (void)r, (void)why;
    ((struct rec *)ctx)->aborted++;
}

static const struct otlp_events REC = {
    r_admit, r_request_begin, r_resource_begin, r_profile_begin, r_sample, r_profile_end,
    r_resource_end, r_resource_begin, r_span, r_resource_end, r_request_end, r_request_abort,
};

/* Decodes msg into c; the status. */
static enum otlp_status decode_into(const uint8_t *msg, size_t len, struct otlp_consumer c)
{
    struct otlp_limits lim = { OTLP_DEFAULT_MAX_STACK_DEPTH, OTLP_DEFAULT_MAX_FRAMES };
    struct otlp_decoder *d = otlp_decoder_new(&lim, NULL);
    struct lb_request req = { .transport = "file", .peer = "test" };
    struct otlp_result res;
    memset(&res, 0, sizeof res);
    enum otlp_status st = d ? otlp_export_profiles(d, msg, len, &req, c, &res) : OTLP_NOMEM;
    otlp_decoder_free(d);
    return st;
}

static void record(const uint8_t *msg, size_t len, struct rec *r)
{
    buf_init(&r->out, 256u << 20);
    r->requests = r->aborted = 0;
    CHECK_EQ_INT(decode_into(msg, len, (struct otlp_consumer){ &REC, r }), OTLP_OK);
}

/* ---------- tests ---------- */

TEST(round_trip_gives_the_same_views)
{
    struct buf in = read_file(EXAMPLE);
    CHECK(in.len > 1000);
    struct rec a, b;
    record(in.data, in.len, &a);
    struct otlp_encoder *e = otlp_encoder_new(64u << 20);
    CHECK(e != NULL);
    CHECK_EQ_INT(decode_into(in.data, in.len, otlp_encoder_consumer(e)), OTLP_OK);
    struct buf out;
    buf_init(&out, 64u << 20);
    char err[256] = "";
    CHECK_EQ_INT(otlp_encoder_finish(e, &out, err, sizeof err), 0);
    record(out.data, out.len, &b);
    CHECK(a.out.len > 10000);
    CHECK_EQ_INT(b.out.len, a.out.len);
    CHECK(a.out.len == b.out.len && memcmp(a.out.data, b.out.data, a.out.len) == 0);
    CHECK(strstr((const char *)a.out.data, "java.util.Random.next") != NULL || a.out.len == 0);
    /* encoding the encoded request again gives the same bytes: the dictionary is rebuilt the
     * same way from the same content */
    struct buf again;
    buf_init(&again, 64u << 20);
    CHECK_EQ_INT(decode_into(out.data, out.len, otlp_encoder_consumer(e)), OTLP_OK);
    CHECK_EQ_INT(otlp_encoder_finish(e, &again, err, sizeof err), 0);
    CHECK(again.len == out.len && memcmp(again.data, out.data, out.len) == 0);
    otlp_encoder_free(e);
    buf_free(&in);
    buf_free(&out);
    buf_free(&again);
    buf_free(&a.out);
    buf_free(&b.out);
}

TEST(batches_and_aborts)
{
    struct buf in = read_file(EXAMPLE);
    struct otlp_encoder *e = otlp_encoder_new(64u << 20);
    struct otlp_consumer c = otlp_encoder_consumer(e);
    CHECK_EQ_INT(decode_into(in.data, in.len, c), OTLP_OK);
    size_t one = otlp_encoder_resources(e);
    CHECK(one > 0);
    CHECK_EQ_INT(decode_into(in.data, in.len, c), OTLP_OK);
    CHECK_EQ_INT(otlp_encoder_resources(e), 2 * one);
    /* a request aborted half way leaves nothing behind */
    struct lb_request req = { .transport = "file" };
    struct lb_resource res = { .request = &req };
    OTLP_EMIT(c, request_begin, OTLP_SIGNAL_PROFILES, &req);
    OTLP_EMIT(c, resource_begin, &res);
    OTLP_EMIT(c, resource_end, &res);
    OTLP_EMIT(c, request_abort, OTLP_SIGNAL_PROFILES, &req, "test");
    CHECK_EQ_INT(otlp_encoder_resources(e), 2 * one);
    struct buf out;
    buf_init(&out, 64u << 20);
    char err[256];
    CHECK_EQ_INT(otlp_encoder_finish(e, &out, err, sizeof err), 0);
    CHECK_EQ_INT(otlp_encoder_resources(e), 0);
    struct rec a, b;
    record(in.data, in.len, &a);
    record(out.data, out.len, &b);
    CHECK_EQ_INT(b.out.len, 2 * a.out.len);   /* the same resources twice, in order */
    CHECK(b.out.len == 2 * a.out.len && memcmp(b.out.data, a.out.data, a.out.len) == 0 &&
          memcmp(b.out.data + a.out.len, a.out.data, a.out.len) == 0);
    /* after finish, an empty request: the dictionary's null entries only */
    CHECK_EQ_INT(otlp_encoder_finish(e, &out, err, sizeof err), 0);
    buf_free(&b.out);
    record(out.data, out.len, &b);
    CHECK_EQ_INT(b.out.len, 0);
    /* a request too large for the limit is an error, not a truncated request */
    struct otlp_encoder *small = otlp_encoder_new(4096);
    CHECK_EQ_INT(decode_into(in.data, in.len, otlp_encoder_consumer(small)), OTLP_OK);
    CHECK_EQ_INT(otlp_encoder_finish(small, &out, err, sizeof err), -1);
    CHECK(strstr(err, "4096") != NULL);
    otlp_encoder_free(small);
    otlp_encoder_free(e);
    buf_free(&in);
    buf_free(&out);
    buf_free(&a.out);
    buf_free(&b.out);
}

/* Resource.entity_refs are written as common.proto has them (field 3, each EntityRef with
 * schema_url 1, type 2, id_keys 3, description_keys 4, an empty key kept), and decode back. */
TEST(entity_refs_are_written)
{
    const lb_str ids[] = { LB_STR_LIT("service.name"), LB_STR_LIT("service.namespace") };
    const lb_str desc[] = { LB_STR_LIT(""), LB_STR_LIT("service.version") };
    const lb_str host[] = { LB_STR_LIT("host.id") };
    const struct lb_entity_ref refs[] = {
        { LB_STR_LIT("https://s/1"), LB_STR_LIT("service"), ids, 2, desc, 2 },
        { LB_STR_LIT(""), LB_STR_LIT("host"), host, 1, NULL, 0 },
    };
    struct lb_request req = { .transport = "file" };
    struct lb_resource res = { .request = &req, .entity_refs = refs, .n_entity_refs = 2 };
    struct otlp_encoder *e = otlp_encoder_new(1 << 20);
    struct otlp_consumer c = otlp_encoder_consumer(e);
    char err[256];
    OTLP_EMIT(c, request_begin, OTLP_SIGNAL_PROFILES, &req);
    OTLP_EMIT(c, resource_begin, &res);
    OTLP_EMIT(c, resource_end, &res);
    CHECK_EQ_INT(OTLP_EMIT(c, request_end, OTLP_SIGNAL_PROFILES, &req, err, sizeof err), 0);
    struct buf out;
    buf_init(&out, 1 << 20);
    CHECK_EQ_INT(otlp_encoder_finish(e, &out, err, sizeof err), 0);
    static const char want[] =   /* ResourceProfiles.resource (1), 93 bytes: the Resource */
        "\x0a\x5d"
        "\x1a\x4a" "\x0a\x0bhttps://s/1" "\x12\x07service" "\x1a\x0cservice.name" "\x1a\x11service.namespace"
        "\x22\x00" "\x22\x0fservice.version"
        "\x1a\x0f" "\x12\x04host" "\x1a\x07host.id";
    bool found = false;
    for (size_t i = 0; !found && i + sizeof want - 1 <= out.len; i++)
        found = memcmp(out.data + i, want, sizeof want - 1) == 0;
    CHECK(found);
    struct rec r;
    record(out.data, out.len, &r);
    buf_putc(&r.out, '\0');
    CHECK(strstr((const char *)r.out.data, "entity url=11:https://s/1 type=7:service id=12:service.name "
                                            "id=17:service.namespace desc=0: desc=15:service.version "
                                            "entity url=0: type=4:host id=7:host.id ") != NULL);
    printf("#   decoded back: %s\n", (const char *)r.out.data);
    otlp_encoder_free(e);
    buf_free(&out);
    buf_free(&r.out);
}

TEST(containers_walk_the_same_without_the_dictionary)
{
    /* ArrayValue { "a", 5, 1.5, true, bytes 01ff, {} , kvlist { "k": [ -1 ] } } */
    static const uint8_t arr[] = {
        0x0a, 0x03, 0x0a, 0x01, 'a',                         /* string "a" */
        0x0a, 0x02, 0x18, 0x05,                              /* int 5 */
        0x0a, 0x09, 0x21, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f,      /* double 1.5 */
        0x0a, 0x02, 0x10, 0x01,                              /* bool true */
        0x0a, 0x04, 0x3a, 0x02, 0x01, 0xff,                  /* bytes 01 ff */
        0x0a, 0x00,                                          /* empty */
        0x0a, 0x1a, 0x32, 0x18, 0x0a, 0x16, 0x0a, 0x01, 'k', 0x12, 0x11, 0x2a, 0x0f,
        0x0a, 0x0b, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,   /* [-1] */
        0x0a, 0x00,                                          /* and an empty one */
    };
    struct lb_value v = { .kind = LB_VALUE_ARRAY, .u.str = { (const char *)arr, sizeof arr } };
    struct buf enc, t1, t2;
    buf_init(&enc, 1 << 20);
    buf_init(&t1, 1 << 20);
    buf_init(&t2, 1 << 20);
    CHECK(lb_value_encode(&v, &enc));
    CHECK_EQ_INT(enc.len, sizeof arr);   /* already self-contained: the same bytes */
    CHECK(enc.len == sizeof arr && memcmp(enc.data, arr, sizeof arr) == 0);
    struct lb_value w = { .kind = LB_VALUE_ARRAY, .u.str = { (const char *)enc.data, enc.len } };
    put_value(&t1, &v);
    put_value(&t2, &w);
    CHECK(t1.len == t2.len && memcmp(t1.data, t2.data, t1.len) == 0);
    CHECK(strstr((const char *)t1.data, "ERR") == NULL);
    struct lb_value s = { .kind = LB_VALUE_STRING, .u.str = LB_STR_LIT("x") };
    CHECK(!lb_value_encode(&s, &enc));   /* only containers */
    buf_free(&enc);
    buf_free(&t1);
    buf_free(&t2);
}

TEST(pprof_writes_a_gzipped_profile)
{
    struct buf in = read_file(EXAMPLE);
    struct pprof_writer *w = pprof_writer_new();
    CHECK_EQ_INT(decode_into(in.data, in.len, pprof_writer_consumer(w)), OTLP_OK);
    char dir[] = "/tmp/lb-test-encode-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char prefix[128], path[160], err[256] = "";
    snprintf(prefix, sizeof prefix, "%s/p", dir);
    unsigned written = 0;
    CHECK_EQ_INT(pprof_writer_write_files(w, prefix, false, &written, NULL, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(written, 1);
    snprintf(path, sizeof path, "%s.samples.pb.gz", prefix);
    struct buf gz = read_file(path), raw;
    buf_init(&raw, 64u << 20);
    CHECK(gz.len > 2 && gz.data[0] == 0x1f && gz.data[1] == 0x8b);
    CHECK_EQ_INT(gzip_inflate(gz.data, gz.len, 64u << 20, &raw, err, sizeof err), GZIP_OK);
    /* field 1 (sample_type) first, and the functions' names in the string table */
    CHECK(raw.len > 100 && raw.data[0] == 0x0a);
    CHECK(memmem(raw.data, raw.len, "java.util.Random.next", 21) != NULL);
    unlink(path);
    rmdir(dir);
    pprof_writer_free(w);
    /* nothing seen: no file, and an error saying so */
    w = pprof_writer_new();
    CHECK_EQ_INT(pprof_writer_write_files(w, prefix, false, &written, NULL, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "no samples") != NULL);
    pprof_writer_free(w);
    buf_free(&in);
    buf_free(&gz);
    buf_free(&raw);
}

int main(void)
{
    RUN(round_trip_gives_the_same_views);
    RUN(batches_and_aborts);
    RUN(entity_refs_are_written);
    RUN(containers_walk_the_same_without_the_dictionary);
    RUN(pprof_writes_a_gzipped_profile);
    return check_done();
}
