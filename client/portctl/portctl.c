/* portctl: lease ports from portd, and run commands with them. The
 * command table, the global options and the helpers every command uses. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "portctl.h"
#include "shared.h"

#ifndef PORTD_VERSION
#define PORTD_VERSION "unknown"
#endif

struct portctl_globals globals;

static const struct cmd *current;

static void
vsay(const char *fmt, va_list ap)
{
	fputs("portctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
}

/* A usage error: message, the command's usage line, exit 2. */
int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	if (current != NULL)
		fprintf(stderr, "usage: portctl %s %s\n", current->name,
		    current->usage);
	else
		fputs("usage: portctl [OPTIONS] COMMAND [ARGS]  (see --help)\n",
		    stderr);
	return EXIT_USAGE;
}

/* The exit code for a library error, after saying what went wrong. */
int
report(struct portd *h, int err, const char *what)
{
	const char *msg = portd_errmsg(h);

	if (msg[0] == '\0')
		msg = portd_strerror(err);
	if (err > PORTD_E_NO_DAEMON) {
		fprintf(stderr, "portctl: %s: %s: %s\n", what,
		    portd_error_name(err), msg);
		return EXIT_REFUSED;
	}
	fprintf(stderr, "portctl: %s: %s\n", what, msg);
	switch (err) {
	case PORTD_E_INVALID:
		return EXIT_USAGE;
	case PORTD_E_NOMEM:
		return EXIT_OSERR;
	default:
		return EXIT_NOD;
	}
}

/* Seconds (or ms with want_ms) from a duration; see portctl.h. */
int64_t
parse_duration(const char *s, bool want_ms)
{
	int64_t ms;

	if (proto_duration_parse(s, PROTO_MS_SECOND, &ms) == -1 ||
	    ms / PROTO_MS_SECOND > INT32_MAX)
		return -1;
	if (want_ms)
		return ms;
	return ms % PROTO_MS_SECOND == 0 ? ms / PROTO_MS_SECOND : -1;
}

/* An integer in [min, max], or -1. */
long
parse_int(const char *s, long min, long max)
{
	char *end;
	long n;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -1;
	return n;
}

int
int_error(const char *opt, const char *arg, long min, long max)
{
	if (*arg != '\0' && strspn(arg, "0123456789") == strlen(arg))
		return usage_error(
		    "%s: '%s' is out of range (%ld..%ld)", opt, arg, min, max);
	return usage_error(
	    "%s: '%s' is not a whole number (%ld..%ld)", opt, arg, min, max);
}

int64_t
ttl_option(const char *arg, int *ret_exit)
{
	int64_t ttl = parse_duration(arg, false);

	if (ttl <= 0 || ttl > 366 * 86400) {
		*ret_exit = usage_error(
		    "--ttl: '%s' is not a duration from 1s to 366d in whole "
		    "seconds; use " PROTO_DURATION_FORMS,
		    arg);
		return -1;
	}
	return ttl;
}

/* The global options, wherever they appear. 1 if opt was one. */
int
global_option(int opt, const char *arg, int *ret_exit)
{
	int64_t ms;

	switch (opt) {
	case OPT_SOCKET:
		globals.socket = arg;
		return 1;
	case OPT_NO_AUTOSTART:
		globals.no_autostart = true;
		return 1;
	case OPT_TIMEOUT:
		if ((ms = parse_duration(arg, true)) < 0 || ms > INT32_MAX) {
			*ret_exit =
			    usage_error("--timeout: '%s' is not a duration "
			                "from 0 (no limit) "
			                "to 24d; use " PROTO_DURATION_FORMS,
			        arg);
			return -1;
		}
		globals.timeout_ms = ms == 0 ? -1 : (int)ms;
		return 1;
	case OPT_HELP:
		printf("usage: portctl %s %s\n\n%s", current->name,
		    current->usage, current->help);
		*ret_exit = 0;
		return -1;
	case '?':
		*ret_exit =
		    usage_error("see 'portctl %s --help'", current->name);
		return -1;
	}
	return 0;
}

/* portd beside our own binary: installed (bin/ next to sbin/), or in the
 * build tree (client/ next to daemon/). */
