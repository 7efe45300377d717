/*
 * The port pool and the kernel sockets that hold ports.
 *
 * Free pool ports wait in a FIFO queue, so picking one costs the same with
 * 10 or 9,000 ports leased: pop the head, bind it, done. The queue holds
 * only free ports: one taken any other way (by number, in a contiguous
 * run, restored) leaves it at once, wherever it is. A port found busy
 * (another program holds it) goes to the back and is tried again later.
 * Released ports go to the back too, so a port is reused as late as
 * possible.
 *
 * Every socket is bound without SO_REUSEADDR first, so a port held in any
 * way by anybody (even another portd's shared hold) counts as busy; a
 * shared hold sets SO_REUSEADDR after the bind, which the kernel honours
 * for later binders.
 *
 * Host-wide, every leased port also has a marker: an abstract Unix socket
 * named "portd/port/<proto>/<port>/<3 characters>" (proto_marker_name in
 * proto/shared.h), bound (never listening) for as long as
 * the lease lives, held or claimed. Abstract names belong to the network
 * namespace, as ports do, and the kernel frees them with the process, so
 * every portd in a namespace refuses the ports another one leased, and a
 * crashed portd's claims vanish with it (docs/architecture.md, "One
 * host").
 */
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "fault.h"
#include "shared.h"

#define ST_RESERVED 0x01 /* in ip_local_reserved_ports: never from the pool */
#define ST_QUEUED   0x02 /* in the free queue */

/* Binds tried for one pick before the pool counts as exhausted. */
#define PICK_TRIES      128
#define EPHEMERAL_TRIES 32

static uint8_t state[65536];
static struct lease *owners[65536];
static uint16_t pool_lo, pool_hi;
static int pool_free;     /* pool ports neither owned nor reserved */
static int contig_cursor; /* where the next contiguous search starts */
static bool have_ipv6;
static struct alloc_stats stats;

/*
 * The queue is a list threaded through two arrays indexed by port, so a
 * port leaves it in constant time from anywhere. Port 0 is never in a
 * pool: it ends the list.
 */
static uint16_t q_next[65536], q_prev[65536];
static uint16_t q_head, q_tail;

/* Marker sockets by protocol (0 TCP, 1 UDP) and port; -1: none. */
static int marks[2][65536];

static void unmark(uint16_t);

static bool
in_pool(uint16_t p)
{
	return p >= pool_lo && p <= pool_hi;
}

static void
fifo_push(uint16_t p)
{
	if (p == 0 || (state[p] & (ST_QUEUED | ST_RESERVED)) || !in_pool(p))
		return;
	q_next[p] = 0;
	q_prev[p] = q_tail;
	if (q_tail != 0)
		q_next[q_tail] = p;
	else
		q_head = p;
	q_tail = p;
	state[p] |= ST_QUEUED;
}

static void
fifo_remove(uint16_t p)
{
	if (!(state[p] & ST_QUEUED))
		return;
	if (q_prev[p] != 0)
		q_next[q_prev[p]] = q_next[p];
	else
		q_head = q_next[p];
	if (q_next[p] != 0)
		q_prev[q_next[p]] = q_prev[p];
	else
		q_tail = q_prev[p];
	state[p] &= ~ST_QUEUED;
}

static int
fifo_pop(void)
{
	uint16_t p = q_head;

	if (p == 0)
		return -1;
	fifo_remove(p);
	return p;
}

/* Mark the ports of /proc/sys/net/ipv4/ip_local_reserved_ports. */
static void
read_reserved(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_reserved_ports", "re");
	char buf[8192], *tok, *save = NULL;

	if (f == NULL)
		return;
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	for (tok = strtok_r(buf, ",\n", &save); tok != NULL;
	     tok = strtok_r(NULL, ",\n", &save)) {
		unsigned long lo, hi;
		char *end;

		lo = strtoul(tok, &end, 10);
		hi = lo;
		if (*end == '-')
			hi = strtoul(end + 1, &end, 10);
		for (unsigned long p = lo; p <= hi && p < 65536; p++)
			state[p] |= ST_RESERVED;
	}
}

