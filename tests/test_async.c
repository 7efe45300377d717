/*
 * libportd's event-loop interface driven from a real libevent loop against
 * a real portd: 100 concurrent lease requests on one connection, sockets
 * handed over in a pipeline, refusals, a daemon that dies, frees from
 * inside callbacks; the libevent example program; and the one-call forms
 * portd_pick_port_proto, portd_pick_sockets and portd_return_port.
 * Pool ports: 30700-30899.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <event2/event.h>

#include "harness.h"
#include "portd.h"

#define POOL_ARGS "--pool", "30700-30899"
#define NLEASES   100

static const char *const pool_args[] = {POOL_ARGS, NULL};
static struct daemon_proc d_ops;

/* A libevent loop around one async context. */
struct loop {
	struct event_base *base;
	struct event *rev, *wev, *timeout;
	struct portd_async *pa;
	int process_rc;
	bool done;
};

static void
watch(struct portd_async *pa, int events, void *arg)
{
	struct loop *lp = arg;

	(void)pa;
	if (events & PORTD_ASYNC_WRITE)
		event_add(lp->wev, NULL);
	else
		event_del(lp->wev);
	if (events == 0)
		event_del(lp->rev);
}

static void
io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct loop *lp = arg;
	int rc;

	(void)fd;
	rc = portd_async_process(
	    lp->pa, (what & EV_READ ? PORTD_ASYNC_READ : 0) |
	                (what & EV_WRITE ? PORTD_ASYNC_WRITE : 0));
	if (rc < 0) {
		lp->process_rc = rc;
		event_base_loopbreak(lp->base);
	}
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	ck_abort_msg("the loop did not finish in time");
}

static void
loop_open(struct loop *lp, const char *sock)
{
	const struct portd_options opts = {.socket = sock};
	struct timeval tv = {5, 0};

	memset(lp, 0, sizeof(*lp));
	ck_assert_int_eq(portd_async_connect(&opts, &lp->pa), 0);
	lp->base = event_base_new();
	ck_assert_ptr_nonnull(lp->base);
	lp->rev = event_new(
	    lp->base, portd_async_fd(lp->pa), EV_READ | EV_PERSIST, io_cb, lp);
	lp->wev = event_new(
	    lp->base, portd_async_fd(lp->pa), EV_WRITE | EV_PERSIST, io_cb, lp);
	lp->timeout = evtimer_new(lp->base, timeout_cb, lp);
	portd_async_set_watch(lp->pa, watch, lp);
	event_add(lp->rev, NULL);
	evtimer_add(lp->timeout, &tv);
}

/* Run until a callback says done (or process fails). */
static void
loop_run(struct loop *lp)
{
	lp->done = false;
	if (portd_async_events(lp->pa) & PORTD_ASYNC_WRITE)
		event_add(lp->wev, NULL);
	while (!lp->done && lp->process_rc == 0)
		event_base_loop(lp->base, EVLOOP_ONCE);
}

static void
loop_close(struct loop *lp)
{
	portd_async_free(lp->pa);
	event_free(lp->rev);
	event_free(lp->wev);
	event_free(lp->timeout);
	event_base_free(lp->base);
}

static int64_t
sock_status_int(const char *sock, const char *key)
{
	int fd = harness_connect(sock);
	int64_t v = status_int(fd, key);

	close(fd);
	return v;
}

struct many {
	struct loop *lp;
	int next; /* the index the next callback must have */
	int answered, released;
	uint16_t ports[NLEASES];
	char ids[NLEASES][PORTD_MAX_ID + 1];
};

struct slot {
	struct many *m;
	int i;
};

static void
released_cb(struct portd_async *pa, struct portd_async_reply *r, void *arg)
{
	struct many *m = arg;

	(void)pa;
	ck_assert_msg(r->err == 0, "release: %s", r->errmsg);
	ck_assert_int_eq(r->released, 1);
	ck_assert_ptr_null(r->lease);
	if (++m->released == NLEASES)
		m->lp->done = true;
}

