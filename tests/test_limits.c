/*
 * Integration tests of portd's limits, each at its boundary: the line
 * length, the nesting depth, the request deadline, a client that never
 * reads, and running out of descriptors. Pool ports: 29500-29999.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "integ.h"
#include "proto.h"

#define POOL_ARGS "--pool", "29500-29999"

static const char *const pool_args[] = {POOL_ARGS, NULL};

/* A hello request padded with spaces to exactly len bytes, '\n' added. */
static char *
padded_hello(size_t len)
{
	static const char req[] = "{\"op\":\"hello\",\"id\":\"pad\"}";
	char *buf = malloc(len + 1);

	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_ge(len, sizeof(req) - 1);
	memset(buf, ' ', len);
	memcpy(buf, req, sizeof(req) - 1);
	buf[len] = '\n';
	return buf;
}

/* A connection that sends len bytes of buf is refused with
 * request_too_large and closed. */
static void
expect_too_large(const char *sock, const char *buf, size_t len)
{
	int fd = harness_connect(sock);
	const char *code;

	harness_send(fd, buf, len);
	code = recv_code(fd, 3000);
	ck_assert_ptr_nonnull(code);
	ck_assert_str_eq(code, "request_too_large");
	ck_assert(wait_closed(fd, 2000));
	close(fd);
}

START_TEST(line_of_65536_bytes_is_parsed)
{
	struct daemon_proc d;
	char *buf = padded_hello(PROTO_MAX_LINE);
	const char *code;
	int fd;

	harness_start(&d, pool_args);
	fd = harness_connect(d.sock);
	harness_send(fd, buf, PROTO_MAX_LINE + 1);
	code = recv_code(fd, 3000);
	ck_assert_ptr_nonnull(code);
	ck_assert_str_eq(code, "ok"); /* trailing spaces are allowed */
	hello_ok(fd);

	/* The same, arriving without its '\n' first: no verdict yet. */
	harness_send(fd, buf, PROTO_MAX_LINE);
	ck_assert_ptr_null(recv_code(fd, 300));
	harness_send(fd, "\n", 1);
	code = recv_code(fd, 3000);
	ck_assert_ptr_nonnull(code);
	ck_assert_str_eq(code, "ok");
	hello_ok(fd);
	free(buf);
	close(fd);
	harness_stop(&d);
}
END_TEST

START_TEST(line_of_65537_bytes_is_refused)
{
	struct daemon_proc d;
	char *buf = padded_hello(PROTO_MAX_LINE + 1);
	int fd;

	harness_start(&d, pool_args);
	expect_too_large(d.sock, buf, PROTO_MAX_LINE + 2);

	/* Without a '\n': refused once the 65537th byte is in. */
	expect_too_large(d.sock, buf, PROTO_MAX_LINE + 1);

	fd = harness_connect(d.sock);
	hello_ok(fd);
	free(buf);
	close(fd);
	harness_stop(&d);
}
END_TEST

/*
 * json-c counts the request object itself as depth 1: 16 containers in
 * all are parsed (and then refused for the unknown field), 17 are refused
 * by the depth limit.
 */
START_TEST(depth_16_vs_17)
{
	struct daemon_proc d;
	char buf[256];
	json_object *r;
	int fd;

	harness_start(&d, pool_args);
	fd = harness_connect(d.sock);
	for (int depth = 15; depth <= 18; depth++) {
		int n = depth - 1;
		const char *msg;

		snprintf(buf, sizeof(buf), "{\"op\":\"hello\",\"x\":%.*s%.*s}",
		    n, "[[[[[[[[[[[[[[[[[[[[", n, "]]]]]]]]]]]]]]]]]]]]");
		r = harness_call(fd, "%s", buf);
		ck_assert_str_eq(reply_error(r), "bad_request");
		msg = reply_str(r, "error.message");
		if (depth <= PROTO_MAX_DEPTH)
			ck_assert_msg(strstr(msg, "unknown field") != NULL,
			    "depth %d: %s", depth, msg);
		else
			ck_assert_msg(strstr(msg, "deeper") != NULL,
			    "depth %d: %s", depth, msg);
		json_object_put(r);
	}
	hello_ok(fd);
	close(fd);
	harness_stop(&d);
}
END_TEST

START_TEST(deadline_half_a_line)
{
	struct daemon_proc d;
	const char *code;
	int64_t t0;
	int fd;

	harness_start(&d,
	    (const char *[]){POOL_ARGS, "--request-timeout", "300ms", NULL});
	fd = harness_connect(d.sock);
	/* Idle without a request begun is fine. */
	usleep(600 * 1000);
	hello_ok(fd);

	t0 = now_ms();
	harness_send(fd, "{\"op\":\"hel", 10);
	code = recv_code(fd, 2000);
	ck_assert_ptr_nonnull(code);
	ck_assert_str_eq(code, "bad_request");
	ck_assert(wait_closed(fd, 1000));
	ck_assert_msg(now_ms() - t0 < 1000, "closed after %lld ms",
	    (long long)(now_ms() - t0));
	ck_assert_int_ge(now_ms() - t0, 250);
	close(fd);
	harness_stop(&d);
}
END_TEST

