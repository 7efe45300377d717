/*
 * Unit tests of the pool allocator (daemon/alloc.c) against the real
 * kernel: every port it hands out is bound, and the tests check that with
 * bind() calls of their own. Ports 28000-28199 belong to this program.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "harness.h"
#include "shared.h"
#include "unit.h"

#define LO 28000
#define HI 28199

/* The allocator never looks inside an owner: any distinct pointers do. */
static char owner_storage[2];
#define OWNER_A ((struct lease *)(void *)&owner_storage[0])
#define OWNER_B ((struct lease *)(void *)&owner_storage[1])

static struct alloc_request
request(int count, enum proto_proto proto, enum proto_family family)
{
	return (struct alloc_request){.count = count,
	    .proto = proto,
	    .family = family,
	    .hold =
	        proto == PROTO_TCP ? PROTO_HOLD_SHARED : PROTO_HOLD_EXCLUSIVE,
	    .strategy = PROTO_STRATEGY_DEFAULT};
}

static void
setup_pool(uint16_t lo, uint16_t hi)
{
	unit_config(lo, hi);
	ck_assert_int_eq(alloc_init(lo, hi), 0);
}

/* Take ports for req or fail the test. */
static void
take(const struct alloc_request *req, struct lease *owner,
    struct alloc_result *ret)
{
	struct proto_error err = {0};

	if (alloc_take(req, owner, ret, &err) != 0)
		ck_abort_msg("alloc_take: %s %s",
		    proto_errcode_to_string(err.code), err.message);
	ck_assert_int_eq(ret->nports, req->count);
}

/* One pool port, TCP dual. */
static uint16_t
take_one(struct lease *owner, struct alloc_result *ret)
{
	struct alloc_request req = request(1, PROTO_TCP, PROTO_FAM_DUAL);

	take(&req, owner, ret);
	return ret->ports[0];
}

/* A fresh pool LO..hi, whose first pick (OWNER_A's, into a) is LO. */
static uint16_t
take_first(uint16_t hi, struct alloc_result *a)
{
	uint16_t p;

	setup_pool(LO, hi);
	p = take_one(OWNER_A, a);
	ck_assert_int_eq(p, LO);
	return p;
}

/* alloc_take must fail with code and a message part. */
static void
take_fails(
    const struct alloc_request *req, enum proto_errcode code, const char *msg)
{
	struct alloc_result res;
	struct proto_error err = {0};

	ck_assert_int_eq(alloc_take(req, OWNER_B, &res, &err), -1);
	assert_proto_error("alloc_take", &err, code, msg);
}

static void
give_back(struct alloc_result *res)
{
	alloc_close_sockets(res->socks, res->nsocks);
	alloc_put(res->ports, res->nports);
}

/*
 * What a second portd on the same pool does, in a forked child with a
 * fresh allocator: 0 if it skips the pool port `skip` and refuses it by
 * number, 1 + step otherwise.
 */
