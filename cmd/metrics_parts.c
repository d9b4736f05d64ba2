/*
 * metrics_parts.c - the parts of the /metrics page that are not request counters (see
 * metrics.h): read from the other layers when the page is scraped, so none of them counts
 * anything for the page's sake beyond what it already kept.
 *
 *   ports    h2_server_stats and the bytes in flight, per port ("grpc", "http")
 *   sinks    the fan-out's counts per configured sink (labelled with its name and its position
 *            among the --sink options, since stdout and clickhouse may be given twice); the
 *            filter stage's drops; SQLite's commits; ClickHouse's queue, spool and batches
 *   process  resident memory and open descriptors (/proc/self), CPU time, start time, the
 *            build, and whether /healthz would answer 200
 */
#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/metrics.h"
#include "cmd/version.h"
#include "h2/server.h"
#include "lib/prom.h"
#include "sinks/clickhouse/clickhouse.h"
#include "sinks/forward/forward.h"
#include "sinks/filter.h"
#include "sinks/sink.h"
#include "sinks/sqlite/sqlite.h"

/* ---------- ports ---------- */

struct port {
    const char *label;
    const struct h2_server *server;
};

/* One sample per open port of a value read from its stats. */
#define PER_PORT(p, ports, family, type, help, expr)                            \
    do {                                                                        \
        prom_family(p, family, type, help);                                     \
        for (int i_ = 0; i_ < 2; i_++) {                                        \
            if (!(ports)[i_].server)                                            \
                continue;                                                       \
            const struct h2_stats *st = h2_server_stats((ports)[i_].server);    \
            (void)st;                                                           \
            prom_u64(p, family, (uint64_t)(expr), "port", (ports)[i_].label, (char *)NULL); \
        }                                                                       \
    } while (0)

/* Connections the server ended because they made no progress (docs/receiving.md). */
static void write_cut(struct prom *p, const struct port ports[2])
{
    const char *name = "lazybackend_connections_cut_total";
    prom_family(p, name, "counter",
                "Connections ended for making no progress: setup_timeout (no HTTP/2 preface and SETTINGS within "
                "--request-timeout), idle (no progress for --idle-timeout), too_many_pings and no_progress "
                "(GOAWAY ENHANCE_YOUR_CALM).");
    for (int i = 0; i < 2; i++) {
        if (!ports[i].server)
            continue;
        const struct h2_stats *st = h2_server_stats(ports[i].server);
        const struct { const char *reason; uint64_t v; } cut[] = {
            { "setup_timeout", st->setup_timeouts }, { "idle", st->idle_closed },
            { "too_many_pings", st->goaway_pings }, { "no_progress", st->goaway_no_progress },
        };
        for (size_t k = 0; k < sizeof cut / sizeof cut[0]; k++)
            prom_u64(p, name, cut[k].v, "port", ports[i].label, "reason", cut[k].reason, (char *)NULL);
    }
}

/* Every reply, by outcome (h2_outcome_name). */
static void write_replies(struct prom *p, const struct port ports[2])
{
    const char *name = "lazybackend_port_replies_total";
    prom_family(p, name, "counter",
                "Replies the port sent, by outcome: ok, invalid (the client's mistake), exhausted (too large, "
                "or the server busy), timed_out, unavailable, failed.");
    for (int i = 0; i < 2; i++) {
        if (!ports[i].server)
            continue;
        const struct h2_stats *st = h2_server_stats(ports[i].server);
        for (int o = 0; o < H2_OUTCOMES; o++)
            prom_u64(p, name, st->replies[o], "port", ports[i].label, "outcome", h2_outcome_name((enum h2_outcome)o),
                     (char *)NULL);
    }
}

