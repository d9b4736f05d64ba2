/*
 * usdt.h - the parts of `lazybackend usdt` that need no bpftrace, no network and no clock:
 * reading bpftrace's JSON lines into events (usdt_parse.c over the small JSON scanner in
 * usdt_json.c), pairing start and end events into spans (usdt_pair.c), encoding spans as an
 * OTLP ExportTraceServiceRequest (usdt_encode.c), and reading the OTEL_* variables' values
 * (usdt_env.c).
 *
 * Why apart from the command (usdt_internal.h): every byte they read comes from a traced
 * program through bpftrace, or from a file, so each is bounded and must be tested on its own
 * with hostile input, and test/unit/test_usdt.c drives them directly, time included (every
 * call that depends on time takes `now_ms`).
 *
 * The events are the ones the built-in bpftrace script prints (usdt_child.c), and any script
 * that prints the same lines:
 *   {"event":"request_start","reqid":"<id>","timestamp":<start, epoch ns>}
 *   {"event":"request_end","reqid":"<id>","start":<start, epoch ns>,"duration":<ns>}
 * either bare or inside bpftrace's -f json envelope {"type": "printf", "data": "<that>\n"}.
 */
#ifndef LB_CMD_USDT_H
#define LB_CMD_USDT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* The longest request id kept (bytes). bpftrace 0.17's str() stops at 63; newer versions can
 * be configured larger. A longer id is a bad line, not a truncated key that could pair two
 * requests that are not the same. */
#define USDT_REQID_MAX 128

/* ---------------------------------------------------------------- the JSON scanner */

enum uj_type { UJ_STRING, UJ_NUMBER, UJ_OBJECT, UJ_ARRAY, UJ_TRUE, UJ_FALSE, UJ_NULL };

/* One member of a scanned object. raw points into the scanned text: a string's contents
 * between its quotes (escapes not decoded), a number's characters, or a whole object or
 * array with its brackets. Keys are compared as written (escapes not decoded). */
struct uj_member {
    const char *key;
    size_t key_len;
    enum uj_type type;
    const char *raw;
    size_t raw_len;
};

#define UJ_MAX_DEPTH 32

/* Scans p[0..n) as exactly one JSON object (RFC 8259, blanks around it allowed) and keeps
 * its first `max` top-level members in m (later ones are checked, not kept). Nested values
 * are checked and skipped, at most UJ_MAX_DEPTH deep. The number of members kept, or -1
 * when the text is not one valid object. */
int uj_object(const char *p, size_t n, struct uj_member *m, int max);

/* The member named `key`, or NULL (the first one when a key repeats). */
const struct uj_member *uj_find(const struct uj_member *m, int n, const char *key);

/* A string member's value with its escapes decoded into out[0..cap) (\u escapes become
 * UTF-8; a lone surrogate becomes U+FFFD). False when the value does not fit. */
bool uj_string(const struct uj_member *m, char *out, size_t cap, size_t *len);

/* A number, or a string holding only a number, as an exact int64 (no fraction, no exponent,
 * in range). bpftrace 0.24+ writes large integers as strings. */
bool uj_int64(const struct uj_member *m, int64_t *v);

/* ---------------------------------------------------------------- lines into events */

enum usdt_line {
    USDT_BLANK,      /* empty or blanks (bpftrace 0.17-0.23 prints two at exit) */
    USDT_START,      /* request_start: reqid, timestamp */
    USDT_END,        /* request_end: reqid, duration, start when given */
    USDT_ATTACHED,   /* attached_probes: count = probes */
    USDT_LOST,       /* lost_events: count = events bpftrace lost */
    USDT_NOTE,       /* helper_error, runtime_error, errorf, warnf: text to log */
    USDT_TEXT,       /* a printf that is not an event: the script's own text */
    USDT_OTHER,      /* map, hist, stats, time, ... (printed at exit): ignored */
    USDT_BAD,        /* bad says why */
};