/* The deadline runs from a request's first byte, not from the last. */
START_TEST(deadline_drip_feed)
{
	struct daemon_proc d;
	const char *start = "{\"op\":\"hello\",\"id\":\"";
	int64_t t0, closed_at = -1;
	bool got_error = false;
	int fd;

	harness_start(&d,
	    (const char *[]){POOL_ARGS, "--request-timeout", "300ms", NULL});
	fd = harness_connect(d.sock);
	t0 = now_ms();
	for (int i = 0; now_ms() - t0 < 3000; i++) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		char c = i < (int)strlen(start) ? start[i] : 'a';
		char buf[4096];
		ssize_t n;

		/* A send that fails finds portd gone, but its last reply may
		 * still wait to be read: read on before giving up. */
		bool sent = send(fd, &c, 1, MSG_NOSIGNAL) == 1;

		if (poll(&pfd, 1, 100) == 1) {
			n = recv(fd, buf, sizeof(buf) - 1, 0);
			if (n > 0) {
				buf[n] = '\0';
				got_error |= strstr(buf, "bad_request") != NULL;
			}
			if (n == 0 || (n == -1 && errno == ECONNRESET)) {
				closed_at = now_ms();
				break;
			}
		} else if (!sent)
			break;
	}
	if (closed_at == -1 && wait_closed(fd, 1000))
		closed_at = now_ms();
	ck_assert_msg(
	    closed_at != -1, "a drip-feeding client was never closed");
	ck_assert_msg(closed_at - t0 < 1000, "closed after %lld ms",
	    (long long)(closed_at - t0));
	ck_assert(got_error);
	close(fd);
	fd = harness_connect(d.sock);
	hello_ok(fd);
	close(fd);
	harness_stop(&d);
}
END_TEST

/*
 * conn_process() armed the deadline only when none was pending, so a
 * request that began in the same read as the end of the previous one
 * inherited the previous request's deadline: a client streaming requests
 * whose writes never end on a line boundary was cut off after one
 * request-timeout although each request took a fraction of it.
 */
START_TEST(regression_deadline_spans_pipelined_requests)
{
	struct daemon_proc d;
	char buf[128];
	int fd, n;

	harness_start(
	    &d, (const char *[]){POOL_ARGS, "--request-timeout", "1s", NULL});
	fd = harness_connect(d.sock);
	harness_send(fd, "{\"op\":\"hel", 10);
	/* 2.5 s of requests of 100 ms each: margin for a loaded host. */
	for (int i = 0; i < 25; i++) {
		usleep(100 * 1000);
		n = snprintf(
		    buf, sizeof(buf), "lo\",\"id\":%d}\n{\"op\":\"hel", i);
		harness_send(fd, buf, (size_t)n);
	}
	harness_send(fd, "lo\",\"id\":25}\n", 13);
	for (int i = 0; i <= 25; i++) {
		char *line = harness_recv_line(fd, 2000, NULL, NULL);
		json_object *r;

		ck_assert_msg(line != NULL, "reply %d missing", i);
		r = json_tokener_parse(line);
		ck_assert_msg(
		    r != NULL && reply_ok(r), "reply %d: %s", i, line);
		ck_assert_int_eq(reply_int(r, "id"), i);
		json_object_put(r);
		free(line);
	}
	hello_ok(fd);
	close(fd);
	harness_stop(&d);
}
END_TEST

/* Read n reply lines from a raw fd; checks ids 0..n-1 in order. */
static void
drain_replies(int fd, int n)
{
	static char buf[1 << 20];
	size_t len = 0;
	int got = 0;
	int64_t deadline = now_ms() + 20000;

	while (got < n) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t k;

		ck_assert_msg(now_ms() < deadline, "%d of %d replies", got, n);
		if (poll(&pfd, 1, 1000) != 1)
			continue;
		k = recv(fd, buf + len, sizeof(buf) - len, 0);
		ck_assert_msg(
		    k > 0, "connection ended after %d of %d replies", got, n);
		len = take_replies(buf, len + (size_t)k, &got, false);
	}
}

/*
 * ASan keeps freed memory in a quarantine (256 MiB by default) that shows
 * in RSS as if it were growth; a sanitizer-built daemon gets a small one.
 */
static void
asan_small_quarantine(void)
{
#if defined(__SANITIZE_ADDRESS__)
	const char *old = getenv("ASAN_OPTIONS");
	char buf[1024];

	snprintf(buf, sizeof(buf), "%s%squarantine_size_mb=4",
	    old != NULL ? old : "", old != NULL && *old ? ":" : "");
	setenv("ASAN_OPTIONS", buf, 1);
#endif
}

