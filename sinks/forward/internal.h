/*
 * internal.h - what the forward sink's two files share: forward.c (the sink's events, the
 * queue and the write-ahead log, opening and closing) and sender.c (one request upstream at
 * a time: framing, the answer's verdict, retries with backoff, the final drain). Not for
 * other sinks.
 *
 * A queued request is one record, also the whole of one log segment (its number is `seq`),
 * so a delivered request's segment is deleted at once: the tag byte (FW_TAG_*) then the
 * message as received.
 */
#ifndef LB_SINKS_FORWARD_INTERNAL_H
#define LB_SINKS_FORWARD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/http_post.h"
#include "sinks/forward/forward.h"

struct loop;
struct wal;
struct commit;
struct http_post;

enum { FW_TAG_PROFILES = 1, FW_TAG_TRACES = 2 };

/* Queue entries are small, but a log full of tiny requests would still make many: past this
 * count requests are refused as when the log is full. */
#define FW_MAX_ITEMS ((uint64_t)1 << 20)

struct fw_item {
    uint64_t seq;            /* its log segment (and the order of arrival) */
    uint8_t *rec;            /* tag + message; NULL while it is in the log only */
    size_t len;              /* rec's length when known (0 for an earlier run's record) */
    bool counted;            /* rec is counted in the sink's memory bytes */
    struct fw_item *next;
};

struct fw_sink {
    struct forward_sink_options o;
    struct loop *loop;
    struct commit *commit;
    struct wal *wal;                 /* NULL in memory mode */
    struct http_post *http;
    char *url[2];                    /* profiles, traces */
    struct fw_item *head, *tail;     /* oldest first; the head is the one being sent */
    uint64_t n_items, mem_bytes;
    uint64_t next_seq;
    struct buf body;                 /* the head's request body (framed, compressed) */
    unsigned attempts;               /* consecutive failed attempts */
    uint64_t retry_timer;
    int64_t retry_at_ms;             /* monotonic; 0: none */
    uint64_t rng;
    bool closing, refusing;
    size_t last_len;                 /* the last request's size, for ready */
    struct forward_sink_stats st;
};

/* forward.c */
/* Removes the head (delivered, or dropped): its log segment too. */
void fw_drop_head(struct fw_sink *s);
/* Reads the head's record back from the log when it is not in memory. 0, or -1 when it
 * cannot be read (the segment is then set aside and the head dropped: logged, counted). */
int fw_load_head(struct fw_sink *s);

/* sender.c */
int64_t fw_now_ms(void);
/* Sends the head unless a request is in flight or a retry is waiting. */
void fw_kick(struct fw_sink *s);
void fw_on_answer(void *ud, const struct http_post_result *r);
/* Shutdown, without the loop: sends what it can before `end_ms`. */
void fw_drain(struct fw_sink *s, int64_t end_ms);

#endif
