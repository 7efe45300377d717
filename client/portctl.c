/* portctl: lease ports from portd, and run commands with them. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "portd.h"

#ifndef PORTD_VERSION
#define PORTD_VERSION "unknown"
#endif

/* Exit codes (portctl(1)). */
#define EXIT_REFUSED 1  /* the daemon refused */
#define EXIT_USAGE   2  /* bad command line */
#define EXIT_NOD     69 /* no daemon reachable (EX_UNAVAILABLE) */
#define EXIT_OSERR   71 /* a local failure: memory, fork (EX_OSERR) */

static struct {
	const char *socket;
	bool no_autostart;
	int timeout_ms; /* 0: the library's default */
	char daemon[PATH_MAX];
} g;

struct cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
	const char *help;
};

static const struct cmd *current;

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

static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
	va_list ap;

	fputs("portctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A usage error: message, the command's usage line, exit 2. */
static int __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("portctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (current != NULL)
		fprintf(stderr, "usage: portctl %s %s\n", current->name,
		    current->usage);
	else
		fputs("usage: portctl [OPTIONS] COMMAND [ARGS]  (see --help)\n",
		    stderr);
	return EXIT_USAGE;
}

/* The exit code for a library error, after saying what went wrong. */
static int
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

/*
 * Seconds (or ms with want_ms) from "90", "30s", "5m", "2h", "1d", and
 * with want_ms also "500ms". -1 if malformed or too large.
 */
static int64_t
parse_duration(const char *s, bool want_ms)
{
	static const struct {
		const char *suffix;
		int64_t ms;
	} units[] = {{"", 1000}, {"s", 1000}, {"ms", 1}, {"m", 60000},
	    {"h", 3600000}, {"d", 86400000}};
	int64_t n;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || n > INT32_MAX)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		if (!want_ms && units[i].ms < 1000)
			return -1;
		n *= units[i].ms;
		return want_ms ? n : n / 1000;
	}
	return -1;
}

/* An integer in [min, max], or -1. */
static long
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