static void
leased_cb(struct portd_async *pa, struct portd_async_reply *r, void *arg)
{
	struct slot *s = arg;
	struct many *m = s->m;

	(void)pa;
	ck_assert_msg(r->err == 0, "lease %d: %s", s->i, r->errmsg);
	ck_assert_str_eq(r->errmsg, "");
	/* Replies come in request order. */
	ck_assert_int_eq(s->i, m->next);
	m->next++;
	ck_assert_int_eq(r->lease->nports, 1);
	ck_assert_int_eq(r->lease->scope, PORTD_SCOPE_SESSION);
	ck_assert_int_eq(r->lease->nsockets, 0);
	m->ports[s->i] = r->lease->ports[0];
	memcpy(m->ids[s->i], r->lease->id, sizeof(m->ids[0]));
	portd_lease_free(r->lease);
	if (++m->answered == NLEASES)
		m->lp->done = true;
}

START_TEST(hundred_concurrent_leases)
{
	const struct portd_lease_request req = {.scope = PORTD_SCOPE_SESSION};
	struct daemon_proc d;
	struct loop lp;
	struct many *m = calloc(1, sizeof(*m));
	struct slot slots[NLEASES];

	ck_assert_ptr_nonnull(m);
	harness_start(&d, pool_args);
	loop_open(&lp, d.sock);
	m->lp = &lp;
	/* All submitted before the loop runs: nothing is sent yet. */
	for (int i = 0; i < NLEASES; i++) {
		slots[i] = (struct slot){m, i};
		ck_assert_int_eq(
		    portd_async_lease(lp.pa, &req, leased_cb, &slots[i]), 0);
	}
	ck_assert_uint_eq(portd_async_pending(lp.pa), NLEASES);
	ck_assert_int_eq(
	    portd_async_events(lp.pa), PORTD_ASYNC_READ | PORTD_ASYNC_WRITE);
	ck_assert_int_eq(m->answered, 0);
	loop_run(&lp);
	ck_assert_int_eq(lp.process_rc, 0);
	ck_assert_int_eq(m->answered, NLEASES);
	ck_assert_uint_eq(portd_async_pending(lp.pa), 0);
	ck_assert_int_eq(portd_async_events(lp.pa), PORTD_ASYNC_READ);
	for (int i = 0; i < NLEASES; i++)
		for (int j = i + 1; j < NLEASES; j++)
			ck_assert_int_ne(m->ports[i], m->ports[j]);
	/* The daemon holds all of them, for this one connection. */
	ck_assert_int_eq(sock_status_int(d.sock, "leases"), NLEASES);
	ck_assert_int_eq(sock_status_int(d.sock, "connections"), 2);
	for (int i = 0; i < NLEASES; i++) {
		ck_assert_int_eq(
		    try_bind(AF_INET6, SOCK_STREAM, m->ports[i], false),
		    EADDRINUSE);
		ck_assert_int_eq(
		    portd_async_release(lp.pa, m->ids[i], released_cb, m), 0);
	}
	loop_run(&lp);
	ck_assert_int_eq(m->released, NLEASES);
	ck_assert_int_eq(sock_status_int(d.sock, "leases"), 0);
	loop_close(&lp);
	free(m);
	harness_stop(&d);
}
END_TEST

struct fdrun {
	struct loop *lp;
	int answered;
};

static void
fd_cb(struct portd_async *pa, struct portd_async_reply *r, void *arg)
{
	struct fdrun *f = arg;
	struct sockaddr_in6 sa;
	socklen_t len = sizeof(sa);
	int type;

	(void)pa;
	ck_assert_msg(r->err == 0, "%s", r->errmsg);
	if (f->answered % 2 == 0) {
		/* fd: true: one TCP and one UDP socket, bound to the port. */
		ck_assert_int_eq(r->lease->nsockets, 2);
		for (size_t i = 0; i < 2; i++) {
			int fd = r->lease->sockets[i].fd;
			len = sizeof(sa);
			ck_assert_int_eq(
			    getsockname(fd, (struct sockaddr *)&sa, &len), 0);
			ck_assert_int_eq(
			    ntohs(sa.sin6_port), r->lease->ports[0]);
			len = sizeof(type);
			ck_assert_int_eq(
			    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len),
			    0);
			ck_assert_int_eq(
			    type, r->lease->sockets[i].proto == PORTD_PROTO_TCP
			              ? SOCK_STREAM
			              : SOCK_DGRAM);
		}
	} else
		ck_assert_int_eq(r->lease->nsockets, 0);
	portd_lease_free(r->lease);
	if (++f->answered == 10)
		f->lp->done = true;
}

