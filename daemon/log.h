/* Logging to stderr with <N> priority prefixes (sd-daemon(3) style). */
#ifndef PORTD_LOG_H
#define PORTD_LOG_H

#include <stdarg.h>
#include <syslog.h>

#define PORTD_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_init(int level);
void log_setlevel(int level);
int log_getlevel(void);
/* Parse "err", "warning", "notice", "info", "debug" or 3..7; -1 if bad. */
int log_level_parse(const char *);

void log_warn(const char *, ...) PORTD_PRINTF(1, 2); /* + errno text */
void log_warnx(const char *, ...) PORTD_PRINTF(1, 2);
void log_notice(const char *, ...) PORTD_PRINTF(1, 2);
void log_info(const char *, ...) PORTD_PRINTF(1, 2);
void log_debug(const char *, ...) PORTD_PRINTF(1, 2);
/* Broken invariant or unusable start: log and exit(1). */
_Noreturn void fatal(const char *, ...) PORTD_PRINTF(1, 2);
_Noreturn void fatalx(const char *, ...) PORTD_PRINTF(1, 2);

#endif
