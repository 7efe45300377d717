/*
 * One host: which daemon a client finds, a client in another network
 * namespace, who holds a port, and a restored lease that cannot hold its
 * port. Runs in its own network namespace (root), so the default pool
 * and the system socket's name are its own; exits 77 (skipped) where
 * none can be made.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "integ.h"
#include "portd.h"
#include "shared.h"

#define POOL "25600-25699"

static const char *const pool_args[] = {"--pool", POOL, NULL};

static int
enter_netns(void)
{
	struct ifreq ifr = {0};
	int fd;

	if (unshare(CLONE_NEWNET) == -1)
		return -1;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (fd == -1 || ioctl(fd, SIOCGIFFLAGS, &ifr) == -1 ||
	    (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr)) == -1)
		return -1;
	close(fd);
	return 0;
}

/*
 * In a child with a private XDG_RUNTIME_DIR and no PORTD_SOCKET: connect
 * with libportd's discovery and write which step answered to the pipe.
 */
static void
discover(const char *system_sock, const char *xdg, bool autostart, char *via,
    size_t size)
{
	int p[2];
	pid_t pid;
	ssize_t n;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		struct portd_options o = {
		    .autostart = autostart, .daemon_path = harness_portd_bin};
		struct portd *h;
		const char *v;

		unsetenv("PORTD_SOCKET");
		unsetenv("PORTD_NO_AUTOSTART");
		setenv("PORTD_SYSTEM_SOCKET", system_sock, 1);
		setenv("XDG_RUNTIME_DIR", xdg, 1);
		v = portd_connect(&o, &h) == 0 ? portd_socket_via(h) : "none";
		if (write(p[1], v, strlen(v)) < 0)
			_exit(1);
		portd_close(h);
		_exit(0);
	}
	close(p[1]);
	n = read(p[0], via, size - 1);
	via[n > 0 ? n : 0] = '\0';
	close(p[0]);
	waitpid(pid, NULL, 0);
}

/* A client with no PORTD_SOCKET uses a daemon on the system socket and
 * starts none of its own; without one, it starts its per-user daemon. */
START_TEST(discovery_prefers_the_system_socket)
{
	struct daemon_proc sys;
	char xdg[] = "/tmp/portd-xdg-XXXXXX", user_sock[128], via[32];
	struct stat st;
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(xdg));
	snprintf(user_sock, sizeof(user_sock), "%s/portd/portd.sock", xdg);
	harness_start(&sys, pool_args);

	discover(sys.sock, xdg, true, via, sizeof(via));
	ck_assert_str_eq(via, "system");
	ck_assert_int_eq(lstat(user_sock, &st), -1);

	/* Nothing answers there: the per-user daemon, started for us. */
	harness_stop(&sys);
	discover(sys.sock, xdg, true, via, sizeof(via));
	ck_assert_str_eq(via, "user");
	ck_assert_int_eq(lstat(user_sock, &st), 0);
	/* Stop it: it is ours, found through its lock file's pid. */
	fd = harness_connect(user_sock);
	ck_assert_int_ge(fd, 0);
	{
		json_object *r = harness_call(fd, "{\"op\":\"hello\"}");
		pid_t pid = (pid_t)reply_int(r, "pid");
		json_object_put(r);
		close(fd);
		ck_assert_int_eq(kill(pid, SIGTERM), 0);
	}
}
END_TEST

/* A client in another network namespace (a container given the socket
 * by a bind mount) is refused with a clear error and gets no lease. */
START_TEST(other_netns_refused)
{
	struct daemon_proc d;
	char line[512] = "";
	int p[2], c;
	pid_t pid;
	ssize_t n;

	harness_start(&d, pool_args);
	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		char *reply;
		int fd;

		if (unshare(CLONE_NEWNET) == -1 ||
		    (fd = harness_connect(d.sock)) == -1)
			_exit(1);
		/* Refused at accept: the reply may come before the send. */
		(void)send(fd, "{\"op\":\"lease\"}\n", 15, MSG_NOSIGNAL);
		reply = harness_recv_line(fd, 2000, NULL, NULL);
		if (reply == NULL ||
		    write(p[1], reply, strlen(reply)) != (ssize_t)strlen(reply))
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	n = read(p[0], line, sizeof(line) - 1);
	line[n > 0 ? n : 0] = '\0';
	close(p[0]);
	waitpid(pid, NULL, 0);
	ck_assert_str_eq(line_code(line), "forbidden");
	ck_assert_msg(strstr(line, "network namespace") != NULL, "%s", line);

	c = harness_connect(d.sock);
	ck_assert_int_eq(status_int(c, "leases"), 0);
	close(c);
	harness_stop(&d);
}
END_TEST

