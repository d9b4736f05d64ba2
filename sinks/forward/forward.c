/*
 * forward.c - the forward sink (forward.h): its events, the queue of requests to pass on and
 * the write-ahead log behind it, opening and closing. sender.c sends the queue's head.
 *
 * Life of a request: request_end copies the decoded message (lb_request.message) into a
 * record; with the log (the default) the record is appended as a segment of its own and the
 * group commit (lib/commit.h) is marked dirty, so the transport holds the reply until the end
 * of the loop turn has fdatasync'ed it; the record stays in memory while the queue's memory
 * is under --forward-max-queue-bytes, otherwise only in the log, read back when its turn
 * comes. The upstream's OK (or a permanent rejection, logged and counted) deletes the segment.
 * The next start sends what an earlier run left in the log first, in order.
 *
 * Invariant: nothing acknowledged is freed before the upstream answered it or it is in the
 * log. Refusals happen only here, before the reply: the sender is told UNAVAILABLE and
 * retries. Memory mode keeps the queue in memory only (a crash loses it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lib/commit.h"
#include "lib/http_post.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "sinks/forward/internal.h"
#include "sinks/wal.h"

#define MAX_ANSWER ((size_t)4 << 20)

static struct fw_sink *state(struct sink *sk) { return sk->ctx; }

static uint64_t wal_bytes(const struct fw_sink *s)
{
    struct wal_stats w;
    wal_get_stats(s->wal, &w);
    return w.bytes;
}

/* ---- the queue ---- */

static void push(struct fw_sink *s, struct fw_item *it)
{
    it->next = NULL;
    if (s->tail)
        s->tail->next = it;
    else
        s->head = it;
    s->tail = it;
    s->n_items++;
}

void fw_drop_head(struct fw_sink *s)
{
    struct fw_item *it = s->head;
    if (!it)
        return;
    s->head = it->next;
    if (!s->head)
        s->tail = NULL;
    s->n_items--;
    if (it->counted)
        s->mem_bytes -= it->len;
    if (s->wal)
        wal_release(s->wal, it->seq);
    free(it->rec);
    free(it);
}

struct first_record {
    uint8_t *rec;
    size_t len;
};

static int take_first(void *ud, const uint8_t *p, size_t n)
{
    struct first_record *f = ud;
    if (n < 1 || (p[0] != FW_TAG_PROFILES && p[0] != FW_TAG_TRACES))
        return 2;   /* not one of this sink's records */
    if (!(f->rec = malloc(n)))
        return 3;
    memcpy(f->rec, p, n);
    f->len = n;
    return 1;   /* one record per segment: stop */
}

int fw_load_head(struct fw_sink *s)
{
    struct fw_item *it = s->head;
    if (!it || it->rec)
        return 0;
    struct first_record f = { 0 };
    struct wal_read_report rep = { 0 };
    char err[300] = "";
    int rc = wal_read(s->wal, it->seq, take_first, &f, &rep, err, sizeof err);
    if (rc == 1) {
        it->rec = f.rec;
        it->len = f.len;   /* not counted: freed once sent */
        return 0;
    }
    if (rc == 3) {
        log_error("forward: out of memory reading segment %llu back; trying again later", (unsigned long long)it->seq);
        return -1;
    }
    const char *why = rc == 2 ? "not a forwarded request" : rc < 0 ? err : rep.why[0] ? rep.why : "no complete record";
    log_error("forward: segment %llu of the write-ahead log %s cannot be read back (%s): set aside as .bad",
              (unsigned long long)it->seq, wal_dir(s->wal), why);
    s->st.unreadable++;
    wal_quarantine(s->wal, it->seq);
    struct fw_item *next = it->next;
    s->head = next;
    if (!next)
        s->tail = NULL;
    s->n_items--;
    free(it);
    return -1;
}

/* ---- the sink's events ---- */

static bool has_room(const struct fw_sink *s, size_t more)
{
    if (s->wal)
        return s->n_items < FW_MAX_ITEMS && wal_bytes(s) + more < wal_max_bytes(s->wal);
    return s->n_items == 0 || s->mem_bytes + more <= s->o.max_queue_bytes;
}