static int
second_daemon(uint16_t lo, uint16_t hi, uint16_t skip, bool want_refused)
{
	struct alloc_request req = request(1, PROTO_TCP, PROTO_FAM_DUAL);
	struct alloc_result res;
	struct proto_error err = {0};
	pid_t pid = fork();
	int status;

	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		alloc_init(lo, hi);
		if (alloc_take(&req, OWNER_B, &res, &err) != 0)
			_exit(2);
		if (want_refused && res.ports[0] == skip)
			_exit(3);
		alloc_put(res.ports, res.nports);
		alloc_close_sockets(res.socks, res.nsocks);
		req.port = skip;
		if (alloc_take(&req, OWNER_B, &res, &err) == 0)
			_exit(want_refused ? 4 : 0);
		if (!want_refused ||
		    strstr(err.message, "another portd") == NULL)
			_exit(5);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/*
 * Two portds on one pool: a claimed lease holds no socket, and the other
 * daemon used to pick its port (its bind succeeded). The host-wide marker
 * refuses it, and is given up with the lease.
 */
START_TEST(regression_claimed_port_given_by_two_daemons)
{
	struct alloc_result res;
	uint16_t p;

	setup_pool(LO + 100, LO + 109);
	p = take_one(OWNER_A, &res);
	ck_assert(alloc_marked(p, PROTO_TCP));
	ck_assert(!alloc_marked(p, PROTO_UDP));
	/* Claimed: the sockets are closed, the lease (and marker) stay. */
	alloc_close_sockets(res.socks, res.nsocks);
	ck_assert_int_eq(
	    unit_try_bind(AF_INET6, SOCK_STREAM, p, false, false), 0);
	ck_assert_int_eq(second_daemon(LO + 100, LO + 109, p, true), 0);
	/* The lease ends: the other daemon may have the port again. */
	alloc_put(res.ports, res.nports);
	ck_assert(!alloc_marked(p, PROTO_TCP));
	ck_assert_int_eq(second_daemon(LO + 100, LO + 109, p, false), 0);
}
END_TEST

/* Anybody may bind a marker's name (abstract names ignore permissions):
 * that only makes portd skip the port, never hand it out twice. */
START_TEST(squatted_marker_skipped)
{
	struct alloc_request req = request(1, PROTO_UDP, PROTO_FAM_DUAL);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct alloc_result res;
	struct proto_error err = {0};
	socklen_t len;
	int fd, n;

	setup_pool(LO + 110, LO + 111);
	n = alloc_marker_name(
	    PROTO_UDP, LO + 110, sun.sun_path + 1, sizeof(sun.sun_path) - 1);
	ck_assert_str_eq(sun.sun_path + 1, "portd/port/udp/28110/Et6");
	len =
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, len), 0);
	take(&req, OWNER_A, &res);
	ck_assert_int_eq(res.ports[0], LO + 111);
	give_back(&res);
	/* TCP port 28110 has no squatter. */
	req = request(1, PROTO_TCP, PROTO_FAM_DUAL);
	req.port = LO + 110;
	take(&req, OWNER_A, &res);
	give_back(&res);
	req = request(1, PROTO_BOTH, PROTO_FAM_DUAL);
	req.port = LO + 110;
	ck_assert_int_eq(alloc_take(&req, OWNER_A, &res, &err), -1);
	ck_assert_int_eq(err.code, PROTO_E_PORT_UNAVAILABLE);
	ck_assert_msg(
	    strstr(err.message, "another portd") != NULL, "%s", err.message);
	/* Nothing of the failed take stays marked. */
	ck_assert(!alloc_marked(LO + 110, PROTO_TCP));
	close(fd);
}
END_TEST

START_TEST(pool_ports_distinct)
{
	static struct alloc_result res[100];
	bool seen[100] = {false};

	setup_pool(LO, LO + 99);
	ck_assert_int_eq(alloc_pool_size(), 100);
	ck_assert_int_eq(alloc_pool_free(), 100);
	for (int i = 0; i < 100; i++) {
		uint16_t p = take_one(OWNER_A, &res[i]);

		ck_assert_int_ge(p, LO);
		ck_assert_int_le(p, LO + 99);
		ck_assert_msg(!seen[p - LO], "port %u handed out twice", p);
		seen[p - LO] = true;
		ck_assert_ptr_eq(alloc_owner(p), OWNER_A);
		ck_assert_int_eq(alloc_pool_free(), 99 - i);
	}
}
END_TEST

START_TEST(pool_exhaustion)
{
	struct alloc_result res[4], more;
	struct alloc_request two = request(2, PROTO_TCP, PROTO_FAM_DUAL);

	setup_pool(LO, LO + 4);
	for (int i = 0; i < 4; i++)
		take_one(OWNER_A, &res[i]);
	/* One port left: two cannot be had, and the one is not lost. */
	take_fails(&two, PROTO_E_NO_PORTS, "no free port in the pool");
	ck_assert_int_eq(alloc_pool_free(), 1);
	take_one(OWNER_A, &more);
	ck_assert_int_eq(alloc_pool_free(), 0);
	take_fails(
	    &two, PROTO_E_NO_PORTS, "no free port in the pool 28000-28004");
	two.count = 1;
	take_fails(&two, PROTO_E_NO_PORTS, "no free port in the pool");
	/* A port given back can be had again. */
	give_back(&res[2]);
	ck_assert_int_eq(alloc_pool_free(), 1);
	ck_assert_int_eq(take_one(OWNER_B, &more), res[2].ports[0]);
}
END_TEST

