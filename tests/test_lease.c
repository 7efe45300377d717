/*
 * Unit tests of the lease table (daemon/lease.c): TTLs against an injected
 * clock, quotas and limits at their boundaries, ownership, the ways a
 * lease ends, and expiry through a real libevent timer. The leases hold
 * real sockets from the pool 28200-28399, which belongs to this program.
 *
 * lease_id() is not called here: the harness library has a lease_id() of
 * its own, and a call would link it in beside lease.c's.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "daemon.h"
#include "harness.h"
#include "unit.h"

#define LO 28200
#define HI 28399

#define T0 INT64_C(1700000000000) /* the fake clock's start, Unix ms */

static int64_t fake_now;

static int64_t
fake_clock(void)
{
	return fake_now;
}

/* Stand-ins for connections: lease.c only compares the pointers. */
#define CONN_A ((struct conn *)(uintptr_t)0x1000)
#define CONN_B ((struct conn *)(uintptr_t)0x2000)

static void
setup_range(uint16_t lo, uint16_t hi)
{
	unit_config(lo, hi);
	ck_assert_int_eq(alloc_init(lo, hi), 0);
	ck_assert_int_eq(lease_init(), 0);
	portd_base = event_base_new();
	ck_assert_ptr_nonnull(portd_base);
	fake_now = T0;
	portd_set_clock(fake_clock);
}

static void
setup(void)
{
	setup_range(LO, HI);
}

static void
teardown(void)
{
	lease_shutdown();
	alloc_shutdown();
	event_base_free(portd_base);
	portd_base = NULL;
}

/* A lease for a request line, or fail the test. */
static struct lease *
create(const char *line, uid_t uid, struct conn *conn)
{
	struct proto_request req;
	struct proto_error err;
	struct lease *l;

	if (proto_request_parse(line, strlen(line), &req, &err) != 0)
		ck_abort_msg("%s: %s", line, err.message);
	l = lease_create(&req, uid, 4242, conn, NULL, false, &err);
	proto_request_clear(&req);
	if (l == NULL)
		ck_abort_msg("%s: %s %s", line,
		    proto_errcode_to_string(err.code), err.message);
	return l;
}

/* lease_create must fail with code and a message part. */
static void
create_fails(
    const char *line, uid_t uid, enum proto_errcode code, const char *msg)
{
	struct proto_request req;
	struct proto_error err;

	ck_assert_int_eq(
	    proto_request_parse(line, strlen(line), &req, &err), 0);
	ck_assert_ptr_null(
	    lease_create(&req, uid, 4242, NULL, NULL, false, &err));
	proto_request_clear(&req);
	assert_proto_error(line, &err, code, msg);
}

static struct proto_lease
view(const struct lease *l)
{
	struct proto_lease v;

	lease_view(l, &v);
	return v;
}

START_TEST(times_come_from_the_clock)
{
	struct proto_lease v;

	v = view(create("{\"op\":\"lease\",\"ttl\":60}", 1000, NULL));
	ck_assert_int_eq(v.created, T0);
	ck_assert_int_eq(v.ttl, 60);
	ck_assert_int_eq(v.expires, T0 + 60000);

	/* Scope ttl without a ttl: the configured default. */
	fake_now = T0 + 5;
	v = view(create("{\"op\":\"lease\"}", 1000, NULL));
	ck_assert_int_eq(v.created, T0 + 5);
	ck_assert_int_eq(v.ttl, portd_cfg.default_ttl);
	ck_assert_int_eq(v.expires, T0 + 5 + 300000);

	/* Session and process leases have no TTL unless given one. */
	v = view(
	    create("{\"op\":\"lease\",\"scope\":\"session\"}", 1000, CONN_A));
	ck_assert_int_eq(v.ttl, -1);
	ck_assert_int_eq(v.expires, -1);
	v = view(
	    create("{\"op\":\"lease\",\"scope\":\"process\"}", 1000, NULL));
	ck_assert_int_eq(v.ttl, -1);
	ck_assert_int_eq(v.expires, -1);
	v = view(create("{\"op\":\"lease\",\"scope\":\"session\",\"ttl\":30}",
	    1000, CONN_A));
	ck_assert_int_eq(v.ttl, 30);
	ck_assert_int_eq(v.expires, T0 + 5 + 30000);
}
END_TEST

