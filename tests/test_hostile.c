/*
 * A hostile neighbour and a slow reader must not cost anyone a lease: the
 * portpicker endpoint under the API socket's discipline (out of
 * descriptors, connection caps), privileged ports, half-closed clients,
 * and the memory many clients that never read can pin. Each test starts
 * a real portd as root and attacks it as root or as nobody.
 * The privileged-port test runs in a network namespace of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integ.h"

#define POOL "32100-32599"

static void
ps_addr(char *buf, size_t len)
{
	snprintf(buf, len, "@portd-test-hostile-%d", (int)getpid());
}

/* A connection to the abstract socket addr ("@name"); -1 on failure. */
static int
ps_connect(const char *addr)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	size_t n = strlen(addr);
	int fd;

	memcpy(sun.sun_path, addr, n);
	sun.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd != -1 && connect(fd, (struct sockaddr *)&sun,
	                    (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	                                n)) == -1) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* The portserver's answer on fd within ms: a port, 0 for "0\n", -1 for
 * a close with nothing written or no answer in time. */
static int
ps_read_answer(int fd, int ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char buf[32];
	ssize_t k;

	if (poll(&pfd, 1, ms) != 1)
		return -1;
	k = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	if (k <= 0 || buf[k - 1] != '\n')
		return -1;
	buf[k] = '\0';
	return atoi(buf);
}

/* Ask the portserver at addr for a port for pid. */
static int
ps_ask(const char *addr, pid_t pid)
{
	char buf[32];
	int fd = ps_connect(addr), k, port;

	if (fd == -1)
		return -1;
	k = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	if (send(fd, buf, (size_t)k, MSG_NOSIGNAL) != k) {
		close(fd);
		return -1;
	}
	port = ps_read_answer(fd, 3000);
	close(fd);
	return port;
}

/* The reply code of the first line on a fresh API connection after a
 * hello, or NULL if the daemon closed it or said nothing. */
static const char *
fresh_hello_code(const char *sock)
{
	int fd = harness_connect(sock);
	const char *code;

	ck_assert_int_ge(fd, 0);
	(void)send(fd, "{\"op\":\"hello\"}\n", 15, MSG_NOSIGNAL);
	code = recv_code(fd, 2000);
	close(fd);
	return code;
}

/*
 * The portpicker endpoint retried accept without pause at EMFILE: 98 %
 * CPU and megabytes of log a second, and root's requests timed out. Now
 * both sockets refuse what waits through the spare descriptor and pause;
 * over 5 s of connection attempts on both, the daemon stays near idle,
 * its log stays short, and a connected client is served throughout.
 */
START_TEST(regression_portserver_emfile_spins)
{
	struct daemon_proc d;
	struct rlimit low = {.rlim_cur = 40, .rlim_max = 40};
	char addr[64];
	int held[64], n = 0, good, fd, ps_refused = 0, api_refused = 0;
	long cpu0, cpu1, ms;
	size_t log0;
	json_object *r;

	ps_addr(addr, sizeof(addr));
	harness_start(&d, (const char *[]){"--pool", POOL,
	                      "--portserver-address", addr, NULL});
	good = harness_connect(d.sock);
	hello_ok(good);
	ck_assert_int_eq(prlimit(d.pid, RLIMIT_NOFILE, &low, NULL), 0);
	/* Take every descriptor the daemon has left. */
	for (;;) {
		char *line;

		ck_assert_msg(n < 64, "64 connections and no EMFILE yet");
		fd = harness_connect(d.sock);
		ck_assert_int_ge(fd, 0);
		/* A refused connection may be closed before this. */
		(void)send(fd, "{\"op\":\"hello\"}\n", 15, MSG_NOSIGNAL);
		line = harness_recv_line(fd, 1000, NULL, NULL);
		if (line != NULL && strcmp(line_code(line), "ok") == 0) {
			held[n++] = fd;
			free(line);
			continue;
		}
		free(line);
		close(fd);
		break;
	}
	ck_assert_int_gt(n, 10);

	log0 = strlen(harness_log(&d));
	cpu0 = proc_cpu_ticks(d.pid);
	for (int i = 0; i < 20; i++) {
		const char *code;

		/* A portserver client is refused, not left waiting. */
		fd = ps_connect(addr);
		ck_assert_int_ge(fd, 0);
		ps_refused += wait_closed(fd, 1000);
		close(fd);
		/* An API client gets the reason. */
		code = fresh_hello_code(d.sock);
		api_refused +=
		    code != NULL && strcmp(code, "resource_exhausted") == 0;
		hello_ok(good);
		usleep(250 * 1000);
	}
	/* A process lease needs a pidfd: out of descriptors, not a
	 * process that is gone. */
	r = harness_call(good, "{\"op\":\"lease\",\"scope\":\"process\"}");
	ck_assert_msg(
	    !reply_ok(r) && strcmp(reply_error(r), "resource_exhausted") == 0,
	    "%s", json_object_to_json_string(r));
	json_object_put(r);
	cpu1 = proc_cpu_ticks(d.pid);
	ms = (cpu1 - cpu0) * 1000 / sysconf(_SC_CLK_TCK);
	ck_assert_msg(ms < 500, "%ld ms of CPU in 5 s at EMFILE", ms);
	ck_assert_msg(strlen(harness_log(&d)) - log0 < 16384,
	    "%zu bytes of log in 5 s at EMFILE",
	    strlen(harness_log(&d)) - log0);
	ck_assert_int_eq(ps_refused, 20);
	ck_assert_int_eq(api_refused, 20);
	printf("EMFILE on both sockets: %ld ms of CPU in 5 s, %zu bytes of "
	       "log\n",
	    ms, strlen(harness_log(&d)) - log0);

	/* Descriptors back: both sockets serve again. */
	while (n > 0)
		close(held[--n]);
	usleep(100 * 1000);
	ck_assert_int_gt(ps_ask(addr, getpid()), 0);
	fd = harness_connect(d.sock);
	hello_ok(fd);
	close(fd);
	close(good);
	harness_stop(&d);
}
END_TEST