static bool
sysctl_is_one(const char *path)
{
	char buf[8] = "";
	FILE *f = fopen(path, "re");
	bool one;

	if (f == NULL)
		return false;
	one = fgets(buf, sizeof(buf), f) != NULL && buf[0] == '1';
	fclose(f);
	return one;
}

static bool
probe_ipv6(void)
{
	struct sockaddr_in6 sin6 = {
	    .sin6_family = AF_INET6, .sin6_addr = in6addr_any};
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd == -1)
		return false;
	ok = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
	close(fd);
	/* With disable_ipv6 the wildcard still binds (and holds IPv4
	 * through V6ONLY off), but no IPv6 address works: ask the sysctl,
	 * which is per network namespace. */
	return ok &&
	       !sysctl_is_one("/proc/sys/net/ipv6/conf/all/disable_ipv6") &&
	       !sysctl_is_one("/proc/sys/net/ipv6/conf/lo/disable_ipv6");
}

bool
alloc_reprobe_ipv6(void)
{
	bool was = have_ipv6;

	have_ipv6 = probe_ipv6();
	if (have_ipv6 != was)
		log_notice("IPv6 is %s now: new dual leases hold %s",
		    have_ipv6 ? "available" : "disabled",
		    have_ipv6 ? "IPv4 and IPv6" : "IPv4 only");
	return have_ipv6;
}

int
alloc_init(uint16_t lo, uint16_t hi)
{
	memset(state, 0, sizeof(state));
	memset(owners, 0, sizeof(owners));
	memset(&stats, 0, sizeof(stats));
	for (int k = 0; k < 2; k++)
		for (int p = 0; p < 65536; p++)
			marks[k][p] = -1;
	pool_lo = lo;
	pool_hi = hi;
	read_reserved();
	q_head = q_tail = 0;
	pool_free = 0;
	for (unsigned p = lo; p <= hi; p++) {
		if (state[p] & ST_RESERVED)
			continue;
		fifo_push((uint16_t)p);
		pool_free++;
	}
	contig_cursor = lo;
	have_ipv6 = probe_ipv6();
	if (!have_ipv6)
		log_notice("IPv6 is not available (or disable_ipv6 is set): "
		           "dual leases hold IPv4 only, ipv6 leases are "
		           "refused");
	return 0;
}

int
alloc_set_pool(uint16_t lo, uint16_t hi)
{
	/* Leased ports stay leased wherever they are; the queue is rebuilt
	 * from the new range's free ports. */
	while (fifo_pop() != -1)
		;
	pool_lo = lo;
	pool_hi = hi;
	pool_free = 0;
	for (unsigned p = lo; p <= hi; p++) {
		if (state[p] & ST_RESERVED)
			continue;
		if (owners[p] == NULL) {
			fifo_push((uint16_t)p);
			pool_free++;
		}
	}
	contig_cursor = lo;
	return 0;
}

void
alloc_shutdown(void)
{
	q_head = q_tail = 0;
	for (int p = 0; p < 65536; p++)
		unmark((uint16_t)p);
}

bool
alloc_ipv6(void)
{
	return have_ipv6;
}

uint16_t
alloc_pool_lo(void)
{
	return pool_lo;
}

uint16_t
alloc_pool_hi(void)
{
	return pool_hi;
}

int
alloc_pool_size(void)
{
	return (int)pool_hi - pool_lo + 1;
}

int
alloc_pool_free(void)
{
	return pool_free;
}

const struct alloc_stats *
alloc_stats(void)
{
	return &stats;
}

struct lease *
alloc_owner(uint16_t port)
{
	return owners[port];
}

void
alloc_close_sockets(struct held_socket *socks, int n)
{
	for (int i = 0; i < n; i++) {
		if (socks[i].fd != -1)
			close(socks[i].fd);
		socks[i].fd = -1;
	}
}