START_TEST(view_reports_the_lease)
{
	struct lease *l = create("{\"op\":\"lease\",\"count\":2,\"proto\":"
	                         "\"both\",\"name\":\"db\",\"fd\":true}",
	    1000, NULL);
	struct proto_lease v = view(l);
	const struct held_socket *socks;
	int n;

	ck_assert(proto_lease_id_valid(v.id, strlen(v.id)));
	ck_assert_ptr_eq(lease_find(v.id), l);
	ck_assert_int_eq(v.nports, 2);
	ck_assert_int_eq(v.proto, PROTO_BOTH);
	ck_assert_int_eq(v.hold, PROTO_HOLD_EXCLUSIVE);
	ck_assert_int_eq(v.scope, PROTO_SCOPE_TTL);
	ck_assert_str_eq(v.name, "db");
	ck_assert_uint_eq(v.uid, 1000);
	ck_assert_int_eq(v.pid, 4242);
	ck_assert(v.held);
	ck_assert_int_eq(v.ipv6, alloc_ipv6());
	socks = lease_sockets(l, &n);
	ck_assert_int_eq(n, 4);
	for (int i = 0; i < n; i++) {
		ck_assert_int_ge(socks[i].fd, 0);
		ck_assert_int_eq(socks[i].port, v.ports[i / 2]);
	}
	ck_assert_int_eq(lease_count(), 1);
	ck_assert_int_eq(lease_ports_held(), 2);
	ck_assert_int_eq(lease_sockets_held(), 4);
	ck_assert_int_eq(lease_uid_ports(1000), 2);
	ck_assert_ptr_null(lease_find("Lnothere"));
	ck_assert_int_eq(lease_counters()->created, 1);
}
END_TEST

START_TEST(renew_rearms)
{
	struct lease *l = create("{\"op\":\"lease\",\"ttl\":60}", 1000, NULL);
	struct proto_error err;

	fake_now = T0 + 50000;
	ck_assert_int_eq(lease_renew(l, true, 120, &err), 0);
	ck_assert_int_eq(view(l).ttl, 120);
	ck_assert_int_eq(view(l).expires, T0 + 50000 + 120000);
	ck_assert_int_eq(view(l).created, T0);
	/* No ttl given: the lease's own again. */
	fake_now = T0 + 100000;
	ck_assert_int_eq(lease_renew(l, false, 0, &err), 0);
	ck_assert_int_eq(view(l).ttl, 120);
	ck_assert_int_eq(view(l).expires, T0 + 100000 + 120000);
	ck_assert_int_eq(lease_counters()->renewed, 2);

	/* A lease without a TTL gets the default one. */
	l = create("{\"op\":\"lease\",\"scope\":\"session\"}", 1000, CONN_A);
	ck_assert_int_eq(lease_renew(l, false, 0, &err), 0);
	ck_assert_int_eq(view(l).ttl, 300);
	ck_assert_int_eq(view(l).expires, T0 + 100000 + 300000);
}
END_TEST

START_TEST(max_ttl_boundary)
{
	struct proto_error err;
	struct lease *l;

	portd_cfg.max_ttl = 3600;
	create_fails("{\"op\":\"lease\",\"ttl\":3601}", 1000,
	    PROTO_E_BAD_REQUEST, "'ttl' 3601 exceeds the maximum of 3600");
	l = create("{\"op\":\"lease\",\"ttl\":3600}", 1000, NULL);
	ck_assert_int_eq(view(l).expires, T0 + 3600000);
	fake_now = T0 + 1000;
	ck_assert_int_eq(lease_renew(l, true, 3601, &err), -1);
	ck_assert_int_eq(err.code, PROTO_E_BAD_REQUEST);
	ck_assert_ptr_nonnull(strstr(err.message, "maximum of 3600"));
	/* A refused renew leaves the lease as it was. */
	ck_assert_int_eq(view(l).ttl, 3600);
	ck_assert_int_eq(view(l).expires, T0 + 3600000);
	ck_assert_int_eq(lease_counters()->renewed, 0);
	/* Nothing was taken for the refused lease. */
	ck_assert_int_eq(lease_count(), 1);
	ck_assert_int_eq(lease_uid_ports(1000), 1);
}
END_TEST

