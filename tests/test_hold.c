/*
 * Guarantee 2, "held means held", over real sockets: for each kind of
 * lease and each kind of intruder, what the kernel lets the intruder do
 * while portd holds the port, after the owner claims it, and after it is
 * released.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handoff.h"

#define POOL "25000-25099"

/* Someone other than the lease's owner trying to get at its port. */
struct intruder {
	const char *what;
	const char *addr; /* NULL: autobind (bind port 0, connect) */
	bool v6only;
	bool reuse;
};

static const struct intruder intruders[] = {
    {"plain bind 0.0.0.0", "0.0.0.0", false, false},
    {"plain bind [::] v6only", "::", true, false},
    {"plain bind [::] dual-stack", "::", false, false},
    {"plain bind 127.0.0.1", "127.0.0.1", false, false},
    {"plain bind [::1]", "::1", true, false},
    {"SO_REUSEADDR bind 0.0.0.0", "0.0.0.0", false, true},
    {"SO_REUSEADDR bind [::] v6only", "::", true, true},
    {"SO_REUSEADDR bind [::] dual-stack", "::", false, true},
    {"SO_REUSEADDR bind 127.0.0.1", "127.0.0.1", false, true},
    {"SO_REUSEADDR bind [::1]", "::1", true, true},
    {"autobind (bind 0, connect)", NULL, false, false},
};
#define NINTRUDERS ((int)(sizeof(intruders) / sizeof(intruders[0])))

/*
 * One lease kind and what each intruder (in the order above) gets while
 * the port is held: 'x' refused (EADDRINUSE), 'o' binds (and listens, for
 * TCP), 'a' autobind never lands on the port (ephemeral-strategy lease).
 * A TCP bind listens too, so 'o' for TCP is a real co-bound server.
 */
static const struct lease_kind {
	const char *args; /* lease request arguments */
	int type;
	int af; /* the family an autobind must not land in: 0 both */
	const char *held;
} kinds[] = {
    /* shared: SO_REUSEADDR binders co-bind, everybody else is out. */
    {"\"proto\":\"tcp\",\"hold\":\"shared\"", SOCK_STREAM, 0,
        "xxxxxooooo"
        "a"},
    /* exclusive and UDP: nobody. */
    {"\"proto\":\"tcp\",\"hold\":\"exclusive\"", SOCK_STREAM, 0,
        "xxxxxxxxxx"
        "a"},
    {"\"proto\":\"udp\"", SOCK_DGRAM, 0,
        "xxxxxxxxxx"
        "a"},
    /* ipv4: 0.0.0.0 covers 127.0.0.1 and the IPv4 half of a dual-stack
     * [::]; IPv6-only sockets are not stopped. */
    {"\"family\":\"ipv4\"", SOCK_STREAM, AF_INET,
        "xoxxoooooo"
        "a"},
    {"\"family\":\"ipv4\",\"hold\":\"exclusive\"", SOCK_STREAM, AF_INET,
        "xoxxoxoxxo"
        "a"},
    {"\"family\":\"ipv4\",\"proto\":\"udp\"", SOCK_DGRAM, AF_INET,
        "xoxxoxoxxo"
        "a"},
    /* ipv6: [::] with V6ONLY covers [::1] and the IPv6 half of a
     * dual-stack [::]; IPv4 sockets are not stopped. */
    {"\"family\":\"ipv6\"", SOCK_STREAM, AF_INET6,
        "oxxoxooooo"
        "a"},
    {"\"family\":\"ipv6\",\"hold\":\"exclusive\"", SOCK_STREAM, AF_INET6,
        "oxxoxoxxox"
        "a"},
    {"\"family\":\"ipv6\",\"proto\":\"udp\"", SOCK_DGRAM, AF_INET6,
        "oxxoxoxxox"
        "a"},
};
#define NKINDS ((int)(sizeof(kinds) / sizeof(kinds[0])))

#define AUTOBINDS 2000

static const char *
strerr(int e)
{
	return e == 0 ? "success" : strerror(e);
}