/* A released port goes to the back of the queue: reused as late as can. */
START_TEST(put_returns_ports_last)
{
	struct alloc_result a, b;
	uint16_t first = take_first(LO + 4, &a);

	give_back(&a);
	ck_assert_ptr_null(alloc_owner(first));
	ck_assert_int_eq(alloc_pool_free(), 5);
	ck_assert_int_eq(
	    unit_try_bind(AF_INET, SOCK_STREAM, first, false, false), 0);
	for (int i = 1; i <= 4; i++)
		ck_assert_int_eq(take_one(OWNER_A, &b), LO + i);
	ck_assert_int_eq(take_one(OWNER_A, &b), first);
	/* Putting a port twice, or one nobody owns, changes nothing. */
	give_back(&b);
	alloc_put(&first, 1);
	ck_assert_int_eq(alloc_pool_free(), 1);
}
END_TEST

/* A port another program holds is skipped, and tried again later. */
static void
busy_port(enum proto_proto proto)
{
	int type = proto == PROTO_TCP ? SOCK_STREAM : SOCK_DGRAM;
	struct alloc_request req = request(1, proto, PROTO_FAM_DUAL);
	struct alloc_result res;
	uint64_t examined;
	int fd;

	setup_pool(LO, LO + 9);
	/* A plain bind, no SO_REUSEADDR: as most programs do. */
	fd = unit_bind(AF_INET, type, LO, false, false);
	ck_assert_int_ge(fd, 0);
	take(&req, OWNER_A, &res);
	ck_assert_int_eq(res.ports[0], LO + 1);
	ck_assert_ptr_null(alloc_owner(LO));
	ck_assert_int_eq(alloc_stats()->examined, 2);
	ck_assert_int_eq(alloc_stats()->binds, 2);
	for (int i = 2; i <= 9; i++) {
		take(&req, OWNER_A, &res);
		ck_assert_int_eq(res.ports[0], LO + i);
	}
	/* Only the busy port is left: the pick gives up, it does not spin. */
	examined = alloc_stats()->examined;
	take_fails(&req, PROTO_E_NO_PORTS, "no free port");
	ck_assert_int_le(alloc_stats()->examined - examined, 128);
	ck_assert_int_eq(alloc_pool_free(), 1);
	/* Once the program lets go, the port is handed out. */
	close(fd);
	take(&req, OWNER_A, &res);
	ck_assert_int_eq(res.ports[0], LO);
}

START_TEST(busy_tcp_port_skipped)
{
	busy_port(PROTO_TCP);
}
END_TEST

START_TEST(busy_udp_port_skipped)
{
	busy_port(PROTO_UDP);
}
END_TEST

/* For proto both, a port busy for either protocol is busy. */
START_TEST(busy_for_one_proto_of_both)
{
	struct alloc_request req = request(1, PROTO_BOTH, PROTO_FAM_DUAL);
	struct alloc_result res;
	int fd = unit_bind(AF_INET6, SOCK_DGRAM, LO, false, false);

	setup_pool(LO, LO + 9);
	ck_assert_int_ge(fd, 0);
	take(&req, OWNER_A, &res);
	ck_assert_int_eq(res.ports[0], LO + 1);
	ck_assert_int_eq(res.nsocks, 2);
	/* The TCP socket bound before UDP failed was closed again. */
	ck_assert_int_eq(
	    unit_try_bind(AF_INET, SOCK_STREAM, LO, false, false), 0);
	close(fd);
}
END_TEST

/*
 * Ports in ip_local_reserved_ports never come from the pool. The sysctl
 * is per network namespace, so the test takes a private one (root only;
 * skipped otherwise) and leaves the host's setting alone.
 */