START_TEST(quota_boundary)
{
	struct lease *l;

	portd_cfg.quota = 4;
	create_fails("{\"op\":\"lease\",\"count\":5}", 1000,
	    PROTO_E_QUOTA_EXCEEDED, "the quota of 4");
	l = create("{\"op\":\"lease\",\"count\":3}", 1000, NULL);
	create_fails("{\"op\":\"lease\",\"count\":2}", 1000,
	    PROTO_E_QUOTA_EXCEEDED, "uid 1000 holds 3 ports; 2 more");
	create("{\"op\":\"lease\"}", 1000, NULL);
	ck_assert_int_eq(lease_uid_ports(1000), 4);
	create_fails("{\"op\":\"lease\"}", 1000, PROTO_E_QUOTA_EXCEEDED,
	    "uid 1000 holds 4 ports; 1 more would exceed the quota of 4");
	/* Other uids have their own quota. */
	create("{\"op\":\"lease\",\"count\":4}", 1001, NULL);
	ck_assert_int_eq(lease_uid_ports(1001), 4);
	/* Ending a lease gives its ports back to the quota. */
	lease_end(l, LEASE_END_RELEASED);
	ck_assert_int_eq(lease_uid_ports(1000), 1);
	create("{\"op\":\"lease\",\"count\":3}", 1000, NULL);
	ck_assert_int_eq(lease_uid_ports(1000), 4);
}
END_TEST

START_TEST(max_leases_boundary)
{
	struct lease *l[3];

	portd_cfg.max_leases = 3;
	for (int i = 0; i < 3; i++)
		l[i] = create("{\"op\":\"lease\"}", 1000 + i, NULL);
	create_fails("{\"op\":\"lease\"}", 2000, PROTO_E_RESOURCE_EXHAUSTED,
	    "maximum of 3 leases");
	lease_end(l[1], LEASE_END_RELEASED);
	create("{\"op\":\"lease\"}", 2000, NULL);
	ck_assert_int_eq(lease_count(), 3);
}
END_TEST

/* A lease the pool cannot fill leaves no trace. */
START_TEST(failed_create_takes_nothing)
{
	teardown();
	setup_range(LO, LO + 1);
	create_fails("{\"op\":\"lease\",\"count\":3}", 1000, PROTO_E_NO_PORTS,
	    "no free port");
	ck_assert_int_eq(lease_count(), 0);
	ck_assert_int_eq(lease_uid_ports(1000), 0);
	ck_assert_int_eq(alloc_pool_free(), 2);
	create("{\"op\":\"lease\",\"count\":2}", 1000, NULL);
}
END_TEST

START_TEST(allowed_owner_and_root)
{
	struct lease *l = create("{\"op\":\"lease\"}", 1000, NULL);

	ck_assert(lease_allowed(l, 1000));
	ck_assert(lease_allowed(l, 0));
	ck_assert(!lease_allowed(l, 1001));
	ck_assert(!lease_allowed(l, 65534));
}
END_TEST