void metrics_write_ports(struct prom *p, const struct app *app)
{
    const struct port ports[2] = { { "grpc", app->server }, { "http", app->http_server } };
    PER_PORT(p, ports, "lazybackend_connections_open", "gauge", "Connections open now.", st->connections_open);
    PER_PORT(p, ports, "lazybackend_connections_accepted_total", "counter", "Connections accepted.",
             st->connections_accepted);
    PER_PORT(p, ports, "lazybackend_connections_refused_total", "counter",
             "Connections closed at once: --max-connections were open, all of which had made progress.",
             st->connections_refused);
    PER_PORT(p, ports, "lazybackend_connections_refused_per_ip_total", "counter",
             "Connections closed at once: --max-connections-per-ip were open from the address (IPv6: /64), "
             "all of which had made progress.", st->connections_refused_per_ip);
    PER_PORT(p, ports, "lazybackend_connections_evicted_total", "counter",
             "Connections that had made no progress, closed to make room for a newcomer at a connection limit.",
             st->connections_evicted);
    write_cut(p, ports);
    PER_PORT(p, ports, "lazybackend_port_received_bytes_total", "counter",
             "Bytes read from the port's connections (HTTP/2 and HTTP/1.1 framing included).", st->bytes_received);
    PER_PORT(p, ports, "lazybackend_request_bytes_in_flight", "gauge",
             "Bytes of request bodies being received now (bounded by --max-inflight-bytes).",
             h2_server_inflight_bytes(ports[i_].server));
    const char *name = "lazybackend_port_calls_total";
    prom_family(p, name, "counter",
                "Requests the port answered (every path and method, /metrics and /healthz included): "
                "ok (gRPC OK, HTTP 2xx) or error (any other answer, also those the transport gave itself: "
                "unknown path, too large, timeouts, clients gone).");
    for (int i = 0; i < 2; i++) {
        if (!ports[i].server)
            continue;
        const struct h2_stats *st = h2_server_stats(ports[i].server);
        prom_u64(p, name, st->calls_ok, "port", ports[i].label, "result", "ok", (char *)NULL);
        prom_u64(p, name, st->calls_failed, "port", ports[i].label, "result", "error", (char *)NULL);
    }
    write_replies(p, ports);
    PER_PORT(p, ports, "lazybackend_port_calls_abandoned_total", "counter",
             "Requests whose client left before the answer (part of the errors).", st->calls_abandoned);
    PER_PORT(p, ports, "lazybackend_port_request_timeouts_total", "counter",
             "HTTP/1.1 requests cut off by --request-timeout.", st->requests_timed_out);
    PER_PORT(p, ports, "lazybackend_tls_handshake_failures_total", "counter",
             "TLS handshakes that failed or did not finish within --request-timeout (a connection closed "
             "before sending a byte is not counted).", st->tls_handshake_failures);
    PER_PORT(p, ports, "lazybackend_unauthenticated_total", "counter",
             "Requests refused for want of an accepted bearer token (gRPC UNAUTHENTICATED, HTTP 401).",
             st->unauthenticated);
}

/* ---------- sinks ---------- */

/* The configured sinks, behind the filter stage when there is one. */
static const struct sink_set *configured(const struct app *app)
{
    return app->filter_sink.type ? &app->inner_sinks : &app->sinks;
}

static void sink_counts(struct prom *p, const struct sink_set *set)
{
    static const struct { const char *name, *help; } fam[3] = {
        { "lazybackend_sink_commits_total", "Requests a sink committed (stored, queued, written)." },
        { "lazybackend_sink_commit_failures_total", "Requests a sink failed to commit." },
        { "lazybackend_sink_refusals_total", "Requests a sink refused before any work (full)." },
    };
    for (int f = 0; f < 3; f++) {
        prom_family(p, fam[f].name, "counter", fam[f].help);
        for (size_t i = 0; i < set->n; i++) {
            const struct sink_counts *c = &set->v[i].counts;
            char index[24];
            snprintf(index, sizeof index, "%zu", i);
            prom_u64(p, fam[f].name, f == 0 ? c->committed : f == 1 ? c->failed : c->refused,
                     "sink", set->v[i].type->name, "index", index, (char *)NULL);
        }
    }
}

static void filter_drops(struct prom *p, const struct app *app)
{
    struct filter_stats fs;
    filter_stats(&app->filter_sink, &fs);   /* zeroes when no filter is set */
    const char *name = "lazybackend_filter_dropped_samples_total";
    prom_family(p, name, "counter", "Samples the filter stage dropped, by the filter that dropped them.");
    for (int r = 0; r < FILTER_REASONS; r++)
        prom_u64(p, name, fs.dropped[r], "filter", filter_reason_name(r), (char *)NULL);
    prom_family(p, "lazybackend_filter_removed_frames_total", "counter",
                "Frames --frame-types removed from samples.");
    prom_u64(p, "lazybackend_filter_removed_frames_total", fs.frames_removed, (char *)NULL);
}

/* The first configured sink called `name`, or NULL. */
static const struct sink *find_sink(const struct sink_set *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->v[i].type->name, name) == 0)
            return &set->v[i];
    return NULL;
}