/*
 * Start a daemon any user may reach, with a held lease "web" and a
 * claimed lease "db" of root's; returns the connection that owns them.
 */
static int
start_with_web_and_db(struct daemon_proc *d, int *ret_held, int *ret_claimed)
{
	static const char *const args[] = {
	    "--pool", POOL, "--socket-mode", "0666", NULL};
	json_object *r;
	int c;

	harness_start(d, args);
	open_dir(d);
	c = harness_connect(d->sock);
	r = harness_call(c, "{\"op\":\"lease\",\"name\":\"web\"}");
	*ret_held = lease_port(r, 0);
	json_object_put(r);
	r = harness_call(c, "{\"op\":\"lease\",\"name\":\"db\"}");
	*ret_claimed = lease_port(r, 0);
	json_object_put(harness_call(
	    c, "{\"op\":\"claim\",\"lease\":\"%s\"}", lease_id(r)));
	json_object_put(r);
	return c;
}

/* who, as root and as uid 65534: a held lease, a claimed one, a port
 * nobody leases. Another uid sees the owner, name and state only. */
START_TEST(who_answers_any_user)
{
	struct daemon_proc d;
	struct exchange x;
	json_object *w;
	char req[256];
	int c, held, claimed;

	c = start_with_web_and_db(&d, &held, &claimed);

	w = harness_call(c, "{\"op\":\"who\",\"port\":%d}", held);
	ck_assert(reply_ok(w));
	ck_assert(json_object_get_boolean(reply_get(w, "leased")));
	ck_assert_str_eq(reply_str(w, "lease.state"), "held");
	ck_assert_str_eq(reply_str(w, "lease.name"), "web");
	ck_assert_int_eq(reply_int(w, "lease.owner.uid"), 0);
	ck_assert_ptr_nonnull(strstr(reply_str(w, "command"), "test_onehost"));
	ck_assert_ptr_nonnull(reply_get(w, "lease.expires"));
	json_object_put(w);

	snprintf(req, sizeof(req), "{\"op\":\"who\",\"port\":%d}\n", claimed);
	exchange_as(NOBODY_UID, d.sock, req, strlen(req), 1, 2000, 0, &x);
	w = exchange_reply(&x, 0);
	ck_assert(reply_ok(w));
	ck_assert_str_eq(reply_str(w, "lease.state"), "claimed");
	ck_assert_str_eq(reply_str(w, "lease.name"), "db");
	ck_assert_int_eq(reply_int(w, "lease.owner.uid"), 0);
	/* Not the timings, and only the process name. */
	ck_assert_ptr_null(reply_get(w, "lease.expires"));
	ck_assert_str_eq(reply_str(w, "command"), "test_onehost");
	json_object_put(w);
	exchange_free(&x);

	snprintf(req, sizeof(req), "{\"op\":\"who\",\"port\":%d}\n", 25699);
	exchange_as(NOBODY_UID, d.sock, req, strlen(req), 1, 2000, 0, &x);
	w = exchange_reply(&x, 0);
	ck_assert(reply_ok(w));
	ck_assert(!json_object_get_boolean(reply_get(w, "leased")));
	json_object_put(w);
	exchange_free(&x);
	/* UDP of a TCP lease: not leased. */
	w = harness_call(
	    c, "{\"op\":\"who\",\"port\":%d,\"proto\":\"udp\"}", held);
	ck_assert(!json_object_get_boolean(reply_get(w, "leased")));
	json_object_put(w);
	close(c);
	harness_stop(&d);
}
END_TEST

