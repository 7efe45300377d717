/*
 * Integration tests against a real portd: every op, every error code a
 * client can cause, the holds checked with real bind() calls (SPEC
 * Guarantee 2), lease lifetimes, limits per uid, and the daemon's start
 * and stop around its socket file. Pool ports: 29000-29499.
 *
 * The error code `internal` is not reachable from here: it needs a failed
 * timer or an unexpected bind errno inside the daemon.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integ.h"
#include "proto.h"

#define POOL_ARGS "--pool", "29000-29499"

static const char *const pool_args[] = {POOL_ARGS, NULL};

/* A daemon on the test pool, and a connection to it. */
static int
start_pool(struct daemon_proc *d)
{
	harness_start(d, pool_args);
	return harness_connect(d->sock);
}

static void
close_and_stop(struct daemon_proc *d, int fd)
{
	close(fd);
	harness_stop(d);
}

static json_object *
lease(int fd, const char *args)
{
	json_object *r =
	    harness_call(fd, "{\"op\":\"lease\"%s%s}", *args ? "," : "", args);

	ck_assert_msg(
	    reply_ok(r), "lease {%s}: %s", args, json_object_to_json_string(r));
	return r;
}

/* A daemon on the test pool, a connection to it, and one lease of args
 * made on that: the reply, its first port, and the time just before the
 * request. */
struct leased {
	struct daemon_proc d;
	int fd;
	json_object *a;
	int p;
	int64_t t0;
};

static void
start_leased(struct leased *l, const char *args)
{
	l->fd = start_pool(&l->d);
	l->t0 = now_ms();
	l->a = lease(l->fd, args);
	l->p = lease_port(l->a, 0);
}

static void
leased_done(struct leased *l)
{
	json_object_put(l->a);
	close_and_stop(&l->d, l->fd);
}

/* Wait until status shows n connections (probes from harness_start and
 * closed clients are counted until the daemon reads their EOF). */
static void
wait_conns(int fd, int n)
{
	int64_t deadline = now_ms() + 2000;
	int64_t got;

	do {
		got = status_int(fd, "connections");
		if (got == n)
			return;
		usleep(5000);
	} while (now_ms() < deadline);
	ck_abort_msg(
	    "status shows %lld connections, want %d", (long long)got, n);
}

/* A connection over a limit: one resource_exhausted line, then closed. */
static void
assert_refused(int fd, const char *what)
{
	char *line = harness_recv_line(fd, 3000, NULL, NULL);

	ck_assert_msg(line != NULL, "no reply to %s", what);
	ck_assert_str_eq(line_code(line), "resource_exhausted");
	free(line);
	ck_assert(wait_closed(fd, 2000));
	close(fd);
}

START_TEST(hello_echoes_uid_and_pid)
{
	struct daemon_proc d;
	struct exchange x;
	json_object *r;
	const char *req = "{\"op\":\"hello\",\"id\":\"h2\",\"version\":1}\n";
	int fd;

	harness_start(
	    &d, (const char *[]){POOL_ARGS, "--socket-mode", "0666", NULL});
	open_dir(&d);
	fd = harness_connect(d.sock);
	r = harness_call(fd, "{\"op\":\"hello\",\"id\":\"h1\",\"version\":1}");
	ck_assert(reply_ok(r));
	ck_assert_str_eq(reply_str(r, "id"), "h1");
	ck_assert_int_eq(reply_int(r, "uid"), 0);
	ck_assert_int_eq(reply_int(r, "pid"), d.pid);
	ck_assert_int_eq(reply_int(r, "version"), 1);
	ck_assert_str_eq(reply_str(r, "server.name"), "portd");
	json_object_put(r);

	exchange_as(NOBODY_UID, d.sock, req, strlen(req), 1, 2000, 0, &x);
	r = exchange_reply(&x, 0);
	ck_assert(reply_ok(r));
	ck_assert_str_eq(reply_str(r, "id"), "h2");
	ck_assert_int_eq(reply_int(r, "uid"), NOBODY_UID);
	ck_assert_int_eq(reply_int(r, "pid"), d.pid);
	json_object_put(r);
	exchange_free(&x);
	close_and_stop(&d, fd);
}
END_TEST