static void describe_full(const struct fw_sink *s, char *why, size_t whylen)
{
    if (s->wal)
        snprintf(why, whylen, "forward sink full: %llu requests (%llu bytes) wait in the write-ahead log %s "
                 "(max %llu bytes) for the upstream %s", (unsigned long long)s->n_items,
                 (unsigned long long)wal_bytes(s), wal_dir(s->wal), (unsigned long long)wal_max_bytes(s->wal), s->o.url);
    else
        snprintf(why, whylen, "forward sink full: %llu requests (%llu bytes, max %llu) wait in memory for the "
                 "upstream %s", (unsigned long long)s->n_items, (unsigned long long)s->mem_bytes,
                 (unsigned long long)s->o.max_queue_bytes, s->o.url);
}

static void refusal(struct fw_sink *s, char *why, size_t whylen)
{
    s->st.refused_full++;
    describe_full(s, why, whylen);
    if (!s->refusing)
        log_warn("forward: refusing requests: %s", why);
    s->refusing = true;
}

static int on_admit(struct sink *sk, char *why, size_t whylen)
{
    struct fw_sink *s = state(sk);
    if (has_room(s, 0)) {
        if (s->refusing)
            log_info("forward: accepting requests again");
        s->refusing = false;
        return 0;
    }
    refusal(s, why, whylen);
    return -1;
}

/* /healthz: would a request as large as the last one fit? Counts and logs nothing. */
static int on_ready(const struct sink *sk, char *why, size_t whylen)
{
    const struct fw_sink *s = sk->ctx;
    if (has_room(s, s->last_len))
        return 0;
    describe_full(s, why, whylen);
    return -1;
}

/* Trace requests reach only the sinks that take spans (sink.h): the tap takes them whole, at
 * request_end, and has nothing to do per span. */
static void on_span(struct sink *sk, const struct lb_span *sp)
{
    (void)sk;
    (void)sp;
}

/* With the log: the record as a segment of its own, synced at the end of the turn. */
static int log_record(struct fw_sink *s, struct fw_item *it, char *why, size_t whylen)
{
    char err[300];
    enum wal_append_status rc = wal_append(s->wal, it->seq, it->rec, it->len, err, sizeof err);
    if (rc == WAL_APPENDED) {
        if (s->commit)
            commit_dirty(s->commit);
        return 0;
    }
    if (rc == WAL_FULL) {
        refusal(s, why, whylen);
        return -1;
    }
    s->st.failed++;
    s->next_seq++;   /* the log ended that segment: the next request starts a new one */
    snprintf(why, whylen, "forward sink: cannot write the write-ahead log: %s", err);
    log_error("forward: %s", why);
    return -1;
}

static int on_request_end(struct sink *sk, const struct lb_request *r, char *why, size_t whylen)
{
    struct fw_sink *s = state(sk);
    size_t len = r->message_bytes + 1;
    s->last_len = len;
    if (!r->message && r->message_bytes) {
        snprintf(why, whylen, "forward sink: the request's bytes are not available");
        s->st.failed++;
        return -1;
    }
    if (!has_room(s, len)) {
        refusal(s, why, whylen);
        return -1;
    }
    struct fw_item *it = calloc(1, sizeof *it);
    uint8_t *rec = it ? malloc(len) : NULL;
    if (!rec) {
        free(it);
        snprintf(why, whylen, "forward sink: out of memory");
        s->st.failed++;
        return -1;
    }
    rec[0] = r->signal == LB_SIGNAL_TRACES ? FW_TAG_TRACES : FW_TAG_PROFILES;
    if (r->message_bytes)
        memcpy(rec + 1, r->message, r->message_bytes);
    *it = (struct fw_item){ .seq = s->next_seq, .rec = rec, .len = len };
    if (s->wal && log_record(s, it, why, whylen) != 0) {
        free(rec);
        free(it);
        return -1;
    }
    s->next_seq++;
    /* Beyond the memory window a logged record is read back when its turn comes. Memory mode
     * has no such choice (has_room bounded it). */
    if (s->wal && s->mem_bytes + len > s->o.max_queue_bytes && s->head) {
        free(it->rec);
        it->rec = NULL;
    } else {
        it->counted = true;
        s->mem_bytes += len;
    }
    push(s, it);
    s->st.queued++;
    fw_kick(s);
    return 0;
}

