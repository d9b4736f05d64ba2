/*
 * log.h - levelled log lines on stderr.
 *
 * stdout belongs to the stdout sink (users pipe it), so every diagnostic goes to stderr, one
 * line per event, prefixed with a UTC timestamp and the level; when stderr is the journal
 * ($JOURNAL_STREAM names it) with the syslog priority "<N>" instead of the timestamp, and on
 * a terminal with the level in colour (log.c says why). The level is process
 * configuration, set once from --log-level.
 */
#ifndef LB_LOG_H
#define LB_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug", "info", "warn", "error", "off"; returns -1 when unknown. */
int log_parse_level(const char *name);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void log_msg(enum log_level level, const char *fmt, ...);

#define log_debug(...) do { if (log_get_level() <= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