/* The SQLite sink's commits (--sink sqlite is given at most once). */
static void sqlite_part(struct prom *p, const struct sink_set *set)
{
    struct sqlite_sink_stats st;
    const struct sink *s = find_sink(set, "sqlite");
    if (!s || sqlite_sink_stats(s, &st) != 0)
        return;
    prom_family(p, "lazybackend_sqlite_commit_duration_seconds", "histogram",
                "How long each SQLite COMMIT took (the fsync with --sqlite-sync full).");
    prom_histogram(p, "lazybackend_sqlite_commit_duration_seconds", &st.commit_ns, 1e-9, (char *)NULL);
    prom_family(p, "lazybackend_sqlite_rollbacks_total", "counter", "SQLite transactions rolled back.");
    prom_u64(p, "lazybackend_sqlite_rollbacks_total", st.rolled_back, (char *)NULL);
}

/* One ClickHouse family: its value for every ClickHouse sink (by index). */
static void clickhouse_family(struct prom *p, const struct sink_set *set, const char *name, const char *type,
                              const char *help, size_t offset)
{
    prom_family(p, name, type, help);
    for (size_t i = 0; i < set->n; i++) {
        struct clickhouse_sink_stats st;
        if (clickhouse_sink_stats(&set->v[i], &st) != 0)
            continue;
        char index[24];
        snprintf(index, sizeof index, "%zu", i);
        prom_u64(p, name, *(const uint64_t *)((const char *)&st + offset), "index", index, (char *)NULL);
    }
}

/* Every ClickHouse sink's statistics (none: no family at all). */
static void clickhouse_part(struct prom *p, const struct sink_set *set)
{
    if (!find_sink(set, "clickhouse"))
        return;
    static const struct {
        const char *name, *type, *help;
        size_t offset;
    } fam[] = {
#define CH(name, type, help, member) { "lazybackend_clickhouse_" name, type, help, offsetof(struct clickhouse_sink_stats, member) }
#define CC(name, help, member) CH(name, "counter", help, counts.member)
        CC("requests_queued_total", "Requests whose rows were queued for ClickHouse.", requests_queued),
        CC("requests_refused_total", "Requests refused: queue and spool full.", requests_refused),
        CC("requests_failed_total", "Requests whose rows could not be queued.", requests_failed),
        CC("batches_sealed_total", "Batches sealed (compressed, ready to send).", batches_sealed),
        CC("batches_sent_total", "Batches ClickHouse accepted whole.", batches_sent),
        CC("batches_retried_total", "Batches that needed more than one attempt.", batches_retried),
        CC("batches_spooled_total",
           "Batches kept on disk only: written to the spool, or left in the write-ahead log for want of memory.",
           batches_spooled),
        CC("batches_replayed_total", "Batches an earlier run left in the write-ahead log or the spool, sent first.",
           batches_replayed),
        CC("batches_quarantined_total", "Unreadable spool files set aside.", batches_quarantined),
        CC("failed_attempts_total", "HTTP requests to ClickHouse that failed.", attempts_failed),
        CC("rows_sent_total", "Sample rows ClickHouse accepted.", rows_sent),
        CC("sent_bytes_total", "Compressed bytes ClickHouse accepted.", bytes_sent),
        CH("queue_rows", "gauge", "Sample rows in memory, not yet accepted by ClickHouse.", queue_rows),
        CH("queue_bytes", "gauge", "Bytes in memory for ClickHouse (sealed batches compressed, the open batch not).",
           queue_bytes),
        CH("queue_max_bytes", "gauge", "--clickhouse-max-queue-bytes.", queue_max_bytes),
        CH("spool_batches", "gauge", "Batches in the spool directory.", spool_batches),
        CH("spool_bytes", "gauge", "Bytes in the spool directory.", spool_bytes),
        CH("spool_max_bytes", "gauge", "--clickhouse-spool-max-bytes (0: no spool).", spool_max_bytes),
        CC("requests_refused_full_total", "Requests refused because the write-ahead log was full.",
           requests_refused_full),
        CC("duplicate_batches_skipped_total",
           "Batches not sent again because ClickHouse held their samples already (after a crash or an ambiguous "
           "failure).", duplicates_skipped),
        CC("lost_rows_total", "Acknowledged sample rows neither delivered nor kept (memory mode at shutdown).",
           lost_rows),
        CH("wal_bytes", "gauge", "Bytes in the write-ahead log: acknowledged, not yet accepted by ClickHouse.",
           wal_bytes),
        CH("wal_records", "gauge",
           "Records (requests) in the write-ahead log (an earlier run's segments counted once read back).",
           wal_records),
        CH("wal_batches", "gauge", "Batches (segments) in the write-ahead log.", wal_segments),
        CH("wal_max_bytes", "gauge", "--clickhouse-spool-max-bytes with the write-ahead log (0: memory mode).",
           wal_max_bytes),
        CH("wal_syncs_total", "counter", "Group commits: fdatasync calls for the requests of one loop turn.",
           wal_syncs),
        CH("wal_sync_failures_total", "counter",
           "Failed group commits: the requests of that turn were not acknowledged.", wal_sync_failures),
#undef CC
#undef CH
    };
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++)
        clickhouse_family(p, set, fam[f].name, fam[f].type, fam[f].help, fam[f].offset);
}