/* ---- closing ---- */

static void free_sink(struct fw_sink *s)
{
    if (s->retry_timer)
        loop_del_timer(s->loop, s->retry_timer);
    if (s->commit)
        commit_del_writer(s->commit, s);   /* first: it ends a sync in flight */
    http_post_free(s->http);
    /* Freed without releasing: what was not delivered stays in the log. */
    while (s->head) {
        struct fw_item *it = s->head;
        s->head = it->next;
        free(it->rec);
        free(it);
    }
    wal_close(s->wal);
    free(s->url[0]);
    free(s->url[1]);
    buf_free(&s->body);
    free(s);
}

static void on_close(struct sink *sk, int deadline_ms)
{
    struct fw_sink *s = state(sk);
    s->closing = true;
    if (s->retry_timer)
        loop_del_timer(s->loop, s->retry_timer);
    s->retry_timer = 0;
    fw_drain(s, fw_now_ms() + (deadline_ms > 0 ? deadline_ms : 0));
    if (http_post_busy(s->http)) {
        /* Cut mid-request: the upstream may have it; it is sent again by the next start. */
        http_post_cancel(s->http);
        log_warn("forward: shutdown timeout with a request in flight");
    }
    if (s->wal) {
        char err[300];
        if (wal_sync(s->wal, err, sizeof err) != 0)
            log_error("forward: cannot sync the write-ahead log at shutdown: %s", err);
        if (s->n_items)
            log_info("forward: %llu requests left in the write-ahead log %s for the next start",
                     (unsigned long long)s->n_items, wal_dir(s->wal));
    } else if (s->n_items) {
        s->st.lost += s->n_items;
        log_error("forward: %llu acknowledged requests not delivered to %s are lost (--forward-durability memory)",
                  (unsigned long long)s->n_items, s->o.url);
    }
    log_info("forward: stopped: %llu requests queued, %llu delivered, %llu retried attempts, %llu rejected by the "
             "upstream, %llu refused (full), %llu failed, %llu replayed from the log, %llu unreadable",
             (unsigned long long)s->st.queued, (unsigned long long)s->st.delivered, (unsigned long long)s->st.retried,
             (unsigned long long)s->st.rejected, (unsigned long long)s->st.refused_full,
             (unsigned long long)s->st.failed, (unsigned long long)s->st.replayed, (unsigned long long)s->st.unreadable);
    sk->counts.lost = s->st.lost;
    free_sink(s);
    sk->ctx = NULL;
}

static const struct sink_type forward_type = {
    .name = "forward",
    .admit = on_admit,
    .ready = on_ready,
    .request_end = on_request_end,
    .close = on_close,
    .span = on_span,
};

int forward_sink_stats(const struct sink *sk, struct forward_sink_stats *out)
{
    memset(out, 0, sizeof *out);
    if (sk->type != &forward_type || !sk->ctx)
        return -1;
    const struct fw_sink *s = sk->ctx;
    *out = s->st;
    out->pending = s->n_items;
    out->memory_bytes = s->mem_bytes;
    if (s->wal) {
        out->wal_bytes = wal_bytes(s);
        out->wal_max_bytes = wal_max_bytes(s->wal);
    }
    return 0;
}

/* ---- opening ---- */

/* The group commit's sync (lib/commit.h), the fdatasyncs on the commit thread: the records
 * written since the last one. On failure the replies waiting for it are withheld; the records
 * stay queued and are still forwarded (the senders, told nothing, send again: see
 * docs/forward.md on duplicates). */
static void *wal_commit_start(void *ud) { return wal_commit_begin(((struct fw_sink *)ud)->wal); }

static int wal_commit_done(void *ud, void *job)
{
    (void)job;
    struct fw_sink *s = ud;
    char err[300];
    if (wal_commit_end(s->wal, err, sizeof err) == 0)
        return 0;
    log_error("forward: cannot sync the write-ahead log, the requests waiting for it are not acknowledged: %s", err);
    return -1;
}

static const struct commit_writer wal_writer = { wal_commit_start, wal_commit_run, wal_commit_done };