/* Sockets come with the right replies when fd and plain leases are
 * pipelined together. */
START_TEST(fd_handoff_pipelined)
{
	const struct portd_lease_request with_fd = {
	    .proto = PORTD_PROTO_BOTH, .fd = true};
	const struct portd_lease_request plain = {.proto = PORTD_PROTO_BOTH};
	struct daemon_proc d;
	struct fdrun f = {0};
	struct loop lp;

	harness_start(&d, pool_args);
	loop_open(&lp, d.sock);
	f.lp = &lp;
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(portd_async_lease(lp.pa,
		                     i % 2 == 0 ? &with_fd : &plain, fd_cb, &f),
		    0);
	loop_run(&lp);
	ck_assert_int_eq(f.answered, 10);
	loop_close(&lp);
	harness_stop(&d);
}
END_TEST

static void
glued_cb(struct portd_async *pa, struct portd_async_reply *r, void *arg)
{
	int *n = arg;

	(void)pa;
	ck_assert_msg(r->err == 0, "%s", r->errmsg);
	ck_assert_int_eq(r->lease->nsockets, *n == 0 ? 0 : 2);
	portd_lease_free(r->lease);
	(*n)++;
}

/*
 * The kernel glues a reply without fds before one with fds into one read
 * (it only stops after the chunk that carries them): the fds belong to
 * the second line, not to the start of the read. Both replies wait in the
 * socket before the one read that takes them.
 */
START_TEST(regression_fds_glued_after_plain_reply)
{
	const struct portd_lease_request with_fd = {
	    .proto = PORTD_PROTO_BOTH, .fd = true};
	struct daemon_proc d;
	struct portd_async *pa;
	int n = 0;

	harness_start(&d, pool_args);
	ck_assert_int_eq(
	    portd_async_connect(&(struct portd_options){.socket = d.sock}, &pa),
	    0);
	ck_assert_int_eq(portd_async_lease(pa, NULL, glued_cb, &n), 0);
	ck_assert_int_eq(portd_async_lease(pa, &with_fd, glued_cb, &n), 0);
	ck_assert_int_eq(portd_async_process(pa, PORTD_ASYNC_WRITE), 0);
	ck_assert_int_eq(n, 0);
	/* Both answers are in the socket when the status answer is. */
	ck_assert_int_eq(sock_status_int(d.sock, "leases"), 2);
	usleep(50000);
	ck_assert_int_eq(portd_async_process(pa, PORTD_ASYNC_READ), 0);
	ck_assert_int_eq(n, 2);
	portd_async_free(pa);
	harness_stop(&d);
}
END_TEST

struct errs {
	struct loop *lp;
	int n;
};

static void
refused_cb(struct portd_async *pa, struct portd_async_reply *r, void *arg)
{
	struct errs *e = arg;

	(void)pa;
	ck_assert_ptr_null(r->lease);
	switch (e->n++) {
	case 0:
		ck_assert_int_eq(r->err, PORTD_E_NOT_FOUND);
		ck_assert_str_eq(r->errmsg, "no lease 'Lnosuchlease'");
		break;
	case 1:
		ck_assert_int_eq(r->err, PORTD_E_NOT_FOUND);
		ck_assert_str_eq(r->errmsg, "no lease holds port 30899");
		break;
	case 2:
		ck_assert_int_eq(r->err, PORTD_E_PORT_UNAVAILABLE);
		ck_assert_ptr_nonnull(strstr(r->errmsg, "30700"));
		e->lp->done = true;
		break;
	}
}

static void
hold_cb(struct portd_async *pa, struct portd_async_reply *r, void *arg)
{
	(void)pa;
	(void)arg;
	ck_assert_int_eq(r->err, 0);
	portd_lease_free(r->lease);
}