START_TEST(reserved_ports_skipped)
{
	static const char reserved[] = "28003,28005-28006\n";
	struct alloc_request req = request(1, PROTO_TCP, PROTO_FAM_DUAL);
	struct alloc_result res[7];
	bool seen[10] = {false};
	int fd;

	if (unshare(CLONE_NEWNET) == -1) {
		fprintf(stderr,
		    "reserved_ports_skipped: no private network "
		    "namespace (%s), skipped\n",
		    strerror(errno));
		return;
	}
	fd = open("/proc/sys/net/ipv4/ip_local_reserved_ports", O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(
	    write(fd, reserved, strlen(reserved)), (ssize_t)strlen(reserved));
	close(fd);

	setup_pool(LO, LO + 9);
	ck_assert_int_eq(alloc_pool_size(), 10);
	ck_assert_int_eq(alloc_pool_free(), 7);
	for (int i = 0; i < 7; i++) {
		take(&req, OWNER_A, &res[i]);
		seen[res[i].ports[0] - LO] = true;
	}
	ck_assert(!seen[3] && !seen[5] && !seen[6]);
	take_fails(&req, PROTO_E_NO_PORTS, "no free port");
	for (int i = 0; i < 7; i++)
		give_back(&res[i]);
	/* Contiguous runs step over them too: 28000-2, 28007-9, no more. */
	req.count = 3;
	req.contiguous = true;
	take(&req, OWNER_A, &res[0]);
	ck_assert_int_eq(res[0].ports[0], LO);
	take(&req, OWNER_A, &res[1]);
	ck_assert_int_eq(res[1].ports[0], LO + 7);
	take_fails(&req, PROTO_E_NO_PORTS, "no 3 contiguous free ports");
}
END_TEST

START_TEST(contiguous_runs)
{
	struct alloc_request req = request(8, PROTO_TCP, PROTO_FAM_DUAL);
	struct alloc_request one = request(1, PROTO_TCP, PROTO_FAM_DUAL);
	struct alloc_result res, single;
	int fd;

	setup_pool(LO, LO + 99);
	req.contiguous = true;
	/* A leased port and a busy one break runs. */
	one.port = LO + 5;
	take(&one, OWNER_A, &single);
	fd = unit_bind(AF_INET, SOCK_STREAM, LO + 20, false, false);
	ck_assert_int_ge(fd, 0);

	take(&req, OWNER_A, &res);
	ck_assert_int_eq(res.ports[0], LO + 6);
	for (int i = 1; i < 8; i++)
		ck_assert_int_eq(res.ports[i], res.ports[0] + i);
	ck_assert_int_eq(res.nsocks, 8);
	/* 14..21 would hold the busy 20: the next run starts after it. */
	take(&req, OWNER_A, &res);
	ck_assert_int_eq(res.ports[0], LO + 21);
	for (int i = 0; i < 8; i++) {
		ck_assert_ptr_eq(alloc_owner(res.ports[i]), OWNER_A);
		ck_assert_int_eq(unit_try_bind(AF_INET, SOCK_STREAM,
		                     res.ports[i], false, false),
		    EADDRINUSE);
	}
	ck_assert_ptr_null(alloc_owner(LO + 20));
	/* The busy port's neighbours that a failed run bound are free. */
	for (int p = LO + 14; p < LO + 20; p++) {
		ck_assert_ptr_null(alloc_owner(p));
		ck_assert_int_eq(
		    unit_try_bind(AF_INET, SOCK_STREAM, p, false, false), 0);
	}
	close(fd);

	/* 64 in a row. */
	req.count = 64;
	take(&req, OWNER_B, &res);
	for (int i = 1; i < 64; i++)
		ck_assert_int_eq(res.ports[i], res.ports[0] + i);
	/* No room left for another 64. */
	take_fails(&req, PROTO_E_NO_PORTS, "no 64 contiguous free ports");
}
END_TEST

START_TEST(specific_ports)
{
	struct alloc_request req = request(1, PROTO_TCP, PROTO_FAM_DUAL);
	struct alloc_result out, in, again[9];
	int fd;

	setup_pool(LO, LO + 9);
	/* Out of the pool or in it. */
	req.port = LO + 150;
	take(&req, OWNER_A, &out);
	ck_assert_int_eq(out.ports[0], LO + 150);
	ck_assert_ptr_eq(alloc_owner(LO + 150), OWNER_A);
	ck_assert_int_eq(
	    unit_try_bind(AF_INET, SOCK_STREAM, LO + 150, false, false),
	    EADDRINUSE);
	take_fails(&req, PROTO_E_PORT_UNAVAILABLE, "port 28150 is leased");

	req.port = LO + 3;
	take(&req, OWNER_A, &in);
	ck_assert_int_eq(alloc_pool_free(), 9);
	take_fails(&req, PROTO_E_PORT_UNAVAILABLE, "port 28003 is leased");
	/* The pool does not hand it out a second time. */
	for (int i = 0; i < 9; i++)
		ck_assert_int_ne(take_one(OWNER_B, &again[i]), LO + 3);
	ck_assert_int_eq(alloc_pool_free(), 0);

	/* Busy: another program bound it. */
	fd = unit_bind(AF_INET, SOCK_STREAM, LO + 151, false, false);
	ck_assert_int_ge(fd, 0);
	req.port = LO + 151;
	take_fails(&req, PROTO_E_PORT_UNAVAILABLE, "port 28151 is in use");
	/* A run with a busy port in it: nothing of it stays taken. */
	req.port = LO + 149;
	req.count = 3;
	take_fails(&req, PROTO_E_PORT_UNAVAILABLE, "is leased");
	req.port = LO + 140;
	req.count = 12;
	take_fails(&req, PROTO_E_PORT_UNAVAILABLE, "is leased");
	for (int p = LO + 140; p < LO + 150; p++) {
		ck_assert_ptr_null(alloc_owner(p));
		ck_assert_int_eq(
		    unit_try_bind(AF_INET, SOCK_STREAM, p, false, false), 0);
	}
	close(fd);
	req.port = LO + 160;
	req.count = 3;
	fd = unit_bind(AF_INET, SOCK_STREAM, LO + 162, false, false);
	take_fails(&req, PROTO_E_PORT_UNAVAILABLE, "port 28162 is in use");
	for (int p = LO + 160; p < LO + 162; p++) {
		ck_assert_ptr_null(alloc_owner(p));
		ck_assert_int_eq(
		    unit_try_bind(AF_INET, SOCK_STREAM, p, false, false), 0);
	}
	close(fd);
	/* Given back, a specific port can be had again. */
	req.port = LO + 150;
	req.count = 1;
	give_back(&out);
	take(&req, OWNER_B, &out);
	ck_assert_ptr_eq(alloc_owner(LO + 150), OWNER_B);
}
END_TEST

START_TEST(ephemeral_ports)
{
	struct alloc_request req = request(3, PROTO_TCP, PROTO_FAM_DUAL);
	struct alloc_result res, more;

	setup_pool(LO, LO + 9);
	req.strategy = PROTO_STRATEGY_EPHEMERAL;
	take(&req, OWNER_A, &res);
	for (int i = 0; i < 3; i++) {
		uint16_t p = res.ports[i];

		ck_assert_int_ne(p, 0);
		ck_assert(p < LO || p > LO + 9);
		for (int k = 0; k < i; k++)
			ck_assert_int_ne(res.ports[k], p);
		ck_assert_ptr_eq(alloc_owner(p), OWNER_A);
		ck_assert_int_eq(
		    unit_try_bind(AF_INET, SOCK_STREAM, p, false, false),
		    EADDRINUSE);
	}
	ck_assert_int_eq(alloc_pool_free(), 10);
	/* The daemon's configured strategy applies to "default". */
	portd_cfg.strategy = PROTO_STRATEGY_EPHEMERAL;
	req = request(2, PROTO_BOTH, PROTO_FAM_DUAL);
	take(&req, OWNER_A, &more);
	ck_assert_int_eq(more.nsocks, 4);
	ck_assert(more.ports[0] < LO || more.ports[0] > LO + 9);
	ck_assert_int_eq(alloc_pool_free(), 10);
	give_back(&res);
	ck_assert_ptr_null(alloc_owner(res.ports[0]));
	ck_assert_int_eq(alloc_pool_free(), 10);
}
END_TEST

/* proto both: one number, free for TCP and UDP, held in both. */
START_TEST(proto_both_holds_tcp_and_udp)
{
	struct alloc_request req = request(2, PROTO_BOTH, PROTO_FAM_DUAL);
	struct alloc_result res;

	setup_pool(LO, LO + 9);
	take(&req, OWNER_A, &res);
	ck_assert_int_eq(res.nsocks, 4);
	for (int i = 0; i < res.nsocks; i++)
		ck_assert_int_eq(res.socks[i].port, res.ports[i / 2]);
	ck_assert_int_eq(res.socks[0].proto, PROTO_TCP);
	ck_assert_int_eq(res.socks[1].proto, PROTO_UDP);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(unit_try_bind(AF_INET, SOCK_STREAM,
		                     res.ports[i], false, false),
		    EADDRINUSE);
		ck_assert_int_eq(unit_try_bind(AF_INET, SOCK_DGRAM,
		                     res.ports[i], true, false),
		    EADDRINUSE);
	}
}
END_TEST