/* The global options, wherever they appear. 1 if opt was one. */
static int
global_option(int opt, const char *arg, int *ret_exit)
{
	int64_t ms;

	switch (opt) {
	case OPT_SOCKET:
		g.socket = arg;
		return 1;
	case OPT_NO_AUTOSTART:
		g.no_autostart = true;
		return 1;
	case OPT_TIMEOUT:
		if ((ms = parse_duration(arg, true)) < 0 || ms > INT32_MAX) {
			*ret_exit = usage_error("bad --timeout '%s'", arg);
			return -1;
		}
		g.timeout_ms = ms == 0 ? -1 : (int)ms;
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

/* The lease options shared by lease and exec. 1 if opt was one. */
static int
lease_option(
    int opt, const char *arg, struct portd_lease_request *req, int *ret_exit)
{
	int64_t ttl;
	long n;
	int i;

	switch (opt) {
	case 'n':
		if ((n = parse_int(arg, 1, PORTD_MAX_PORTS)) < 0)
			goto bad;
		req->count = (unsigned)n;
		return 1;
	case OPT_PROTO:
		if ((i = portd_proto_from_name(arg)) < 0)
			goto bad;
		req->proto = (enum portd_proto)i;
		return 1;
	case OPT_FAMILY:
		if ((i = portd_family_from_name(arg)) < 0)
			goto bad;
		req->family = (enum portd_family)i;
		return 1;
	case OPT_PORT:
		if ((n = parse_int(arg, 1, 65535)) < 0)
			goto bad;
		req->port = (uint16_t)n;
		return 1;
	case OPT_CONTIGUOUS:
		req->contiguous = true;
		return 1;
	case OPT_TTL:
		if ((ttl = parse_duration(arg, false)) <= 0)
			goto bad;
		req->ttl = ttl;
		return 1;
	case OPT_NAME:
		req->name = arg;
		return 1;
	case OPT_HOLD:
		if ((i = portd_hold_from_name(arg)) < 0)
			goto bad;
		req->hold = (enum portd_hold)i;
		return 1;
	case OPT_STRATEGY:
		if ((i = portd_strategy_from_name(arg)) < 0)
			goto bad;
		req->strategy = (enum portd_strategy)i;
		return 1;
	}
	return 0;
bad:
	*ret_exit = usage_error("bad value '%s'", arg);
	return -1;
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
		int k =
		    snprintf(g.daemon, sizeof(g.daemon), "%s%s", self, rel[i]);
		if (k > 0 && (size_t)k < sizeof(g.daemon) &&
		    stat(g.daemon, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(g.daemon, X_OK) == 0)
			return;
	}
	g.daemon[0] = '\0';
}

/* Connect (starting a daemon if we may). 0 or an exit code. */
static int
open_daemon(struct portd **ret)
{
	char err[512] = "";
	struct portd_options opts = {
	    .socket = g.socket,
	    .timeout_ms = g.timeout_ms,
	    .autostart = !g.no_autostart,
	    .errbuf = err,
	    .errbuf_size = sizeof(err),
	};
	int rc;

	if (!g.no_autostart) {
		find_daemon_near_me();
		opts.daemon_path = g.daemon[0] ? g.daemon : NULL;
	}
	if ((rc = portd_connect(&opts, ret)) == 0)
		return 0;
	say("%s", err[0] ? err : portd_strerror(rc));
	return rc == PORTD_E_INVALID ? EXIT_USAGE
	       : rc == PORTD_E_NOMEM ? EXIT_OSERR
	                             : EXIT_NOD;
}

/* "15000-15003" for a run, else "15000,15007". */
static void
format_ports(const struct portd_lease *l, char *buf, size_t size)
{
	bool run = l->nports > 1;
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 1; i < l->nports; i++)
		if (l->ports[i] != l->ports[i - 1] + 1)
			run = false;
	if (run) {
		snprintf(
		    buf, size, "%u-%u", l->ports[0], l->ports[l->nports - 1]);
		return;
	}
	for (size_t i = 0; i < l->nports && off < size; i++) {
		int k = snprintf(
		    buf + off, size - off, "%s%u", i ? "," : "", l->ports[i]);
		if (k < 0)
			break;
		off += (size_t)k;
	}
}

/* "4m05s", "1h02m", "2d03h", "12s". */
static void
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

static void
format_expiry(int64_t expires_ms, char *buf, size_t size)
{
	struct timespec ts;
	int64_t now, left;
	char span[32];

	if (expires_ms < 0) {
		snprintf(buf, size, "never");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	left = expires_ms - now;
	if (left <= 0) {
		snprintf(buf, size, "expired");
		return;
	}
	format_span((left + 999) / 1000, span, sizeof(span));
	snprintf(buf, size, "in %s", span);
}

/* The process name of pid from /proc/PID/comm, or "-". */
static void
process_name(pid_t pid, char *buf, size_t size)
{
	char path[64];
	FILE *f;

	snprintf(buf, size, "-");
	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return;
	if (fgets(buf, (int)size, f) == NULL)
		snprintf(buf, size, "-");
	buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

static void
print_ports(const struct portd_lease *l)
{
	for (size_t i = 0; i < l->nports; i++)
		printf("%u\n", l->ports[i]);
}

static int
cmd_lease(int argc, char **argv)
{
	static const struct option opts[] = {GLOBAL_OPTIONS, LEASE_OPTIONS,
	    {"scope", required_argument, NULL, OPT_SCOPE},
	    {"json", no_argument, NULL, OPT_JSON}, {NULL, 0, NULL, 0}};
	struct portd_lease_request req = {0};
	struct portd_lease *l;
	struct portd *h;
	bool json = false;
	int opt, rc, ex = 0, i;

	while ((opt = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
		if (global_option(opt, optarg, &ex) < 0 ||
		    lease_option(opt, optarg, &req, &ex) < 0)
			return ex;
		if (opt == OPT_JSON)
			json = true;
		else if (opt == OPT_SCOPE) {
			/* process scope needs a pid to watch: not ours, as
			 * the lease would end when portctl exits. */
			if ((i = portd_scope_from_name(optarg)) < 0 ||
			    i == PORTD_SCOPE_PROCESS)
				return usage_error("bad --scope '%s'", optarg);
			req.scope = (enum portd_scope)i;
		}
	}
	if (optind != argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if ((ex = open_daemon(&h)) != 0)
		return ex;
	if ((rc = portd_lease(h, &req, &l)) < 0) {
		ex = report(h, rc, "lease");
		portd_close(h);
		return ex;
	}
	if (json)
		printf("%s\n", l->json);
	else
		print_ports(l);
	portd_lease_free(l);
	portd_close(h);
	return 0;
}

/* A lease id, or a port number when all digits. */
static int
cmd_release(int argc, char **argv)
{
	static const struct option opts[] = {
	    GLOBAL_OPTIONS, {NULL, 0, NULL, 0}};
	struct portd *h;
	int opt, rc, ex = 0;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1)
		if (global_option(opt, optarg, &ex) < 0)
			return ex;
	if (optind == argc)
		return usage_error("which lease? give an ID or a PORT");
	for (int i = optind; i < argc; i++)
		if (argv[i][0] >= '0' && argv[i][0] <= '9' &&
		    parse_int(argv[i], 1, 65535) < 0)
			return usage_error("bad port '%s'", argv[i]);
	if ((ex = open_daemon(&h)) != 0)
		return ex;
	for (int i = optind; i < argc; i++) {
		long port = parse_int(argv[i], 1, 65535);

		rc = port > 0 ? portd_release_port(h, (uint16_t)port)
		              : portd_release(h, argv[i]);
		if (rc >= 0)
			continue;
		rc = report(h, rc, argv[i]);
		if (rc != EXIT_REFUSED) {
			ex = rc;
			break; /* the connection is gone */
		}
		ex = EXIT_REFUSED;
	}
	portd_close(h);
	return ex;
}

/* renew and claim: one lease id, the updated lease printed with --json. */
static int
lease_id_command(int argc, char **argv, bool renew)
{
	static const struct option renew_opts[] = {GLOBAL_OPTIONS,
	    {"ttl", required_argument, NULL, OPT_TTL},
	    {"json", no_argument, NULL, OPT_JSON}, {NULL, 0, NULL, 0}};
	static const struct option claim_opts[] = {GLOBAL_OPTIONS,
	    {"json", no_argument, NULL, OPT_JSON}, {NULL, 0, NULL, 0}};
	struct portd_lease *l;
	struct portd *h;
	int64_t ttl = 0;
	bool json = false;
	int opt, rc, ex = 0;

	while ((opt = getopt_long(argc, argv, "",
	            renew ? renew_opts : claim_opts, NULL)) != -1) {
		if (global_option(opt, optarg, &ex) < 0)
			return ex;
		if (opt == OPT_JSON)
			json = true;
		else if (opt == OPT_TTL &&
		         (ttl = parse_duration(optarg, false)) <= 0)
			return usage_error("bad --ttl '%s'", optarg);
	}
	if (argc - optind != 1)
		return usage_error("give exactly one lease ID");
	if ((ex = open_daemon(&h)) != 0)
		return ex;
	rc = renew ? portd_renew(h, argv[optind], ttl, &l)
	           : portd_claim(h, argv[optind], &l);
	if (rc < 0) {
		ex = report(h, rc, argv[optind]);
		portd_close(h);
		return ex;
	}
	if (json)
		printf("%s\n", l->json);
	portd_lease_free(l);
	portd_close(h);
	return 0;
}

static int
cmd_renew(int argc, char **argv)
{
	return lease_id_command(argc, argv, true);
}

static int
cmd_claim(int argc, char **argv)
{
	return lease_id_command(argc, argv, false);
}

static int
cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {GLOBAL_OPTIONS,
	    {"all", no_argument, NULL, OPT_ALL},
	    {"json", no_argument, NULL, OPT_JSON}, {NULL, 0, NULL, 0}};
	static const char *const head[] = {"ID", "PORTS", "PROTO", "HOLD",
	    "SCOPE", "UID", "PID", "COMMAND", "NAME", "EXPIRES"};
	enum { NCOL = 10 };
	struct portd_lease *leases;
	struct portd *h;
	size_t n, width[NCOL];
	bool all = false, json = false;
	char *(*cells)[NCOL];
	int opt, rc, ex = 0;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (global_option(opt, optarg, &ex) < 0)
			return ex;
		if (opt == OPT_ALL)
			all = true;
		else if (opt == OPT_JSON)
			json = true;
	}
	if (optind != argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if ((ex = open_daemon(&h)) != 0)
		return ex;
	if ((rc = portd_list(h, all, &leases, &n)) < 0) {
		ex = report(h, rc, "list");
		portd_close(h);
		return ex;
	}
	portd_close(h);
	if (json) {
		printf("[");
		for (size_t i = 0; i < n; i++)
			printf("%s%s", i ? "," : "", leases[i].json);
		printf("]\n");
		portd_lease_list_free(leases, n);
		return 0;
	}
	if (n == 0) {
		portd_lease_list_free(leases, n);
		return 0;
	}
	if ((cells = calloc(n, sizeof(*cells))) == NULL) {
		portd_lease_list_free(leases, n);
		say("out of memory");
		return EXIT_OSERR;
	}
	for (int c = 0; c < NCOL; c++)
		width[c] = strlen(head[c]);
	for (size_t i = 0; i < n; i++) {
		const struct portd_lease *l = &leases[i];
		char ports[PORTD_MAX_PORTS * 6 + 1], comm[64], exp[64];
		char uid[16], pid[16];

		format_ports(l, ports, sizeof(ports));
		process_name(l->owner_pid, comm, sizeof(comm));
		format_expiry(l->expires, exp, sizeof(exp));
		snprintf(uid, sizeof(uid), "%u", (unsigned)l->owner_uid);
		snprintf(pid, sizeof(pid), "%d", (int)l->owner_pid);
		const char *row[NCOL] = {l->id, ports,
		    portd_proto_name(l->proto), portd_hold_name(l->hold),
		    portd_scope_name(l->scope), uid, pid, comm,
		    l->name[0] ? l->name : "-", exp};
		for (int c = 0; c < NCOL; c++) {
			if ((cells[i][c] = strdup(row[c])) == NULL) {
				say("out of memory");
				exit(EXIT_OSERR);
			}
			if (strlen(row[c]) > width[c])
				width[c] = strlen(row[c]);
		}
	}
	for (int c = 0; c < NCOL; c++)
		printf("%-*s%s", c < NCOL - 1 ? (int)width[c] : 0, head[c],
		    c < NCOL - 1 ? "  " : "\n");
	for (size_t i = 0; i < n; i++) {
		for (int c = 0; c < NCOL; c++) {
			printf("%-*s%s", c < NCOL - 1 ? (int)width[c] : 0,
			    cells[i][c], c < NCOL - 1 ? "  " : "\n");
			free(cells[i][c]);
		}
	}
	free(cells);
	portd_lease_list_free(leases, n);
	return 0;
}

static int
cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {GLOBAL_OPTIONS,
	    {"json", no_argument, NULL, OPT_JSON}, {NULL, 0, NULL, 0}};
	struct portd_status *s;
	struct portd *h;
	bool json = false;
	char span[32];
	int opt, rc, ex = 0;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (global_option(opt, optarg, &ex) < 0)
			return ex;
		if (opt == OPT_JSON)
			json = true;
	}
	if (optind != argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if ((ex = open_daemon(&h)) != 0)
		return ex;
	if ((rc = portd_status(h, &s)) < 0) {
		ex = report(h, rc, "status");
		portd_close(h);
		return ex;
	}
	if (json) {
		printf("%s\n", s->json);
	} else {
		format_span(s->uptime < 0 ? 0 : s->uptime, span, sizeof(span));
		printf("server       %s (protocol %" PRId64 ")\n", s->server,
		    s->version);
		printf("socket       %s\n", portd_socket_path(h));
		printf("pid          %d\n", (int)s->pid);
		printf("uptime       %s\n", span);
		printf("leases       %" PRId64 "\n", s->leases);
		printf("ports        %" PRId64 "\n", s->ports);
		printf("sockets      %" PRId64 "\n", s->sockets);
		printf("connections  %" PRId64 "\n", s->connections);
		printf("pool         %" PRId64 "-%" PRId64 ", %" PRId64
		       " of %" PRId64 " free\n",
		    s->pool_lo, s->pool_hi, s->pool_free, s->pool_size);
		for (size_t i = 0; i < s->ncounters; i++)
			printf("%-24s %" PRId64 "\n", s->counters[i].name,
			    s->counters[i].value);
	}
	portd_status_free(s);
	portd_close(h);
	return 0;
}

/* Length of a {port} or {portN} placeholder at p (N in *ret_idx), or 0. */
static size_t
placeholder_at(const char *p, long *ret_idx)
{
	char *end;

	if (strncmp(p, "{port", 5) != 0)
		return 0;
	if (p[5] == '}') {
		*ret_idx = 0;
		return 6;
	}
	if (p[5] < '0' || p[5] > '9')
		return 0;
	*ret_idx = strtol(p + 5, &end, 10);
	if (*end != '}' || end - (p + 5) > 3)
		return 0;
	return (size_t)(end + 1 - p);
}

/* Highest port index the arguments refer to, or -1. */
static long
max_placeholder(char **args, int n)
{
	long max = -1, idx;

	for (int i = 0; i < n; i++)
		for (const char *p = args[i]; *p; p++)
			if (placeholder_at(p, &idx) > 0 && idx > max)
				max = idx;
	return max;
}

/* exec: arg with every placeholder replaced (all indexes checked). */
static char *
substitute(const char *arg, const uint16_t *ports)
{
	size_t cap = strlen(arg) * 3 + 1, len = 0, k;
	char *out = malloc(cap);
	long idx;

	if (out == NULL)
		return NULL;
	for (const char *p = arg; *p;) {
		if ((k = placeholder_at(p, &idx)) > 0) {
			/* 6+ bytes replaced by at most 5 digits. */
			len += (size_t)snprintf(
			    out + len, cap - len, "%u", ports[idx]);
			p += k;
		} else
			out[len++] = *p++;
	}
	out[len] = '\0';
	return out;
}

static bool
env_name_valid(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
	        *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		        (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/* LISTEN_FDNAMES entry: the lease name, else "tcp-PORT"; never ':'. */
static void
fd_name(const struct portd_lease *l, const struct portd_socket *s, char *buf,
    size_t size)
{
	if (l->name[0] != '\0')
		snprintf(buf, size, "%s", l->name);
	else
		snprintf(
		    buf, size, "%s-%u", portd_proto_name(s->proto), s->port);
	for (char *p = buf; *p; p++)
		if (*p == ':' || *p < 0x21 || *p == 0x7f)
			*p = '_';
}

/* In the child: the environment, the sockets at 3..., then exec. */
static _Noreturn void
exec_child(struct portd_lease *l, bool pass_fds, char **envs, int nenvs,
    char **args, const sigset_t *oldmask)
{
	char name[32], val[PORTD_MAX_PORTS * 6 + 1];
	size_t off = 0;
	int e;

	snprintf(val, sizeof(val), "%u", l->ports[0]);
	setenv("PORT", val, 1);
	for (size_t i = 0; i < l->nports; i++) {
		snprintf(name, sizeof(name), "PORT_%zu", i);
		snprintf(val, sizeof(val), "%u", l->ports[i]);
		setenv(name, val, 1);
		if (i < (size_t)nenvs)
			setenv(envs[i], val, 1);
	}
	for (size_t i = 0; i < l->nports; i++)
		off += (size_t)snprintf(val + off, sizeof(val) - off, "%s%u",
		    i ? " " : "", l->ports[i]);
	setenv("PORTS", val, 1);

	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	if (pass_fds && l->nsockets > 0) {
		int n = (int)l->nsockets, tmp[PORTD_MAX_SOCKETS];
		size_t namelen = 0;
		char *names;

		/* Above the target range first, so dup2 clobbers nothing. */
		for (int i = 0; i < n; i++)
			if ((tmp[i] = fcntl(l->sockets[i].fd, F_DUPFD_CLOEXEC,
			         3 + n)) == -1)
				goto fail;
		for (int i = 0; i < n; i++)
			if (dup2(tmp[i], 3 + i) == -1)
				goto fail;
		names = malloc((size_t)n * (PORTD_MAX_NAME + 2));
		if (names == NULL)
			goto fail;
		for (int i = 0; i < n; i++) {
			fd_name(l, &l->sockets[i], names + namelen,
			    PORTD_MAX_NAME + 1);
			namelen += strlen(names + namelen);
			names[namelen++] = ':';
		}
		names[namelen - 1] = '\0';
		snprintf(val, sizeof(val), "%d", n);
		setenv("LISTEN_FDS", val, 1);
		snprintf(val, sizeof(val), "%d", (int)getpid());
		setenv("LISTEN_PID", val, 1);
		setenv("LISTEN_FDNAMES", names, 1);
	}
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	execvp(args[0], args);
fail:
	e = errno;
	fprintf(stderr, "portctl: %s: %s\n", args[0], strerror(e));
	_exit(e == ENOENT ? 127 : 126);
}

/*
 * Wait for the child, forwarding SIGINT, SIGTERM and SIGHUP sent to us.
 * A signal the terminal sent (SI_KERNEL) reached the child's process
 * group already and is not sent twice.
 */
static int
wait_child(pid_t child, const sigset_t *set)
{
	siginfo_t si;
	int status;

	for (;;) {
		pid_t r = waitpid(child, &status, WNOHANG);
		if (r == child)
			break;
		if (r == -1 && errno != EINTR) {
			say("waitpid: %s", strerror(errno));
			return EXIT_OSERR;
		}
		if (sigwaitinfo(set, &si) == -1)
			continue;
		if (si.si_signo != SIGCHLD && si.si_code != SI_KERNEL)
			kill(child, si.si_signo);
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static int
cmd_exec(int argc, char **argv)
{
	static const struct option opts[] = {GLOBAL_OPTIONS, LEASE_OPTIONS,
	    {"fd", no_argument, NULL, OPT_FD},
	    {"env", required_argument, NULL, OPT_ENV}, {NULL, 0, NULL, 0}};
	struct portd_lease_request req = {.scope = PORTD_SCOPE_SESSION};
	struct portd_lease *l;
	struct portd *h;
	char *envs[PORTD_MAX_PORTS], **args = NULL;
	int opt, rc, ex = 0, nenvs = 0, nargs;
	unsigned count;
	long maxidx;
	sigset_t set, oldmask;
	pid_t child;

	/* '+': stop at the command, so its own options stay its own. */
	while ((opt = getopt_long(argc, argv, "+n:", opts, NULL)) != -1) {
		if (global_option(opt, optarg, &ex) < 0 ||
		    lease_option(opt, optarg, &req, &ex) < 0)
			return ex;
		if (opt == OPT_FD)
			req.fd = true;
		else if (opt == OPT_ENV) {
			if (!env_name_valid(optarg))
				return usage_error(
				    "bad --env name '%s'", optarg);
			if (nenvs == PORTD_MAX_PORTS)
				return usage_error("too many --env");
			envs[nenvs++] = optarg;
		}
	}
	nargs = argc - optind;
	if (nargs <= 0)
		return usage_error("which command?");
	count = req.count ? req.count : 1;
	if ((unsigned)nenvs > count)
		return usage_error("%d --env names for %u ports", nenvs, count);
	if ((maxidx = max_placeholder(argv + optind, nargs)) >= (long)count)
		return usage_error(
		    "{port%ld} but only %u ports leased", maxidx, count);

	if ((ex = open_daemon(&h)) != 0)
		return ex;
	if ((rc = portd_lease(h, &req, &l)) < 0) {
		ex = report(h, rc, "lease");
		portd_close(h);
		return ex;
	}
	if ((args = calloc((size_t)nargs + 1, sizeof(*args))) == NULL)
		goto oom;
	for (int i = 0; i < nargs; i++)
		if ((args[i] = substitute(argv[optind + i], l->ports)) == NULL)
			goto oom;

	/* Claim just before the start: the window is as short as it gets. */
	if (!req.fd &&
	    (l->hold == PORTD_HOLD_EXCLUSIVE || l->proto != PORTD_PROTO_TCP) &&
	    (rc = portd_claim(h, l->id, NULL)) < 0) {
		ex = report(h, rc, "claim");
		goto out;
	}

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &oldmask);
	fflush(NULL);
	child = fork();
	if (child == -1) {
		say("fork: %s", strerror(errno));
		sigprocmask(SIG_SETMASK, &oldmask, NULL);
		ex = EXIT_OSERR;
		goto out;
	}
	if (child == 0)
		exec_child(l, req.fd, envs, nenvs, args, &oldmask);
	/* The child has the sockets now; we keep only the lease. */
	for (size_t i = 0; i < l->nsockets; i++) {
		close(l->sockets[i].fd);
		l->sockets[i].fd = -1;
	}
	ex = wait_child(child, &set);
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	/* The lease ends with our connection anyway; say so explicitly. */
	portd_release(h, l->id);
	goto out;
oom:
	say("out of memory");
	ex = EXIT_OSERR;
out:
	for (int i = 0; args != NULL && i < nargs; i++)
		free(args[i]);
	free(args);
	portd_lease_free(l);
	portd_close(h);
	return ex;
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
        "  --ttl DURATION     lifetime: 90, 30s, 5m, 2h, 1d\n"
        "  --name NAME        a label shown by list\n"
        "  --hold H           shared (default for tcp) or exclusive\n"
        "  --scope S          ttl (default) or session\n"
        "  --strategy S       pool or ephemeral\n"
        "  --json             print the lease as JSON\n"},
    {"release", cmd_release, "ID|PORT...",
        "End leases, named by lease ID or by one of their ports.\n"},
    {"renew", cmd_renew, "ID [--ttl DURATION] [--json]",
        "Extend a lease by DURATION from now (default: its own TTL).\n"},
    {"claim", cmd_claim, "ID [--json]",
        "Make portd let go of a lease's sockets (the ports stay\n"
        "reserved) so that its owner can bind them itself.\n"},
    {"list", cmd_list, "[--all] [--json]",
        "List your leases (every user's with --all, root only).\n"},
    {"status", cmd_status, "[--json]", "Show the daemon's status.\n"},
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
	      "                     else $XDG_RUNTIME_DIR/portd/portd.sock)\n"
	      "  --no-autostart     do not start a per-user portd\n"
	      "  --timeout DURATION per request (default 5s; 0: none)\n"
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
		g.no_autostart = true;
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