static int open_wal(struct fw_sink *s, const struct sink_env *env, char *err, size_t errlen)
{
    const char *dir = s->o.spool_dir ? s->o.spool_dir : FORWARD_DEFAULT_SPOOL_DIR;
    char why[400];
    if (!(s->wal = wal_open(dir, s->o.spool_max_bytes, why, sizeof why))) {
        snprintf(err, errlen, "write-ahead log: %s (or --forward-durability memory, which loses what is queued "
                 "in a crash)", why);
        return -1;
    }
    s->next_seq = wal_last_seq(s->wal) + 1;
    size_t n = wal_segment_count(s->wal);
    for (size_t i = 0; i < n; i++) {
        struct fw_item *it = calloc(1, sizeof *it);
        if (!it) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        it->seq = wal_segment_seq(s->wal, i);
        push(s, it);
    }
    s->st.replayed = n;
    if (n)
        log_info("forward: %zu requests left in %s by an earlier run; sending them first, in order", n, dir);
    s->commit = env->commit;
    if (s->commit && commit_add_writer(s->commit, &wal_writer, s) != 0) {
        s->commit = NULL;
        snprintf(err, errlen, "too many writers on the group commit");
        return -1;
    }
    return 0;
}

/* The two endpoints: gRPC method paths, or the OTLP/HTTP paths under the base URL. */
static int build_urls(struct fw_sink *s, char *err, size_t errlen)
{
    static const char *const grpc_paths[2] = {
        "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    };
    static const char *const http_paths[2] = { "/v1development/profiles", "/v1/traces" };
    size_t n = strlen(s->o.url);
    while (n && s->o.url[n - 1] == '/')
        n--;
    for (int i = 0; i < 2; i++) {
        const char *path = s->o.protocol == FORWARD_GRPC ? grpc_paths[i] : http_paths[i];
        size_t len = n + strlen(path) + 1;
        if (!(s->url[i] = malloc(len))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        snprintf(s->url[i], len, "%.*s%s", (int)n, s->o.url, path);
    }
    return 0;
}

static uint64_t seed(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
        v = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    return v;
}

int forward_sink_open(struct sink *out, const struct forward_sink_options *o, const struct sink_env *env, char *err,
                      size_t errlen)
{
    if (forward_check_options(o, err, errlen) != 0)
        return -1;
    if (!env || !env->loop) {
        snprintf(err, errlen, "the forward sink needs the event loop");
        return -1;
    }
    struct fw_sink *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->o = *o;
    s->loop = env->loop;
    s->rng = seed();
    s->next_seq = 1;
    buf_init(&s->body, SIZE_MAX);
    const char *lines[FORWARD_MAX_HEADERS + 4];
    size_t n = 0;
    bool gzip = o->compression == FORWARD_GZIP;
    if (o->protocol == FORWARD_GRPC) {
        lines[n++] = "Content-Type: application/grpc";
        lines[n++] = "TE: trailers";
        if (gzip)
            lines[n++] = "grpc-encoding: gzip";
    } else {
        lines[n++] = "Content-Type: application/x-protobuf";
        if (gzip)
            lines[n++] = "Content-Encoding: gzip";
    }
    for (size_t i = 0; i < o->n_headers && i < FORWARD_MAX_HEADERS; i++)
        lines[n++] = o->headers[i];
    struct http_post_options ho = {
        .user_agent = "lazybackend-forward", .headers = lines, .n_headers = n,
        .http2 = o->protocol == FORWARD_GRPC, .max_answer = MAX_ANSWER, .connect_timeout_ms = 5000,
        .ca_file = o->ca_file,
    };
    if (build_urls(s, err, errlen) != 0 ||
        (o->durability == FORWARD_DURABILITY_WAL && open_wal(s, env, err, errlen) != 0) ||
        !(s->http = http_post_new(s->loop, &ho, fw_on_answer, s, err, errlen))) {
        free_sink(s);
        return -1;
    }
    if (o->durability == FORWARD_DURABILITY_MEMORY)
        log_warn("forward: --forward-durability memory: requests queued for %s are lost in a crash, and at "
                 "shutdown when the upstream cannot take them in time", o->url);
    out->type = &forward_type;
    out->ctx = s;
    fw_kick(s);   /* what an earlier run left goes out as soon as the loop runs */
    return 0;
}