struct hold_case {
	enum proto_proto proto;
	enum proto_hold hold;
	enum proto_family family;
	/* What a bind by someone else gets: 0 or EADDRINUSE. */
	int plain4, reuse4, plain6, reuse6;
};

/*
 * Who can bind a held port, by real bind() calls. "4" is 0.0.0.0, "6" is
 * [::] with V6ONLY; "reuse" sets SO_REUSEADDR and (TCP) listens too.
 */
static const struct hold_case holds[] = {
    /* shared TCP: co-bind with SO_REUSEADDR works, a plain bind fails */
    {PROTO_TCP, PROTO_HOLD_SHARED, PROTO_FAM_DUAL, EADDRINUSE, 0, EADDRINUSE,
        0},
    /* exclusive: nobody */
    {PROTO_TCP, PROTO_HOLD_EXCLUSIVE, PROTO_FAM_DUAL, EADDRINUSE, EADDRINUSE,
        EADDRINUSE, EADDRINUSE},
    {PROTO_UDP, PROTO_HOLD_EXCLUSIVE, PROTO_FAM_DUAL, EADDRINUSE, EADDRINUSE,
        EADDRINUSE, EADDRINUSE},
    /* one family holds only that family */
    {PROTO_TCP, PROTO_HOLD_SHARED, PROTO_FAM_IPV4, EADDRINUSE, 0, 0, 0},
    {PROTO_TCP, PROTO_HOLD_EXCLUSIVE, PROTO_FAM_IPV4, EADDRINUSE, EADDRINUSE, 0,
        0},
    {PROTO_TCP, PROTO_HOLD_EXCLUSIVE, PROTO_FAM_IPV6, 0, 0, EADDRINUSE,
        EADDRINUSE},
    {PROTO_UDP, PROTO_HOLD_EXCLUSIVE, PROTO_FAM_IPV4, EADDRINUSE, EADDRINUSE, 0,
        0},
    {PROTO_UDP, PROTO_HOLD_EXCLUSIVE, PROTO_FAM_IPV6, 0, 0, EADDRINUSE,
        EADDRINUSE},
};

