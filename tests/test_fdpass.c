/*
 * fd handoff (guarantee 3): the sockets a "fd": true lease reply carries,
 * how many unread ones a connection may have, and that the daemon never
 * leaks a descriptor on the way.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "handoff.h"

#define POOL "25100-25199"

static int
family_af(const char *family)
{
	return strcmp(family, "ipv4") == 0 ? AF_INET : AF_INET6;
}

/*
 * Check the sockets of an fd lease reply against the fds received: the
 * same count, in the listed order, each bound to its port, of its type
 * and family, not listening, close-on-exec. Every port x proto of the
 * lease appears once.
 */
static void
check_sockets(json_object *r, const int *fds, int nfds)
{
	json_object *socks = reply_get(r, "sockets");
	json_object *ports = reply_get(r, "lease.ports");
	const char *proto = reply_str(r, "lease.proto");
	const char *family = reply_str(r, "lease.family");
	int per_port = strcmp(proto, "both") == 0 ? 2 : 1;
	int nports = (int)json_object_array_length(ports);

	ck_assert_msg(
	    socks != NULL, "no sockets in %s", json_object_to_json_string(r));
	ck_assert_int_eq((int)json_object_array_length(socks), nfds);
	ck_assert_int_eq(nfds, nports * per_port);
	for (int i = 0; i < nfds; i++) {
		json_object *s = json_object_array_get_idx(socks, i);
		int port = (int)reply_int(s, "port");
		const char *sp = reply_str(s, "proto");
		const char *sf = reply_str(s, "family");
		int seen = 0;

		ck_assert_int_eq(hb_sock_port(fds[i]), port);
		/* Port by port, TCP before UDP. */
		if (per_port == 2)
			ck_assert_str_eq(sp, i % 2 == 0 ? "tcp" : "udp");
		ck_assert_str_eq(sf, family);
		ck_assert_int_eq(hb_sock_family(fds[i]), family_af(sf));
		ck_assert_int_eq(hb_sock_int(fds[i], SOL_SOCKET, SO_TYPE),
		    strcmp(sp, "tcp") == 0 ? SOCK_STREAM : SOCK_DGRAM);
		ck_assert_int_eq(
		    hb_sock_int(fds[i], SOL_SOCKET, SO_ACCEPTCONN), 0);
		ck_assert(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
		if (strcmp(sf, "ipv4") != 0)
			ck_assert_int_eq(
			    hb_sock_int(fds[i], IPPROTO_IPV6, IPV6_V6ONLY),
			    strcmp(sf, "ipv6") == 0);
		/* In the lease, and each port x proto once. */
		for (int k = 0; k < nports; k++)
			seen += json_object_get_int(json_object_array_get_idx(
			            ports, k)) == port;
		ck_assert_int_eq(seen, 1);
		for (int k = 0; k < i; k++) {
			json_object *o = json_object_array_get_idx(socks, k);
			ck_assert(reply_int(o, "port") != port ||
			          strcmp(reply_str(o, "proto"), sp) != 0);
		}
	}
}

static const char *const shapes[] = {
    "",
    ",\"proto\":\"udp\"",
    ",\"proto\":\"both\"",
    ",\"family\":\"ipv4\"",
    ",\"family\":\"ipv6\",\"hold\":\"exclusive\"",
    ",\"proto\":\"both\",\"family\":\"ipv4\",\"count\":3",
    ",\"count\":5,\"contiguous\":true",
    ",\"strategy\":\"ephemeral\",\"count\":2",
};

START_TEST(sockets_match_reply)
{
	struct daemon_proc d;
	struct hb_reader rd;
	json_object *r;
	int conn, fds[256], nfds, port;

	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	conn = harness_connect(d.sock);
	hb_reader_init(&rd, conn);
	r = hb_call(&rd, fds, 256, &nfds, "{\"op\":\"lease\",\"fd\":true%s}",
	    shapes[_i]);
	ck_assert_msg(reply_ok(r), "%s", json_object_to_json_string(r));
	check_sockets(r, fds, nfds);
	port = lease_port(r, 0);
	json_object_put(r);

	/* Closing our copies changes nothing: portd keeps its own. */
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	ck_assert_int_eq(
	    hb_bind(strstr(shapes[_i], "ipv6") ? "::" : "0.0.0.0", false,
	        strstr(shapes[_i], "udp") ? SOCK_DGRAM : SOCK_STREAM, port,
	        false),
	    EADDRINUSE);
	ck_assert(hb_listed(conn, port));
	close(conn);
	harness_stop(&d);
}
END_TEST

/* A passed socket is the real thing: listen on it and take a
 * connection; the daemon's copy does not get in the way. */
START_TEST(passed_socket_serves)
{
	struct daemon_proc d;
	struct hb_reader rd;
	struct sockaddr_in sin = {
	    .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	json_object *r;
	int conn, fds[4], nfds, c, a;
	char buf[8];

	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	conn = harness_connect(d.sock);
	hb_reader_init(&rd, conn);
	r = hb_call(&rd, fds, 4, &nfds, "{\"op\":\"lease\",\"fd\":true}");
	ck_assert_int_eq(nfds, 1);
	sin.sin_port = htons((uint16_t)lease_port(r, 0));
	json_object_put(r);
	ck_assert_int_eq(listen(fds[0], 8), 0);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
	a = accept4(fds[0], NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(a, 0);
	ck_assert_int_eq(write(c, "ping", 4), 4);
	ck_assert_int_eq(read(a, buf, sizeof(buf)), 4);
	close(a);
	close(c);
	close(fds[0]);
	close(conn);
	harness_stop(&d);
}
END_TEST

/*
 * Passed sockets are blocking, as socket activation passes them (systemd's
 * NonBlocking= defaults to off). The receiver gets portd's own open file,
 * so a non-blocking hold made every server's accept() fail with EAGAIN at
 * once: a socket-activated server exited before its first client came.
 */
START_TEST(regression_passed_socket_blocking)
{
	struct daemon_proc d;
	struct hb_reader rd;
	json_object *r;
	int conn, fds[8], nfds;

	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	conn = harness_connect(d.sock);
	hb_reader_init(&rd, conn);
	r = hb_call(&rd, fds, 8, &nfds,
	    "{\"op\":\"lease\",\"fd\":true,\"proto\":\"both\"}");
	ck_assert_int_eq(nfds, 2);
	for (int i = 0; i < nfds; i++) {
		ck_assert_msg(!(fcntl(fds[i], F_GETFL) & O_NONBLOCK),
		    "socket %d passed non-blocking", i);
		close(fds[i]);
	}
	json_object_put(r);
	close(conn);
	harness_stop(&d);
}
END_TEST

/* 64 ports, TCP and UDP, dual: 128 descriptors in one message. */
START_TEST(both_64_in_one_message)
{
	struct daemon_proc d;
	struct hb_reader *rd = malloc(sizeof(*rd));
	json_object *r;
	int conn, fds[256], nfds;

	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	conn = harness_connect(d.sock);
	hb_reader_init(rd, conn);
	r = hb_call(rd, fds, 256, &nfds,
	    "{\"op\":\"lease\",\"fd\":true,\"count\":64,\"proto\":\"both\"}");
	ck_assert_msg(reply_ok(r), "%s", json_object_to_json_string(r));
	ck_assert_int_eq(nfds, 128);
	check_sockets(r, fds, nfds);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	json_object_put(r);
	free(rd);
	close(conn);
	harness_stop(&d);
}
END_TEST

/*
 * At most --max-fd-replies replies carrying sockets may wait unread on a
 * connection (conn_fd_budget: the count resets once the daemon's send
 * queue to the client is empty). Ten pipelined fd leases: four answered
 * with sockets, six refused; a plain lease is not affected; once the
 * client has read everything, fd leases work again.
 */
START_TEST(fd_reply_budget)
{
	struct daemon_proc d;
	struct hb_reader *rd = malloc(sizeof(*rd));
	char *line;
	json_object *r;
	int conn, fds[8], nfds, ok = 0, refused = 0, socks = 0;
	const char req[] = "{\"op\":\"lease\",\"fd\":true,\"ttl\":60}\n";

	harness_start(&d,
	    (const char *[]){"--pool", POOL, "--max-fd-replies", "4", NULL});
	conn = harness_connect(d.sock);
	hb_reader_init(rd, conn);
	for (int i = 0; i < 10; i++)
		harness_send(conn, req, sizeof(req) - 1);
	harness_send(conn, "{\"op\":\"lease\"}\n", 15);
	usleep(100 * 1000); /* let the daemon answer all of them unread */
	for (int i = 0; i < 11; i++) {
		line = hb_read_line(rd, 5000);
		ck_assert_ptr_nonnull(line);
		r = json_tokener_parse(line);
		ck_assert_ptr_nonnull(r);
		if (i == 10) {
			ck_assert_msg(reply_ok(r) && !reply_get(r, "sockets"),
			    "plain lease: %s", line);
		} else if (reply_ok(r)) {
			ck_assert_msg(
			    i < 4, "reply %d has sockets: %s", i + 1, line);
			ok++;
			socks += (int)json_object_array_length(
			    reply_get(r, "sockets"));
		} else {
			ck_assert_msg(
			    i >= 4, "reply %d refused: %s", i + 1, line);
			ck_assert_str_eq(reply_error(r), "resource_exhausted");
			refused++;
		}
		json_object_put(r);
		free(line);
	}
	ck_assert_int_eq(ok, 4);
	ck_assert_int_eq(refused, 6);
	ck_assert_int_eq(rd->nfds, socks); /* each listed socket arrived */
	for (int i = 0; i < rd->nfds; i++)
		close(rd->fds[i]);
	rd->nfds = 0;

	/* All read: the budget is back. */
	for (int i = 0; i < 6; i++) {
		r = hb_call(
		    rd, fds, 8, &nfds, "{\"op\":\"lease\",\"fd\":true}");
		ck_assert_msg(reply_ok(r), "after reading: %s",
		    json_object_to_json_string(r));
		ck_assert_int_eq(nfds, 1);
		close(fds[0]);
		json_object_put(r);
	}
	free(rd);
	close(conn);
	harness_stop(&d);
}
END_TEST

static void
release_all(int conn)
{
	json_object *r = harness_call(conn, "{\"op\":\"list\"}");
	json_object *arr = reply_get(r, "leases");

	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *x =
		    harness_call(conn, "{\"op\":\"release\",\"lease\":\"%s\"}",
		        reply_str(json_object_array_get_idx(arr, i), "id"));
		ck_assert(reply_ok(x));
		json_object_put(x);
	}
	json_object_put(r);
}

/*
 * The daemon's descriptor table is the same before and after fd leases,
 * claims, releases, errors, refusals over budget, a client that leaves
 * with unread fd replies, and a process that owned fd leases exiting.
 */
START_TEST(daemon_leaks_no_descriptor)
{
	struct daemon_proc d;
	struct hb_reader *rd = malloc(sizeof(*rd));
	json_object *r;
	int conn, fds[256], nfds, before, after, busy, port;
	pid_t child;

	harness_start(&d,
	    (const char *[]){"--pool", POOL, "--max-fd-replies", "4", NULL});
	conn = harness_connect(d.sock);
	hb_reader_init(rd, conn);
	r = hb_call(rd, NULL, 0, NULL, "{\"op\":\"hello\",\"version\":1}");
	json_object_put(r);
	before = hb_fd_count(d.pid);

	/* Leases with sockets passed; some claimed, all released. */
	for (int i = 0; i < 20; i++) {
		r = hb_call(rd, fds, 256, &nfds,
		    "{\"op\":\"lease\",\"fd\":true%s}", shapes[i % 8]);
		ck_assert_msg(reply_ok(r), "%s", json_object_to_json_string(r));
		for (int k = 0; k < nfds; k++)
			close(fds[k]);
		if (i % 3 == 0) {
			json_object *c = hb_call(rd, NULL, 0, NULL,
			    "{\"op\":\"claim\",\"lease\":\"%s\"}", lease_id(r));
			ck_assert(reply_ok(c));
			json_object_put(c);
		}
		json_object_put(r);
	}

	/* Errors: a busy specific port, a bad request, unknown lease. */
	busy = hb_bind_keep("::", false, SOCK_STREAM, 25190, false);
	ck_assert_int_ge(busy, 0);
	r = hb_call(rd, fds, 256, &nfds,
	    "{\"op\":\"lease\",\"fd\":true,\"port\":25190,\"proto\":\"both\"}");
	ck_assert_str_eq(reply_error(r), "port_unavailable");
	ck_assert_int_eq(nfds, 0);
	json_object_put(r);
	close(busy);
	r = hb_call(rd, fds, 256, &nfds,
	    "{\"op\":\"lease\",\"fd\":true,\"proto\":\"udp\",\"hold\":"
	    "\"shared\"}");
	ck_assert_str_eq(reply_error(r), "bad_request");
	json_object_put(r);
	r = hb_call(rd, fds, 256, &nfds,
	    "{\"op\":\"claim\",\"lease\":\"Lffffffffffffffff\"}");
	ck_assert_str_eq(reply_error(r), "not_found");
	json_object_put(r);

	/* A client that pipelines fd leases (over budget) and leaves
	 * without reading: session leases end, sockets in flight drop. */
	for (int round = 0; round < 3; round++) {
		int c = harness_connect(d.sock);
		for (int i = 0; i < 8; i++) {
			const char *q =
			    i & 1 ? "{\"op\":\"lease\",\"fd\":true,\"scope\":"
			            "\"session\",\"proto\":\"both\"}\n"
			          : "{\"op\":\"lease\",\"fd\":true,\"count\":3}"
			            "\n";
			harness_send(c, q, strlen(q));
		}
		usleep(50 * 1000);
		close(c);
	}

	/* A process that owned fd leases exits. */
	child = fork();
	ck_assert_int_ne(child, -1);
	if (child == 0) {
		int c = harness_connect(d.sock), n;
		for (int i = 0; i < 3; i++) {
			json_object *x = harness_call_fds(c, fds, &n,
			    "{\"op\":\"lease\",\"fd\":true,\"scope\":"
			    "\"process\"}");
			if (!reply_ok(x))
				_exit(1);
			port = lease_port(x, 0);
		}
		_exit(port > 0 ? 0 : 1);
	}
	int st;
	ck_assert_int_eq(waitpid(child, &st, 0), child);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	usleep(50 * 1000);
	release_all(conn);
	after = hb_fd_count_wait(d.pid, before, 2000);
	r = hb_call(rd, NULL, 0, NULL, "{\"op\":\"status\"}");
	ck_assert_msg(after == before,
	    "daemon fds: %d before, %d after; status %s", before, after,
	    json_object_to_json_string(r));
	ck_assert_int_eq(reply_int(r, "leases"), 0);
	ck_assert_int_eq(reply_int(r, "sockets"), 0);
	json_object_put(r);
	free(rd);
	close(conn);
	harness_stop(&d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("fdpass");
	TCase *tc = tcase_create("fdpass");

	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, sockets_match_reply, 0,
	    (int)(sizeof(shapes) / sizeof(shapes[0])));
	tcase_add_test(tc, passed_socket_serves);
	tcase_add_test(tc, regression_passed_socket_blocking);
	tcase_add_test(tc, both_64_in_one_message);
	tcase_add_test(tc, fd_reply_budget);
	tcase_add_test(tc, daemon_leaks_no_descriptor);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