START_TEST(every_op)
{
	struct daemon_proc d;
	json_object *r, *a, *b;
	char ida[80], idb[80];
	int fd, p, q;

	fd = start_pool(&d);

	a = lease(fd, "\"id\":7");
	ck_assert_int_eq(reply_int(a, "id"), 7);
	snprintf(ida, sizeof(ida), "%s", lease_id(a));
	p = lease_port(a, 0);
	ck_assert(p >= 29000 && p <= 29499);
	ck_assert_str_eq(reply_str(a, "lease.proto"), "tcp");
	ck_assert_str_eq(reply_str(a, "lease.family"), "dual");
	ck_assert_str_eq(reply_str(a, "lease.hold"), "shared");
	ck_assert_str_eq(reply_str(a, "lease.scope"), "ttl");
	ck_assert_int_eq(reply_int(a, "lease.ttl"), 300);
	ck_assert_int_gt(
	    reply_int(a, "lease.expires"), reply_int(a, "lease.created"));
	ck_assert_int_eq(reply_int(a, "lease.owner.uid"), 0);
	ck_assert_int_eq(reply_int(a, "lease.owner.pid"), getpid());
	ck_assert(json_object_get_boolean(reply_get(a, "lease.held")));
	assert_plain_blocked(p, SOCK_STREAM);

	b = lease(fd, "\"count\":3,\"contiguous\":true,\"name\":\"web x\","
	              "\"hold\":\"exclusive\",\"ttl\":60");
	snprintf(idb, sizeof(idb), "%s", lease_id(b));
	q = lease_port(b, 0);
	ck_assert_int_eq(lease_port(b, 1), q + 1);
	ck_assert_int_eq(lease_port(b, 2), q + 2);
	ck_assert_str_eq(reply_str(b, "lease.name"), "web x");
	ck_assert_str_eq(reply_str(b, "lease.hold"), "exclusive");

	r = harness_call(
	    fd, "{\"op\":\"renew\",\"lease\":\"%s\",\"ttl\":100}", ida);
	ck_assert(reply_ok(r));
	ck_assert_int_eq(reply_int(r, "lease.ttl"), 100);
	json_object_put(r);

	r = harness_call(fd, "{\"op\":\"claim\",\"lease\":\"%s\"}", idb);
	ck_assert(reply_ok(r));
	ck_assert(!json_object_get_boolean(reply_get(r, "lease.held")));
	json_object_put(r);

	ck_assert(list_has(fd, ida));
	ck_assert(list_has(fd, idb));

	r = harness_call(fd, "{\"op\":\"status\"}");
	ck_assert(reply_ok(r));
	ck_assert_int_eq(reply_int(r, "leases"), 2);
	ck_assert_int_eq(reply_int(r, "ports"), 4);
	json_object_put(r);

	r = harness_call(fd, "{\"op\":\"release\",\"lease\":\"%s\"}", ida);
	ck_assert(reply_ok(r));
	ck_assert_int_eq(json_object_get_int(json_object_array_get_idx(
	                     reply_get(r, "released"), 0)),
	    p);
	json_object_put(r);
	assert_port_free(p, SOCK_STREAM);

	r = harness_call(fd, "{\"op\":\"release\",\"port\":%d}", q + 1);
	ck_assert(reply_ok(r));
	ck_assert_int_eq(json_object_array_length(reply_get(r, "released")), 3);
	json_object_put(r);
	ck_assert(!list_has(fd, idb));

	json_object_put(a);
	json_object_put(b);
	close_and_stop(&d, fd);
}
END_TEST

START_TEST(errors_of_requests)
{
	struct daemon_proc d;
	size_t n = 70000;
	char *big;
	int fd;

	fd = start_pool(&d);
	expect_error(fd, "bad_request", "{\"op\":\"lease\",\"count\":0}");
	expect_error(fd, "bad_request", "{\"op\":\"lease\",\"bogus\":1}");
	expect_error(fd, "unknown_op", "{\"op\":\"frobnicate\"}");
	expect_error(
	    fd, "not_found", "{\"op\":\"renew\",\"lease\":\"Lnosuchlease\"}");
	expect_error(
	    fd, "not_found", "{\"op\":\"claim\",\"lease\":\"Lnosuchlease\"}");
	expect_error(
	    fd, "not_found", "{\"op\":\"release\",\"lease\":\"Lnosuchlease\"}");
	expect_error(fd, "not_found", "{\"op\":\"release\",\"port\":29499}");

	/* Too large: an error line, then the connection closes. */
	big = malloc(n + 1);
	memset(big, ' ', n);
	big[n] = '\n';
	harness_send(fd, big, n + 1);
	free(big);
	{
		char *line = harness_recv_line(fd, 3000, NULL, NULL);
		ck_assert_ptr_nonnull(line);
		ck_assert_str_eq(line_code(line), "request_too_large");
		free(line);
	}
	ck_assert(wait_closed(fd, 2000));
	close_and_stop(&d, fd);
}
END_TEST

START_TEST(no_ports)
{
	struct daemon_proc d;
	json_object *a, *b;
	int fd;

	harness_start(&d, (const char *[]){"--pool", "29100-29101", NULL});
	fd = harness_connect(d.sock);
	a = lease(fd, "");
	b = lease(fd, "");
	expect_error(fd, "no_ports", "{\"op\":\"lease\"}");
	expect_error(fd, "no_ports",
	    "{\"op\":\"lease\",\"count\":2,\"contiguous\":true}");
	json_object_put(harness_call(
	    fd, "{\"op\":\"release\",\"lease\":\"%s\"}", lease_id(a)));
	json_object_put(lease(fd, ""));
	json_object_put(a);
	json_object_put(b);
	close_and_stop(&d, fd);
}
END_TEST

