/*
 * log.c - see log.h. The level is configuration written once at start-up; where stderr goes
 * (the journal, a terminal, anything else) is looked at once, at the first line.
 *
 * Why three styles: under systemd stderr is a stream into journald, which stamps each line
 * itself and reads a leading "<N>" as its syslog priority (sd-daemon(3)), so a timestamp of
 * our own would be said twice and every line would be "info". A person at a terminal reads
 * the level faster in colour. A file or a pipe (`2>log`, `| grep`) keeps the plain format,
 * byte for byte, so that scripts reading it never see escape codes.
 */
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static enum log_level current_level = LOG_INFO;

enum log_style { STYLE_UNKNOWN, STYLE_PLAIN, STYLE_JOURNAL, STYLE_COLOUR };
static enum log_style style = STYLE_UNKNOWN;

void log_set_level(enum log_level level) { current_level = level; }
enum log_level log_get_level(void) { return current_level; }

int log_parse_level(const char *name)
{
    static const char *const names[] = { "debug", "info", "warn", "error", "off" };
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

/* systemd sets $JOURNAL_STREAM to "DEV:INODE" of the stream it connected to stdout/stderr;
 * stderr is the journal only while it is still that very file (a shell's `2>file` below the
 * service replaces it, and the variable is then stale). */
static int stderr_is_journal(void)
{
    const char *v = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    char end;
    struct stat st;
    if (!v || sscanf(v, "%llu:%llu%c", &dev, &ino, &end) != 2 || fstat(STDERR_FILENO, &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* Colour for people only: a terminal, and neither NO_COLOR (no-color.org: set and not
 * empty) nor TERM=dumb saying otherwise. */
static int stderr_wants_colour(void)
{
    const char *no_colour = getenv("NO_COLOR"), *term = getenv("TERM");
    return isatty(STDERR_FILENO) && !(no_colour && *no_colour) && !(term && strcmp(term, "dumb") == 0);
}

static enum log_style detect_style(void)
{
    if (stderr_is_journal())
        return STYLE_JOURNAL;
    return stderr_wants_colour() ? STYLE_COLOUR : STYLE_PLAIN;
}

/* The line's head: "<N>LEVEL " for the journal, "TIMESTAMP LEVEL " elsewhere (the level in
 * colour on a terminal, padded outside the colour so that columns still line up). */
static int line_head(char *line, size_t size, enum log_level level)
{
    static const char *const tags[] = { "DEBUG", "INFO", "WARN", "ERROR", "OFF" };
    static const char *const priorities[] = { "<7>", "<6>", "<4>", "<3>", "<3>" };
    static const char *const colours[] = { "\033[2m", "\033[32m", "\033[33m", "\033[1;31m", "" };
    if (style == STYLE_JOURNAL)
        return snprintf(line, size, "%s%-5s ", priorities[level], tags[level]);
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000L);
    if (style == STYLE_COLOUR)
        return n + snprintf(line + n, size - (size_t)n, "%s%s\033[0m%*s ", colours[level], tags[level],
                            (int)(5 - strlen(tags[level])), "");
    return n + snprintf(line + n, size - (size_t)n, "%-5s ", tags[level]);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < current_level)
        return;
    if (style == STYLE_UNKNOWN)
        style = detect_style();
    char line[2048];
    int n = line_head(line, sizeof line, level);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : ((size_t)m < sizeof line - (size_t)n - 1 ? (size_t)m : sizeof line - (size_t)n - 2));
    line[len++] = '\n';
    /* One write per line, so lines from a crash handler or a child never interleave mid-line. */
    fwrite(line, 1, len, stderr);
    fflush(stderr);
}