START_TEST(end_returns_ports)
{
	struct lease *l = create(
	    "{\"op\":\"lease\",\"count\":3,\"proto\":\"both\"}", 1000, NULL);
	struct proto_lease v = view(l);
	int free_before = alloc_pool_free();

	for (int i = 0; i < 3; i++) {
		ck_assert_ptr_eq(alloc_owner(v.ports[i]), l);
		ck_assert_int_eq(unit_try_bind(AF_INET, SOCK_STREAM, v.ports[i],
		                     false, false),
		    EADDRINUSE);
	}
	lease_end(l, LEASE_END_RELEASED);
	ck_assert_ptr_null(lease_find(v.id));
	ck_assert_int_eq(lease_count(), 0);
	ck_assert_int_eq(lease_ports_held(), 0);
	ck_assert_int_eq(lease_sockets_held(), 0);
	ck_assert_int_eq(lease_uid_ports(1000), 0);
	ck_assert_int_eq(alloc_pool_free(), free_before + 3);
	ck_assert_int_eq(lease_counters()->ended[LEASE_END_RELEASED], 1);
	for (int i = 0; i < 3; i++) {
		ck_assert_ptr_null(alloc_owner(v.ports[i]));
		ck_assert_int_eq(unit_try_bind(AF_INET, SOCK_STREAM, v.ports[i],
		                     false, false),
		    0);
		ck_assert_int_eq(unit_try_bind(AF_INET, SOCK_DGRAM, v.ports[i],
		                     false, false),
		    0);
	}
	lease_end(NULL, LEASE_END_RELEASED); /* harmless */
}
END_TEST

START_TEST(release_by_port)
{
	struct lease *a = create("{\"op\":\"lease\",\"count\":2}", 1000, NULL);
	struct lease *b = create("{\"op\":\"lease\"}", 1000, NULL);
	struct proto_lease va = view(a), vb = view(b);

	ck_assert_ptr_eq(lease_by_port(va.ports[0]), a);
	ck_assert_ptr_eq(lease_by_port(va.ports[1]), a);
	ck_assert_ptr_eq(lease_by_port(vb.ports[0]), b);
	ck_assert_ptr_null(lease_by_port(HI));
	ck_assert_ptr_null(lease_by_port(80));
	/* Any of a lease's ports ends all of it. */
	lease_end(lease_by_port(va.ports[1]), LEASE_END_RELEASED);
	ck_assert_ptr_null(lease_by_port(va.ports[0]));
	ck_assert_ptr_null(lease_by_port(va.ports[1]));
	ck_assert_ptr_eq(lease_by_port(vb.ports[0]), b);
	ck_assert_int_eq(lease_count(), 1);
}
END_TEST

/* Claim closes the sockets, keeps the ports: nobody else is given them. */
START_TEST(claim_keeps_ports)
{
	struct lease *l, *other;
	struct proto_lease v;
	struct proto_error err;
	const struct held_socket *socks;
	int n;

	teardown();
	setup_range(LO, LO + 1);
	l = create("{\"op\":\"lease\",\"hold\":\"exclusive\"}", 1000, NULL);
	v = view(l);
	ck_assert_int_eq(
	    unit_try_bind(AF_INET, SOCK_STREAM, v.ports[0], false, false),
	    EADDRINUSE);
	ck_assert_int_eq(lease_sockets_held(), 1);

	ck_assert_int_eq(lease_claim(l, &err), 0);
	ck_assert(!view(l).held);
	socks = lease_sockets(l, &n);
	(void)socks;
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(lease_sockets_held(), 0);
	ck_assert_int_eq(lease_ports_held(), 1);
	ck_assert_int_eq(lease_counters()->claimed, 1);
	/* The owner can bind it now, without SO_REUSEADDR. */
	ck_assert_int_eq(
	    unit_try_bind(AF_INET, SOCK_STREAM, v.ports[0], false, true), 0);
	ck_assert_ptr_eq(alloc_owner(v.ports[0]), l);
	/* The pool has one port left, and it is not the claimed one. */
	other = create("{\"op\":\"lease\"}", 1000, NULL);
	ck_assert_int_ne(view(other).ports[0], v.ports[0]);
	create_fails(
	    "{\"op\":\"lease\"}", 1000, PROTO_E_NO_PORTS, "no free port");
	/* Claiming twice changes nothing; ending it frees the port. */
	ck_assert_int_eq(lease_claim(l, &err), 0);
	ck_assert_int_eq(lease_counters()->claimed, 1);
	lease_end(l, LEASE_END_RELEASED);
	ck_assert_ptr_null(alloc_owner(v.ports[0]));
	ck_assert_int_eq(lease_sockets_held(), 1);
	create("{\"op\":\"lease\"}", 1000, NULL);
}
END_TEST