START_TEST(hold_semantics)
{
	const struct hold_case *c = &holds[_i];
	struct alloc_request req = request(1, c->proto, c->family);
	int type = c->proto == PROTO_TCP ? SOCK_STREAM : SOCK_DGRAM;
	struct alloc_result res;
	uint16_t p;

	setup_pool(LO + _i * 10, LO + _i * 10 + 9);
	if (c->family != PROTO_FAM_IPV4 && !alloc_ipv6()) {
		fprintf(
		    stderr, "hold_semantics: no IPv6, case %d skipped\n", _i);
		return;
	}
	req.hold = c->hold;
	take(&req, OWNER_A, &res);
	p = res.ports[0];
	ck_assert_int_eq(res.nsocks, 1);
	ck_assert_int_eq(res.family, c->family);
	ck_assert_int_eq(
	    unit_try_bind(AF_INET, type, p, false, false), c->plain4);
	ck_assert_int_eq(
	    unit_try_bind(AF_INET, type, p, true, true), c->reuse4);
	ck_assert_int_eq(
	    unit_try_bind(AF_INET6, type, p, false, false), c->plain6);
	ck_assert_int_eq(
	    unit_try_bind(AF_INET6, type, p, true, true), c->reuse6);
	/* Once the sockets are closed, everybody may bind. */
	give_back(&res);
	ck_assert_int_eq(unit_try_bind(AF_INET, type, p, false, false), 0);
	ck_assert_int_eq(unit_try_bind(AF_INET6, type, p, false, false), 0);
}
END_TEST

/* A shared TCP hold lets a co-binding server listen while it holds. */
START_TEST(shared_hold_co_bind)
{
	struct alloc_request req = request(1, PROTO_TCP, PROTO_FAM_DUAL);
	struct alloc_result res;
	int srv;

	setup_pool(LO, LO + 9);
	take(&req, OWNER_A, &res);
	srv = unit_bind(AF_UNSPEC, SOCK_STREAM, res.ports[0], true, true);
	ck_assert_int_ge(srv, 0);
	/* Still nobody else without SO_REUSEADDR. */
	ck_assert_int_eq(
	    unit_try_bind(AF_INET, SOCK_STREAM, res.ports[0], false, false),
	    EADDRINUSE);
	close(srv);
}
END_TEST