static void
find_daemon_near_me(void)
{
	static const char *const rel[] = {
	    "/portd", "/../sbin/portd", "/../daemon/portd", NULL};
	char self[PATH_MAX], *slash;
	struct stat st;
	ssize_t n;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return;
	self[n] = '\0';
	if ((slash = strrchr(self, '/')) == NULL)
		return;
	*slash = '\0';
	for (int i = 0; rel[i] != NULL; i++) {
		int k = snprintf(globals.daemon, sizeof(globals.daemon), "%s%s",
		    self, rel[i]);
		if (k > 0 && (size_t)k < sizeof(globals.daemon) &&
		    stat(globals.daemon, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(globals.daemon, X_OK) == 0)
			return;
	}
	globals.daemon[0] = '\0';
}

/* What to do when nothing answers: one line, depending on why. */
static void
no_daemon_hint(void)
{
	const char *env = getenv("PORTD_SOCKET");
	bool env_set = env != NULL && env[0] != '\0';

	if (globals.stopping)
		say("nothing to stop");
	else if (globals.socket != NULL)
		say("start one there with 'portd --socket %s &', or leave out "
		    "--socket to use your own (started when needed)",
		    globals.socket);
	else if (env_set)
		say("start one there with 'portd --socket %s &', or unset "
		    "PORTD_SOCKET to use your own (started when needed)",
		    env);
	else if (globals.no_autostart)
		say("start one with 'portd &' or 'systemctl --user start "
		    "portd.socket', or let portctl start it (leave out "
		    "--no-autostart and PORTD_NO_AUTOSTART=1)");
	else
		say("run 'portd' in the foreground to see why it does not "
		    "start (its log is portd.log beside the socket)");
}

/* Connect (starting a daemon if we may). 0 or an exit code. */
int
global_options_only(int argc, char **argv)
{
	static const struct option opts[] = {
	    GLOBAL_OPTIONS, {NULL, 0, NULL, 0}};
	int opt, ex = 0;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1)
		if (global_option(opt, optarg, &ex) < 0)
			return ex;
	if (optind != argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	return 0;
}

int
open_and_lease(const struct portd_lease_request *req, struct portd **ret_h,
    struct portd_lease **ret_lease)
{
	int ex, rc;

	if ((ex = open_daemon(ret_h)) != 0)
		return ex;
	if ((rc = portd_lease(*ret_h, req, ret_lease)) < 0) {
		ex = report(*ret_h, rc, "lease");
		portd_close(*ret_h);
		return ex;
	}
	return 0;
}

int
open_daemon(struct portd **ret)
{
	char err[512] = "";
	struct portd_options opts = {
	    .socket = globals.socket,
	    .timeout_ms = globals.timeout_ms,
	    .autostart = !globals.no_autostart,
	    .errbuf = err,
	    .errbuf_size = sizeof(err),
	};
	int rc;

	if (!globals.no_autostart) {
		find_daemon_near_me();
		opts.daemon_path = globals.daemon[0] ? globals.daemon : NULL;
	}
	if ((rc = portd_connect(&opts, ret)) == 0)
		return 0;
	say("%s", err[0] ? err : portd_strerror(rc));
	if (rc == PORTD_E_NO_DAEMON)
		no_daemon_hint();
	return rc == PORTD_E_INVALID ? EXIT_USAGE
	       : rc == PORTD_E_NOMEM ? EXIT_OSERR
	                             : EXIT_NOD;
}

/* "4m05s", "1h02m", "2d03h", "12s". */
void
format_span(int64_t secs, char *buf, size_t size)
{
	if (secs >= 86400)
		snprintf(buf, size, "%" PRId64 "d%02" PRId64 "h", secs / 86400,
		    secs % 86400 / 3600);
	else if (secs >= 3600)
		snprintf(buf, size, "%" PRId64 "h%02" PRId64 "m", secs / 3600,
		    secs % 3600 / 60);
	else if (secs >= 60)
		snprintf(buf, size, "%" PRId64 "m%02" PRId64 "s", secs / 60,
		    secs % 60);
	else
		snprintf(buf, size, "%" PRId64 "s", secs);
}

static const struct cmd commands[] = {
    {"lease", cmd_lease,
        "[-n N] [--proto P] [--family F] [--port N] [--contiguous] "
        "[--ttl DURATION] [--name NAME] [--hold H] [--scope S] [--json]",
        "Lease ports and print them, one a line (or the lease as JSON).\n"
        "  -n, --count N      ports to lease (1-64, default 1)\n"
        "  --proto P          tcp (default), udp or both\n"
        "  --family F         dual (default), ipv4 or ipv6\n"
        "  --port N           this port, if free\n"
        "  --contiguous       consecutive ports\n"
        "  --ttl DURATION     lifetime: 90, 30s, 5m, 1h30m, 2d\n"
        "  --name NAME        a label shown by list\n"
        "  --hold H           shared (default for tcp) or exclusive\n"
        "  --scope S          ttl (default) or session\n"
        "  --strategy S       pool or ephemeral\n"
        "  --json             print the lease as JSON\n"},
    {"release", cmd_release, "LEASE...",
        "End leases. A LEASE is its ID, one of its ports, its --name, or\n"
        "a prefix of its ID that no other lease of yours shares.\n"},
    {"renew", cmd_renew, "LEASE [--ttl DURATION] [--json]",
        "Extend a lease by DURATION from now (default: its own TTL).\n"
        "LEASE: its ID, a port, its --name, or a unique ID prefix.\n"},
    {"claim", cmd_claim, "LEASE [--json]",
        "Make portd let go of a lease's sockets (the ports stay\n"
        "reserved) so that its owner can bind them itself.\n"
        "LEASE: its ID, a port, its --name, or a unique ID prefix.\n"},
    {"list", cmd_list, "[--all] [--json]",
        "List your leases (every user's with --all, root only).\n"},
    {"status", cmd_status, "[--json]", "Show the daemon's status.\n"},
    {"who", cmd_who, "PORT[/tcp|/udp] [--json]",
        "Who holds a port, for any user: the daemon's lease (owner, name,\n"
        "state, command) and what the kernel shows (held TCP ports are\n"
        "bound, non-listening sockets, which ss and lsof cannot see).\n"},
    {"stop", cmd_stop, "",
        "Stop the daemon (root or the daemon's own user), as SIGTERM\n"
        "does: no lease ends, its next start restores them. Waits until\n"
        "it has exited.\n"},
    {"metrics", cmd_metrics, "",
        "Print the daemon's metrics in the Prometheus text format, as its\n"
        "--metrics-address endpoint serves them (for node_exporter's\n"
        "textfile collector).\n"},
    {"exec", cmd_exec,
        "[LEASE OPTIONS] [--fd] [--env NAME]... -- COMMAND [ARG...]",
        "Run COMMAND with leased ports, for as long as it runs.\n"
        "The ports are in PORT, PORTS (space separated) and PORT_0...,\n"
        "and replace {port} and {port0}... in the arguments.\n"
        "  LEASE OPTIONS      as for lease, without --scope and --json\n"
        "  --env NAME         also put the next port in NAME (repeatable)\n"
        "  --fd               pass the bound sockets as fds 3... the\n"
        "                     systemd way (LISTEN_FDS, LISTEN_PID,\n"
        "                     LISTEN_FDNAMES) instead of claiming\n"
        "Exclusive and UDP leases are claimed just before COMMAND starts\n"
        "(unless --fd). SIGINT, SIGTERM and SIGHUP are passed on.\n"
        "Exits with COMMAND's status (128+N if killed by signal N).\n"},
};

static void
help(FILE *f)
{
	fputs("usage: portctl [OPTIONS] COMMAND [ARGS]\n\n"
	      "Lease TCP and UDP ports from portd.\n\n"
	      "Commands:\n",
	    f);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].usage);
	fputs("\nOptions (also after COMMAND):\n"
	      "  --socket PATH      the daemon's socket (default: "
	      "$PORTD_SOCKET,\n"
	      "                     else /run/portd/portd.sock if a daemon "
	      "answers,\n"
	      "                     else $XDG_RUNTIME_DIR/portd/portd.sock)\n"
	      "  --no-autostart     do not start a per-user portd\n"
	      "  --timeout DURATION per request (default 5s; 0: none)\n"
	      "\nA DURATION is a systemd time span: 90, 90s, 5m, 1h30m, 2d...\n"
	      "  --help, --version\n\n"
	      "'portctl COMMAND --help' describes COMMAND. Exit status: 0 ok,\n"
	      "1 the daemon refused, 2 usage, 69 no daemon reachable.\n",
	    f);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {GLOBAL_OPTIONS,
	    {"version", no_argument, NULL, OPT_VERSION}, {NULL, 0, NULL, 0}};
	const char *env = getenv("PORTD_NO_AUTOSTART");
	int opt;

	if (env != NULL && strcmp(env, "1") == 0)
		globals.no_autostart = true;
	while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (opt) {
		case OPT_HELP:
			help(stdout);
			return 0;
		case OPT_VERSION:
			printf("portctl %s (protocol %d)\n", PORTD_VERSION,
			    PORTD_PROTOCOL_VERSION);
			return 0;
		case '?':
			return usage_error("see 'portctl --help'");
		default: {
			int ex = 0;
			if (global_option(opt, optarg, &ex) < 0)
				return ex;
		}
		}
	}
	if (optind == argc)
		return usage_error("which command?");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name) == 0) {
			current = &commands[i];
			argc -= optind;
			argv += optind;
			optind = 0; /* restart getopt for the command */
			return current->run(argc, argv);
		}
	}
	return usage_error("unknown command '%s'", argv[optind]);
}