START_TEST(session_ends_with_conn)
{
	struct lease *a1, *a2, *b, *t;
	char id_a1[PROTO_MAX_ID + 1], id_a2[PROTO_MAX_ID + 1];

	a1 = create("{\"op\":\"lease\",\"scope\":\"session\"}", 1000, CONN_A);
	a2 = create("{\"op\":\"lease\",\"scope\":\"session\",\"count\":2}",
	    1000, CONN_A);
	b = create("{\"op\":\"lease\",\"scope\":\"session\"}", 1000, CONN_B);
	/* Only session leases belong to their connection. */
	t = create("{\"op\":\"lease\"}", 1000, CONN_A);
	strcpy(id_a1, view(a1).id);
	strcpy(id_a2, view(a2).id);

	lease_end_conn(CONN_A);
	ck_assert_ptr_null(lease_find(id_a1));
	ck_assert_ptr_null(lease_find(id_a2));
	ck_assert_ptr_eq(lease_find(view(b).id), b);
	ck_assert_ptr_eq(lease_find(view(t).id), t);
	ck_assert_int_eq(lease_count(), 2);
	ck_assert_int_eq(lease_uid_ports(1000), 2);
	ck_assert_int_eq(lease_counters()->ended[LEASE_END_SESSION], 2);
	lease_end_conn(CONN_A); /* nothing left of it */
	ck_assert_int_eq(lease_count(), 2);
	lease_end_conn(CONN_B);
	ck_assert_int_eq(lease_count(), 1);
}
END_TEST

static void
count_cb(struct lease *l, void *arg)
{
	(void)l;
	(*(int *)arg)++;
}

/* lease_foreach may end the lease it is called with. */
static void
end_cb(struct lease *l, void *arg)
{
	(void)arg;
	lease_end(l, LEASE_END_RELEASED);
}

START_TEST(foreach_by_uid)
{
	int n = 0;

	create("{\"op\":\"lease\"}", 1000, NULL);
	create("{\"op\":\"lease\"}", 1000, NULL);
	create("{\"op\":\"lease\"}", 1001, NULL);
	lease_foreach(false, 1000, count_cb, &n);
	ck_assert_int_eq(n, 2);
	n = 0;
	lease_foreach(false, 1002, count_cb, &n);
	ck_assert_int_eq(n, 0);
	n = 0;
	lease_foreach(true, 0, count_cb, &n);
	ck_assert_int_eq(n, 3);
	lease_foreach(false, 1000, end_cb, NULL);
	ck_assert_int_eq(lease_count(), 1);
	ck_assert_int_eq(lease_uid_ports(1000), 0);
}
END_TEST

/* Run the event loop for ms milliseconds. */
static void
run_loop(int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	ck_assert_int_eq(event_base_loopexit(portd_base, &tv), 0);
	ck_assert_int_ne(event_base_dispatch(portd_base), -1);
}

/*
 * A TTL ends the lease through the event loop. A functional check, not a
 * timing one: after 1.2 s of loop a 1 s lease is gone and a 60 s lease
 * is not.
 */
START_TEST(expiry_through_the_loop)
{
	struct lease *l, *keep;
	char id[PROTO_MAX_ID + 1];
	uint16_t port;

	portd_set_clock(portd_clock_real);
	l = create("{\"op\":\"lease\",\"ttl\":1}", 1000, NULL);
	keep = create("{\"op\":\"lease\",\"ttl\":60}", 1000, NULL);
	strcpy(id, view(l).id);
	port = view(l).ports[0];
	run_loop(1200);
	ck_assert_ptr_null(lease_find(id));
	ck_assert_ptr_null(alloc_owner(port));
	ck_assert_int_eq(
	    unit_try_bind(AF_INET, SOCK_STREAM, port, false, false), 0);
	ck_assert_ptr_eq(lease_find(view(keep).id), keep);
	ck_assert_int_eq(lease_counters()->ended[LEASE_END_EXPIRED], 1);
	ck_assert_int_eq(lease_uid_ports(1000), 1);
}
END_TEST