/* Become nobody in a child that holds n portserver connections open and
 * reports how many are still open after a while; it exits when told. */
static pid_t
hold_as_nobody(const char *addr, int n, int *ret_report, int *ret_stop)
{
	int rep, stop;
	pid_t pid = fork_duplex(&stop, &rep);

	if (pid == 0) {
		int *fds = calloc((size_t)n, sizeof(int)), open_ = 0;
		char c;

		if (fds == NULL || become_uid(NOBODY_UID) == -1)
			_exit(1);
		for (int i = 0; i < n; i++)
			fds[i] = ps_connect(addr);
		usleep(500 * 1000);
		for (int i = 0; i < n; i++) {
			struct pollfd pfd = {.fd = fds[i], .events = POLLIN};
			if (fds[i] != -1 && poll(&pfd, 1, 0) == 0)
				open_++;
		}
		if (write(rep, &open_, sizeof(open_)) != sizeof(open_))
			_exit(1);
		(void)read(stop, &c, 1);
		_exit(0);
	}
	*ret_report = rep;
	*ret_stop = stop;
	return pid;
}

/*
 * The portpicker endpoint had no per-uid cap: one user holding idle
 * connections made root's portpicker requests fail. Now the caps count
 * a uid's connections on both sockets together.
 */
START_TEST(regression_portserver_per_uid_cap)
{
	struct daemon_proc d;
	char addr[64];
	int report, stop, held = -1, fd, status;
	pid_t kid;

	ps_addr(addr, sizeof(addr));
	harness_start(&d, (const char *[]){"--pool", POOL,
	                      "--portserver-address", addr, "--max-connections",
	                      "64", "--max-connections-per-uid", "16", NULL});
	kid = hold_as_nobody(addr, 100, &report, &stop);
	ck_assert_int_eq(read(report, &held, sizeof(held)), sizeof(held));
	ck_assert_msg(
	    held == 16, "nobody holds %d portserver connections", held);

	/* Meanwhile root is served on both sockets. */
	for (int i = 0; i < 20; i++) {
		int port = ps_ask(addr, getpid());
		ck_assert_msg(
		    port > 0, "root's portserver request %d: %d", i, port);
	}
	fd = harness_connect(d.sock);
	hello_ok(fd);

	ck_assert_int_eq(write(stop, "x", 1), 1);
	ck_assert_int_eq(waitpid(kid, &status, 0), kid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(report);
	close(stop);
	hello_ok(fd);
	close(fd);
	harness_stop(&d);
}
END_TEST

/* A private network namespace with lo up (port 80 is ours alone). */
static void
enter_netns(void)
{
	struct ifreq ifr = {0};
	int fd;

	ck_assert_msg(unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET): %s",
	    strerror(errno));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	ck_assert(fd != -1 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0);
	ifr.ifr_flags |= IFF_UP;
	ck_assert(ioctl(fd, SIOCSIFFLAGS, &ifr) == 0);
	close(fd);
}

static const char *
nobody_code(const char *sock, const char *req)
{
	static char code[64];
	struct exchange x;
	json_object *r;

	exchange_as(NOBODY_UID, sock, req, strlen(req), 1, 3000, 0, &x);
	r = exchange_reply(&x, 0);
	snprintf(code, sizeof(code), "%s", reply_ok(r) ? "ok" : reply_error(r));
	json_object_put(r);
	exchange_free(&x);
	return code;
}

