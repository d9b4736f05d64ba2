/*
 * prom.c - the Prometheus text format writer (see prom.h): escaping, number formatting,
 * labels, and the three lines of a histogram.
 */
#include "lib/prom.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void prom_init(struct prom *p, struct buf *out)
{
    p->out = out;
    p->failed = false;
}

static void put(struct prom *p, const char *s, size_t n)
{
    if (!p->failed && !buf_append(p->out, s, n))
        p->failed = true;
}

static void puts_(struct prom *p, const char *s)
{
    put(p, s, strlen(s));
}

/* Label values escape \, " and newline; help texts \ and newline (quote_too false). */
static void put_escaped(struct prom *p, const char *s, bool quote_too)
{
    for (const char *run = s;; s++) {
        const char *esc = NULL;
        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (*s == '"' && quote_too)
            esc = "\\\"";
        if (!esc && *s)
            continue;
        put(p, run, (size_t)(s - run));
        if (!*s)
            return;
        puts_(p, esc);
        run = s + 1;
    }
}

void prom_format_double(double v, char *out)
{
    if (isnan(v)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {   /* integers without an exponent: 10, not 1e+01 */
        snprintf(out, 32, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

void prom_family(struct prom *p, const char *name, const char *type, const char *help)
{
    puts_(p, "# HELP ");
    puts_(p, name);
    puts_(p, " ");
    put_escaped(p, help, false);
    puts_(p, "\n# TYPE ");
    puts_(p, name);
    puts_(p, " ");
    puts_(p, type);
    puts_(p, "\n");
}

/* {a="x",b="y"} from the pairs of `ap`, plus le="..." when `le` is set; nothing without any. */
static void put_labels(struct prom *p, va_list ap, const char *le)
{
    bool first = true;
    for (const char *k; (k = va_arg(ap, const char *)) != NULL;) {
        const char *v = va_arg(ap, const char *);
        puts_(p, first ? "{" : ",");
        puts_(p, k);
        puts_(p, "=\"");
        put_escaped(p, v ? v : "", true);
        puts_(p, "\"");
        first = false;
    }
    if (le) {
        puts_(p, first ? "{le=\"" : ",le=\"");
        puts_(p, le);
        puts_(p, "\"");
        first = false;
    }
    if (!first)
        puts_(p, "}");
}

/* name{labels} value\n; `ap` is consumed. */
static void put_sample(struct prom *p, const char *name, const char *suffix, va_list ap,
                       const char *le, const char *value)
{
    puts_(p, name);
    puts_(p, suffix);
    put_labels(p, ap, le);
    puts_(p, " ");
    puts_(p, value);
    puts_(p, "\n");
}

void prom_u64(struct prom *p, const char *name, uint64_t v, ...)
{
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    va_list ap;
    va_start(ap, v);
    put_sample(p, name, "", ap, NULL, num);
    va_end(ap);
}

void prom_double(struct prom *p, const char *name, double v, ...)
{
    char num[32];
    prom_format_double(v, num);
    va_list ap;
    va_start(ap, v);
    put_sample(p, name, "", ap, NULL, num);
    va_end(ap);
}

void prom_histogram(struct prom *p, const char *name, const struct histogram *h, double scale, ...)
{
    char le[32], num[32];
    uint64_t cumulative = 0;
    va_list ap;
    for (unsigned i = 0; i <= h->n_bounds; i++) {
        cumulative += h->bucket[i];
        if (i < h->n_bounds)
            prom_format_double((double)h->bounds[i] * scale, le);
        else
            strcpy(le, "+Inf");
        snprintf(num, sizeof num, "%llu", (unsigned long long)cumulative);
        va_start(ap, scale);
        put_sample(p, name, "_bucket", ap, le, num);
        va_end(ap);
    }
    prom_format_double((double)h->sum * scale, num);
    va_start(ap, scale);
    put_sample(p, name, "_sum", ap, NULL, num);
    va_end(ap);
    snprintf(num, sizeof num, "%llu", (unsigned long long)h->count);
    va_start(ap, scale);
    put_sample(p, name, "_count", ap, NULL, num);
    va_end(ap);
}

void prom_single(struct prom *p, const char *name, const char *type, const char *help, double v)
{
    prom_family(p, name, type, help);
    prom_double(p, name, v, (const char *)NULL);
}
