/*
 * check.h - the unit tests' whole framework: TAP-like lines that test/run.sh counts.
 *
 *   TEST(name) { CHECK(cond); CHECK_EQ_INT(a, b); CHECK_EQ_STR(a, b); }
 *   int main(void) { RUN(name); ...; return check_done(); }
 *
 * Each TEST prints "ok - name" or "not ok - name" plus the failing checks; the process exits
 * non-zero when any failed.
 */
#ifndef LB_CHECK_H
#define LB_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_failed_tests, check_current_failed;

#define TEST(name) static void test_##name(void)
#define RUN(name)                                                              \
    do {                                                                       \
        check_current_failed = 0;                                              \
        test_##name();                                                         \
        printf("%s - %s\n", check_current_failed ? "not ok" : "ok", #name);    \
        fflush(stdout);                                                        \
        if (check_current_failed)                                              \
            check_failed_tests++;                                              \
    } while (0)

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            printf("#   %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            check_current_failed = 1;                                          \
        }                                                                      \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                     \
    do {                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                    \
        if (a_ != b_) {                                                        \
            printf("#   %s:%d: %s == %lld, expected %s == %lld\n", __FILE__,   \
                   __LINE__, #a, a_, #b, b_);                                  \
            check_current_failed = 1;                                          \
        }                                                                      \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                     \
    do {                                                                       \
        const char *a_ = (a), *b_ = (b);                                       \
        if (strcmp(a_, b_) != 0) {                                             \
            printf("#   %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__,     \
                   __LINE__, #a, a_, b_);                                      \
            check_current_failed = 1;                                          \
        }                                                                      \
    } while (0)

static inline int check_done(void) { return check_failed_tests ? 1 : 0; }

#endif