START_TEST(refusals_reach_their_callbacks)
{
	const struct portd_lease_request p0 = {.port = 30700};
	struct daemon_proc d;
	struct errs e = {0};
	struct loop lp;

	harness_start(&d, pool_args);
	loop_open(&lp, d.sock);
	e.lp = &lp;
	/* Bad arguments are refused at once, with nothing queued. */
	ck_assert_int_eq(portd_async_renew(lp.pa, "not an id", 0, NULL, NULL),
	    PORTD_E_INVALID);
	ck_assert_str_eq(portd_async_errmsg(lp.pa), "invalid lease id");
	ck_assert_int_eq(
	    portd_async_release_port(lp.pa, 0, NULL, NULL), PORTD_E_INVALID);
	ck_assert_uint_eq(portd_async_pending(lp.pa), 0);

	ck_assert_int_eq(
	    portd_async_renew(lp.pa, "Lnosuchlease", 60, refused_cb, &e), 0);
	ck_assert_int_eq(
	    portd_async_release_port(lp.pa, 30899, refused_cb, &e), 0);
	ck_assert_int_eq(portd_async_lease(lp.pa, &p0, hold_cb, NULL), 0);
	ck_assert_int_eq(portd_async_lease(lp.pa, &p0, refused_cb, &e), 0);
	loop_run(&lp);
	ck_assert_int_eq(e.n, 3);
	loop_close(&lp);
	harness_stop(&d);
}
END_TEST

static void
lost_cb(struct portd_async *pa, struct portd_async_reply *r, void *arg)
{
	int *n = arg;

	(void)pa;
	ck_assert_int_eq(r->err, PORTD_E_IO);
	ck_assert_ptr_null(r->lease);
	ck_assert_str_ne(r->errmsg, "");
	(*n)++;
}

/* The daemon dies with requests in flight: each callback hears it once,
 * the context says so, later requests are refused. */
START_TEST(daemon_dies_midway)
{
	struct daemon_proc d;
	struct loop lp;
	int n = 0, st;

	harness_start(&d, pool_args);
	loop_open(&lp, d.sock);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(
		    portd_async_lease(lp.pa, NULL, lost_cb, &n), 0);
	st = harness_kill(&d, SIGKILL);
	ck_assert(WIFSIGNALED(st));
	loop_run(&lp);
	ck_assert_int_eq(n, 3);
	ck_assert_int_lt(lp.process_rc, 0);
	ck_assert_int_eq(portd_async_fd(lp.pa), -1);
	ck_assert_int_eq(portd_async_events(lp.pa), 0);
	ck_assert_uint_eq(portd_async_pending(lp.pa), 0);
	ck_assert_int_eq(
	    portd_async_lease(lp.pa, NULL, lost_cb, &n), PORTD_E_IO);
	ck_assert_int_eq(
	    portd_async_process(lp.pa, PORTD_ASYNC_READ), PORTD_E_IO);
	ck_assert_int_eq(n, 3);
	loop_close(&lp);
	harness_stop(&d);
}
END_TEST

struct freer {
	struct loop *lp;
	int calls, lost;
};

static void
free_cb(struct portd_async *pa, struct portd_async_reply *r, void *arg)
{
	struct freer *f = arg;

	if (f->calls++ == 0) {
		ck_assert_int_eq(r->err, 0);
		portd_lease_free(r->lease);
		event_del(f->lp->rev);
		event_del(f->lp->wev);
		/* Taking effect once this callback returns. */
		portd_async_free(pa);
		f->lp->pa = NULL;
		f->lp->done = true;
		return;
	}
	ck_assert_int_eq(r->err, PORTD_E_IO);
	ck_assert_str_eq(r->errmsg, "closed before the reply came");
	f->lost++;
}

/* A callback frees its own context: the rest hear PORTD_E_IO; nothing
 * is touched after the free (ASan would say). */
