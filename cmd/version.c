/*
 * version.c - `lazybackend --version`: ours, the commit it was built from, and the libraries
 * as linked, because "which nghttp2 is this node running" is the first question of a bug
 * report (the static binary carries its own; a dynamic one shows what the node has).
 *
 * A file of its own: it includes the libraries' headers, whose names (sqlite3.h's
 * SQLITE_SYNC_*) must not meet the rest of the command line's.
 */
#include <curl/curl.h>
#include <http_parser.h>
#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <pb.h>
#include <sqlite3.h>
#include <stdio.h>
#include <zlib.h>

#include "cmd/version.h"
#include "build_commit.h"   /* LAZYBACKEND_COMMIT, written by the Makefile */

const char *lazybackend_commit(void)
{
    return LAZYBACKEND_COMMIT;
}

void print_version(void)
{
    const nghttp2_info *h2 = nghttp2_version(0);
    unsigned long hp = http_parser_version();
    printf("lazybackend %s (commit %s)\n", LAZYBACKEND_VERSION, LAZYBACKEND_COMMIT);
    printf("nghttp2 %s, libcurl %s, SQLite %s, zlib %s, http-parser %lu.%lu.%lu, %s, OpenSSL %s\n",
           h2->version_str, curl_version_info(CURLVERSION_NOW)->version, sqlite3_libversion(), zlibVersion(),
           (hp >> 16) & 255, (hp >> 8) & 255, hp & 255, NANOPB_VERSION, OpenSSL_version(OPENSSL_VERSION_STRING));
}