/*
 * A daemon running as root bound port 80 for any client. Ports below
 * ip_unprivileged_port_start are refused to a client that could not bind
 * them itself, whether named by `port` or reached by a `count` range.
 */
START_TEST(regression_privileged_port_refused)
{
	struct daemon_proc d;
	char req[128];
	json_object *r;
	int fd, start;

	enter_netns();
	start =
	    atoi(read_text("/proc/sys/net/ipv4/ip_unprivileged_port_start"));
	ck_assert_int_gt(start, 81);
	harness_start(&d,
	    (const char *[]){"--pool", POOL, "--socket-mode", "0666", NULL});
	open_dir(&d);

	ck_assert_str_eq(nobody_code(d.sock, "{\"op\":\"lease\",\"port\":80,"
	                                     "\"fd\":true}\n"),
	    "port_unavailable");
	snprintf(req, sizeof(req),
	    "{\"op\":\"lease\",\"port\":%d,\"count\":4}\n", start - 2);
	ck_assert_str_eq(nobody_code(d.sock, req), "port_unavailable");
	/* The refusal bound nothing: port 80 is free. */
	ck_assert_int_eq(try_bind(AF_INET, SOCK_STREAM, 80, false), 0);
	ck_assert_int_eq(try_bind(AF_INET, SOCK_STREAM, start - 1, false), 0);
	/* From the first unprivileged port on, nobody is served. */
	snprintf(req, sizeof(req),
	    "{\"op\":\"lease\",\"port\":%d,\"count\":2}\n", start);
	ck_assert_str_eq(nobody_code(d.sock, req), "ok");

	/* Root may. */
	fd = harness_connect(d.sock);
	r = harness_call(fd, "{\"op\":\"lease\",\"port\":80}");
	ck_assert_msg(reply_ok(r), "%s", json_object_to_json_string(r));
	ck_assert_int_eq(lease_port(r, 0), 80);
	json_object_put(r);
	close(fd);
	harness_stop(&d);
}
END_TEST

/* Fork a writer that sends len bytes on fd and then half-closes it. */
static pid_t
write_then_shut(int fd, const char *buf, size_t len)
{
	pid_t pid = fork();

	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		while (len > 0) {
			ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
			if (n <= 0)
				_exit(1);
			buf += n;
			len -= (size_t)n;
		}
		_exit(shutdown(fd, SHUT_WR) == 0 ? 0 : 1);
	}
	return pid;
}

/* Read replies slowly (chunk bytes every pause_ms) until EOF; returns
 * the number of ok replies, checking their ids run 0, 1, 2, ... */
static int
read_slowly(int fd, size_t chunk, int pause_ms)
{
	static char buf[1 << 16];
	size_t len = 0;
	int got = 0;

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t k;

		if (poll(&pfd, 1, 5000) != 1)
			break;
		k = recv(fd, buf + len,
		    chunk < sizeof(buf) - len ? chunk : sizeof(buf) - len, 0);
		if (k <= 0)
			break;
		len = take_replies(buf, len + (size_t)k, &got, true);
		usleep((useconds_t)pause_ms * 1000);
	}
	return got;
}

/*
 * After shutdown(SHUT_WR) the drain deadline ran from the EOF and the
 * requests past the output cap were thrown away: 8,000 pipelined
 * requests read slowly got about a third of their replies. Now every
 * complete request is answered while the client keeps reading, and the
 * deadline measures a lack of progress.
 */
START_TEST(regression_half_close_slow_reader)
{
	enum { NREQ = 8000, NLEASE = 300 };
	struct daemon_proc d;
	char *reqs = malloc((size_t)NREQ * 48);
	size_t len = 0;
	int fd, status, got;
	pid_t w;

	ck_assert_ptr_nonnull(reqs);
	harness_start(&d,
	    (const char *[]){"--pool", POOL, "--request-timeout", "1s", NULL});
	for (int i = 0; i < NREQ; i++)
		len += (size_t)sprintf(
		    reqs + len, "{\"op\":\"hello\",\"id\":%d}\n", i);
	fd = harness_connect(d.sock);
	w = write_then_shut(fd, reqs, len);
	/* About 2.5 s of reading (760 kB), well past the 1 s deadline. */
	got = read_slowly(fd, 16384, 50);
	ck_assert_int_eq(waitpid(w, &status, 0), w);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(got, NREQ);
	close(fd);

	/* Leases: each one created is answered. */
	len = 0;
	for (int i = 0; i < NLEASE; i++)
		len += (size_t)sprintf(reqs + len,
		    "{\"op\":\"lease\",\"id\":%d,\"scope\":\"ttl\"}\n", i);
	fd = harness_connect(d.sock);
	w = write_then_shut(fd, reqs, len);
	got = read_slowly(fd, 1024, 20); /* about 2 s */
	ck_assert_int_eq(waitpid(w, &status, 0), w);
	ck_assert_int_eq(got, NLEASE);
	close(fd);
	fd = harness_connect(d.sock);
	ck_assert_int_eq(status_int(fd, "leases"), NLEASE);
	close(fd);
	free(reqs);
	harness_stop(&d);
}
END_TEST