enum usdt_bad {
    USDT_BAD_JSON,       /* not one JSON object */
    USDT_BAD_SHAPE,      /* an object with neither "type" nor "event", or a printf without data */
    USDT_BAD_EVENT,      /* "event" is not request_start / request_end */
    USDT_BAD_EVENT_JSON, /* a printf whose text starts with '{' but is not a JSON object */
    USDT_BAD_REQID,      /* missing, empty, too long, not a string or integer, not UTF-8 */
    USDT_BAD_TIME,       /* timestamp / start missing, not an integer, or <= 0 */
    USDT_BAD_DURATION,   /* duration missing, not an integer, or < 0 */
    USDT_BAD_TOO_LONG,   /* longer than the line limit (the reader says so) */
    USDT_BAD_KINDS
};

/* A short name per kind, for logs and the summary: "not JSON", ... */
extern const char *const usdt_bad_names[USDT_BAD_KINDS];

struct usdt_event {
    enum usdt_line kind;
    enum usdt_bad bad;              /* USDT_BAD */
    char reqid[USDT_REQID_MAX];
    size_t reqid_len;
    int64_t timestamp;              /* USDT_START */
    int64_t start;                  /* USDT_END, when has_start */
    bool has_start;
    int64_t duration;               /* USDT_END */
    uint64_t count;                 /* USDT_ATTACHED, USDT_LOST */
    const char *text;               /* USDT_NOTE, USDT_TEXT: valid until the next line */
    size_t text_len;
};

/* What a line needs beyond itself: room for the printf data once its escapes are decoded. */
struct usdt_parser {
    char *scratch;
    size_t cap;
};

/* Lines up to max_line bytes. 0, or -1 without memory. */
int usdt_parser_init(struct usdt_parser *p, size_t max_line);
void usdt_parser_free(struct usdt_parser *p);

/* One line (without its '\n') into ev. Never fails: a line it cannot use is USDT_BAD. */
void usdt_parse_line(struct usdt_parser *p, const char *line, size_t len, struct usdt_event *ev);

/* ---------------------------------------------------------------- pairing */

/* How a span came to be. */
enum usdt_how {
    USDT_COMPLETE,       /* a start and its end */
    USDT_NO_START,       /* an end whose start never came, dated by the end's own "start" */
    USDT_UNF_TTL,        /* a start whose end did not come within the TTL */
    USDT_UNF_DUPLICATE,  /* a start replaced by a later start with the same id */
    USDT_UNF_EVICTED,    /* a start pushed out of the full table */
    USDT_UNF_SHUTDOWN,   /* a start still open when the bridge stopped */
};
#define USDT_UNFINISHED(how) ((how) >= USDT_UNF_TTL)

/* A span as pairing produces it; reqid is valid during the emit call only. Unfinished spans
 * have end_ns == start_ns and no duration. */
struct usdt_span {
    const char *reqid;
    size_t reqid_len;
    int64_t start_ns, end_ns, duration_ns;
    enum usdt_how how;
};

typedef void (*usdt_emit_fn)(void *ud, const struct usdt_span *sp);

struct usdt_pair_options {
    size_t max_open;     /* entries kept at most: open starts, parked ends, recent ends */
    uint64_t ttl_ms;     /* an open start older than this is given up */
    uint64_t grace_ms;   /* an end waits this long for its start; an id stays "recently
                            ended" this long, so a repeated end is recognised */
};

struct usdt_pair_stats {
    uint64_t complete;            /* start + end */
    uint64_t reordered;           /* of those, the end came first */
    uint64_t no_start;            /* spans from an end alone (its start never came) */
    uint64_t orphan_ends;         /* ends without a start and without "start": dropped */
    uint64_t duplicate_starts;    /* the older start became an unfinished span */
    uint64_t duplicate_ends;      /* a second end for the same id: dropped */
    uint64_t start_mismatch;      /* an end whose "start" differs from its start's timestamp */
    uint64_t ttl, evicted, shutdown;   /* unfinished spans, by cause */
};