/*
 * Choosing a port must not scan the pool. With 9,000 of 10,000 ports
 * taken, each pick takes one port off the free queue and binds it: the
 * count of ports examined is the same as in an empty pool. Ports are
 * taken with alloc_mark (no sockets, no descriptors); the free ones are
 * 28000-28999, the top of the pool, so the binds stay in this program's
 * range.
 */
START_TEST(pick_cost_with_full_pool)
{
	static uint16_t marked[9000];
	struct alloc_result res;
	const struct alloc_stats *st = alloc_stats();
	uint64_t max_examined = 0, max_binds = 0;

	setup_pool(19000, 28999);
	ck_assert_int_eq(alloc_pool_size(), 10000);
	/* Mark in a scattered order, not as one block. */
	for (int i = 0; i < 9000; i++)
		marked[i] = (uint16_t)(19000 + (i * 7919) % 9000);
	ck_assert_int_eq(alloc_mark(marked, 9000, OWNER_B), 0);
	ck_assert_int_eq(alloc_pool_free(), 1000);

	for (int i = 0; i < 100; i++) {
		uint64_t e = st->examined, b = st->binds;
		uint16_t p = take_one(OWNER_A, &res);

		ck_assert_int_ge(p, 28000);
		ck_assert_int_le(p, LO + 199);
		if (st->examined - e > max_examined)
			max_examined = st->examined - e;
		if (st->binds - b > max_binds)
			max_binds = st->binds - b;
	}
	fprintf(stderr,
	    "pick_cost_with_full_pool: 9000 of 10000 taken: at most %llu "
	    "port(s) examined and %llu bind(s) per pick, %llu over 100 "
	    "picks\n",
	    (unsigned long long)max_examined, (unsigned long long)max_binds,
	    (unsigned long long)st->examined);
	ck_assert_int_le(max_examined, 2);
	ck_assert_int_le(max_binds, 2);
	ck_assert_int_eq(alloc_pool_free(), 900);
	/* Marking a port someone owns fails and marks nothing. */
	ck_assert_int_eq(alloc_mark(marked, 2, OWNER_A), -1);
	ck_assert_ptr_eq(alloc_owner(marked[0]), OWNER_B);
}
END_TEST

/*
 * Ports taken outside the queue (contiguous runs, by number, restored
 * with alloc_mark) used to stay queued until a pick met them, and every
 * one it met used up one of its 128 tries: after three contiguous leases
 * of 64 ports, the next single pick said no_ports with 8 ports free.
 */
START_TEST(regression_pool_stale_queue)
{
	struct alloc_request run = request(64, PROTO_TCP, PROTO_FAM_DUAL);
	struct alloc_result res[3], one;
	static uint16_t marked[150];

	setup_pool(LO, LO + 199);
	run.contiguous = true;
	for (int i = 0; i < 3; i++)
		take(&run, OWNER_A, &res[i]);
	ck_assert_int_eq(alloc_pool_free(), 8);
	ck_assert_int_eq(take_one(OWNER_A, &one), LO + 192);
	ck_assert_int_eq(alloc_stats()->examined, 1);
	for (int i = 0; i < 3; i++)
		give_back(&res[i]);
	give_back(&one);

	setup_pool(LO, LO + 199);
	for (int i = 0; i < 150; i++)
		marked[i] = (uint16_t)(LO + i);
	ck_assert_int_eq(alloc_mark(marked, 150, OWNER_B), 0);
	ck_assert_int_eq(take_one(OWNER_A, &one), LO + 150);
	ck_assert_int_eq(alloc_stats()->examined, 1);
	/* Given back, marked ports join the queue at its end. */
	alloc_put(marked, 150);
	ck_assert_int_eq(alloc_pool_free(), 199);
	ck_assert_int_eq(take_one(OWNER_A, &res[0]), LO + 151);
}
END_TEST

/* SIGHUP may move the pool: leases keep their ports, picks come from the
 * new range, and the free count covers only the new range's free ports. */
