/* portctl exec: run a command with leased ports, for as long as it runs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "portctl.h"

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

/* Seconds since an arbitrary start, for how long the command ran. */
static double
monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A command that exits with an error this soon failed at its start. */
#define EXEC_HINT_SECONDS 10.0

/*
 * A shared TCP hold (the default) leaves portd's socket on the port, and
 * a server that binds without SO_REUSEADDR (socketserver.TCPServer, many
 * hand-written ones) gets "Address already in use". The exit status
 * cannot say why the command failed, so say what to try if that is it.
 */
static void
exec_hint(const struct portd_lease *l, const char *cmd, int ex)
{
	say("%s exited with status %d; if it said \"Address already in use\", "
	    "it binds without SO_REUSEADDR, which the port portd holds shared "
	    "(%u) refuses: run it with --hold exclusive (portd lets go just "
	    "before the start), or --fd if it takes its socket from "
	    "LISTEN_FDS",
	    cmd, ex, l->ports[0]);
}

int
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
	double started;
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

	if ((ex = open_and_lease(&req, &h, &l)) != 0)
		return ex;
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
	started = monotonic();
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
	if (ex > 0 && ex < 126 && !req.fd && l->proto == PORTD_PROTO_TCP &&
	    l->hold == PORTD_HOLD_SHARED &&
	    monotonic() - started < EXEC_HINT_SECONDS)
		exec_hint(l, args[0], ex);
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
