/* Logging to stderr with <N> priority prefixes, as journald reads them. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

static int log_level = LOG_INFO;

void
log_init(int level)
{
	log_level = level;
	setvbuf(stderr, NULL, _IOLBF, 0);
}

void
log_setlevel(int level)
{
	log_level = level;
}

int
log_getlevel(void)
{
	return log_level;
}

int
log_level_parse(const char *s)
{
	static const char *const names[] = {"emerg", "alert", "crit", "err",
	    "warning", "notice", "info", "debug"};

	if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
		return s[0] - '0';
	for (int i = 0; i < 8; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	if (strcasecmp(s, "error") == 0)
		return LOG_ERR;
	if (strcasecmp(s, "warn") == 0)
		return LOG_WARNING;
	return -1;
}

static void
vlog(int pri, const char *errstr, const char *fmt, va_list ap)
{
	char buf[1024];

	if (pri > log_level)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (errstr != NULL)
		fprintf(stderr, "<%d>portd: %s: %s\n", pri, buf, errstr);
	else
		fprintf(stderr, "<%d>portd: %s\n", pri, buf);
}

/* A logging function; with_errno appends strerror(errno) as it was on
 * entry, then runs after (exit for the fatal ones). */
#define LOGFN(name, pri, with_errno, after)                                    \
	void name(const char *fmt, ...)                                        \
	{                                                                      \
		va_list ap;                                                    \
		const char *e = with_errno ? strerror(errno) : NULL;           \
		va_start(ap, fmt);                                             \
		vlog(pri, e, fmt, ap);                                         \
		va_end(ap);                                                    \
		after;                                                         \
	}

LOGFN(log_warn, LOG_WARNING, true, )
LOGFN(log_warnx, LOG_WARNING, false, )
LOGFN(log_notice, LOG_NOTICE, false, )
LOGFN(log_info, LOG_INFO, false, )
LOGFN(log_debug, LOG_DEBUG, false, )
LOGFN(fatal, LOG_CRIT, true, exit(1))
LOGFN(fatalx, LOG_CRIT, false, exit(1))