START_TEST(client_that_never_reads)
{
	enum { NREQ = 40000 };
	struct daemon_proc d;
	char *reqs;
	size_t len = 0, sent = 0;
	long rss0, rss1, cpu0, cpu1;
	int64_t stalled = 0;
	int fd, other, lines = 0;

	asan_small_quarantine();
	harness_start(&d, pool_args);
	other = harness_connect(d.sock);
	hello_ok(other);
	rss0 = proc_rss_kb(d.pid);

	reqs = malloc((size_t)NREQ * 80);
	for (int i = 0; i < NREQ; i++)
		len += (size_t)sprintf(reqs + len,
		    i % 8 == 0 ? "{\"op\":\"lease\",\"id\":%d,"
		                 "\"scope\":\"session\"}\n"
		               : "{\"op\":\"status\",\"id\":%d}\n",
		    i);
	fd = harness_connect(d.sock);
	/* Write until the daemon stops taking more for half a second. */
	while (sent < len) {
		ssize_t n = send(
		    fd, reqs + sent, len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			sent += (size_t)n;
			stalled = 0;
			continue;
		}
		ck_assert_msg(
		    n == -1 && errno == EAGAIN, "send: %s", strerror(errno));
		if (stalled == 0)
			stalled = now_ms();
		else if (now_ms() - stalled > 500)
			break;
		usleep(10000);
	}
	ck_assert_msg(sent < len, "the daemon took all %zu bytes unread", len);

	/* Bounded, not spinning, and everyone else is served. */
	rss1 = proc_rss_kb(d.pid);
	ck_assert_msg(
	    rss1 - rss0 < 32 * 1024, "RSS grew from %ld to %ld kB", rss0, rss1);
	cpu0 = proc_cpu_ticks(d.pid);
	for (int i = 0; i < 10; i++) {
		hello_ok(other);
		usleep(50 * 1000);
	}
	cpu1 = proc_cpu_ticks(d.pid);
	ck_assert_msg((cpu1 - cpu0) * 1000 / sysconf(_SC_CLK_TCK) < 200,
	    "%ld ticks of CPU in 0.5 s while throttled", cpu1 - cpu0);

	/* Once it reads, it gets every reply to what it sent, in order. */
	for (size_t i = 0; i < sent; i++)
		lines += reqs[i] == '\n';
	drain_replies(fd, lines);
	free(reqs);
	close(fd);
	hello_ok(other);
	close(other);
	harness_stop(&d);
}
END_TEST

/*
 * Out of descriptors, a connection waiting to be accepted is refused
 * through the spare descriptor (one resource_exhausted line) instead of
 * hanging, the daemon does not spin, and clients already connected are
 * served; once descriptors are free again new connections are taken.
 */
START_TEST(out_of_descriptors)
{
	struct daemon_proc d;
	struct rlimit low;
	int fds[64], n = 0, refused = -1, fd;
	long cpu0, cpu1;
	const char *code;

	/* portd raises its soft limit to the hard one at start; lower both
	 * on the running daemon. */
	harness_start(&d, pool_args);
	low.rlim_cur = low.rlim_max = 40;
	ck_assert_int_eq(prlimit(d.pid, RLIMIT_NOFILE, &low, NULL), 0);

	while (n < 64) {
		fd = harness_connect(d.sock);
		ck_assert_int_ge(fd, 0);
		(void)send(fd, "{\"op\":\"hello\"}\n", 15, MSG_NOSIGNAL);
		code = recv_code(fd, 2000);
		ck_assert_msg(code != NULL, "connection %d left hanging", n);
		if (strcmp(code, "ok") != 0) {
			ck_assert_str_eq(code, "resource_exhausted");
			refused = fd;
			break;
		}
		fds[n++] = fd;
	}
	ck_assert_msg(refused != -1, "%d connections and no EMFILE yet", n);
	ck_assert_int_gt(n, 10);
	ck_assert(wait_closed(refused, 2000));
	close(refused);

	/* Out of descriptors, the daemon waits instead of spinning. */
	cpu0 = proc_cpu_ticks(d.pid);
	usleep(1000 * 1000);
	cpu1 = proc_cpu_ticks(d.pid);
	ck_assert_msg((cpu1 - cpu0) * 1000 / sysconf(_SC_CLK_TCK) < 300,
	    "%ld ticks of CPU in 1 s at EMFILE", cpu1 - cpu0);
	hello_ok(fds[0]);

	/* Free some: new connections are served again. */
	for (int i = 0; i < 3; i++)
		close(fds[--n]);
	usleep(100 * 1000);
	fd = harness_connect(d.sock);
	hello_ok(fd);
	close(fd);
	while (n > 0)
		close(fds[--n]);
	harness_stop(&d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("limits");
	TCase *tc = tcase_create("limits");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, line_of_65536_bytes_is_parsed);
	tcase_add_test(tc, line_of_65537_bytes_is_refused);
	tcase_add_test(tc, depth_16_vs_17);
	tcase_add_test(tc, deadline_half_a_line);
	tcase_add_test(tc, deadline_drip_feed);
	tcase_add_test(tc, client_that_never_reads);
	tcase_add_test(tc, out_of_descriptors);
	tcase_add_test(tc, regression_deadline_spans_pipelined_requests);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
