/*
 * wal.h - a write-ahead log for sinks that acknowledge before they deliver: what a sink
 * appends here and has synced (wal_sync) survives a crash of the process or of the machine,
 * and is read back in order by the next start until the sink releases it.
 *
 * Sink-agnostic: records are opaque bytes. The log is a directory of segment files; the
 * caller names segments by increasing numbers (the ClickHouse sink: one segment per batch)
 * and deletes a whole segment once what it holds is delivered (wal_release). Group commit is
 * the caller's: append the records of many requests, then one wal_sync for all of them, and
 * acknowledge those requests only when it returned 0.
 *
 * Segment file "<20-digit seq>.wal", little-endian:
 *   header  "LBWAL001", u64 seq
 *   records u32 length, u32 CRC-32 (zlib) of the length's 4 bytes and the payload, payload
 * A record cut short by a crash (torn tail) or failing its CRC ends the segment's readable
 * part: wal_read reports where and how many bytes follow.
 *
 * Files are created O_EXCL|O_NOFOLLOW with mode 0600 in a directory that must belong to this
 * user and not be writable by group or others (or a symbolic link); the directory is locked
 * (flock) while open, so two processes never replay one log.
 */
#ifndef LB_SINKS_WAL_H
#define LB_SINKS_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wal;

/* One record larger than this is refused (and never read back). */
#define WAL_MAX_RECORD ((size_t)1 << 30)

struct wal_stats {
    uint64_t bytes;            /* all segment files together */
    uint64_t records;          /* records in segments not released yet */
    uint64_t segments;
    uint64_t syncs;            /* wal_sync calls that synced something */
    uint64_t sync_failures;
    uint64_t refused_full;     /* appends refused by the byte cap */
};

/* Opens (creating with mode 0700 when absent; its parent must exist) and locks `dir`, and
 * indexes the segments already there. NULL with a reason when the directory is unsafe (a
 * symbolic link, not a directory, owned by another user, group- or world-writable), locked
 * by another process, or unreadable. */
struct wal *wal_open(const char *dir, uint64_t max_bytes, char *err, size_t errlen);
/* Closes the files and unlocks; does not sync (call wal_sync first). */
void wal_close(struct wal *w);

/* Checks that `dir` may hold a log as wal_open would (without creating or locking it). */
int wal_check_dir(const char *dir, char *err, size_t errlen);

enum wal_append_status { WAL_APPENDED = 0, WAL_FULL = 1, WAL_FAILED = -1 };

/* Appends a record to segment `seq`, which must be the open segment or a newer one (a newer
 * one ends the open segment and starts it). Not durable before wal_sync. WAL_FULL when the
 * log would pass its byte cap (nothing written), WAL_FAILED with err on an I/O error (the
 * open segment is then ended: the next append starts a new one; its complete records are
 * still synced by the next wal_sync, a partial one reads as a torn tail). */
enum wal_append_status wal_append(struct wal *w, uint64_t seq, const void *p, size_t n, char *err, size_t errlen);
/* The same for a record given in parts (at most 16), written without copying them together. */
struct iovec;
enum wal_append_status wal_appendv(struct wal *w, uint64_t seq, const struct iovec *parts, int nparts, char *err,
                                   size_t errlen);
/* Makes every record appended so far durable: fdatasync of the segments written since the
 * last sync, and of the directory when segments were created. 0, or -1 with err: then the
 * records appended since the last successful sync are NOT durable and the open segment is
 * ended (after a failed fsync a file's unsynced pages may be gone: nothing is appended after
 * them). */
int wal_sync(struct wal *w, char *err, size_t errlen);
/* The same in three steps, for a sync on another thread: begin (NULL: nothing to sync, or out
 * of memory when wal_dirty still says true: then use wal_sync) takes
 * what the records appended so far need, run (any thread) syncs it, end (the log's thread)
 * frees it and says 0 or -1 with err as wal_sync does. While run runs the log may be used. */
struct wal_sync_job;
struct wal_sync_job *wal_sync_begin(struct wal *w);
void wal_sync_run(struct wal_sync_job *j);
int wal_sync_end(struct wal *w, struct wal_sync_job *j, char *err, size_t errlen);
/* The three steps as lib/commit.h's writer wants them, one sync in flight per log: begin
 * returns NULL when there is nothing to sync, else a token for wal_commit_run (the commit
 * thread); wal_commit_end (the log's thread) says 0, or -1 with err. */
void *wal_commit_begin(struct wal *w);
void wal_commit_run(void *token);
int wal_commit_end(struct wal *w, char *err, size_t errlen);
/* True when records were appended since the last sync. */
bool wal_dirty(const struct wal *w);

/* The segments on disk, oldest first (the open one included). */
size_t wal_segment_count(const struct wal *w);
uint64_t wal_segment_seq(const struct wal *w, size_t i);
/* The highest segment number ever seen (on disk at open, or appended to); 0 when none. */
uint64_t wal_last_seq(const struct wal *w);

/* Deletes segment `seq` (delivered). Unknown numbers are ignored. */
void wal_release(struct wal *w, uint64_t seq);
/* Renames segment `seq` to "<seq>.bad" and forgets it (unreadable: kept for inspection). */
void wal_quarantine(struct wal *w, uint64_t seq);

/* What wal_read found past the readable records of a segment. */
struct wal_read_report {
    uint64_t records;          /* records delivered to the callback */
    uint64_t bad_offset;       /* where the unreadable part begins (0: none) */
    uint64_t bad_bytes;        /* bytes from there to the end of the file */
    char why[96];              /* "torn record", "CRC mismatch", ... */
};

/* Called once per record, in order; a non-zero return stops the read (wal_read returns it). */
typedef int (*wal_record_fn)(void *ud, const uint8_t *p, size_t n);

/* Reads segment `seq` record by record. 0 (whatever followed the readable records: see the
 * report), the callback's non-zero value, or -1 with err when the file cannot be read or is
 * not a segment. */
int wal_read(struct wal *w, uint64_t seq, wal_record_fn fn, void *ud, struct wal_read_report *rep, char *err,
             size_t errlen);

/* Reads a segment's bytes already in memory (the parsing half of wal_read, for the tests). */
int wal_parse(const uint8_t *p, size_t n, uint64_t seq, wal_record_fn fn, void *ud, struct wal_read_report *rep,
              char *err, size_t errlen);

void wal_get_stats(const struct wal *w, struct wal_stats *out);
uint64_t wal_max_bytes(const struct wal *w);
const char *wal_dir(const struct wal *w);

#endif