/*
 * The timer and the clock disagree (the wall clock stepped back): the
 * lease lives until the clock says it expired, then ends.
 */
START_TEST(expiry_waits_for_the_clock)
{
	struct lease *l = create("{\"op\":\"lease\",\"ttl\":1}", 1000, NULL);
	char id[PROTO_MAX_ID + 1];

	strcpy(id, view(l).id);
	run_loop(1200); /* the timer fires; the frozen clock says not yet */
	ck_assert_ptr_eq(lease_find(id), l);
	ck_assert_int_eq(lease_counters()->ended[LEASE_END_EXPIRED], 0);
	fake_now = T0 + 1000;
	run_loop(1200); /* the timer it set again fires */
	ck_assert_ptr_null(lease_find(id));
	ck_assert_int_eq(lease_counters()->ended[LEASE_END_EXPIRED], 1);
}
END_TEST

/* A renew pushes the timer out: a 1 s lease renewed for 60 s lives on. */
START_TEST(renew_pushes_the_timer)
{
	struct lease *l;
	struct proto_error err;
	char id[PROTO_MAX_ID + 1];

	portd_set_clock(portd_clock_real);
	l = create("{\"op\":\"lease\",\"ttl\":1}", 1000, NULL);
	strcpy(id, view(l).id);
	ck_assert_int_eq(lease_renew(l, true, 60, &err), 0);
	run_loop(1200);
	ck_assert_ptr_eq(lease_find(id), l);
	ck_assert_int_eq(lease_counters()->ended[LEASE_END_EXPIRED], 0);
}
END_TEST

/* CRC-32 a bit at a time, as its definition gives it. */
static uint32_t
crc32_bitwise(const unsigned char *p, size_t len)
{
	uint32_t c = 0xffffffffu;

	while (len-- > 0) {
		c ^= *p++;
		for (int j = 0; j < 8; j++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	return c ^ 0xffffffffu;
}

/* The journal's checksum is zlib's CRC-32 (the check value of
 * "123456789"), for every length and alignment its steps meet. */
START_TEST(journal_crc32_is_zlibs)
{
	unsigned char buf[80];

	ck_assert_uint_eq(jrecord_crc32("123456789", 9), 0xcbf43926u);
	ck_assert_uint_eq(jrecord_crc32("", 0), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 37 + 11);
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len + off <= sizeof(buf); len++)
			ck_assert_msg(jrecord_crc32(buf + off, len) ==
			                  crc32_bitwise(buf + off, len),
			    "offset %zu length %zu", off, len);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("lease");
	TCase *tc;

	tc = tcase_create("table");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, times_come_from_the_clock);
	tcase_add_test(tc, view_reports_the_lease);
	tcase_add_test(tc, renew_rearms);
	tcase_add_test(tc, max_ttl_boundary);
	tcase_add_test(tc, quota_boundary);
	tcase_add_test(tc, max_leases_boundary);
	tcase_add_test(tc, failed_create_takes_nothing);
	tcase_add_test(tc, allowed_owner_and_root);
	tcase_add_test(tc, end_returns_ports);
	tcase_add_test(tc, release_by_port);
	tcase_add_test(tc, claim_keeps_ports);
	tcase_add_test(tc, session_ends_with_conn);
	tcase_add_test(tc, foreach_by_uid);
	suite_add_tcase(s, tc);

	tc = tcase_create("journal");
	tcase_add_test(tc, journal_crc32_is_zlibs);
	suite_add_tcase(s, tc);

	tc = tcase_create("timers");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, expiry_through_the_loop);
	tcase_add_test(tc, expiry_waits_for_the_clock);
	tcase_add_test(tc, renew_pushes_the_timer);
	suite_add_tcase(s, tc);

	return unit_run(s);
}