int
alloc_marker_name(enum proto_proto proto, uint16_t port, char *buf, size_t len)
{
	return proto_marker_name(proto == PROTO_UDP, port, buf, len);
}

/* Bind the marker of one protocol's port; 0 or an errno value
 * (EADDRINUSE: another portd, or someone squatting the name, has it). */
static int
mark_one(int k, uint16_t port)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	socklen_t len;
	int fd, n, e;

	if (marks[k][port] != -1)
		return 0;
	/* sun_path[0] stays NUL: the abstract namespace. */
	n = alloc_marker_name(k == 0 ? PROTO_TCP : PROTO_UDP, port,
	    sun.sun_path + 1, sizeof(sun.sun_path) - 1);
	len =
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	/* A stream socket that never listens: the name is taken, and a
	 * connect to it is refused, so nobody can queue anything on it. */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return errno;
	if (bind(fd, (struct sockaddr *)&sun, len) == -1) {
		e = errno;
		close(fd);
		return e;
	}
	marks[k][port] = fd;
	return 0;
}

static void
unmark(uint16_t port)
{
	for (int k = 0; k < 2; k++) {
		if (marks[k][port] != -1)
			close(marks[k][port]);
		marks[k][port] = -1;
	}
}

/* Mark port for proto (TCP, UDP or both); 0 or an errno value, with
 * nothing left marked on failure. */
static int
mark(uint16_t port, enum proto_proto proto)
{
	for (int k = 0; k < 2; k++) {
		int e;

		if (!(proto & (k == 0 ? PROTO_TCP : PROTO_UDP)))
			continue;
		if ((e = mark_one(k, port)) != 0) {
			unmark(port);
			return e;
		}
	}
	return 0;
}

bool
alloc_marked(uint16_t port, enum proto_proto proto)
{
	for (int k = 0; k < 2; k++)
		if ((proto & (k == 0 ? PROTO_TCP : PROTO_UDP)) &&
		    marks[k][port] == -1)
			return false;
	return true;
}

static int
mark_error(int e, uint16_t port, struct proto_error *err)
{
	if (e == EADDRINUSE)
		proto_error_set(err, PROTO_E_PORT_UNAVAILABLE,
		    "port %u is leased by another portd on this host", port);
	else if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
		proto_error_set(err, PROTO_E_RESOURCE_EXHAUSTED,
		    "portd is out of descriptors or memory: %s", strerror(e));
	else
		proto_error_set(err, PROTO_E_INTERNAL,
		    "cannot mark port %u: %s", port, strerror(e));
	return e;
}

int
alloc_mark_host(const uint16_t *ports, int n, enum proto_proto proto,
    struct proto_error *err)
{
	int rc = 0;

	for (int i = 0; i < n; i++) {
		int e = mark(ports[i], proto);

		if (e != 0 && rc == 0) {
			mark_error(e, ports[i], err);
			rc = -1;
		}
	}
	return rc;
}