/*
 * 250 clients of one uid pipeline status requests and never read. Each
 * used to pin about 1.5 MB (max-output, counted without the per-reply
 * overhead) until its deadline: 223 MB in all, 271 MB still resident
 * after they were gone. Now queued output is capped per uid (16M by
 * default) and freed memory goes back to the system: queued output stays
 * near the cap, and RSS after the clients left is within 2x of the
 * baseline.
 */
START_TEST(regression_nonreading_clients_pin_memory)
{
	enum { NCLIENTS = 250, NREQ = 2000 };
	static const char req[] = "{\"op\":\"status\"}\n";
	struct daemon_proc d;
	char *reqs = malloc(NREQ * (sizeof(req) - 1));
	int fds[NCLIENTS], c;
	long base, peak = 0, after = 0;
	int64_t queued = 0, last = -1, stalls = 0;
	json_object *r;

	ck_assert_ptr_nonnull(reqs);
	for (int i = 0; i < NREQ; i++)
		memcpy(reqs + i * (sizeof(req) - 1), req, sizeof(req) - 1);
	harness_start(&d,
	    (const char *[]){"--pool", POOL, "--request-timeout", "1h", NULL});
	c = harness_connect(d.sock);
	for (int i = 0; i < 100; i++)
		json_object_put(harness_call(c, "{\"op\":\"status\"}"));
	base = proc_rss_kb(d.pid);

	for (int i = 0; i < NCLIENTS; i++) {
		ck_assert_int_ge(fds[i] = harness_connect(d.sock), 0);
		fcntl(fds[i], F_SETFL, O_NONBLOCK);
		/* As much as the kernel takes; never read. */
		ck_assert_int_gt(
		    write(fds[i], reqs, NREQ * (sizeof(req) - 1)), 0);
	}
	/* Until the daemon has queued what it will. */
	for (int64_t end = now_ms() + 20000; now_ms() < end; usleep(200000)) {
		r = harness_call(c, "{\"op\":\"status\"}");
		queued = reply_int(r, "queued-output");
		stalls = reply_int(r, "output-stalls");
		json_object_put(r);
		if (proc_rss_kb(d.pid) > peak)
			peak = proc_rss_kb(d.pid);
		if (stalls > 0 && queued == last)
			break;
		last = queued;
	}
	fprintf(stderr,
	    "nonreading: baseline %ld kB, peak %ld kB, queued %lld bytes, "
	    "%lld stalls\n",
	    base, peak, (long long)queued, (long long)stalls);
	ck_assert_int_gt(stalls, 0);
	/* The cap, plus what each connection may hold before it is summed
	 * (4K) and one reply past it. */
	ck_assert_int_le(queued, 16 * 1024 * 1024 + NCLIENTS * 8 * 1024);

	for (int i = 0; i < NCLIENTS; i++)
		close(fds[i]);
	for (int64_t end = now_ms() + 10000; now_ms() < end; usleep(100000)) {
		r = harness_call(c, "{\"op\":\"status\"}");
		queued = reply_int(r, "queued-output");
		json_object_put(r);
		if (queued < 64 * 1024)
			break;
	}
	usleep(1500000); /* the trim, a second after the flood */
	after = proc_rss_kb(d.pid);
	fprintf(stderr, "nonreading: after %ld kB (%.2fx the baseline)\n",
	    after, (double)after / (double)base);
	ck_assert_int_lt(queued, 64 * 1024);
#ifndef __SANITIZE_ADDRESS__
	ck_assert_msg(after <= 2 * base, "RSS %ld kB after, baseline %ld kB",
	    after, base);
#else
	/* ASan's allocator quarantines what is freed and ignores
	 * malloc_trim: the figure means nothing here. */
	fprintf(stderr, "nonreading: RSS not checked under ASan\n");
#endif
	close(c);
	free(reqs);
	harness_stop(&d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("hostile");
	TCase *tc = tcase_create("hostile");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, regression_portserver_emfile_spins);
	tcase_add_test(tc, regression_portserver_per_uid_cap);
	tcase_add_test(tc, regression_privileged_port_refused);
	tcase_add_test(tc, regression_half_close_slow_reader);
	tcase_add_test(tc, regression_nonreading_clients_pin_memory);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