START_TEST(set_pool_keeps_leases)
{
	struct alloc_result a, b;
	uint16_t pa = take_first(LO + 9, &a);

	ck_assert_int_eq(alloc_set_pool(LO, LO + 19), 0);
	ck_assert_int_eq(alloc_pool_free(), 19);
	ck_assert_ptr_eq(alloc_owner(pa), OWNER_A);
	ck_assert_int_eq(take_one(OWNER_B, &b), LO + 1);
	give_back(&b);
	/* Shrink away from the leased port: it stays leased, outside. */
	ck_assert_int_eq(alloc_set_pool(LO + 10, LO + 19), 0);
	ck_assert_int_eq(alloc_pool_free(), 10);
	ck_assert_ptr_eq(alloc_owner(pa), OWNER_A);
	ck_assert_int_eq(take_one(OWNER_B, &b), LO + 10);
	give_back(&b);
	give_back(&a);
	ck_assert_int_eq(alloc_pool_free(), 10);
}
END_TEST

/*
 * The chain of the kernel's abstract-name hash a marker falls on, as
 * net/unix/af_unix.c computes it (unix_abstract_hash): the Internet
 * checksum of the whole address (family, the leading NUL, the name),
 * folded and complemented, its two bytes xor'ed, 256 chains.
 */
static unsigned
abstract_chain(const char *name)
{
	unsigned char b[sizeof(struct sockaddr_un) + 1] = {0};
	size_t n = strlen(name),
	       len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
	sa_family_t fam = AF_UNIX;
	uint32_t sum = 0;
	unsigned h;

	memcpy(b, &fam, sizeof(fam));
	memcpy(b + offsetof(struct sockaddr_un, sun_path) + 1, name, n);
	for (size_t i = 0; i < len; i += 2)
		sum += (uint32_t)(b[i] | b[i + 1] << 8); /* b[len] is 0 */
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	h = ~sum & 0xffff;
	h ^= h >> 8;
	return h & 255;
}

/*
 * regression_marker_names_share_hash_chains: "portd/port/tcp/<port>" put
 * the 20,000 markers of a pool on 52 of the 256 chains, up to 1,225 on
 * one, and a marker's bind scanned its chain: 16 us a bind with 9,000
 * leases held against 4 us with none, in the latency and at a restart.
 * With the spreading characters no chain holds thrice its share.
 */
START_TEST(regression_marker_names_share_hash_chains)
{
	unsigned chains[256] = {0}, most = 0;
	char name[PROTO_MARKER_MAX];
	int n = 0;

	for (unsigned port = 10000; port < 30000; port++)
		for (int udp = 0; udp < 2; udp++) {
			ck_assert_int_gt(
			    proto_marker_name(udp, port, name, sizeof(name)),
			    0);
			chains[abstract_chain(name)]++;
			n++;
		}
	for (int i = 0; i < 256; i++)
		most = chains[i] > most ? chains[i] : most;
	ck_assert_msg(most <= 3 * (unsigned)n / 256,
	    "a chain holds %u of %d markers", most, n);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("alloc");
	TCase *tc;

	tc = tcase_create("pool");
	tcase_add_test(tc, pool_ports_distinct);
	tcase_add_test(tc, pool_exhaustion);
	tcase_add_test(tc, put_returns_ports_last);
	tcase_add_test(tc, busy_tcp_port_skipped);
	tcase_add_test(tc, busy_udp_port_skipped);
	tcase_add_test(tc, busy_for_one_proto_of_both);
	tcase_add_test(tc, reserved_ports_skipped);
	tcase_add_test(tc, contiguous_runs);
	tcase_add_test(tc, specific_ports);
	tcase_add_test(tc, ephemeral_ports);
	tcase_add_test(tc, pick_cost_with_full_pool);
	tcase_add_test(tc, regression_pool_stale_queue);
	tcase_add_test(tc, set_pool_keeps_leases);
	tcase_add_test(tc, regression_claimed_port_given_by_two_daemons);
	tcase_add_test(tc, squatted_marker_skipped);
	tcase_add_test(tc, regression_marker_names_share_hash_chains);
	suite_add_tcase(s, tc);

	tc = tcase_create("holds");
	tcase_add_test(tc, proto_both_holds_tcp_and_udp);
	tcase_add_loop_test(tc, hold_semantics, 0, (int)nitems(holds));
	tcase_add_test(tc, shared_hold_co_bind);
	suite_add_tcase(s, tc);

	return unit_run(s);
}