START_TEST(port_unavailable)
{
	struct daemon_proc d;
	json_object *r;
	int fd, busy;

	fd = start_pool(&d);
	/* A port the test itself holds. */
	busy = bind_listen("0.0.0.0", 29460, false);
	ck_assert_int_ge(busy, 0);
	expect_error(
	    fd, "port_unavailable", "{\"op\":\"lease\",\"port\":29460}");
	close(busy);
	r = lease(fd, "\"port\":29460");
	ck_assert_int_eq(lease_port(r, 0), 29460);
	json_object_put(r);
	close_and_stop(&d, fd);
}
END_TEST

START_TEST(port_unavailable_leased)
{
	struct daemon_proc d;
	json_object *a;
	char req[64];
	int fd;

	fd = start_pool(&d);
	a = lease(fd, "\"hold\":\"exclusive\"");
	snprintf(req, sizeof(req), "{\"op\":\"lease\",\"port\":%d}",
	    lease_port(a, 0));
	expect_error(fd, "port_unavailable", req);
	/* Claimed: no socket held, the port is still not handed out. */
	json_object_put(harness_call(
	    fd, "{\"op\":\"claim\",\"lease\":\"%s\"}", lease_id(a)));
	expect_error(fd, "port_unavailable", req);
	json_object_put(a);
	close_and_stop(&d, fd);
}
END_TEST

START_TEST(quota_per_uid)
{
	struct daemon_proc d;
	struct exchange x;
	json_object *a, *r;
	const char *two = "{\"op\":\"lease\",\"count\":2}\n"
	                  "{\"op\":\"lease\"}\n";
	int fd;

	harness_start(&d, (const char *[]){POOL_ARGS, "--quota", "2",
	                      "--socket-mode", "0666", NULL});
	open_dir(&d);
	fd = harness_connect(d.sock);
	expect_error(fd, "quota_exceeded", "{\"op\":\"lease\",\"count\":3}");
	a = lease(fd, "\"count\":2");
	expect_error(fd, "quota_exceeded", "{\"op\":\"lease\"}");

	/* Another uid has a quota of its own. */
	exchange_as(NOBODY_UID, d.sock, two, strlen(two), 2, 2000, 0, &x);
	r = exchange_reply(&x, 0);
	ck_assert_msg(reply_ok(r), "%s", x.lines[0]);
	ck_assert_int_eq(reply_int(r, "lease.owner.uid"), NOBODY_UID);
	json_object_put(r);
	ck_assert_str_eq(line_code(x.lines[1]), "quota_exceeded");
	exchange_free(&x);

	/* Released ports count no more. */
	json_object_put(harness_call(
	    fd, "{\"op\":\"release\",\"lease\":\"%s\"}", lease_id(a)));
	json_object_put(lease(fd, "\"count\":2"));
	json_object_put(a);
	close_and_stop(&d, fd);
}
END_TEST

START_TEST(forbidden_for_other_users)
{
	struct daemon_proc d;
	struct exchange x;
	json_object *a, *r;
	char req[1024];
	int fd, p;

	harness_start(
	    &d, (const char *[]){POOL_ARGS, "--socket-mode", "0666", NULL});
	open_dir(&d);
	fd = harness_connect(d.sock);
	a = lease(fd, "");
	p = lease_port(a, 0);
	snprintf(req, sizeof(req),
	    "{\"op\":\"renew\",\"lease\":\"%s\",\"ttl\":5}\n"
	    "{\"op\":\"claim\",\"lease\":\"%s\"}\n"
	    "{\"op\":\"release\",\"lease\":\"%s\"}\n"
	    "{\"op\":\"release\",\"port\":%d}\n"
	    "{\"op\":\"list\",\"all\":true}\n"
	    "{\"op\":\"list\"}\n",
	    lease_id(a), lease_id(a), lease_id(a), p);
	exchange_as(NOBODY_UID, d.sock, req, strlen(req), 6, 2000, 0, &x);
	ck_assert_int_eq(x.n, 6);
	for (int i = 0; i < 5; i++)
		ck_assert_msg(strcmp(line_code(x.lines[i]), "forbidden") == 0,
		    "request %d as nobody: %s", i, x.lines[i]);
	r = exchange_reply(&x, 5);
	ck_assert(reply_ok(r));
	ck_assert_int_eq(json_object_array_length(reply_get(r, "leases")), 0);
	json_object_put(r);
	exchange_free(&x);

	/* Untouched: still held, still 300 s, root sees it in all. */
	r = harness_call(fd, "{\"op\":\"list\",\"all\":true}");
	ck_assert_int_eq(json_object_array_length(reply_get(r, "leases")), 1);
	ck_assert(json_object_get_boolean(reply_get(
	    json_object_array_get_idx(reply_get(r, "leases"), 0), "held")));
	ck_assert_int_eq(
	    reply_int(
	        json_object_array_get_idx(reply_get(r, "leases"), 0), "ttl"),
	    300);
	json_object_put(r);
	assert_plain_blocked(p, SOCK_STREAM);
	json_object_put(a);
	close_and_stop(&d, fd);
}
END_TEST

