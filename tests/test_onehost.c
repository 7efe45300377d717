/*
 * One host: which daemon a client finds, a client in another network
 * namespace, who holds a port, and a restored lease that cannot hold its
 * port. Runs in its own network namespace (root), so the default pool
 * and the system socket's name are its own; exits 77 (skipped) where
 * none can be made.
 */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "integ.h"
#include "portd.h"

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
	json_object *r;
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
	r = harness_call(c, "{\"op\":\"status\"}");
	ck_assert_int_eq(reply_int(r, "leases"), 0);
	json_object_put(r);
	close(c);
	harness_stop(&d);
}
END_TEST

/* who, as root and as uid 65534: a held lease, a claimed one, a port
 * nobody leases. Another uid sees the owner, name and state only. */
START_TEST(who_answers_any_user)
{
	static const char *const args[] = {
	    "--pool", POOL, "--socket-mode", "0666", NULL};
	struct daemon_proc d;
	struct exchange x;
	json_object *r, *w;
	char req[256];
	int c, held, claimed;

	harness_start(&d, args);
	open_dir(&d);
	c = harness_connect(d.sock);
	r = harness_call(c, "{\"op\":\"lease\",\"name\":\"web\"}");
	held = lease_port(r, 0);
	json_object_put(r);
	r = harness_call(c, "{\"op\":\"lease\",\"name\":\"db\"}");
	claimed = lease_port(r, 0);
	json_object_put(harness_call(
	    c, "{\"op\":\"claim\",\"lease\":\"%s\"}", lease_id(r)));
	json_object_put(r);

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
		if (uid != 0 && (setgroups(0, NULL) == -1 ||
		                    setresgid(uid, uid, uid) == -1 ||
		                    setresuid(uid, uid, uid) == -1))
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
	static const char *const args[] = {
	    "--pool", POOL, "--socket-mode", "0666", NULL};
	static const uid_t uids[] = {0, NOBODY_UID};
	struct daemon_proc d;
	json_object *r;
	char out[4096], arg[16], want[128];
	int c, held, claimed, listener, lfd;

	harness_start(&d, args);
	open_dir(&d);
	c = harness_connect(d.sock);
	r = harness_call(c, "{\"op\":\"lease\",\"name\":\"web\"}");
	held = lease_port(r, 0);
	json_object_put(r);
	r = harness_call(c, "{\"op\":\"lease\",\"name\":\"db\"}");
	claimed = lease_port(r, 0);
	json_object_put(harness_call(
	    c, "{\"op\":\"claim\",\"lease\":\"%s\"}", lease_id(r)));
	json_object_put(r);
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
		snprintf(want, sizeof(want),
		    "kernel: marker @portd/port/tcp/%d", held);
		EXPECT_IN(out, want);
		EXPECT_IN(
		    out, uids[i] == 0 ? "(portd)" : "process not visible");

		snprintf(arg, sizeof(arg), "%d/tcp", claimed);
		portctl_who(uids[i], d.sock, arg, out, sizeof(out));
		EXPECT_IN(out, "state claimed, name \"db\"");
		snprintf(want, sizeof(want),
		    "kernel: marker @portd/port/tcp/%d", claimed);
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
	r = harness_call(c, "{\"op\":\"status\"}");
	ck_assert_int_eq(reply_int(r, "leases"), 1);
	json_object_put(r);
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
	suite_add_tcase(s, tc);
	return harness_run(s);
}