/* Every forward sink's statistics, by index (none: no family at all). */
static void forward_part(struct prom *p, const struct sink_set *set)
{
    if (!find_sink(set, "forward"))
        return;
    static const struct {
        const char *name, *type, *help;
        size_t offset;
    } fam[] = {
#define FW(name, type, help, member) { "lazybackend_forward_" name, type, help, offsetof(struct forward_sink_stats, member) }
        FW("requests_queued_total", "counter", "Requests accepted for the upstream.", queued),
        FW("requests_delivered_total", "counter", "Requests the upstream accepted.", delivered),
        FW("attempts_retried_total", "counter", "Attempts that failed and will be retried (outage, 429, 503...).",
           retried),
        FW("requests_rejected_total", "counter", "Requests the upstream rejected for good (logged, dropped).",
           rejected),
        FW("requests_refused_full_total", "counter", "Requests refused with UNAVAILABLE: queue or log full.",
           refused_full),
        FW("requests_failed_total", "counter", "Requests refused: the write-ahead log could not be written.", failed),
        FW("requests_replayed_total", "counter", "Requests an earlier run left in the write-ahead log.", replayed),
        FW("records_unreadable_total", "counter", "Log records that could not be read back (set aside as .bad).",
           unreadable),
        FW("requests_lost_total", "counter", "Acknowledged requests neither delivered nor kept (memory mode).", lost),
        FW("pending_requests", "gauge", "Requests not yet delivered.", pending),
        FW("queue_bytes", "gauge", "Bytes of pending requests held in memory.", memory_bytes),
        FW("wal_bytes", "gauge", "Bytes in the write-ahead log: acknowledged, not yet delivered.", wal_bytes),
        FW("wal_max_bytes", "gauge", "--forward-spool-max-bytes (0: memory mode).", wal_max_bytes),
#undef FW
    };
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        prom_family(p, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; i < set->n; i++) {
            struct forward_sink_stats st;
            if (forward_sink_stats(&set->v[i], &st) != 0)
                continue;
            char index[24];
            snprintf(index, sizeof index, "%zu", i);
            prom_u64(p, fam[f].name, *(const uint64_t *)((const char *)&st + fam[f].offset), "index", index,
                     (char *)NULL);
        }
    }
}

void metrics_write_sinks(struct prom *p, const struct app *app)
{
    const struct sink_set *set = configured(app);
    sink_counts(p, set);
    filter_drops(p, app);
    sqlite_part(p, set);
    clickhouse_part(p, set);
    forward_part(p, set);
}

/* ---------- process ---------- */

/* Resident memory in bytes (/proc/self/statm's second field, in pages); 0 when unreadable. */
static double resident_bytes(void)
{
    unsigned long long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return (double)resident * (double)(page > 0 ? page : 4096);
}

/* Open descriptors: the entries of /proc/self/fd, less the one reading it; -1 when unreadable. */
static double open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return (double)(n - 1);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void metrics_write_process(struct prom *p, struct app *app)
{
    prom_single(p, "lazybackend_process_resident_memory_bytes", "gauge", "Resident memory (/proc/self/statm).",
                resident_bytes());
    prom_single(p, "lazybackend_process_open_fds", "gauge", "Open file descriptors (/proc/self/fd).", open_fds());
    prom_single(p, "lazybackend_process_cpu_seconds_total", "counter", "User and system CPU time.", cpu_seconds());
    prom_single(p, "lazybackend_start_time_seconds", "gauge", "When the server started (Unix time).",
                app->metrics.start_time_s);
    prom_family(p, "lazybackend_build_info", "gauge", "The version and the commit of this build (always 1).");
    prom_u64(p, "lazybackend_build_info", 1, "version", LAZYBACKEND_VERSION, "commit", lazybackend_commit(),
             (char *)NULL);
    prom_single(p, "lazybackend_healthy", "gauge",
                "1 while GET /healthz answers 200 (and gRPC health SERVING), 0 while it answers 503.",
                app_unhealthy(app) ? 0 : 1);
}
