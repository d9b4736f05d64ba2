/*
 * usdt_env.c - the values of the OTEL_* variables the bridge reads: the traces URL from
 * OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, and the "k=v,..." lists of OTEL_EXPORTER_OTLP_HEADERS
 * and OTEL_RESOURCE_ATTRIBUTES.
 *
 * Why by the specification's rules (specification/protocol/exporter.md): the Go bridge
 * passed OTEL_EXPORTER_OTLP_ENDPOINT as host:port, so a spec-style URL made a broken one.
 * Here the signal-specific variable is used as it is and the generic one gets "v1/traces"
 * appended; a value without a scheme is still taken, as HOST:PORT behind http://, because
 * that is what users of the old bridge have set. Header names and values end up in an HTTP
 * request, so an entry that could split or forge a header line (control bytes, a name that is
 * not a token) is refused, not sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd/usdt.h"

#define DEFAULT_TRACES_URL "http://127.0.0.1:4318/v1/traces"
#define KV_MAX_LEN 4096

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

int usdt_traces_url(const char *base, const char *traces, char *url, size_t len)
{
    bool signal = traces && traces[0];
    const char *v = signal ? traces : base && base[0] ? base : NULL;
    if (!v)
        return snprintf(url, len, "%s", DEFAULT_TRACES_URL) < (int)len ? 0 : -1;
    if (!printable(v))
        return -1;
    const char *sep = strstr(v, "://");
    if (sep && strncasecmp(v, "http://", 7) != 0 && strncasecmp(v, "https://", 8) != 0)
        return -1;
    const char *scheme = sep ? "" : "http://";
    const char *host = sep ? sep + 3 : v;
    if (!host[0] || host[0] == '/')
        return -1;
    bool has_path = strchr(host, '/') != NULL;
    size_t vl = strlen(v);
    int n;
    if (signal)
        n = snprintf(url, len, "%s%s%s", scheme, v, has_path ? "" : "/");
    else
        n = snprintf(url, len, "%s%s%sv1/traces", scheme, v, vl && v[vl - 1] == '/' ? "" : "/");
    return n > 0 && (size_t)n < len ? 0 : -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* p[0..n) without blanks around it, percent-decoded when `decode`, as a new string. */
static char *piece(const char *p, size_t n, bool decode)
{
    while (n && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    char *s = malloc(n + 1), *w = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (decode && p[i] == '%' && i + 2 < n && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
            *w++ = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
            i += 2;
        } else {
            *w++ = p[i];
        }
    }
    *w = 0;
    return s;
}

/* A name that can be an HTTP header's (an RFC 9110 token) and an attribute key. */
static bool token(const char *k)
{
    if (!k[0])
        return false;
    for (; *k; k++)
        if (!strchr("!#$%&'*+-.^_`|~", *k) && !((*k >= '0' && *k <= '9') || ((*k | 0x20) >= 'a' && (*k | 0x20) <= 'z')))
            return false;
    return true;
}

/* No byte that could end a header line or hide in one (after decoding). */
static bool clean_value(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return false;
    return true;
}

int usdt_kv_parse(const char *list, struct usdt_kv *kv, size_t max, unsigned *bad)
{
    size_t n = 0;
    *bad = 0;
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t blank = strspn(p, " \t");
        if (blank >= len) {
            /* an empty entry ("a=1,,b=2", a trailing comma): nothing to keep or refuse */
        } else if (!eq || len > 2 * KV_MAX_LEN || n == max) {
            ++*bad;
        } else {
            char *k = piece(p, (size_t)(eq - p), false), *v = piece(eq + 1, len - (size_t)(eq - p) - 1, true);
            if (!k || !v) {
                free(k);
                free(v);
                usdt_kv_free(kv, n);
                return -1;
            }
            if (!token(k) || !clean_value(v) || strlen(k) > KV_MAX_LEN || strlen(v) > KV_MAX_LEN) {
                ++*bad;
                free(k);
                free(v);
            } else {
                kv[n].key = k;
                kv[n].value = v;
                n++;
            }
        }
        p = comma ? comma + 1 : p + len;
    }
    return (int)n;
}

void usdt_kv_free(struct usdt_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
        kv[i].key = kv[i].value = NULL;
    }
}