START_TEST(max_connections)
{
	struct daemon_proc d;
	int fds[3], extra;

	harness_start(
	    &d, (const char *[]){POOL_ARGS, "--max-connections", "3", NULL});
	fds[0] = harness_connect(d.sock);
	wait_conns(fds[0], 1);
	for (int i = 1; i < 3; i++) {
		fds[i] = harness_connect(d.sock);
		json_object_put(harness_call(fds[i], "{\"op\":\"hello\"}"));
	}
	extra = harness_connect(d.sock);
	ck_assert_int_ge(extra, 0);
	assert_refused(extra, "the 4th connection");
	/* The three are still served; one gone makes room. */
	for (int i = 0; i < 3; i++)
		json_object_put(harness_call(fds[i], "{\"op\":\"hello\"}"));
	close(fds[2]);
	wait_conns(fds[0], 2);
	extra = harness_connect(d.sock);
	json_object_put(harness_call(extra, "{\"op\":\"hello\"}"));
	close(extra);
	close(fds[0]);
	close_and_stop(&d, fds[1]);
}
END_TEST

START_TEST(max_connections_per_uid)
{
	struct daemon_proc d;
	struct exchange x;
	const char *hello = "{\"op\":\"hello\"}\n";
	json_object *r;
	int fds[2];

	harness_start(
	    &d, (const char *[]){POOL_ARGS, "--max-connections-per-uid", "2",
	            "--socket-mode", "0666", NULL});
	open_dir(&d);
	fds[0] = harness_connect(d.sock);
	wait_conns(fds[0], 1);
	fds[1] = harness_connect(d.sock);
	json_object_put(harness_call(fds[1], "{\"op\":\"hello\"}"));
	assert_refused(harness_connect(d.sock), "root's 3rd connection");

	/* Another uid still gets in. */
	exchange_as(NOBODY_UID, d.sock, hello, strlen(hello), 1, 2000, 0, &x);
	r = exchange_reply(&x, 0);
	ck_assert_msg(reply_ok(r), "%s", x.lines[0]);
	ck_assert_int_eq(reply_int(r, "uid"), NOBODY_UID);
	json_object_put(r);
	exchange_free(&x);
	close(fds[0]);
	close_and_stop(&d, fds[1]);
}
END_TEST

START_TEST(hold_shared_tcp)
{
	struct leased l;
	json_object *r;

	start_leased(&l, "");
	assert_plain_blocked(l.p, SOCK_STREAM);
	assert_cobind(l.p);
	/* The co-bound server came and went; portd still holds the port. */
	assert_plain_blocked(l.p, SOCK_STREAM);
	r = harness_call(
	    l.fd, "{\"op\":\"release\",\"lease\":\"%s\"}", lease_id(l.a));
	ck_assert(reply_ok(r));
	json_object_put(r);
	assert_port_free(l.p, SOCK_STREAM);
	leased_done(&l);
}
END_TEST

static void
check_exclusive(int fd, const char *args, int type)
{
	json_object *a, *r;
	int p;

	a = lease(fd, args);
	p = lease_port(a, 0);
	ck_assert_str_eq(reply_str(a, "lease.hold"), "exclusive");
	assert_plain_blocked(p, type);
	assert_reuse_blocked(p, type);
	r = harness_call(
	    fd, "{\"op\":\"claim\",\"lease\":\"%s\"}", lease_id(a));
	ck_assert(reply_ok(r));
	ck_assert(!json_object_get_boolean(reply_get(r, "lease.held")));
	json_object_put(r);
	assert_port_free(p, type);
	ck_assert(list_has(fd, lease_id(a)));
	r = harness_call(
	    fd, "{\"op\":\"release\",\"lease\":\"%s\"}", lease_id(a));
	ck_assert(reply_ok(r));
	json_object_put(r);
	assert_port_free(p, type);
	json_object_put(a);
}

static void
check_exclusive_on_pool(const char *args, int type)
{
	struct daemon_proc d;
	int fd = start_pool(&d);

	check_exclusive(fd, args, type);
	close_and_stop(&d, fd);
}

START_TEST(hold_exclusive_tcp)
{
	check_exclusive_on_pool("\"hold\":\"exclusive\"", SOCK_STREAM);
}
END_TEST

START_TEST(hold_udp)
{
	check_exclusive_on_pool("\"proto\":\"udp\"", SOCK_DGRAM);
}
END_TEST

START_TEST(hold_both)
{
	struct leased l;

	start_leased(&l, "\"proto\":\"both\"");
	assert_plain_blocked(l.p, SOCK_STREAM);
	assert_reuse_blocked(l.p, SOCK_STREAM);
	assert_plain_blocked(l.p, SOCK_DGRAM);
	assert_reuse_blocked(l.p, SOCK_DGRAM);
	json_object_put(harness_call(
	    l.fd, "{\"op\":\"release\",\"lease\":\"%s\"}", lease_id(l.a)));
	assert_port_free(l.p, SOCK_STREAM);
	assert_port_free(l.p, SOCK_DGRAM);
	leased_done(&l);
}
END_TEST