START_TEST(free_from_callback)
{
	struct daemon_proc d;
	struct freer f = {0};
	struct loop lp;

	harness_start(&d, pool_args);
	loop_open(&lp, d.sock);
	f.lp = &lp;
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(
		    portd_async_lease(lp.pa, NULL, free_cb, &f), 0);
	/* The watch must not run on the freed context. */
	portd_async_set_watch(lp.pa, NULL, NULL);
	loop_run(&lp);
	ck_assert_int_eq(f.calls, 5);
	ck_assert_int_eq(f.lost, 4);
	/* Freeing with requests pending tells them too. */
	f.calls = 1;
	f.lost = 0;
	ck_assert_int_eq(portd_async_connect(
	                     &(struct portd_options){.socket = d.sock}, &lp.pa),
	    0);
	ck_assert_int_eq(portd_async_lease(lp.pa, NULL, free_cb, &f), 0);
	portd_async_free(lp.pa);
	ck_assert_int_eq(f.lost, 1);
	portd_async_free(NULL);
	event_free(lp.rev);
	event_free(lp.wev);
	event_free(lp.timeout);
	event_base_free(lp.base);
	harness_stop(&d);
}
END_TEST

/* The example program in the tree, run as a user would. */
START_TEST(libevent_example)
{
	struct daemon_proc d;
	char cmd[512], line[64];
	int ports[20], n = 0, st;
	FILE *p;

	harness_start(&d, pool_args);
	snprintf(cmd, sizeof(cmd), "PORTD_SOCKET=%s %s/libevent_lease 20",
	    d.sock, LIBEVENT_LEASE_DIR);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	while (fgets(line, sizeof(line), p) != NULL && n < 20)
		ports[n++] = atoi(line);
	st = pclose(p);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(n, 20);
	for (int i = 0; i < n; i++) {
		ck_assert(ports[i] >= 30700 && ports[i] <= 30899);
		for (int j = i + 1; j < n; j++)
			ck_assert_int_ne(ports[i], ports[j]);
	}
	/* It gave them back. */
	ck_assert_int_eq(sock_status_int(d.sock, "leases"), 0);
	snprintf(cmd, sizeof(cmd), "PORTD_SOCKET=%s %s/libevent_lease 0 2>&1",
	    d.sock, LIBEVENT_LEASE_DIR);
	ck_assert_int_eq(WEXITSTATUS(system(cmd)), 2);
	harness_stop(&d);
}
END_TEST

/* portd_pick_port_proto: UDP and both are claimed, so a plain bind works
 * while the port stays reserved; portd_return_port gives it back. */
START_TEST(pick_udp_and_return)
{
	struct daemon_proc d;
	int udp, both, tcp;

	harness_start(&d, pool_args);
	setenv("PORTD_SOCKET", d.sock, 1);
	ck_assert_int_eq(portd_pick_port_proto(0), PORTD_E_INVALID);
	ck_assert_int_eq(portd_pick_port_proto(7), PORTD_E_INVALID);
	udp = portd_pick_port_proto(PORTD_PROTO_UDP);
	ck_assert_int_gt(udp, 0);
	ck_assert_int_eq(try_bind(AF_INET6, SOCK_DGRAM, udp, false), 0);
	both = portd_pick_port_proto(PORTD_PROTO_BOTH);
	ck_assert_int_gt(both, 0);
	ck_assert_int_eq(try_bind(AF_INET6, SOCK_DGRAM, both, false), 0);
	ck_assert_int_eq(try_bind(AF_INET6, SOCK_STREAM, both, false), 0);
	tcp = portd_pick_port_proto(PORTD_PROTO_TCP);
	ck_assert_int_gt(tcp, 0);
	/* Held shared: only a SO_REUSEADDR bind gets it. */
	ck_assert_int_eq(
	    try_bind(AF_INET6, SOCK_STREAM, tcp, false), EADDRINUSE);
	ck_assert_int_eq(sock_status_int(d.sock, "leases"), 3);

	ck_assert_int_eq(portd_return_port((uint16_t)udp), 0);
	ck_assert_int_eq(portd_return_port((uint16_t)tcp), 0);
	ck_assert_int_eq(try_bind(AF_INET6, SOCK_STREAM, tcp, false), 0);
	ck_assert_int_eq(sock_status_int(d.sock, "leases"), 1);
	ck_assert_int_eq(portd_return_port((uint16_t)udp), PORTD_E_NOT_FOUND);
	ck_assert_int_eq(portd_return_port(0), PORTD_E_INVALID);
	ck_assert_int_eq(portd_return_port((uint16_t)both), 0);
	ck_assert_int_eq(sock_status_int(d.sock, "leases"), 0);
	harness_stop(&d);
}
END_TEST