/* Bind one socket; returns 0 or an errno value. *port 0: kernel picks. */
static int
bind_one(uint16_t *port, int type, enum proto_family family, bool shared,
    int *ret_fd)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, e;
	int af = family == PROTO_FAM_IPV4 ? AF_INET : AF_INET6;

	memset(&ss, 0, sizeof(ss));
	if (af == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(*port);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(*port);
		sin6->sin6_addr = in6addr_any;
		len = sizeof(*sin6);
	}
	/* Blocking, as socket activation passes sockets: an fd lease hands
	 * over this very open file, flags and all, and portd never does I/O
	 * on it. */
	fd = socket(af, type | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return errno;
	if (af == AF_INET6) {
		int v6only = family == PROTO_FAM_IPV6;
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
		        sizeof(v6only)) == -1)
			goto fail;
	}
	if (FAULT_FAIL(BIND) || bind(fd, (struct sockaddr *)&ss, len) == -1)
		goto fail;
	if (shared &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	if (*port == 0) {
		len = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
			goto fail;
		*port = ntohs(af == AF_INET
		                  ? ((struct sockaddr_in *)&ss)->sin_port
		                  : ((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	*ret_fd = fd;
	return 0;
fail:
	e = errno;
	close(fd);
	return e;
}

/* Describe a bind failure in err; returns e so callers can test busy. */
static int
bind_error(int e, uint16_t port, struct proto_error *err)
{
	switch (e) {
	case EADDRINUSE:
		proto_error_set(
		    err, PROTO_E_PORT_UNAVAILABLE, "port %u is in use", port);
		break;
	case EACCES:
	case EPERM:
		proto_error_set(err, PROTO_E_PORT_UNAVAILABLE,
		    "port %u needs privileges portd does not have", port);
		break;
	case EAFNOSUPPORT:
	case EADDRNOTAVAIL:
		proto_error_set(err, PROTO_E_PORT_UNAVAILABLE,
		    "IPv6 is not available on this host (no IPv6, or "
		    "net.ipv6.conf.*.disable_ipv6 is set): lease family ipv4 "
		    "or dual instead");
		break;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		proto_error_set(err, PROTO_E_RESOURCE_EXHAUSTED,
		    "portd is out of descriptors or memory: %s", strerror(e));
		break;
	default:
		proto_error_set(err, PROTO_E_INTERNAL, "bind port %u: %s", port,
		    strerror(e));
	}
	return e;
}

int
alloc_bind_port(uint16_t port, enum proto_proto proto, enum proto_family family,
    enum proto_hold hold, struct held_socket *ret, int *ret_n,
    struct proto_error *err)
{
	static const enum proto_proto order[] = {PROTO_TCP, PROTO_UDP};
	int n = 0, e;

	if (family == PROTO_FAM_DUAL && !have_ipv6)
		family = PROTO_FAM_IPV4;
	if (family == PROTO_FAM_IPV6 && !have_ipv6)
		return bind_error(EAFNOSUPPORT, port, err);
	for (int i = 0; i < 2; i++) {
		int fd = -1;

		if (!(proto & order[i]))
			continue;
		e = bind_one(&port,
		    order[i] == PROTO_TCP ? SOCK_STREAM : SOCK_DGRAM, family,
		    hold == PROTO_HOLD_SHARED && order[i] == PROTO_TCP, &fd);
		if (e != 0) {
			alloc_close_sockets(ret, n);
			return bind_error(e, port, err);
		}
		ret[n].fd = fd;
		ret[n].port = port;
		ret[n].proto = order[i];
		ret[n].family = family;
		n++;
	}
	*ret_n = n;
	return 0;
}

static void
take(uint16_t p, struct lease *owner)
{
	owners[p] = owner;
	fifo_remove(p);
	if (in_pool(p) && !(state[p] & ST_RESERVED))
		pool_free--;
}

void
alloc_put(const uint16_t *ports, int n)
{
	for (int i = 0; i < n; i++) {
		uint16_t p = ports[i];
		if (owners[p] == NULL)
			continue;
		owners[p] = NULL;
		unmark(p);
		if (in_pool(p) && !(state[p] & ST_RESERVED)) {
			pool_free++;
			fifo_push(p);
		}
	}
}

int
alloc_mark(const uint16_t *ports, int n, struct lease *owner)
{
	for (int i = 0; i < n; i++) {
		if (owners[ports[i]] != NULL)
			return -1;
		/* A port listed twice would be taken twice and put back
		 * once, lost to the pool for good. */
		for (int k = 0; k < i; k++)
			if (ports[k] == ports[i])
				return -1;
	}
	for (int i = 0; i < n; i++)
		take(ports[i], owner);
	return 0;
}

/* Bind port p for req into ret; on success the port is recorded. */
static int
hold_port(const struct alloc_request *req, uint16_t p, struct alloc_result *ret,
    struct proto_error *err)
{
	int n = 0, e;

	/* The marker first: it is the host-wide arbiter between portds, and
	 * costs less than the binds it saves. */
	if ((e = mark(p, req->proto)) != 0)
		return mark_error(e, p, err);
	e = alloc_bind_port(p, req->proto, req->family, req->hold,
	    &ret->socks[ret->nsocks], &n, err);
	if (e != 0) {
		unmark(p);
		return e;
	}
	ret->nsocks += n;
	ret->ports[ret->nports++] = p;
	return 0;
}

static void
undo(struct alloc_result *ret)
{
	for (int i = 0; i < ret->nports; i++)
		unmark(ret->ports[i]);
	alloc_close_sockets(ret->socks, ret->nsocks);
	ret->nsocks = ret->nports = 0;
}

/*
 * The first port a process without CAP_NET_BIND_SERVICE may bind
 * (net.ipv4.ip_unprivileged_port_start, per network namespace; 1024 if
 * it cannot be read). Read again at most once a second.
 */
int
alloc_unprivileged_start(void)
{
	static int value = 1024;
	static time_t read_at = -1;
	struct timespec ts;
	FILE *f;
	int v;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	if (read_at != -1 && ts.tv_sec == read_at)
		return value;
	read_at = ts.tv_sec;
	f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "re");
	if (f != NULL) {
		if (fscanf(f, "%d", &v) == 1 && v >= 0 && v <= 65536)
			value = v;
		fclose(f);
	}
	return value;
}

static int
privileged(const struct alloc_request *req, uint16_t p, struct proto_error *err)
{
	return proto_error_set(err, PROTO_E_PORT_UNAVAILABLE,
	    "port %u is privileged: below ip_unprivileged_port_start (%d), "
	    "which only root may lease",
	    p, req->min_port);
}

static int
take_specific(const struct alloc_request *req, struct alloc_result *ret,
    struct proto_error *err)
{
	for (int i = 0; i < req->count; i++) {
		uint16_t p = (uint16_t)(req->port + i);
		if (p < req->min_port) {
			undo(ret);
			return privileged(req, p, err);
		}
		if (owners[p] != NULL) {
			undo(ret);
			return proto_error_set(err, PROTO_E_PORT_UNAVAILABLE,
			    "port %u is leased", p);
		}
		if (hold_port(req, p, ret, err) != 0) {
			undo(ret);
			return -1;
		}
	}
	return 0;
}

static int
take_ephemeral(const struct alloc_request *req, struct alloc_result *ret,
    struct proto_error *err)
{
	for (int i = 0; i < req->count; i++) {
		int tries = 0, e;

		for (;;) {
			struct held_socket *s = &ret->socks[ret->nsocks];
			int n = 0;
			bool dup = false;

			e = alloc_bind_port(
			    0, req->proto, req->family, req->hold, s, &n, err);
			if (e == 0) {
				/* A claimed lease holds no socket, so the
				 * kernel may pick its port; ours to refuse. */
				dup = owners[s->port] != NULL ||
				      s->port < req->min_port;
				for (int k = 0; k < ret->nports; k++)
					dup |= ret->ports[k] == s->port;
				/* So may another portd's claimed lease. */
				if (!dup &&
				    (e = mark(s->port, req->proto)) != 0) {
					dup = true;
					if (e != EADDRINUSE)
						mark_error(e, s->port, err);
				}
				if (!dup) {
					ret->ports[ret->nports++] = s->port;
					ret->nsocks += n;
					break;
				}
				alloc_close_sockets(s, n);
			}
			if ((e != 0 && e != EADDRINUSE) ||
			    ++tries >= EPHEMERAL_TRIES) {
				undo(ret);
				if (e == 0 || e == EADDRINUSE)
					proto_error_set(err, PROTO_E_NO_PORTS,
					    "the kernel has no free port");
				return -1;
			}
		}
	}
	return 0;
}

static int
take_pool_one(const struct alloc_request *req, struct alloc_result *ret,
    struct proto_error *err)
{
	stats.picks++;
	for (int tries = 0; tries < PICK_TRIES; tries++) {
		int p = fifo_pop(), e;

		if (p == -1)
			break;
		if (p < req->min_port) {
			/* Privileged for this client: leave it for root. */
			fifo_push((uint16_t)p);
			continue;
		}
		stats.examined++;
		stats.binds++;
		e = hold_port(req, (uint16_t)p, ret, err);
		if (e == 0)
			return 0;
		fifo_push((uint16_t)p); /* busy or failed: try it later */
		if (e != EADDRINUSE)
			return -1;
	}
	return proto_error_set(err, PROTO_E_NO_PORTS,
	    "no free port in the pool %u-%u", pool_lo, pool_hi);
}

/*
 * Contiguous runs need a search; it starts where the last one ended and
 * skips over owned ports, so it walks the pool at most once.
 */
static int
take_pool_contiguous(const struct alloc_request *req, struct alloc_result *ret,
    struct proto_error *err)
{
	int size = alloc_pool_size(), binds = 0;
	int start = contig_cursor, walked = 0;

	while (walked < size && binds < PICK_TRIES * 4) {
		int s = start, k, e = 0;

		if (s + req->count - 1 > pool_hi) {
			walked += pool_hi - s + 1;
			start = pool_lo;
			continue;
		}
		for (k = 0; k < req->count; k++) {
			uint16_t p = (uint16_t)(s + k);
			if (owners[p] != NULL || (state[p] & ST_RESERVED) ||
			    p < req->min_port)
				break;
		}
		if (k == req->count) {
			for (k = 0; k < req->count; k++) {
				binds++;
				stats.binds++;
				e = hold_port(req, (uint16_t)(s + k), ret, err);
				if (e != 0)
					break;
			}
			if (k == req->count) {
				contig_cursor =
				    s + k > pool_hi ? pool_lo : s + k;
				return 0;
			}
			undo(ret);
			if (e != EADDRINUSE)
				return -1;
		}
		walked += k + 1;
		start = s + k + 1 > pool_hi ? pool_lo : s + k + 1;
	}
	return proto_error_set(err, PROTO_E_NO_PORTS,
	    "no %d contiguous free ports in the pool %u-%u", req->count,
	    pool_lo, pool_hi);
}

int
alloc_take(const struct alloc_request *req, struct lease *owner,
    struct alloc_result *ret, struct proto_error *err)
{
	enum proto_strategy strategy = req->strategy;
	int rc;

	memset(ret, 0, sizeof(*ret));
	ret->family = req->family;
	if (req->family == PROTO_FAM_DUAL && !have_ipv6)
		ret->family = PROTO_FAM_IPV4;
	ret->ipv6 = ret->family != PROTO_FAM_IPV4;

	if (strategy == PROTO_STRATEGY_DEFAULT)
		strategy = portd_cfg.strategy;
	if (req->port != 0)
		rc = take_specific(req, ret, err);
	else if (strategy == PROTO_STRATEGY_EPHEMERAL)
		rc = take_ephemeral(req, ret, err);
	else if (req->contiguous && req->count > 1)
		rc = take_pool_contiguous(req, ret, err);
	else {
		rc = 0;
		for (int i = 0; i < req->count && rc == 0; i++)
			rc = take_pool_one(req, ret, err);
		if (rc != 0) {
			/* Ports popped for this request go back. */
			for (int i = 0; i < ret->nports; i++)
				fifo_push(ret->ports[i]);
			undo(ret);
		}
	}
	if (rc != 0)
		return -1;
	for (int i = 0; i < ret->nports; i++)
		take(ret->ports[i], owner);
	/* Report the family actually held. */
	if (ret->nsocks > 0)
		ret->family = ret->socks[0].family;
	return 0;
}