START_TEST(family_ipv4_leaves_ipv6)
{
	struct leased l;
	json_object *a;
	int p;

	start_leased(&l, "\"family\":\"ipv4\"");
	ck_assert_str_eq(reply_str(l.a, "lease.family"), "ipv4");
	ck_assert_int_eq(
	    try_bind_addr("0.0.0.0", SOCK_STREAM, l.p, false), EADDRINUSE);
	ck_assert_int_eq(
	    try_bind_addr("127.0.0.1", SOCK_STREAM, l.p, false), EADDRINUSE);
	ck_assert_int_eq(try_bind_addr("::1", SOCK_STREAM, l.p, false), 0);

	a = lease(l.fd, "\"family\":\"ipv6\"");
	p = lease_port(a, 0);
	ck_assert_int_eq(
	    try_bind_addr("::", SOCK_STREAM, p, false), EADDRINUSE);
	ck_assert_int_eq(
	    try_bind_addr("::1", SOCK_STREAM, p, false), EADDRINUSE);
	ck_assert_int_eq(try_bind_addr("127.0.0.1", SOCK_STREAM, p, false), 0);
	json_object_put(a);
	leased_done(&l);
}
END_TEST

/* Lease id on port p is listed and held now, and gone with its port free
 * at t0 + gone_ms. */
static void
expect_gone_at(int fd, const char *id, int p, int64_t t0, int gone_ms)
{
	ck_assert(list_has(fd, id));
	assert_plain_blocked(p, SOCK_STREAM);
	usleep((useconds_t)(gone_ms - (now_ms() - t0)) * 1000);
	ck_assert(!list_has(fd, id));
	assert_port_free(p, SOCK_STREAM);
}

START_TEST(ttl_expiry)
{
	struct leased l;

	start_leased(&l, "\"ttl\":1");
	ck_assert_int_eq(reply_int(l.a, "lease.ttl"), 1);
	usleep(500 * 1000);
	expect_gone_at(l.fd, lease_id(l.a), l.p, l.t0, 1500);
	leased_done(&l);
}
END_TEST

START_TEST(renew_extends)
{
	struct leased l;
	json_object *r;

	start_leased(&l, "\"ttl\":2");
	usleep(1000 * 1000);
	r = harness_call(l.fd, "{\"op\":\"renew\",\"lease\":\"%s\",\"ttl\":3}",
	    lease_id(l.a));
	ck_assert(reply_ok(r));
	ck_assert_int_eq(reply_int(r, "lease.ttl"), 3);
	ck_assert_int_ge(reply_int(r, "lease.expires"),
	    reply_int(l.a, "lease.expires") + 900);
	json_object_put(r);
	usleep((useconds_t)(2500 - (now_ms() - l.t0)) * 1000);
	/* Renewed at 1 s for 3 s: gone by 4.5 s. */
	expect_gone_at(l.fd, lease_id(l.a), l.p, l.t0, 4500);
	leased_done(&l);
}
END_TEST

START_TEST(session_scope)
{
	struct daemon_proc d;
	json_object *a, *b;
	int64_t t0, t;
	int fa, fb, p;

	harness_start(&d, pool_args);
	fa = harness_connect(d.sock);
	fb = harness_connect(d.sock);
	a = lease(fa, "\"scope\":\"session\"");
	ck_assert_str_eq(reply_str(a, "lease.scope"), "session");
	ck_assert_ptr_null(reply_get(a, "lease.expires"));
	p = lease_port(a, 0);
	b = lease(fb, "");
	ck_assert(list_has(fb, lease_id(a)));
	assert_plain_blocked(p, SOCK_STREAM);

	close(fa);
	t0 = now_ms();
	do {
		t = now_ms();
		if (try_bind(AF_INET, SOCK_STREAM, p, false) == 0)
			break;
		usleep(5000);
	} while (t - t0 < 1000);
	ck_assert_msg(t - t0 <= 100,
	    "port %d still held %lld ms after the session closed", p,
	    (long long)(t - t0));
	assert_port_free(p, SOCK_STREAM);
	ck_assert(!list_has(fb, lease_id(a)));
	ck_assert(list_has(fb, lease_id(b)));
	ck_assert_int_eq(status_int(fb, "counters.leases_session_ended"), 1);
	json_object_put(a);
	json_object_put(b);
	close(fb);
	harness_stop(&d);
}
END_TEST

