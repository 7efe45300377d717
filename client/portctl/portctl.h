/*
 * portctl internals: what the command files share. Each file holds one
 * family of commands (portctl-lease.c: lease, release, renew, claim;
 * portctl-list.c; portctl-status.c; portctl-exec.c); portctl.c has the
 * command table, the global options and the helpers below. portctl uses
 * libportd's public API only.
 */
#ifndef PORTCTL_H
#define PORTCTL_H

#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "portd.h"

/* Exit codes (portctl(1)). */
#define EXIT_REFUSED 1  /* the daemon refused */
#define EXIT_USAGE   2  /* bad command line */
#define EXIT_NOD     69 /* no daemon reachable (EX_UNAVAILABLE) */
#define EXIT_OSERR   71 /* a local failure: memory, fork (EX_OSERR) */

/* The global options, as given. */
struct portctl_globals {
	const char *socket;
	bool no_autostart;
	int timeout_ms; /* 0: the library's default */
	bool stopping;  /* portctl stop: a missing daemon is nothing to stop */
	char daemon[PATH_MAX];
};
extern struct portctl_globals globals;

struct cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
	const char *help;
};

/* Option ids of long-only options. */
enum {
	OPT_SOCKET = 256,
	OPT_NO_AUTOSTART,
	OPT_TIMEOUT,
	OPT_HELP,
	OPT_VERSION,
	OPT_PROTO,
	OPT_FAMILY,
	OPT_PORT,
	OPT_CONTIGUOUS,
	OPT_TTL,
	OPT_NAME,
	OPT_HOLD,
	OPT_SCOPE,
	OPT_STRATEGY,
	OPT_JSON,
	OPT_ALL,
	OPT_FD,
	OPT_ENV,
};

#define GLOBAL_OPTIONS                                                         \
	{"socket", required_argument, NULL, OPT_SOCKET},                       \
	    {"no-autostart", no_argument, NULL, OPT_NO_AUTOSTART},             \
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},                 \
	{                                                                      \
		"help", no_argument, NULL, OPT_HELP                            \
	}

#define LEASE_OPTIONS                                                          \
	{"count", required_argument, NULL, 'n'},                               \
	    {"proto", required_argument, NULL, OPT_PROTO},                     \
	    {"family", required_argument, NULL, OPT_FAMILY},                   \
	    {"port", required_argument, NULL, OPT_PORT},                       \
	    {"contiguous", no_argument, NULL, OPT_CONTIGUOUS},                 \
	    {"ttl", required_argument, NULL, OPT_TTL},                         \
	    {"name", required_argument, NULL, OPT_NAME},                       \
	    {"hold", required_argument, NULL, OPT_HOLD},                       \
	{                                                                      \
		"strategy", required_argument, NULL, OPT_STRATEGY              \
	}

/* portctl.c */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A usage error: message, the command's usage line; returns EXIT_USAGE. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The exit code for a library error, after saying what went wrong. */
int report(struct portd *h, int err, const char *what);
/* Seconds (or ms with want_ms) from a duration in the grammar of
 * proto_duration_parse (a bare number is seconds); -1 if malformed, too
 * large, or (without want_ms) not a whole number of seconds. */
int64_t parse_duration(const char *s, bool want_ms);
/* An integer in [min, max], or -1. */
long parse_int(const char *s, long min, long max);
/* The usage error for a bad integer value of opt; EXIT_USAGE. */
int int_error(const char *opt, const char *arg, long min, long max);
/* --ttl's value in seconds, or -1 with *ret_exit set after saying why. */
int64_t ttl_option(const char *arg, int *ret_exit);
/* A global option, wherever it appears: 1 if opt was one, 0 if not, -1
 * to exit with *ret_exit. */
int global_option(int opt, const char *arg, int *ret_exit);
/* Connect (starting a daemon if we may). 0 or an exit code. */
int open_daemon(struct portd **ret);
/* A command that takes the global options and no argument: parse them;
 * 0, or an exit code after saying why. */
int global_options_only(int argc, char **argv);
/* open_daemon, then lease req: 0 with *ret_h and *ret_lease, or an exit
 * code (nothing left open) after saying why. */
int open_and_lease(const struct portd_lease_request *req, struct portd **ret_h,
    struct portd_lease **ret_lease);
/* "4m05s", "1h02m", "2d03h", "12s". */
void format_span(int64_t secs, char *buf, size_t size);

/* portctl-lease.c: lease, release, renew, claim; and the lease options
 * (LEASE_OPTIONS) exec shares. */
int lease_option(
    int opt, const char *arg, struct portd_lease_request *req, int *ret_exit);
int cmd_lease(int argc, char **argv);
int cmd_release(int argc, char **argv);
int cmd_renew(int argc, char **argv);
int cmd_claim(int argc, char **argv);
/* The lease a reference names: ID, port, name or unique ID prefix. 0 with
 * the id in ret_id (PORTD_MAX_ID + 1 bytes), or an exit code. */
int lease_resolve(struct portd *h, const char *ref, char *ret_id);
/* portctl-list.c */
int cmd_list(int argc, char **argv);
/* portctl-status.c */
int cmd_status(int argc, char **argv);
/* portctl-who.c */
int cmd_who(int argc, char **argv);
/* portctl-ops.c */
int cmd_stop(int argc, char **argv);
int cmd_metrics(int argc, char **argv);
/* portctl-exec.c */
int cmd_exec(int argc, char **argv);

#endif