struct usdt_pairing;

/* NULL without memory. emit receives every span, in the order they are made. */
struct usdt_pairing *usdt_pair_new(const struct usdt_pair_options *o, usdt_emit_fn emit, void *ud);
void usdt_pair_free(struct usdt_pairing *pt);

void usdt_pair_start(struct usdt_pairing *pt, const char *reqid, size_t len, int64_t ts, uint64_t now_ms);
void usdt_pair_end(struct usdt_pairing *pt, const char *reqid, size_t len, int64_t duration,
                   bool has_start, int64_t start, uint64_t now_ms);
/* Gives up on what waited too long: starts past the TTL, ends past the grace period. */
void usdt_pair_expire(struct usdt_pairing *pt, uint64_t now_ms);
/* At the end: every parked end is resolved, every open start becomes USDT_UNF_SHUTDOWN. */
void usdt_pair_drain(struct usdt_pairing *pt);
/* Open starts and parked ends. */
size_t usdt_pair_pending(const struct usdt_pairing *pt);
const struct usdt_pair_stats *usdt_pair_stats(const struct usdt_pairing *pt);

/* ---------------------------------------------------------------- encoding */

/* A span as the export queue keeps it: with its ids. */
struct usdt_span_rec {
    uint8_t trace_id[16], span_id[8];
    int64_t start_ns, end_ns, duration_ns;
    uint8_t how;          /* enum usdt_how */
    uint8_t reqid_len;
    char reqid[USDT_REQID_MAX];
};

struct usdt_kv {
    char *key, *value;
};

/* What every request says besides its spans. */
struct usdt_resource {
    const struct usdt_kv *attrs;   /* the resource's attributes (string values) */
    size_t n_attrs;
    const char *scope_name, *scope_version;
    const char *span_name;
};

/* The unfinished cause as the span's "usdt.unfinished" attribute says it, or NULL. */
const char *usdt_how_name(enum usdt_how how);

/* One ExportTraceServiceRequest (one ResourceSpans, one ScopeSpans) holding spans[0..n),
 * appended to out as protobuf or as OTLP/JSON. False when out refused to grow. */
bool usdt_encode_proto(struct buf *out, const struct usdt_resource *r, const struct usdt_span_rec *spans, size_t n);
bool usdt_encode_json(struct buf *out, const struct usdt_resource *r, const struct usdt_span_rec *spans, size_t n);

/* The partial_success of an ExportTraceServiceResponse (protobuf, or JSON when json):
 * rejected spans and the message. False when the body is neither. An empty body is a full
 * success. */
bool usdt_partial_success(const uint8_t *body, size_t len, bool json, int64_t *rejected, char *msg, size_t msglen);

/* ---------------------------------------------------------------- OTEL_* values */

/* The traces URL: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is (an empty path becomes "/"),
 * else OTEL_EXPORTER_OTLP_ENDPOINT with "v1/traces" appended after a '/'. Either may be
 * NULL; neither gives http://127.0.0.1:4318/v1/traces. A value without "://" is taken as
 * HOST:PORT behind http:// (the original bridge's form). 0, or -1 (it does not fit, or is
 * not http:// or https://). */
int usdt_traces_url(const char *base, const char *traces, char *url, size_t len);

/* A "k1=v1,k2=v2" list (OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES): entries split
 * at ',', cut at the first '=', blanks trimmed, the value percent-decoded. At most max
 * entries are kept in kv (allocated; usdt_kv_free); *bad counts the malformed entries (no
 * '=', empty key, a key or value over 4096 bytes, bytes that cannot be in a header) and the
 * ones past max. The number kept, or -1 without memory. */
int usdt_kv_parse(const char *list, struct usdt_kv *kv, size_t max, unsigned *bad);
void usdt_kv_free(struct usdt_kv *kv, size_t n);

#endif