START_TEST(status_counts)
{
	struct daemon_proc d;
	json_object *r, *a, *b;
	int64_t free0, size;
	int fd, fd2;

	fd = start_pool(&d);
	wait_conns(fd, 1);
	r = harness_call(fd, "{\"op\":\"status\"}");
	ck_assert(reply_ok(r));
	ck_assert_int_eq(reply_int(r, "leases"), 0);
	ck_assert_int_eq(reply_int(r, "ports"), 0);
	ck_assert_int_eq(reply_int(r, "sockets"), 0);
	ck_assert_int_eq(reply_int(r, "pool.lo"), 29000);
	ck_assert_int_eq(reply_int(r, "pool.hi"), 29499);
	size = reply_int(r, "pool.size");
	ck_assert_int_eq(size, 500);
	free0 = reply_int(r, "pool.free");
	ck_assert_int_le(free0, size);
	ck_assert_int_ge(reply_int(r, "uptime"), 0);
	ck_assert_int_eq(reply_int(r, "pid"), d.pid);
	json_object_put(r);

	fd2 = harness_connect(d.sock);
	a = lease(fd2, ""); /* 1 port, 1 socket */
	b = lease(
	    fd2, "\"count\":2,\"proto\":\"both\""); /* 2 ports, 4 sockets */
	expect_error(fd2, "unknown_op", "{\"op\":\"nope\"}");
	json_object_put(harness_call(
	    fd2, "{\"op\":\"claim\",\"lease\":\"%s\"}", lease_id(a)));
	r = harness_call(fd, "{\"op\":\"status\"}");
	ck_assert_int_eq(reply_int(r, "leases"), 2);
	ck_assert_int_eq(reply_int(r, "ports"), 3);
	ck_assert_int_eq(reply_int(r, "sockets"), 4);
	ck_assert_int_eq(reply_int(r, "connections"), 2);
	ck_assert_int_eq(reply_int(r, "pool.free"), free0 - 3);
	ck_assert_int_eq(reply_int(r, "counters.leases_created"), 2);
	ck_assert_int_eq(reply_int(r, "counters.claims"), 1);
	ck_assert_int_ge(reply_int(r, "counters.errors"), 1);
	ck_assert_int_ge(reply_int(r, "counters.requests"), 6);
	json_object_put(r);

	json_object_put(harness_call(
	    fd2, "{\"op\":\"release\",\"lease\":\"%s\"}", lease_id(b)));
	close(fd2);
	wait_conns(fd, 1);
	r = harness_call(fd, "{\"op\":\"status\"}");
	ck_assert_int_eq(reply_int(r, "leases"), 1);
	ck_assert_int_eq(reply_int(r, "ports"), 1);
	ck_assert_int_eq(reply_int(r, "sockets"), 0);
	ck_assert_int_eq(reply_int(r, "pool.free"), free0 - 1);
	ck_assert_int_eq(reply_int(r, "counters.leases_released"), 1);
	json_object_put(r);
	json_object_put(a);
	json_object_put(b);
	close_and_stop(&d, fd);
}
END_TEST

START_TEST(pipelining_in_order)
{
	static const char *const reqs[] = {
	    "{\"op\":\"hello\",\"id\":%d}\n",
	    "{\"op\":\"lease\",\"id\":%d,\"ttl\":60}\n",
	    "{\"op\":\"status\",\"id\":%d}\n",
	    "{\"op\":\"list\",\"id\":%d}\n",
	    "{\"op\":\"nope\",\"id\":%d}\n",
	};
	struct daemon_proc d;
	char buf[8192];
	size_t len = 0;
	int fd;

	fd = start_pool(&d);
	for (int i = 0; i < 50; i++)
		len += (size_t)snprintf(
		    buf + len, sizeof(buf) - len, reqs[i % 5], i);
	harness_send(fd, buf, len);
	for (int i = 0; i < 50; i++) {
		char *line = harness_recv_line(fd, 5000, NULL, NULL);
		json_object *r;

		ck_assert_msg(line != NULL, "reply %d missing", i);
		r = json_tokener_parse(line);
		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(reply_int(r, "id"), i);
		ck_assert_str_eq(
		    line_code(line), i % 5 == 4 ? "unknown_op" : "ok");
		json_object_put(r);
		free(line);
	}
	close_and_stop(&d, fd);
}
END_TEST

START_TEST(second_daemon_refused)
{
	struct leased l;
	json_object *r;
	char log2[200];
	pid_t pid;
	int status;

	start_leased(&l, "");
	snprintf(log2, sizeof(log2), "%s/second.log", l.d.dir);
	pid = harness_spawn_on(l.d.sock, log2, pool_args);
	status = harness_wait_exit(pid, 5000);
	if (status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		ck_abort_msg("a second portd on the same socket kept running");
	}
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0,
	    "second portd: status %#x", status);
	ck_assert_msg(strstr(read_text(log2), "another portd") != NULL,
	    "second portd said: %s", read_text(log2));

	/* The first keeps serving, with its lease. */
	r = harness_call(l.fd, "{\"op\":\"hello\"}");
	ck_assert(reply_ok(r));
	json_object_put(r);
	ck_assert(list_has(l.fd, lease_id(l.a)));
	assert_plain_blocked(l.p, SOCK_STREAM);
	close(l.fd);
	l.fd = harness_connect(l.d.sock);
	ck_assert(list_has(l.fd, lease_id(l.a)));
	leased_done(&l);
}
END_TEST

