/*
 * Steals, measured in a private network namespace with a 100-port
 * ephemeral range, where autobinds collide as often as they ever will:
 *
 * (a) 50 leases from the ephemeral range are held while 20,000 automatic
 *     binds and outgoing connects (with and without SO_REUSEADDR) run:
 *     none may land on a leased port (guarantee 2).
 * (b) Under the same kind of pressure from another process, how often a
 *     port handed over by number is lost before its user binds it: the
 *     naive bind-0-close-rebind, claim from the pool (guarantee: never),
 *     co-bind on a shared pool lease (never), and, for comparison, claim
 *     of a lease from the ephemeral range.
 *
 * Prints the counts; asserts only the guarantees. Exits 77 (skipped) when
 * no network namespace can be made.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "handoff.h"

#define RANGE_LO    40000
#define RANGE_HI    40099
#define POOL        "25400-25499"
#define TARGET_PORT 30000 /* the local server connects go to */
#define OPS         20000
#define TRIES       1000

static int
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	int rc;

	if (f == NULL)
		return -1;
	rc = fputs(text, f) < 0 ? -1 : 0;
	return fclose(f) == 0 ? rc : -1;
}

/* A private network namespace with lo up and a tiny ephemeral range. */
static int
enter_netns(char *why, size_t len)
{
	struct ifreq ifr = {0};
	int fd;

	if (unshare(CLONE_NEWNET) == -1) {
		snprintf(
		    why, len, "unshare(CLONE_NEWNET): %s", strerror(errno));
		return -1;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (fd == -1 || ioctl(fd, SIOCGIFFLAGS, &ifr) == -1 ||
	    (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr)) == -1) {
		snprintf(why, len, "bringing up lo: %s", strerror(errno));
		return -1;
	}
	close(fd);
	if (write_file("/proc/sys/net/ipv4/ip_local_port_range",
	        "40000 40099\n") == -1) {
		snprintf(why, len, "ip_local_port_range: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static struct sockaddr_in
loopback(int port)
{
	return (struct sockaddr_in){.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
}

/* The kinds of automatic binds. */
enum op {
	OP_TCP_BIND,
	OP_TCP_BIND_REUSE,
	OP_TCP6_BIND,
	OP_TCP_CONNECT,
	OP_TCP_CONNECT_REUSE,
	OP_UDP_BIND,
	OP_UDP_BIND_REUSE,
	OP_UDP_CONNECT,
	OP__MAX
};

static const char *const op_names[] = {
    "tcp bind(0)",
    "tcp bind(0) SO_REUSEADDR",
    "tcp [::] bind(0) dual-stack",
    "tcp connect",
    "tcp connect SO_REUSEADDR",
    "udp bind(0)",
    "udp bind(0) SO_REUSEADDR",
    "udp connect",
};

static bool
op_udp(enum op op)
{
	return op >= OP_UDP_BIND;
}

/* Do one automatic bind; the socket (its port now chosen) or -1. */
static int
autobind(enum op op)
{
	bool reuse = op == OP_TCP_BIND_REUSE || op == OP_TCP_CONNECT_REUSE ||
	             op == OP_UDP_BIND_REUSE;
	bool conn = op == OP_TCP_CONNECT || op == OP_TCP_CONNECT_REUSE ||
	            op == OP_UDP_CONNECT;
	struct sockaddr_in sin = loopback(conn ? TARGET_PORT : 0);
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
	int fd, one = 1, rc;

	if (op == OP_TCP6_BIND) {
		fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(
		    fd, IPPROTO_IPV6, IPV6_V6ONLY, &(int){0}, sizeof(int));
		rc = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6));
	} else {
		fd = socket(AF_INET,
		    (op_udp(op) ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
		if (reuse)
			setsockopt(
			    fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!conn)
			sin.sin_addr.s_addr = htonl(INADDR_ANY);
		rc = conn ? connect(fd, (struct sockaddr *)&sin, sizeof(sin))
		          : bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	}
	if (rc == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The server connects go to, with UDP on the same port; accepts are
 * drained by whoever calls drain(). */
static int
target_server(void)
{
	int fd =
	    hb_bind_keep("127.0.0.1", false, SOCK_STREAM, TARGET_PORT, true);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(listen(fd, 4096), 0);
	ck_assert_int_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	return fd;
}

static void
drain(int lfd)
{
	int c;

	while ((c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) != -1)
		close(c);
}

static int
lease(int conn, const char *args, int *ret_port)
{
	json_object *r = harness_call(conn, "{\"op\":\"lease\"%s}", args);

	ck_assert_msg(
	    reply_ok(r), "lease%s: %s", args, json_object_to_json_string(r));
	*ret_port = lease_port(r, 0);
	json_object_put(r);
	return *ret_port;
}

START_TEST(held_ports_never_autobound)
{
	static bool tcp_held[65536], udp_held[65536];
	int done[OP__MAX] = {0}, failed[OP__MAX] = {0}, landed[OP__MAX] = {0};
	struct daemon_proc d;
	int conn, lfd, port, total = 0;

	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	conn = harness_connect(d.sock);
	lfd = target_server();
	for (int i = 0; i < 50; i++) {
		lease(conn,
		    i < 25 ? ",\"strategy\":\"ephemeral\""
		           : ",\"strategy\":\"ephemeral\",\"proto\":\"both\"",
		    &port);
		ck_assert_msg(port >= RANGE_LO && port <= RANGE_HI,
		    "ephemeral lease %d outside the range", port);
		tcp_held[port] = true;
		udp_held[port] = i >= 25;
	}
	for (int i = 0; i < OPS; i++) {
		enum op op = (enum op)(i % OP__MAX);
		int fd = autobind(op);

		if (fd == -1) {
			failed[op]++;
			continue;
		}
		port = hb_sock_port(fd);
		done[op]++;
		if (op_udp(op) ? udp_held[port] : tcp_held[port])
			landed[op]++;
		hb_close_rst(fd); /* no TIME_WAIT to fill the range */
		if ((i & 63) == 63)
			drain(lfd);
	}
	printf("\n(a) %d automatic binds, 100-port ephemeral range, 50 ports "
	       "leased (25 tcp shared, 25 tcp+udp exclusive)\n",
	    OPS);
	printf("    %-30s %7s %7s %22s\n", "kind", "done", "failed",
	    "landed on leased port");
	for (int op = 0; op < OP__MAX; op++) {
		printf("    %-30s %7d %7d %22d\n", op_names[op], done[op],
		    failed[op], landed[op]);
		total += landed[op];
	}
	fflush(stdout);
	for (int op = 0; op < OP__MAX; op++)
		ck_assert_msg(done[op] > 0, "%s never worked", op_names[op]);
	ck_assert_msg(
	    total == 0, "%d automatic binds landed on leased ports", total);
	close(lfd);
	close(conn);
	harness_stop(&d);
}
END_TEST

/*
 * Another process keeps 40 of the 100 ephemeral ports busy and replaces
 * one every step with a new automatic bind or outgoing connect, as a
 * busy test machine does.
 */
static pid_t
pressure(void)
{
	pid_t pid = fork();

	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		int ring[40], lfd = target_server();

		for (int i = 0; i < 40; i++)
			ring[i] = -1;
		for (unsigned long i = 0;; i++) {
			int slot = (int)(i % 40);
			static const enum op mix[] = {OP_TCP_CONNECT,
			    OP_TCP_BIND, OP_UDP_CONNECT, OP_TCP_CONNECT_REUSE,
			    OP_UDP_BIND};

			if (ring[slot] != -1)
				hb_close_rst(ring[slot]);
			ring[slot] = autobind(mix[i % 5]);
			if ((i & 31) == 31)
				drain(lfd);
		}
	}
	return pid;
}

/* Bind the port as its user would: plain, no SO_REUSEADDR. */
static bool
user_binds(int port, bool reuse)
{
	return hb_bind("::", false, SOCK_STREAM, port, reuse) == 0;
}

enum way { NAIVE, NAIVE_GAP, CLAIM_POOL, COBIND_POOL, CLAIM_EPHEMERAL };

static const char *const way_names[] = {
    "naive bind(0), close, rebind",
    "naive, 1 ms before the rebind",
    "claim from the pool, 1 ms",
    "co-bind on a shared pool lease",
    "claim from the ephemeral range",
};

/* One handoff the given way; true if the user got the port. */
static bool
handoff(enum way way, int conn)
{
	json_object *r;
	int fd, port;
	bool ok;
	char id[80];

	switch (way) {
	case NAIVE:
	case NAIVE_GAP:
		fd = hb_bind_keep("::", false, SOCK_STREAM, 0, false);
		if (fd < 0)
			return false; /* range full: counted as lost */
		port = hb_sock_port(fd);
		close(fd);
		if (way == NAIVE_GAP)
			usleep(1000);
		return user_binds(port, false);
	case COBIND_POOL:
		r = harness_call(conn, "{\"op\":\"lease\"}");
		port = lease_port(r, 0);
		snprintf(id, sizeof(id), "%s", lease_id(r));
		json_object_put(r);
		usleep(1000);
		ok = user_binds(port, true);
		break;
	default:
		r = harness_call(conn,
		    "{\"op\":\"lease\",\"hold\":\"exclusive\"%s}",
		    way == CLAIM_EPHEMERAL ? ",\"strategy\":\"ephemeral\""
		                           : "");
		port = lease_port(r, 0);
		snprintf(id, sizeof(id), "%s", lease_id(r));
		json_object_put(r);
		r = harness_call(
		    conn, "{\"op\":\"claim\",\"lease\":\"%s\"}", id);
		ck_assert(reply_ok(r));
		json_object_put(r);
		usleep(1000);
		ok = user_binds(port, false);
	}
	r = harness_call(conn, "{\"op\":\"release\",\"lease\":\"%s\"}", id);
	ck_assert(reply_ok(r));
	json_object_put(r);
	return ok;
}

START_TEST(handoff_losses_under_pressure)
{
	struct daemon_proc d;
	int conn, lost[5] = {0};
	pid_t p;

	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	conn = harness_connect(d.sock);
	p = pressure();
	usleep(100 * 1000); /* let it fill its 40 ports */
	for (int w = NAIVE; w <= CLAIM_EPHEMERAL; w++)
		for (int i = 0; i < TRIES; i++)
			lost[w] += !handoff((enum way)w, conn);
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);

	printf("\n(b) %d handoffs each while another process churns 40 of "
	       "the 100 ephemeral ports\n",
	    TRIES);
	printf("    %-34s %6s\n", "handoff", "lost");
	for (int w = NAIVE; w <= CLAIM_EPHEMERAL; w++)
		printf("    %-34s %6d\n", way_names[w], lost[w]);
	fflush(stdout);
	ck_assert_msg(
	    lost[CLAIM_POOL] == 0, "claim lost %d ports", lost[CLAIM_POOL]);
	ck_assert_msg(
	    lost[COBIND_POOL] == 0, "co-bind lost %d ports", lost[COBIND_POOL]);
	close(conn);
	harness_stop(&d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("steal");
	TCase *tc = tcase_create("steal");
	char why[256];

	if (enter_netns(why, sizeof(why)) == -1) {
		printf(
		    "SKIPPED: cannot create a network namespace (%s)\n", why);
		return 77;
	}
	tcase_set_timeout(tc, 50);
	tcase_add_test(tc, held_ports_never_autobound);
	tcase_add_test(tc, handoff_losses_under_pressure);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
