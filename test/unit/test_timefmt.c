/*
 * test_timefmt.c - times and durations must read exactly as Go prints them (users compare
 * with the Go lazybackend's output). Expectations are Go's documented outputs and dates
 * worked out by hand (leap years included); a sweep also compares the date part with the C
 * library's gmtime_r, which shares no code with timefmt.c.
 */
#include <time.h>

#include "check.h"
#include "sinks/timefmt.h"

#define NS 1000000000ull

static const char *gotime(char *t, uint64_t ns)
{
    size_t n = timefmt_go_time(t, ns);
    return strlen(t) == n ? t : "<length mismatch>";
}

static const char *godur(char *t, uint64_t ns)
{
    size_t n = timefmt_go_duration(t, ns);
    return strlen(t) == n ? t : "<length mismatch>";
}

#define TIME(ns, want) do { char t_[TIMEFMT_TIME_MAX]; CHECK_EQ_STR(gotime(t_, ns), want); } while (0)
#define DUR(ns, want) do { char t_[TIMEFMT_DURATION_MAX]; CHECK_EQ_STR(godur(t_, ns), want); } while (0)

TEST(time_fixture_and_fractions)
{
    TIME(1758603335517877230ull, "2025-09-23 04:55:35.51787723 +0000 UTC");
    TIME(1758603335000000000ull, "2025-09-23 04:55:35 +0000 UTC");
    TIME(1758603335500000000ull, "2025-09-23 04:55:35.5 +0000 UTC");
    TIME(1758603335000000001ull, "2025-09-23 04:55:35.000000001 +0000 UTC");
    TIME(1758603335010000000ull, "2025-09-23 04:55:35.01 +0000 UTC");
    TIME(1758603335999999999ull, "2025-09-23 04:55:35.999999999 +0000 UTC");
}

TEST(time_epoch)
{
    TIME(0, "1970-01-01 00:00:00 +0000 UTC");
    TIME(1, "1970-01-01 00:00:00.000000001 +0000 UTC");
    TIME(86399 * NS, "1970-01-01 23:59:59 +0000 UTC");
    TIME(86400 * NS, "1970-01-02 00:00:00 +0000 UTC");
}

TEST(time_leap_years)
{
    TIME(951782400 * NS, "2000-02-29 00:00:00 +0000 UTC");         /* 2000: divisible by 400 */
    TIME(1709251199 * NS, "2024-02-29 23:59:59 +0000 UTC");
    TIME(1709251200 * NS, "2024-03-01 00:00:00 +0000 UTC");
    TIME(4107542399 * NS, "2100-02-28 23:59:59 +0000 UTC");        /* 2100: not a leap year */
    TIME(4107542400 * NS, "2100-03-01 00:00:00 +0000 UTC");
    TIME(978266096 * NS, "2000-12-31 12:34:56 +0000 UTC");         /* day 366 */
    TIME(94694399 * NS, "1972-12-31 23:59:59 +0000 UTC");
    TIME(946684799 * NS, "1999-12-31 23:59:59 +0000 UTC");
    TIME(13574585228ull * NS, "2400-02-29 06:07:08 +0000 UTC");
}

TEST(time_whole_uint64_range)
{
    TIME(UINT64_MAX, "2554-07-21 23:34:33.709551615 +0000 UTC");
}

/* Every 7919 hours (a prime, so every hour of the day and every day of the month comes up)
 * from 1970 to 2550: the date must match gmtime_r's. */
TEST(time_matches_gmtime)
{
    int bad = 0;
    for (uint64_t s = 0; s < 18000000000ull; s += 7919ull * 3600 + 1) {
        time_t tt = (time_t)s;
        struct tm tm;
        char want[TIMEFMT_TIME_MAX], got[TIMEFMT_TIME_MAX];
        gmtime_r(&tt, &tm);
        strftime(want, sizeof want, "%Y-%m-%d %H:%M:%S +0000 UTC", &tm);
        timefmt_go_time(got, s * NS);
        if (strcmp(want, got) != 0 && bad++ < 5)
            printf("#   %s != %s\n", got, want);
    }
    CHECK_EQ_INT(bad, 0);
}

/* The JSON form: the C library's gmtime_r and printf give the reference (what json.c wrote
 * before it had its own), every 7919 hours plus a varying fraction, and the ends. */
TEST(rfc3339_matches_gmtime)
{
    int bad = 0;
    for (uint64_t s = 0, k = 0; s < 18000000000ull; s += 7919ull * 3600 + 1, k++) {
        uint64_t ns = s * NS + (k * 123456789u) % NS;
        time_t tt = (time_t)s;
        struct tm tm;
        char want[64], got[TIMEFMT_RFC3339_MAX + 1];
        gmtime_r(&tt, &tm);
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%09uZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ns % NS));
        got[timefmt_rfc3339(got, ns)] = '\0';
        if (strcmp(want, got) != 0 && bad++ < 5)
            printf("#   %s != %s\n", got, want);
    }
    CHECK_EQ_INT(bad, 0);
    char t[TIMEFMT_RFC3339_MAX + 1];
    t[timefmt_rfc3339(t, 0)] = '\0';
    CHECK_EQ_STR(t, "1970-01-01T00:00:00.000000000Z");
    t[timefmt_rfc3339(t, UINT64_MAX)] = '\0';
    CHECK_EQ_STR(t, "2554-07-21T23:34:33.709551615Z");
}

TEST(duration_go_examples)
{
    DUR(0, "0s");
    DUR(1, "1ns");
    DUR(1500, "1.5\xc2\xb5s");
    DUR(1500000, "1.5ms");
    DUR(4986107396ull, "4.986107396s");
    DUR(500000000, "500ms");
    DUR(62500000000ull, "1m2.5s");
    DUR(3600000000000ull, "1h0m0s");
}

TEST(duration_unit_edges)
{
    DUR(999, "999ns");
    DUR(1000, "1\xc2\xb5s");
    DUR(999999, "999.999\xc2\xb5s");
    DUR(1000000, "1ms");
    DUR(1000001, "1.000001ms");
    DUR(999999999, "999.999999ms");
    DUR(1000000000, "1s");
    DUR(1000000001, "1.000000001s");
    DUR(59 * NS, "59s");
    DUR(60 * NS, "1m0s");
    DUR(3599 * NS, "59m59s");
    DUR(3661001000000ull, "1h1m1.001s");
    DUR(90000 * NS, "25h0m0s");                  /* hours do not roll into days */
}

TEST(duration_beyond_int64)
{
    DUR(9223372036854775807ull, "2562047h47m16.854775807s");   /* Go's longest */
    DUR(9223372036854775808ull, "9223372036854775808ns");
    DUR(UINT64_MAX, "18446744073709551615ns");
}

int main(void)
{
    RUN(time_fixture_and_fractions);
    RUN(time_epoch);
    RUN(time_leap_years);
    RUN(time_whole_uint64_range);
    RUN(time_matches_gmtime);
    RUN(rfc3339_matches_gmtime);
    RUN(duration_go_examples);
    RUN(duration_unit_edges);
    RUN(duration_beyond_int64);
    return check_done();
}