START_TEST(stale_socket_replaced)
{
	struct daemon_proc d;
	struct stat st;
	json_object *r;
	int fd, status;

	harness_start(&d, pool_args);
	status = harness_kill(&d, SIGKILL);
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(lstat(d.sock, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(harness_connect(d.sock), -1);
	ck_assert_int_eq(errno, ECONNREFUSED);

	d.pid = harness_spawn_on(d.sock, d.log, pool_args);
	ck_assert_msg(harness_wait_ready(d.sock, 5000),
	    "portd did not replace a stale socket: %s", harness_log(&d));
	fd = harness_connect(d.sock);
	r = harness_call(fd, "{\"op\":\"hello\"}");
	ck_assert(reply_ok(r));
	ck_assert_int_eq(reply_int(r, "pid"), d.pid);
	json_object_put(r);
	close_and_stop(&d, fd);
}
END_TEST

START_TEST(regular_file_untouched)
{
	struct daemon_proc d;
	struct stat st;
	const char *text = "not a socket\n";
	pid_t pid;
	FILE *f;
	int status;

	memset(&d, 0, sizeof(d));
	snprintf(d.dir, sizeof(d.dir), "/tmp/portd-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(d.dir));
	snprintf(d.sock, sizeof(d.sock), "%s/portd.sock", d.dir);
	snprintf(d.log, sizeof(d.log), "%s/portd.log", d.dir);
	ck_assert_ptr_nonnull(f = fopen(d.sock, "w"));
	fputs(text, f);
	fclose(f);

	pid = harness_spawn_on(d.sock, d.log, pool_args);
	status = harness_wait_exit(pid, 5000);
	if (status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		ck_abort_msg("portd started over a regular file");
	}
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0,
	    "status %#x", status);
	ck_assert_int_eq(lstat(d.sock, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_str_eq(read_text(d.sock), text);
	ck_assert_msg(strstr(harness_log(&d), "not a socket") != NULL, "%s",
	    harness_log(&d));
	harness_stop(&d);
}
END_TEST

START_TEST(sigterm_removes_socket_and_frees_ports)
{
	struct daemon_proc d;
	struct stat st;
	json_object *l[4];
	int ports[4],
	    types[4] = {SOCK_STREAM, SOCK_STREAM, SOCK_DGRAM, SOCK_STREAM};
	int fd, status;

	fd = start_pool(&d);
	l[0] = lease(fd, "");
	l[1] = lease(fd, "\"hold\":\"exclusive\"");
	l[2] = lease(fd, "\"proto\":\"udp\"");
	l[3] = lease(fd, "\"scope\":\"session\",\"family\":\"ipv4\"");
	for (int i = 0; i < 4; i++) {
		ports[i] = lease_port(l[i], 0);
		json_object_put(l[i]);
	}
	assert_plain_blocked(ports[0], SOCK_STREAM);
	assert_plain_blocked(ports[2], SOCK_DGRAM);

	status = harness_kill(&d, SIGTERM);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "status %#x: %s", status, harness_log(&d));
	ck_assert_int_eq(lstat(d.sock, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	for (int i = 0; i < 4; i++)
		assert_port_free(ports[i], types[i]);
	close_and_stop(&d, fd);
}
END_TEST

/*
 * conn_fail() queues its error with no fds (NULL, 0) and conn_reply()
 * passed the NULL to memcpy: undefined, and fatal under UBSan, so every
 * framing error (too long, deadline) killed the sanitizer-built daemon.
 */
START_TEST(regression_error_reply_without_fds)
{
	struct daemon_proc d;
	char big[PROTO_MAX_LINE + 2];
	json_object *r;
	char *line;
	int fd;

	fd = start_pool(&d);
	memset(big, 'x', sizeof(big));
	harness_send(fd, big, sizeof(big));
	line = harness_recv_line(fd, 3000, NULL, NULL);
	ck_assert_msg(line != NULL, "no error reply: %s", harness_log(&d));
	ck_assert_str_eq(line_code(line), "request_too_large");
	free(line);
	ck_assert(wait_closed(fd, 2000));
	close(fd);
	fd = harness_connect(d.sock);
	ck_assert_int_ge(fd, 0);
	r = harness_call(fd, "{\"op\":\"hello\"}");
	ck_assert(reply_ok(r));
	json_object_put(r);
	close_and_stop(&d, fd);
}
END_TEST

/* Every long option: main.c's table, --help, and this list agree. */
static const char *const known_flags[] = {
    "socket",
    "system",
    "user",
    "foreground",
    "config",
    "check-config",
    "log-level",
    "help",
    "version",
    "pool",
    "strategy",
    "quota",
    "max-leases",
    "default-ttl",
    "max-ttl",
    "max-connections",
    "max-connections-per-uid",
    "request-timeout",
    "max-output",
    "max-output-per-uid",
    "max-output-total",
    "max-fd-replies",
    "socket-mode",
    "portserver-address",
    "metrics-address",
    "metrics-allow-remote",
    "allow-ephemeral-pool",
};

struct flagset {
	int n;
	char names[128][48];
};

static void
flag_add(struct flagset *s, const char *name, size_t len)
{
	for (int i = 0; i < s->n; i++)
		if (strlen(s->names[i]) == len &&
		    strncmp(s->names[i], name, len) == 0)
			return;
	ck_assert_int_lt(s->n, 128);
	ck_assert_int_lt(len, sizeof(s->names[0]));
	memcpy(s->names[s->n], name, len);
	s->names[s->n++][len] = '\0';
}

static bool
flag_in(const struct flagset *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return true;
	return false;
}

static void
flags_equal(const struct flagset *a, const char *an, const struct flagset *b,
    const char *bn)
{
	for (int i = 0; i < a->n; i++)
		ck_assert_msg(flag_in(b, a->names[i]), "--%s is in %s, not %s",
		    a->names[i], an, bn);
	for (int i = 0; i < b->n; i++)
		ck_assert_msg(flag_in(a, b->names[i]), "--%s is in %s, not %s",
		    b->names[i], bn, an);
}

START_TEST(help_lists_every_flag)
{
	struct flagset help = {0}, src = {0}, list = {0};
	char cmd[512], buf[16384];
	const char *s, *end;
	size_t len = 0, n;
	FILE *f;

	for (size_t i = 0; i < sizeof(known_flags) / sizeof(known_flags[0]);
	     i++)
		flag_add(&list, known_flags[i], strlen(known_flags[i]));

	snprintf(cmd, sizeof(cmd), "'%s' --help", harness_portd_bin);
	ck_assert_ptr_nonnull(f = popen(cmd, "r"));
	while ((n = fread(buf + len, 1, sizeof(buf) - 1 - len, f)) > 0)
		len += n;
	buf[len] = '\0';
	ck_assert_int_eq(pclose(f), 0);
	for (s = buf; (s = strstr(s, "--")) != NULL; s = end) {
		s += 2;
		for (end = s; (*end >= 'a' && *end <= 'z') ||
		              (*end >= '0' && *end <= '9') || *end == '-';
		     end++)
			;
		if (end > s)
			flag_add(&help, s, (size_t)(end - s));
	}

	/* The option table in the source, read when the test runs. */
	s = read_text(PORTD_MAIN_C);
	s = strstr(s, "longopts[] = {");
	ck_assert_msg(s != NULL, "no longopts table in %s", PORTD_MAIN_C);
	end = strstr(s, "{NULL");
	ck_assert_ptr_nonnull(end);
	while ((s = strstr(s, "{\"")) != NULL && s < end) {
		const char *q = strchr(s + 2, '"');
		flag_add(&src, s + 2, (size_t)(q - s - 2));
		s = q;
	}
	flags_equal(&src, "main.c's longopts", &help, "portd --help");
	flags_equal(&src, "main.c's longopts", &list, "the test's list");
}
END_TEST

/* portd -l x given 70 times wrote past the end of its list of settings
 * (UBSan: index 64 out of bounds for flag_keys). Now: a usage error. */
START_TEST(regression_many_settings_overflow)
{
	const char *argv[160];
	int n = 0, status, fd[2];
	char buf[512] = "";
	ssize_t len;
	pid_t pid;

	argv[n++] = harness_portd_bin;
	for (int i = 0; i < 70; i++) {
		argv[n++] = "-l";
		argv[n++] = "x";
	}
	argv[n] = NULL;
	ck_assert_int_eq(pipe(fd), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fd[1]);
	len = read(fd[0], buf, sizeof(buf) - 1);
	close(fd[0]);
	buf[len > 0 ? len : 0] = '\0';
	status = harness_wait_exit(pid, 5000);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2,
	    "status %#x: %s", status, buf);
	ck_assert_msg(strstr(buf, "too many settings") != NULL, "%s", buf);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("daemon");
	TCase *ops = tcase_create("ops");
	TCase *holds = tcase_create("holds");
	TCase *life = tcase_create("lifetimes");
	TCase *proc = tcase_create("process");
	TCase *reg = tcase_create("regressions");

	tcase_set_timeout(ops, 20);
	tcase_set_timeout(holds, 20);
	tcase_set_timeout(life, 20);
	tcase_set_timeout(proc, 20);

	tcase_add_test(ops, hello_echoes_uid_and_pid);
	tcase_add_test(ops, every_op);
	tcase_add_test(ops, errors_of_requests);
	tcase_add_test(ops, no_ports);
	tcase_add_test(ops, port_unavailable);
	tcase_add_test(ops, port_unavailable_leased);
	tcase_add_test(ops, quota_per_uid);
	tcase_add_test(ops, forbidden_for_other_users);
	tcase_add_test(ops, max_connections);
	tcase_add_test(ops, max_connections_per_uid);
	tcase_add_test(ops, status_counts);
	tcase_add_test(ops, pipelining_in_order);
	suite_add_tcase(s, ops);

	tcase_add_test(holds, hold_shared_tcp);
	tcase_add_test(holds, hold_exclusive_tcp);
	tcase_add_test(holds, hold_udp);
	tcase_add_test(holds, hold_both);
	tcase_add_test(holds, family_ipv4_leaves_ipv6);
	suite_add_tcase(s, holds);

	tcase_add_test(life, ttl_expiry);
	tcase_add_test(life, renew_extends);
	tcase_add_test(life, session_scope);
	suite_add_tcase(s, life);

	tcase_add_test(proc, second_daemon_refused);
	tcase_add_test(proc, stale_socket_replaced);
	tcase_add_test(proc, regular_file_untouched);
	tcase_add_test(proc, sigterm_removes_socket_and_frees_ports);
	tcase_add_test(proc, help_lists_every_flag);
	tcase_add_test(proc, regression_many_settings_overflow);
	suite_add_tcase(s, proc);

	tcase_set_timeout(reg, 20);
	tcase_add_test(reg, regression_error_reply_without_fds);
	suite_add_tcase(s, reg);
	return harness_run(s);
}
