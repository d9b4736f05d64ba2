/*
 * timefmt.c - see timefmt.h. Go's formatting rules, reimplemented from their documented
 * behaviour; the calendar conversion is the classic days-to-civil arithmetic on 400-year eras
 * (proleptic Gregorian, which is what Go uses).
 */
#include "sinks/timefmt.h"

#include <stdbool.h>
#include <string.h>

#define NS_PER_S 1000000000ull

struct civil { unsigned year, month, day; };

/* Days since 1970-01-01 to a date. Shifting the year to start on March 1st puts the leap day
 * at the end of the year, so month lengths follow a fixed 153-days-per-5-months pattern. */
static struct civil civil_from_days(uint64_t days)
{
    uint64_t z = days + 719468;                     /* days since 0000-03-01 */
    uint64_t era = z / 146097;                      /* 400-year eras */
    uint64_t doe = z - era * 146097;                /* day of era, 0..146096 */
    uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);   /* day of year, from March */
    uint64_t mp = (5 * doy + 2) / 153;              /* month, 0 = March */
    struct civil c;
    c.day = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    c.month = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    c.year = (unsigned)(yoe + era * 400 + (c.month <= 2));
    return c;
}

/* Writes v as exactly `width` digits at p; returns the end. */
static char *put_digits(char *p, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* "YYYY-MM-DD" `sep` "hh:mm:ss" of a count of seconds since the epoch, UTC; returns the end. */
static char *put_date_time(char *p, uint64_t secs, char sep)
{
    unsigned sod = (unsigned)(secs % 86400);
    struct civil c = civil_from_days(secs / 86400);
    p = put_digits(p, c.year, 4);
    *p++ = '-';
    p = put_digits(p, c.month, 2);
    *p++ = '-';
    p = put_digits(p, c.day, 2);
    *p++ = sep;
    p = put_digits(p, sod / 3600, 2);
    *p++ = ':';
    p = put_digits(p, sod / 60 % 60, 2);
    *p++ = ':';
    p = put_digits(p, sod % 60, 2);
    return p;
}

size_t timefmt_go_time(char out[TIMEFMT_TIME_MAX], uint64_t unix_nano)
{
    uint64_t secs = unix_nano / NS_PER_S;
    unsigned frac = (unsigned)(unix_nano % NS_PER_S);
    char *p = put_date_time(out, secs, ' ');
    if (frac) {
        int width = 9;
        while (frac % 10 == 0)          /* Go's .999999999: trailing zeros dropped */
            frac /= 10, width--;
        *p++ = '.';
        p = put_digits(p, frac, width);
    }
    memcpy(p, " +0000 UTC", sizeof " +0000 UTC");
    return (size_t)(p - out) + sizeof " +0000 UTC" - 1;
}

size_t timefmt_rfc3339(char out[TIMEFMT_RFC3339_MAX], uint64_t unix_nano)
{
    uint64_t secs = unix_nano / NS_PER_S;
    char *p = put_date_time(out, secs, 'T');
    *p++ = '.';
    p = put_digits(p, (unsigned)(unix_nano % NS_PER_S), 9);
    *p++ = 'Z';
    return (size_t)(p - out);
}

/* The following two write backwards from buf[w], as Go's Duration.String does: the unit comes
 * last but decides how the number before it is split. */

/* The fraction v % 10^prec as ".ddd" without trailing zeros (nothing when it is zero); leaves
 * the integer part in *v. */
static size_t frac_back(char *buf, size_t w, uint64_t *v, int prec)
{
    bool any = false;
    for (int i = 0; i < prec; i++) {
        unsigned d = (unsigned)(*v % 10);
        any = any || d != 0;
        if (any)
            buf[--w] = (char)('0' + d);
        *v /= 10;
    }
    if (any)
        buf[--w] = '.';
    return w;
}

static size_t int_back(char *buf, size_t w, uint64_t v)
{
    do {
        buf[--w] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return w;
}

static size_t str_back(char *buf, size_t w, const char *s)
{
    size_t n = strlen(s);
    w -= n;
    memcpy(buf + w, s, n);
    return w;
}

/* Below one second: one unit (ns, µs or ms) with a fraction. */
static size_t subsecond_back(char *buf, size_t w, uint64_t u)
{
    if (u < 1000)
        return int_back(buf, str_back(buf, w, "ns"), u);
    w = str_back(buf, w, u < 1000000 ? "\xc2\xb5s" : "ms");    /* U+00B5 micro sign */
    w = frac_back(buf, w, &u, u < 1000000 ? 3 : 6);
    return int_back(buf, w, u);
}

/* One second and more: [<h>h][<m>m]<s>[.frac]s, where a non-zero larger unit forces the
 * smaller ones to appear (1h0m0s). */
static size_t seconds_back(char *buf, size_t w, uint64_t u)
{
    w = str_back(buf, w, "s");
    w = frac_back(buf, w, &u, 9);
    w = int_back(buf, w, u % 60);
    u /= 60;
    if (u > 0) {
        w = int_back(buf, str_back(buf, w, "m"), u % 60);
        u /= 60;
        if (u > 0)
            w = int_back(buf, str_back(buf, w, "h"), u);
    }
    return w;
}

size_t timefmt_go_duration(char out[TIMEFMT_DURATION_MAX], uint64_t nanos)
{
    char buf[TIMEFMT_DURATION_MAX];
    size_t end = sizeof buf - 1, w;
    buf[end] = '\0';
    if (nanos == 0)
        w = str_back(buf, end, "0s");
    else if (nanos > INT64_MAX)          /* not a Go Duration: keep every digit */
        w = int_back(buf, str_back(buf, end, "ns"), nanos);
    else if (nanos < NS_PER_S)
        w = subsecond_back(buf, end, nanos);
    else
        w = seconds_back(buf, end, nanos);
    memcpy(out, buf + w, sizeof buf - w);
    return end - w;
}