/* The output of `portctl who arg` run as uid (stdout and stderr). */
static void
portctl_who(
    uid_t uid, const char *sock, const char *arg, char *out, size_t size)
{
	size_t len = 0;
	ssize_t n;
	int p[2];
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		setenv("PORTD_SOCKET", sock, 1);
		setenv("PORTD_NO_AUTOSTART", "1", 1);
		if (uid != 0 && become_uid(uid) == -1)
			_exit(126);
		execl(PORTCTL_BIN, PORTCTL_BIN, "who", arg, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (
	    len < size - 1 && (n = read(p[0], out + len, size - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(p[0]);
	ck_assert_int_eq(harness_wait_exit(pid, 5000), 0);
}

#define EXPECT_IN(out, text)                                                   \
	ck_assert_msg(strstr(out, text) != NULL, "no '%s' in:\n%s", text, out)

/*
 * The real portctl who, as root and as uid 65534: a held lease, a
 * claimed lease, a port another program listens on, a free port. The
 * owner's process shows to root only.
 */
START_TEST(portctl_who_as_root_and_nobody)
{
	static const uid_t uids[] = {0, NOBODY_UID};
	struct daemon_proc d;
	char out[4096], arg[16], want[128], mark[PROTO_MARKER_MAX];
	int c, held, claimed, listener, lfd;

	c = start_with_web_and_db(&d, &held, &claimed);
	/* Outside the pool: this process listens there, portd knows not. */
	listener = 25700;
	lfd = bind_listen("127.0.0.1", listener, false);
	ck_assert_int_ge(lfd, 0);

	for (size_t i = 0; i < sizeof(uids) / sizeof(uids[0]); i++) {
		snprintf(arg, sizeof(arg), "%d", held);
		portctl_who(uids[i], d.sock, arg, out, sizeof(out));
		snprintf(want, sizeof(want), "%d/tcp\n", held);
		EXPECT_IN(out, want);
		EXPECT_IN(out, "uid 0");
		EXPECT_IN(out, "state held, name \"web\"");
		proto_marker_name(false, (unsigned)held, mark, sizeof(mark));
		snprintf(want, sizeof(want), "kernel: marker @%s: ", mark);
		EXPECT_IN(out, want);
		EXPECT_IN(
		    out, uids[i] == 0 ? "(portd)" : "process not visible");

		snprintf(arg, sizeof(arg), "%d/tcp", claimed);
		portctl_who(uids[i], d.sock, arg, out, sizeof(out));
		EXPECT_IN(out, "state claimed, name \"db\"");
		proto_marker_name(false, (unsigned)claimed, mark, sizeof(mark));
		snprintf(want, sizeof(want), "kernel: marker @%s: ", mark);
		EXPECT_IN(out, want);

		snprintf(arg, sizeof(arg), "%d", listener);
		portctl_who(uids[i], d.sock, arg, out, sizeof(out));
		EXPECT_IN(out, "portd: not leased by the daemon at ");
		EXPECT_IN(out, "kernel: tcp listening, uid 0");
		EXPECT_IN(out, uids[i] == 0 ? "(test_onehost)"
		                            : "process not visible to you");

		portctl_who(uids[i], d.sock, "25699", out, sizeof(out));
		EXPECT_IN(out, "portd: not leased by the daemon at ");
		EXPECT_IN(out, "kernel: free (a plain bind succeeds)");
	}
	close(lfd);
	close(c);
	harness_stop(&d);
}
END_TEST

/*
 * An fd lease whose client kept the socket, portd killed and started
 * again: the port cannot be bound again while the client has it, so the
 * lease says held: false, state unheld, with the reason, and status
 * counts it; once the client closes, a retry holds it again (a plain
 * bind fails). It used to say held: true and never bind again.
 */
START_TEST(regression_restored_fd_lease_claimed_held)
{
	struct daemon_proc d;
	json_object *r;
	int c, fds[4], nfds = 0, port;
	bool held = false;

	harness_start(&d, pool_args);
	c = harness_connect(d.sock);
	r = harness_call_fds(c, fds, &nfds, "{\"op\":\"lease\",\"fd\":true}");
	ck_assert_int_eq(nfds, 1);
	port = lease_port(r, 0);
	json_object_put(r);
	close(c);
	harness_kill(&d, SIGKILL);
	harness_restart(&d, pool_args);

	c = harness_connect(d.sock);
	r = harness_call(c, "{\"op\":\"list\"}");
	ck_assert_int_eq(json_object_array_length(reply_get(r, "leases")), 1);
	{
		json_object *l =
		    json_object_array_get_idx(reply_get(r, "leases"), 0);
		ck_assert(!json_object_get_boolean(reply_get(l, "held")));
		ck_assert_str_eq(reply_str(l, "state"), "unheld");
		ck_assert_ptr_nonnull(strstr(reply_str(l, "reason"), "in use"));
	}
	json_object_put(r);
	r = harness_call(c, "{\"op\":\"status\"}");
	ck_assert_int_eq(reply_int(r, "unheld"), 1);
	ck_assert_int_eq(reply_int(r, "sockets"), 0);
	json_object_put(r);

	close(fds[0]);
	for (int64_t end = now_ms() + 3000; !held && now_ms() < end;
	     usleep(50000)) {
		json_object *l;

		r = harness_call(c, "{\"op\":\"list\"}");
		l = json_object_array_get_idx(reply_get(r, "leases"), 0);
		held = json_object_get_boolean(reply_get(l, "held"));
		json_object_put(r);
	}
	ck_assert_msg(held, "not held again within 3 s");
	ck_assert_int_eq(
	    try_bind(AF_INET, SOCK_STREAM, port, false), EADDRINUSE);
	r = harness_call(c, "{\"op\":\"status\"}");
	ck_assert_int_eq(reply_int(r, "unheld"), 0);
	ck_assert_int_eq(reply_int(r, "sockets"), 1);
	json_object_put(r);
	close(c);
	harness_stop(&d);
}
END_TEST

/*
 * The restore gave its heap back before the open-time rewrite of the
 * journal, whose buffer (a few hundred bytes a lease) then stayed
 * resident: with 9,000 leases 17.4 MB after a restart against 12.8 MB
 * for the same table built live. In this test's own network namespace
 * any pool is free.
 */
START_TEST(regression_restore_heap_kept_after_rewrite)
{
	static const char *const args[] = {"--pool", "10000-29999", "--quota",
	    "65536", "--max-leases", "65536", NULL};
	enum { N = 5000, BATCH = 500 };
	struct daemon_proc d;
	long before, after;
	int c;

	harness_start(&d, args);
	c = harness_connect(d.sock);
	for (int done = 0; done < N; done += BATCH) {
		for (int i = 0; i < BATCH; i++)
			dprintf(c, "{\"op\":\"lease\",\"ttl\":3600}\n");
		for (int i = 0; i < BATCH; i++) {
			char *line = harness_recv_line(c, 10000, NULL, NULL);

			ck_assert_ptr_nonnull(line);
			ck_assert_ptr_nonnull(strstr(line, "\"ok\":true"));
			free(line);
		}
	}
	close(c);
	before = proc_rss_kb(d.pid);
	harness_kill(&d, SIGKILL);
	harness_restart(&d, args);
	c = harness_connect(d.sock);
	ck_assert_int_eq(status_int(c, "leases"), N);
	after = proc_rss_kb(d.pid);
	fprintf(stderr, "restore: RSS %ld kB live, %ld kB after the restart\n",
	    before, after);
#ifndef __SANITIZE_ADDRESS__
	/* ASan's allocator keeps freed memory and ignores malloc_trim. */
	ck_assert_msg(after * 100 <= before * 115,
	    "RSS %ld kB after the restart, %ld kB live", after, before);
#endif
	close(c);
	harness_stop(&d);
}
END_TEST

static int
write_sysctl(const char *path, const char *v)
{
	FILE *f = fopen(path, "we");

	if (f == NULL)
		return -1;
	fputs(v, f);
	return fclose(f);
}

/* IPv6 disabled by sysctl: socket(AF_INET6) and bind([::]) still work,
 * and portd used to say ipv6: true and grant family ipv6 leases. */
START_TEST(regression_disable_ipv6_seen)
{
	struct daemon_proc d;
	json_object *r;
	int c;

	/* Each Check test runs in its own process: this namespace is the
	 * test's alone. */
	ck_assert_int_eq(enter_netns(), 0);
	ck_assert_int_eq(
	    write_sysctl("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1\n"), 0);
	harness_start(&d, pool_args);
	c = harness_connect(d.sock);
	r = harness_call(c, "{\"op\":\"status\"}");
	ck_assert(!json_object_get_boolean(reply_get(r, "ipv6")));
	json_object_put(r);
	r = harness_call(c, "{\"op\":\"lease\"}");
	ck_assert_msg(reply_ok(r), "%s", json_object_to_json_string(r));
	ck_assert_str_eq(reply_str(r, "lease.family"), "ipv4");
	ck_assert(!json_object_get_boolean(reply_get(r, "lease.ipv6")));
	json_object_put(r);
	r = harness_call(c, "{\"op\":\"lease\",\"family\":\"ipv6\"}");
	ck_assert_str_eq(reply_error(r), "port_unavailable");
	ck_assert_ptr_nonnull(
	    strstr(reply_str(r, "error.message"), "disable_ipv6"));
	json_object_put(r);
	ck_assert_int_eq(status_int(c, "leases"), 1);
	close(c);
	harness_stop(&d);
}
END_TEST

/* Poll d's log for text for up to ms; true once it is there. */
static bool
log_shows(struct daemon_proc *d, const char *text, int ms)
{
	for (int64_t end = now_ms() + ms; now_ms() < end; usleep(20000))
		if (strstr(harness_log(d), text) != NULL)
			return true;
	return strstr(harness_log(d), text) != NULL;
}

#define OVERLAP "overlaps the kernel's ephemeral range 25650-60999"

/*
 * A pool inside ip_local_port_range: a per-user daemon warns and runs, a
 * --system daemon refuses to start unless allowed, and a SIGHUP that
 * finds the overlap keeps the running configuration of a system daemon.
 * It used to start without a word.
 */
START_TEST(regression_ephemeral_pool_overlap_silent)
{
	static const char *const sys_args[] = {
	    "--system", "--pool", POOL, NULL};
	static const char *const allowed_args[] = {
	    "--system", "--pool", POOL, "--allow-ephemeral-pool", NULL};
	static const char *const range =
	    "/proc/sys/net/ipv4/ip_local_port_range";
	struct daemon_proc d;
	int status;
	pid_t pid;

	ck_assert_int_eq(enter_netns(), 0);
	ck_assert_int_eq(write_sysctl(range, "25650 60999\n"), 0);

	pid = harness_spawn(&d, sys_args);
	status = harness_wait_exit(pid, 5000);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2,
	    "status %#x: %s", status, harness_log(&d));
	ck_assert_msg(
	    strstr(harness_log(&d), OVERLAP) != NULL, "%s", harness_log(&d));
	ck_assert_ptr_nonnull(
	    strstr(harness_log(&d), "allow-ephemeral-pool = yes"));
	d.pid = 0;
	harness_stop(&d);

	harness_start(&d, allowed_args);
	ck_assert_msg(log_shows(&d, OVERLAP, 0), "%s", harness_log(&d));
	harness_stop(&d);

	harness_start(&d, pool_args);
	ck_assert_msg(log_shows(&d, OVERLAP, 0), "%s", harness_log(&d));
	harness_stop(&d);

	/* Outside the range at start, inside it at the reload. */
	ck_assert_int_eq(write_sysctl(range, "32768 60999\n"), 0);
	harness_start(&d, sys_args);
	ck_assert_ptr_null(strstr(harness_log(&d), "ephemeral range"));
	ck_assert_int_eq(write_sysctl(range, "25650 60999\n"), 0);
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	ck_assert_msg(log_shows(&d, "keeping the running configuration", 3000),
	    "%s", harness_log(&d));
	ck_assert_ptr_nonnull(strstr(harness_log(&d), OVERLAP));
	harness_stop(&d);
}
END_TEST

/* ---- two daemons on one default pool, root and uid 65534 ---- */

#define ROUNDS    500
#define KILL_AT   250
#define PER_ROUND 4 /* held, claimed, portserver, fd */

/* A plain bind of 0.0.0.0:port (no SO_REUSEADDR): the fd, or -errno. */
static int
plain_bind(int type, int port)
{
	struct sockaddr_in sin = {
	    .sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0), e;

	if (fd == -1)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
		return fd;
	e = errno;
	close(fd);
	return -e;
}

/* One portserver request on the abstract name: the port, or -1. */
static int
portserver_ask(const char *name)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char buf[32];
	ssize_t n, len = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	socklen_t sl;

	snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "%s", name);
	sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	                 strlen(name));
	if (fd == -1 || connect(fd, (struct sockaddr *)&sun, sl) == -1) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	while (len < (ssize_t)sizeof(buf) - 1 &&
	       (n = read(fd, buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
		len += n;
	close(fd);
	buf[len > 0 ? len : 0] = '\0';
	return len > 0 ? atoi(buf) : -1;
}

struct side {
	char sock[128], portserver[64];
	int ports[PER_ROUND];
	int keep[PER_ROUND]; /* sockets the worker keeps for the round */
	char ids[2][PORTD_MAX_ID + 1];
};

/*
 * One round's leases, as a user of the daemon would take them, each
 * checked against the kernel: the held port refuses a plain bind, the
 * claimed and portserver ports take one (the worker keeps those sockets,
 * as its servers would), the fd lease's socket is bound to its port.
 * Writes "ok P P P P" or "err WHY" into out.
 */
static void
worker_acquire(struct side *sd, char *out, size_t size)
{
	struct portd_options o = {.socket = sd->sock};
	struct portd_lease_request held = {.name = "held"};
	struct portd_lease_request claimed = {
	    .name = "claimed", .hold = PORTD_HOLD_EXCLUSIVE};
	struct portd_lease_request fd = {.name = "fd", .fd = true};
	struct portd_lease *l = NULL;
	struct sockaddr_in6 sa;
	socklen_t sl = sizeof(sa);
	struct portd *h;
	int rc;

	for (int i = 0; i < PER_ROUND; i++)
		sd->keep[i] = -1;
	if (portd_connect(&o, &h) < 0) {
		snprintf(out, size, "err connect");
		return;
	}
	if (portd_lease(h, &held, &l) < 0) {
		snprintf(out, size, "err lease: %s", portd_errmsg(h));
		goto out;
	}
	sd->ports[0] = l->ports[0];
	snprintf(sd->ids[0], sizeof(sd->ids[0]), "%s", l->id);
	portd_lease_free(l);
	if ((rc = plain_bind(SOCK_STREAM, sd->ports[0])) != -EADDRINUSE) {
		snprintf(
		    out, size, "err held %d: plain bind %d", sd->ports[0], rc);
		if (rc >= 0)
			close(rc);
		goto out;
	}

	if (portd_lease(h, &claimed, &l) < 0 ||
	    portd_claim(h, l->id, NULL) < 0) {
		snprintf(out, size, "err claim: %s", portd_errmsg(h));
		portd_lease_free(l);
		goto out;
	}
	sd->ports[1] = l->ports[0];
	snprintf(sd->ids[1], sizeof(sd->ids[1]), "%s", l->id);
	portd_lease_free(l);
	if ((sd->keep[1] = plain_bind(SOCK_STREAM, sd->ports[1])) < 0) {
		snprintf(out, size, "err claimed %d: bind %d", sd->ports[1],
		    sd->keep[1]);
		goto out;
	}

	if ((sd->ports[2] = portserver_ask(sd->portserver)) <= 0) {
		snprintf(out, size, "err portserver");
		goto out;
	}
	if ((sd->keep[2] = plain_bind(SOCK_STREAM, sd->ports[2])) < 0) {
		snprintf(out, size, "err portserver %d: bind %d", sd->ports[2],
		    sd->keep[2]);
		goto out;
	}

	if (portd_lease(h, &fd, &l) < 0 || l->nsockets != 1) {
		snprintf(out, size, "err fd lease: %s", portd_errmsg(h));
		portd_lease_free(l);
		goto out;
	}
	sd->ports[3] = l->ports[0];
	sd->keep[3] = l->sockets[0].fd;
	l->sockets[0].fd = -1;
	portd_lease_free(l);
	if (getsockname(sd->keep[3], (struct sockaddr *)&sa, &sl) == -1 ||
	    ntohs(sa.sin6_port) != sd->ports[3]) {
		snprintf(out, size, "err fd socket not on %d", sd->ports[3]);
		goto out;
	}
	snprintf(out, size, "ok %d %d %d %d", sd->ports[0], sd->ports[1],
	    sd->ports[2], sd->ports[3]);
out:
	portd_close(h);
}

/* End the round's leases (on a new connection: the daemon may have
 * been killed and started again since) and close the kept sockets. */
static void
worker_release(struct side *sd)
{
	struct portd_options o = {.socket = sd->sock};
	struct portd *h;

	for (int i = 0; i < PER_ROUND; i++)
		if (sd->keep[i] >= 0) {
			close(sd->keep[i]);
			sd->keep[i] = -1;
		}
	if (portd_connect(&o, &h) < 0)
		return;
	portd_release(h, sd->ids[0]);
	portd_release(h, sd->ids[1]);
	portd_release_port(h, (uint16_t)sd->ports[2]);
	portd_release_port(h, (uint16_t)sd->ports[3]);
	portd_close(h);
}

/* A worker: 'a' acquires and reports a line, 'r' releases and says
 * "done", 'q' or EOF ends it. Runs as uid. */
static pid_t
worker_start(uid_t uid, struct side *sd, int *ret_cmd, int *ret_rep)
{
	int cmd, rep;
	pid_t pid = fork_duplex(&cmd, &rep);

	if (pid == 0) {
		char c, line[256];

		signal(SIGPIPE, SIG_IGN);
		if (uid != 0 && become_uid(uid) == -1)
			_exit(126);
		while (read(cmd, &c, 1) == 1 && c != 'q') {
			if (c == 'a')
				worker_acquire(sd, line, sizeof(line));
			else {
				worker_release(sd);
				snprintf(line, sizeof(line), "done");
			}
			strcat(line, "\n");
			if (write(rep, line, strlen(line)) < 0)
				_exit(1);
		}
		_exit(0);
	}
	*ret_cmd = cmd;
	*ret_rep = rep;
	return pid;
}

/* Send c to a worker and read its one-line answer into out. */
static void
worker_do(int cmd, int rep, char c, char *out, size_t size)
{
	size_t len = 0;

	ck_assert_int_eq(write(cmd, &c, 1), 1);
	while (len < size - 1) {
		ssize_t n = read(rep, out + len, 1);
		ck_assert_int_eq(n, 1);
		if (out[len] == '\n')
			break;
		len++;
	}
	out[len] = '\0';
}

/* portd as uid on dir/portd.sock, the default pool, a portserver. */
static pid_t
daemon_as(uid_t uid, const char *dir, const char *portserver)
{
	char sock[128], log[128], ps[72];
	pid_t pid;

	snprintf(sock, sizeof(sock), "%s/portd.sock", dir);
	snprintf(log, sizeof(log), "%s/portd.log", dir);
	snprintf(ps, sizeof(ps), "@%s", portserver);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd != -1)
			dup2(fd, 2);
		setenv("XDG_CONFIG_HOME", dir, 1);
		setenv("XDG_RUNTIME_DIR", dir, 1);
		unsetenv("NOTIFY_SOCKET");
		unsetenv("LISTEN_FDS");
		if (uid != 0 && become_uid(uid) == -1)
			_exit(126);
		execl(harness_portd_bin, harness_portd_bin, "--socket", sock,
		    "--portserver-address", ps, (char *)NULL);
		_exit(127);
	}
	ck_assert_msg(harness_wait_ready(sock, 5000), "portd as %u: %s",
	    (unsigned)uid, read_text(log));
	return pid;
}

/* Every lease of the daemon at sock whose port is in taken says
 * held: false, state unheld, with a reason. */
static void
unheld_where_taken(const char *sock, const int *taken)
{
	struct portd_options o = {.socket = sock};
	struct portd_lease *all;
	struct portd *h;
	size_t n;
	int seen = 0;

	ck_assert_int_eq(portd_connect(&o, &h), 0);
	ck_assert_int_eq(portd_list(h, true, &all, &n), 0);
	for (size_t i = 0; i < n; i++)
		for (int j = 0; j < PER_ROUND; j++)
			if (all[i].ports[0] == taken[j]) {
				ck_assert_msg(
				    !all[i].held &&
				        strcmp(all[i].state, "unheld") == 0 &&
				        all[i].reason[0] != '\0',
				    "restored lease on %d: held %d, state %s",
				    taken[j], all[i].held, all[i].state);
				seen++;
			}
	portd_lease_list_free(all, n);
	portd_close(h);
	/* The first pool port: both daemons start there. */
	ck_assert_int_ge(seen, 1);
}

/* Parse "ok P P P P" into ports; false (and the line) otherwise. */
static bool
round_ports(const char *line, int *ports)
{
	return sscanf(line, "ok %d %d %d %d", &ports[0], &ports[1], &ports[2],
	           &ports[3]) == PER_ROUND;
}

static int
shared_ports(const int *a, const int *b)
{
	int n = 0;

	for (int i = 0; i < PER_ROUND; i++)
		for (int j = 0; j < PER_ROUND; j++)
			n += a[i] == b[j];
	return n;
}

/*
 * Two daemons in one network namespace, one root and one uid 65534,
 * both on the default pool with no configuration: each round both sides
 * take a held, a claimed, a portserver and an fd lease (each checked
 * with a real bind) and no port is given to both. The uid 65534 daemon
 * is killed with SIGKILL mid-round at round 250 and started again; the
 * root daemon then leases beside what the other's clients still have.
 * Without the markers both daemons hand out 15000 first.
 */
START_TEST(two_daemons_share_no_port)
{
	struct side a = {0}, b = {0};
	char dir_a[] = "/tmp/portd-2d-a.XXXXXX",
	     dir_b[] = "/tmp/portd-2d-b.XXXXXX";
	char la[256], lb[256], cmd[300];
	int pa[PER_ROUND], pb[PER_ROUND];
	int ca, ra, cb, rb, shared = 0, rounds = 0;
	pid_t da, db, wa, wb;

	ck_assert_ptr_nonnull(mkdtemp(dir_a));
	ck_assert_ptr_nonnull(mkdtemp(dir_b));
	ck_assert_int_eq(chown(dir_b, NOBODY_UID, NOBODY_UID), 0);
	snprintf(a.sock, sizeof(a.sock), "%s/portd.sock", dir_a);
	snprintf(b.sock, sizeof(b.sock), "%s/portd.sock", dir_b);
	snprintf(a.portserver, sizeof(a.portserver), "portd-2d-a");
	snprintf(b.portserver, sizeof(b.portserver), "portd-2d-b");
	da = daemon_as(0, dir_a, a.portserver);
	db = daemon_as(NOBODY_UID, dir_b, b.portserver);
	wa = worker_start(0, &a, &ca, &ra);
	wb = worker_start(NOBODY_UID, &b, &cb, &rb);

	for (int round = 1; round <= ROUNDS; round++) {
		worker_do(ca, ra, 'a', la, sizeof(la));
		worker_do(cb, rb, 'a', lb, sizeof(lb));
		ck_assert_msg(
		    round_ports(la, pa), "round %d, root: %s", round, la);
		ck_assert_msg(
		    round_ports(lb, pb), "round %d, 65534: %s", round, lb);
		shared += shared_ports(pa, pb);
		ck_assert_msg(
		    shared == 0, "round %d: root %s, 65534 %s", round, la, lb);
		if (round == KILL_AT) {
			/* Root lets go of its round; the other dies. */
			worker_do(ca, ra, 'r', la, sizeof(la));
			ck_assert_int_eq(kill(db, SIGKILL), 0);
			ck_assert_int_ne(harness_wait_exit(db, 5000), -1);
			/* What its clients still have (the claimed and
			 * portserver ports their servers bound, the fd
			 * lease's socket) no daemon gives out; its held port
			 * died with it (docs/architecture.md). */
			worker_do(ca, ra, 'a', la, sizeof(la));
			ck_assert_msg(
			    round_ports(la, pa), "after kill: %s", la);
			shared += shared_ports(pa, pb) -
			          shared_ports(pa, (int[]){pb[0], 0, 0, 0});
			ck_assert_msg(shared == 0,
			    "after kill: root %s, 65534 %s", la, lb);
			db = daemon_as(NOBODY_UID, dir_b, b.portserver);
			/* Restored: a lease whose port root has now is not
			 * held, and says so. */
			unheld_where_taken(b.sock, pa);
		}
		worker_do(ca, ra, 'r', la, sizeof(la));
		worker_do(cb, rb, 'r', lb, sizeof(lb));
		rounds++;
	}
	ck_assert_int_eq(rounds, ROUNDS);
	ck_assert_int_eq(shared, 0);

	ck_assert_int_eq(write(ca, "q", 1), 1);
	ck_assert_int_eq(write(cb, "q", 1), 1);
	close(ca);
	close(cb);
	close(ra);
	close(rb);
	ck_assert_int_eq(harness_wait_exit(wa, 5000), 0);
	ck_assert_int_eq(harness_wait_exit(wb, 5000), 0);
	kill(da, SIGTERM);
	kill(db, SIGTERM);
	ck_assert_int_eq(harness_wait_exit(da, 5000), 0);
	ck_assert_int_eq(harness_wait_exit(db, 5000), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir_a, dir_b);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("onehost");
	TCase *tc = tcase_create("onehost");

	if (enter_netns() == -1) {
		fprintf(stderr, "no private network namespace (%s): skipped\n",
		    strerror(errno));
		return 77;
	}
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, discovery_prefers_the_system_socket);
	tcase_add_test(tc, other_netns_refused);
	tcase_add_test(tc, who_answers_any_user);
	tcase_add_test(tc, portctl_who_as_root_and_nobody);
	tcase_add_test(tc, regression_restored_fd_lease_claimed_held);
	tcase_add_test(tc, regression_disable_ipv6_seen);
	tcase_add_test(tc, regression_ephemeral_pool_overlap_silent);
	tcase_add_test(tc, regression_restore_heap_kept_after_rewrite);
	suite_add_tcase(s, tc);

	tc = tcase_create("two daemons");
	tcase_set_timeout(tc, 100);
	tcase_add_test(tc, two_daemons_share_no_port);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
