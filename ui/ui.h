/*
 * ui.h - the web UI: a page and a JSON API over a SQLite store, served on an HTTP port.
 *
 * `GET /` is a single page (ui/assets/, embedded into the binary at build time) that draws
 * flame graphs, top tables, executables/containers/threads, a timeline, a diff and a live tail
 * from the JSON routes under /api/ (docs/ui.md). Everything is read-only and read from the
 * one database given here, through the rollup tables the SQLite writer keeps (schema step 3).
 * The live tail is Server-Sent Events on GET /api/live, fed by ui_publish.
 *
 * Layering: ui/ uses h2/ (routes, long-lived responses) and the SQLite store's reader; cmd/
 * wires it into `serve` (the HTTP port, --ui) and the `ui` command (a port of its own).
 */
#ifndef LB_UI_UI_H
#define LB_UI_UI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h2_server;
struct loop;
struct ui;

/* The database is opened read-only on first use (so a server may create it after start). */
struct ui *ui_new(struct loop *loop, const char *db_path);

/* Where `lazybackend ui --clickhouse-url` and `serve --sink clickhouse` read (ui/clickhouse.c).
 * The strings must outlive the UI. Without on_loop each API call asks ClickHouse over
 * blocking HTTP: fit for the offline command only, never for a loop that also serves ingest;
 * with it the calls are answered later, from the loop. */
struct ui_clickhouse {
    const char *url, *database, *user, *password;   /* database, user, password: NULL = default */
    long timeout_s;                                  /* one API call's bound, > 0 */
    bool on_loop;   /* asked asynchronously on the loop (serve): never blocks it (ui/async.c) */
};
struct ui *ui_new_clickhouse(struct loop *loop, const struct ui_clickhouse *ch);
void ui_free(struct ui *u);
/* Registers GET /, the assets and /api/... on an H2_SERVER_HTTP server. 0 or -1. */
int ui_register(struct ui *u, struct h2_server *s);

/* One request as it arrived, for the live tail. Strings are copied. */
struct ui_event {
    uint64_t sequence;
    uint64_t received_unix_nano;
    const char *transport;     /* "grpc", "http" */
    const char *peer;
    const char *layout;        /* "" when none was detected */
    const char *resource;      /* a short description of the first resource ("" when none) */
    uint64_t resources, profiles, samples, rejected_samples;
    size_t wire_bytes;
    const char *outcome;       /* "ok", "partial", "invalid", "unavailable", "failed" */
    const char *message;       /* why, when not ok ("" otherwise) */
};
void ui_publish(struct ui *u, const struct ui_event *e);

/* `lazybackend ui [--db FILE | --clickhouse-url URL ...] [--address HOST:PORT]`: the UI
 * alone, over a database file or ClickHouse.
 * Returns the exit status. */
int ui_command(int argc, char **argv);

#endif