static void
assert_socket(int fd, int type, int port)
{
	struct sockaddr_in6 sa;
	socklen_t len = sizeof(sa);
	int t;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	ck_assert_int_eq(ntohs(sa.sin6_port), port);
	len = sizeof(t);
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &len), 0);
	ck_assert_int_eq(t, type);
}

START_TEST(pick_sockets)
{
	struct daemon_proc d;
	int tcp = -2, udp = -2, port;

	harness_start(&d, pool_args);
	setenv("PORTD_SOCKET", d.sock, 1);
	ck_assert_int_eq(
	    portd_pick_sockets(PORTD_PROTO_TCP, NULL, &udp), PORTD_E_INVALID);
	ck_assert_int_eq(portd_pick_sockets(0, &tcp, &udp), PORTD_E_INVALID);
	ck_assert_int_eq(tcp, -2);

	port = portd_pick_sockets(PORTD_PROTO_BOTH, &tcp, &udp);
	ck_assert_int_gt(port, 0);
	assert_socket(tcp, SOCK_STREAM, port);
	assert_socket(udp, SOCK_DGRAM, port);
	ck_assert_int_eq(listen(tcp, 8), 0);
	close(tcp);
	close(udp);

	port = portd_pick_sockets(PORTD_PROTO_UDP, NULL, &udp);
	ck_assert_int_gt(port, 0);
	assert_socket(udp, SOCK_DGRAM, port);
	close(udp);
	port = portd_pick_sockets(PORTD_PROTO_TCP, &tcp, &udp);
	ck_assert_int_gt(port, 0);
	assert_socket(tcp, SOCK_STREAM, port);
	ck_assert_int_eq(udp, -1);
	close(tcp);
	ck_assert_int_eq(sock_status_int(d.sock, "leases"), 3);
	harness_stop(&d);
}
END_TEST

/* portd_status's settings, portd_metrics and portd_stop. */
START_TEST(status_metrics_stop)
{
	const struct portd_options o = {.socket = NULL};
	struct portd_status *st;
	struct portd *h;
	int64_t kept = -1;
	char *text;
	bool quota = false;
	int pid, status;

	harness_start(
	    &d_ops, (const char *[]){POOL_ARGS, "--quota", "33", NULL});
	setenv("PORTD_SOCKET", d_ops.sock, 1);
	ck_assert_int_eq(portd_connect(&o, &h), 0);
	ck_assert_int_eq(portd_status(h, &st), 0);
	for (size_t i = 0; i < st->nsettings; i++)
		if (strcmp(st->settings[i].name, "quota") == 0) {
			ck_assert_str_eq(st->settings[i].value, "33");
			quota = true;
		}
	ck_assert(quota);
	portd_status_free(st);
	ck_assert_int_eq(portd_metrics(h, &text), 0);
	ck_assert_ptr_nonnull(strstr(text, "\nportd_quota_ports 33\n"));
	free(text);
	ck_assert_int_eq(portd_pick_port_proto(PORTD_PROTO_TCP) > 0, 1);
	pid = portd_stop(h, &kept);
	ck_assert_int_eq(pid, d_ops.pid);
	ck_assert_int_eq(kept, 1);
	ck_assert_int_eq(portd_metrics(h, &text), PORTD_E_IO);
	portd_close(h);
	status = harness_wait_exit(d_ops.pid, 3000);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	harness_restart(&d_ops, pool_args);
	/* A reply means the loop runs, and with it the SIGTERM handler. */
	ck_assert_int_eq(sock_status_int(d_ops.sock, "leases"), 1);
	harness_stop(&d_ops);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("async");
	TCase *tc = tcase_create("async");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, hundred_concurrent_leases);
	tcase_add_test(tc, fd_handoff_pipelined);
	tcase_add_test(tc, regression_fds_glued_after_plain_reply);
	tcase_add_test(tc, refusals_reach_their_callbacks);
	tcase_add_test(tc, daemon_dies_midway);
	tcase_add_test(tc, free_from_callback);
	tcase_add_test(tc, libevent_example);
	suite_add_tcase(s, tc);
	tc = tcase_create("pick");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, pick_udp_and_return);
	tcase_add_test(tc, pick_sockets);
	tcase_add_test(tc, status_metrics_stop);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