static int
intrude(const struct intruder *in, int type, int port)
{
	return hb_bind(in->addr, in->v6only, type, port, in->reuse);
}

/* One automatic bind: bind to port 0 or connect; the local port or -1. */
static int
autobind_once(int af, int type, bool reuse, bool do_connect, int lport)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, port;

	memset(&ss, 0, sizeof(ss));
	if (af == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons((uint16_t)(do_connect ? lport : 0));
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		sin6->sin6_port = htons((uint16_t)(do_connect ? lport : 0));
		len = sizeof(*sin6);
	}
	if ((fd = socket(af, type | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (reuse)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (!do_connect && af == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_any;
	if (!do_connect && af == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = INADDR_ANY;
	if ((do_connect ? connect(fd, (struct sockaddr *)&ss, len)
	                : bind(fd, (struct sockaddr *)&ss, len)) == -1) {
		close(fd);
		return -1;
	}
	port = hb_sock_port(fd);
	hb_close_rst(fd);
	return port;
}

/* AUTOBINDS automatic binds in family af; how many landed on port. */
static int
autobind_storm(int af, int type, int port, int *ret_done)
{
	int lfd, lport, landed = 0, done = 0;

	/* TCP connects need a listener; accept nothing, RST closes. */
	lfd = hb_bind_keep(
	    af == AF_INET ? "127.0.0.1" : "::1", true, type, 0, false);
	ck_assert_int_ge(lfd, 0);
	lport = hb_sock_port(lfd);
	if (type == SOCK_STREAM)
		ck_assert_int_eq(listen(lfd, 4096), 0);
	ck_assert_int_eq(fcntl(lfd, F_SETFL, O_NONBLOCK), 0);
	for (int i = 0; i < AUTOBINDS; i++) {
		int p = autobind_once(af, type, i & 1, i & 2, lport);
		if (p > 0)
			done++;
		if (p == port)
			landed++;
		/* Drain the accept queue now and then. */
		if (type == SOCK_STREAM && (i & 63) == 63) {
			int c;
			while ((c = accept4(lfd, NULL, NULL,
			            SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1)
				close(c);
		}
	}
	close(lfd);
	*ret_done = done;
	return landed;
}

START_TEST(hold_matrix)
{
	const struct lease_kind *k = &kinds[_i / NINTRUDERS];
	const struct intruder *in = &intruders[_i % NINTRUDERS];
	char want = k->held[_i % NINTRUDERS];
	struct daemon_proc d;
	json_object *r;
	int conn, port, e;

	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	conn = harness_connect(d.sock);
	ck_assert_int_ge(conn, 0);
	r = harness_call(conn, "{\"op\":\"lease\",%s%s}", k->args,
	    in->addr == NULL ? ",\"strategy\":\"ephemeral\"" : "");
	port = lease_port(r, 0);
	char *id = strdup(lease_id(r));
	json_object_put(r);

	/* Phase 1: held. */
	if (want == 'a') {
		int lo = 0, hi = 0, done = 0, landed = 0;
		FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
		ck_assert_ptr_nonnull(f);
		ck_assert_int_eq(fscanf(f, "%d %d", &lo, &hi), 2);
		fclose(f);
		ck_assert_msg(port >= lo && port <= hi,
		    "ephemeral lease %d outside %d-%d", port, lo, hi);
		for (int af = AF_INET; af <= AF_INET6; af += AF_INET6 - AF_INET)
			if (k->af == 0 || k->af == af) {
				int n = 0;
				landed += autobind_storm(af, k->type, port, &n);
				done += n;
			}
		ck_assert_msg(
		    done > AUTOBINDS / 2, "only %d autobinds worked", done);
		ck_assert_msg(landed == 0,
		    "%s: %d of %d autobinds landed on held port %d", k->args,
		    landed, done, port);
	} else {
		e = intrude(in, k->type, port);
		if (want == 'x')
			ck_assert_msg(e == EADDRINUSE,
			    "%s lease, %s while held: %s, want EADDRINUSE",
			    k->args, in->what, strerr(e));
		else
			ck_assert_msg(e == 0,
			    "%s lease, %s while held: %s, want success",
			    k->args, in->what, strerr(e));
	}

	/* Phase 2: claimed. portd holds nothing; the owner binds. */
	r = harness_call(conn, "{\"op\":\"claim\",\"lease\":\"%s\"}", id);
	ck_assert_msg(
	    reply_ok(r) && !json_object_get_boolean(reply_get(r, "lease.held")),
	    "claim: %s", json_object_to_json_string(r));
	json_object_put(r);
	if (in->addr != NULL) {
		e = intrude(in, k->type, port);
		ck_assert_msg(e == 0, "%s lease, %s after claim: %s", k->args,
		    in->what, strerr(e));
	} else {
		e = hb_bind(k->af == AF_INET ? "0.0.0.0" : "::", k->af != 0,
		    k->type, port, false);
		ck_assert_msg(e == 0, "%s lease: owner bind after claim: %s",
		    k->args, strerr(e));
	}
	ck_assert(hb_listed(conn, port)); /* still recorded */

	/* Phase 3: released; the port binds freely. */
	r = harness_call(conn, "{\"op\":\"release\",\"lease\":\"%s\"}", id);
	ck_assert(reply_ok(r));
	json_object_put(r);
	ck_assert(!hb_listed(conn, port));
	if (in->addr != NULL) {
		e = intrude(in, k->type, port);
		ck_assert_msg(e == 0, "%s lease, %s after release: %s", k->args,
		    in->what, strerr(e));
	}
	e = hb_bind("::", false, k->type, port, false);
	ck_assert_msg(e == 0, "dual-stack bind after release: %s", strerr(e));

	free(id);
	close(conn);
	harness_stop(&d);
}
END_TEST

/* The matrix's claims about the intruders only hold if the released
 * port really is free at the start of each phase: checked above. Here
 * the combinations the protocol refuses. */
START_TEST(udp_shared_refused)
{
	static const char *const bad[] = {
	    "\"proto\":\"udp\",\"hold\":\"shared\"",
	    "\"proto\":\"both\",\"hold\":\"shared\"",
	};
	struct daemon_proc d;
	json_object *r;
	int conn;

	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	conn = harness_connect(d.sock);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = harness_call(conn, "{\"op\":\"lease\",%s}", bad[i]);
		ck_assert_msg(reply_error(r) != NULL &&
		                  strcmp(reply_error(r), "bad_request") == 0,
		    "%s: %s", bad[i], json_object_to_json_string(r));
		json_object_put(r);
	}
	/* Nothing was leased on the way. */
	ck_assert_int_eq(status_int(conn, "leases"), 0);
	close(conn);
	harness_stop(&d);
}
END_TEST

/* proto both: the same number, held for TCP (shared) and UDP
 * (exclusive, whatever hold says for TCP). */
START_TEST(both_holds_udp_exclusive)
{
	struct daemon_proc d;
	json_object *r;
	int conn, port;

	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	conn = harness_connect(d.sock);
	r = harness_call(conn, "{\"op\":\"lease\",\"proto\":\"both\"}");
	port = lease_port(r, 0);
	ck_assert_str_eq(reply_str(r, "lease.hold"), "exclusive");
	json_object_put(r);
	ck_assert_int_eq(
	    hb_bind("0.0.0.0", false, SOCK_DGRAM, port, true), EADDRINUSE);
	ck_assert_int_eq(
	    hb_bind("::", true, SOCK_DGRAM, port, false), EADDRINUSE);
	ck_assert_int_eq(
	    hb_bind("0.0.0.0", false, SOCK_STREAM, port, true), EADDRINUSE);
	close(conn);
	harness_stop(&d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("hold");
	TCase *tc = tcase_create("matrix");

	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, hold_matrix, 0, NKINDS * NINTRUDERS);
	tcase_add_test(tc, udp_shared_refused);
	tcase_add_test(tc, both_holds_udp_exclusive);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
