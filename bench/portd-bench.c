/*
 * portd-bench: time portd and its peers from the client's side of the
 * socket. Each test prints one result line, tab-separated:
 *
 *   NAME  N  MEDIAN_US  P99_US  OPS_PER_S
 *
 * N is the number of timed operations, the percentiles are of their
 * latencies in microseconds, and OPS_PER_S is N over the time they took
 * (for the concurrent tests: all clients' operations over the wall-clock
 * time from the first start to the last end). It is also the two floor
 * servers (serve-floor, serve-ps-floor) every portd figure is divided by,
 * and the restart test (SIGKILL with many leases, time to the first
 * answer, memory before and after). bench/run.sh starts the peers, runs
 * the tests and turns the lines into a report; --smoke starts a private
 * portd and the floors and runs every test a few times, for ctest.
 *
 * Nothing here asserts a speed: a test fails only when an operation does.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "shared.h"

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

#define RBUF_SIZE   (PROTO_MAX_LINE + 4096)
#define MAX_FDS     PROTO_MAX_SOCKETS
#define IO_TIMEOUT  5   /* seconds: a daemon that hangs fails the test */
#define PS_PER_PID  250 /* portserver requests made for one pid */
#define MAX_CLIENTS 64

static struct {
	const char *socket;
	const char *portserver;
	const char *label;
	const char *portd; /* the daemon restart and --smoke start */
	const char *dir;   /* where restart puts its daemon's files */
	const char *pool;  /* the pool of restart's daemon */
	long n;
	int clients;
	int batch;
	pid_t pid;
} opt = {
    .n = 1000, .clients = 8, .batch = 64, .dir = "/tmp", .pool = "10000-29999"};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));
static void smoke_dump_log(void);
static long rss_kb(pid_t pid);

static void
die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "portd-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	smoke_dump_log();
	exit(1);
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/*
 * Print one result line; sorts the samples. ops: the operations they stand
 * for (a pipelined batch is one sample of many), total_ns: the time those
 * took.
 */
static void
report(const char *name, int64_t *samples, long nsamples, long ops,
    int64_t total_ns)
{
	size_t p99;

	if (nsamples <= 0)
		die("%s: no samples", name);
	qsort(samples, (size_t)nsamples, sizeof(*samples), cmp_i64);
	/* The nearest-rank 99th percentile. */
	p99 = (size_t)((nsamples * 99 + 99) / 100) - 1;
	printf("%s\t%ld\t%.2f\t%.2f\t%.0f\n", opt.label ? opt.label : name, ops,
	    (double)samples[nsamples / 2] / 1e3, (double)samples[p99] / 1e3,
	    total_ns > 0 ? (double)ops * 1e9 / (double)total_ns : 0.0);
	fflush(stdout);
}

static int64_t *
samples_new(long n)
{
	int64_t *s = calloc((size_t)n, sizeof(*s));

	if (s == NULL)
		die("out of memory");
	return s;
}

/* --- a connection to portd's API socket ----------------------------- */

struct conn {
	int fd;
	size_t off, len; /* unread bytes: buf[off..len) */
	int fds[MAX_FDS];
	int nfds; /* descriptors received with the last line */
	char buf[RBUF_SIZE];
};

/* Fill sun for a path or, as portpicker spells it, '@name' (abstract). */
static socklen_t
unix_addr(const char *addr, struct sockaddr_un *sun)
{
	size_t n = strlen(addr);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (n == 0 || n >= sizeof(sun->sun_path))
		die("bad socket address '%s'", addr);
	memcpy(sun->sun_path, addr, n);
	if (addr[0] == '@')
		sun->sun_path[0] = '\0';
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	                   (addr[0] == '@' ? 0 : 1));
}

static int
unix_connect(const char *addr)
{
	struct sockaddr_un sun;
	struct timeval tv = {.tv_sec = IO_TIMEOUT};
	socklen_t len = unix_addr(addr, &sun);
	int fd;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, len) == -1) {
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static struct conn *
conn_open(const char *path)
{
	struct conn *c;

	if (path == NULL)
		die("no --socket given");
	if ((c = calloc(1, sizeof(*c))) == NULL)
		die("out of memory");
	if ((c->fd = unix_connect(path)) == -1)
		die("connect %s: %s", path, strerror(errno));
	return c;
}

static void
conn_close(struct conn *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c);
}

static void
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			die("send: %s",
			    n == 0 ? "nothing sent" : strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
}

/* Read into the buffer, keeping any descriptors that come along. */
static void
conn_fill(struct conn *c)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
		struct cmsghdr align;
	} cm;
	struct iovec iov;
	struct msghdr msg = {.msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = cm.buf,
	    .msg_controllen = sizeof(cm.buf)};
	ssize_t n;

	if (c->off > 0) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->len == sizeof(c->buf))
		die("reply line longer than %zu bytes", sizeof(c->buf));
	iov.iov_base = c->buf + c->len;
	iov.iov_len = sizeof(c->buf) - c->len;
	do
		n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n == 0)
		die("the daemon closed the connection");
	if (n == -1)
		die("recv: %s",
		    errno == EAGAIN ? "timed out" : strerror(errno));
	if (msg.msg_flags & MSG_CTRUNC)
		die("descriptors truncated");
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h != NULL;
	     h = CMSG_NXTHDR(&msg, h)) {
		size_t k;
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(fd));
			if (c->nfds < MAX_FDS)
				c->fds[c->nfds++] = fd;
			else
				close(fd);
		}
	}
	c->len += (size_t)n;
}

/* Close the descriptors that came with the last line; returns how many. */
static int
conn_drop_fds(struct conn *c)
{
	int n = c->nfds;

	for (int i = 0; i < c->nfds; i++)
		close(c->fds[i]);
	c->nfds = 0;
	return n;
}

/* Read one reply and parse it; dies unless it is a success. */
static json_object *
conn_reply(struct conn *c, const char *what)
{
	struct proto_error err;
	json_object *o, *v;
	char *nl;

	while ((nl = memchr(c->buf + c->off, '\n', c->len - c->off)) == NULL)
		conn_fill(c);
	o = proto_parse_object(
	    c->buf + c->off, (size_t)(nl - (c->buf + c->off)), &err);
	if (o == NULL)
		die("%s: bad reply: %s", what, err.message);
	c->off = (size_t)(nl + 1 - c->buf);
	if (!json_object_object_get_ex(o, "ok", &v) ||
	    !json_object_get_boolean(v)) {
		die("%s: %s", what, json_object_to_json_string(o));
	}
	return o;
}

/* Copy the lease id out of a lease reply. */
static void
lease_id(json_object *reply, char *ret, size_t size)
{
	json_object *l, *id;

	if (!json_object_object_get_ex(reply, "lease", &l) ||
	    !json_object_object_get_ex(l, "id", &id) ||
	    !json_object_is_type(id, json_type_string))
		die("lease reply without an id");
	snprintf(ret, size, "%s", json_object_get_string(id));
}

__attribute__((format(printf, 2, 3))) static void
send_line(struct conn *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		die("request too long");
	write_all(c->fd, line, (size_t)n);
}

/* One lease and its release, as a client does them. */
static void
lease_release(struct conn *c, bool fd)
{
	char id[PROTO_MAX_ID + 1];
	json_object *o;

	send_line(c,
	    fd ? "{\"op\":\"lease\",\"fd\":true}\n" : "{\"op\":\"lease\"}\n");
	o = conn_reply(c, "lease");
	lease_id(o, id, sizeof(id));
	json_object_put(o);
	if (fd && conn_drop_fds(c) < 1)
		die("lease with fd: no descriptor came");
	send_line(c, "{\"op\":\"release\",\"lease\":\"%s\"}\n", id);
	json_object_put(conn_reply(c, "release"));
}

/* --- concurrency: K client processes started together ----------------- */

struct shared {
	int64_t start, end; /* per child, ns */
	int ok;
};

typedef void (*child_fn)(int idx, int64_t *samples, long n);

/*
 * Run fn in k processes, n operations each, released together, and report
 * the merged latencies against the wall-clock span of the whole run.
 */
static void
run_parallel(const char *name, int k, long n, child_fn fn)
{
	size_t sz = sizeof(struct shared) * (size_t)k +
	            sizeof(int64_t) * (size_t)k * (size_t)n;
	struct shared *sh;
	int64_t *all, first = INT64_MAX, last = 0;
	pid_t pids[MAX_CLIENTS];
	int gate[2], failed = 0;

	if (k < 1 || k > MAX_CLIENTS)
		die("--clients must be 1..%d", MAX_CLIENTS);
	if (n < 1)
		n = 1;
	sh = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	    -1, 0);
	if (sh == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	all = (int64_t *)(sh + k);
	if (pipe2(gate, O_CLOEXEC) == -1)
		die("pipe: %s", strerror(errno));
	fflush(stdout);
	for (int i = 0; i < k; i++) {
		if ((pids[i] = fork()) == -1)
			die("fork: %s", strerror(errno));
		if (pids[i] == 0) {
			char c;
			close(gate[1]);
			/* The gate opens when the parent closes its end. */
			while (read(gate[0], &c, 1) == -1 && errno == EINTR)
				;
			sh[i].start = now_ns();
			fn(i, all + (size_t)i * (size_t)n, n);
			sh[i].end = now_ns();
			sh[i].ok = 1;
			_exit(0);
		}
	}
	close(gate[0]);
	close(gate[1]);
	for (int i = 0; i < k; i++) {
		int st;
		while (waitpid(pids[i], &st, 0) == -1 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !sh[i].ok)
			failed++;
		if (sh[i].start < first)
			first = sh[i].start;
		if (sh[i].end > last)
			last = sh[i].end;
	}
	if (failed)
		die("%s: %d of %d clients failed", name, failed, k);
	report(name, all, (long)k * n, (long)k * n, last - first);
	munmap(sh, sz);
}

/* --- the tests ------------------------------------------------------- */

static void
lease_loop(int64_t *s, long n, bool fd)
{
	struct conn *c = conn_open(opt.socket);

	for (long i = 0; i < n; i++) {
		int64_t t = now_ns();
		lease_release(c, fd);
		s[i] = now_ns() - t;
	}
	conn_close(c);
}

static void
test_lease(bool fd)
{
	int64_t *s = samples_new(opt.n), t = now_ns();

	lease_loop(s, opt.n, fd);
	report(fd ? "lease-fd" : "lease", s, opt.n, opt.n, now_ns() - t);
	free(s);
}

static void
lease_child(int idx, int64_t *s, long n)
{
	(void)idx;
	lease_loop(s, n, false);
}

static void
test_concurrent(void)
{
	run_parallel(
	    "concurrent", opt.clients, opt.n / opt.clients, lease_child);
}

/*
 * Pipelining: write a batch of leases at once, read their replies, then
 * the same for their releases. A sample is a batch's time per request.
 */
static void
test_pipeline(void)
{
	long nb = opt.n / (2L * opt.batch), len = 0;
	char(*ids)[PROTO_MAX_ID + 1] = calloc((size_t)opt.batch, sizeof(*ids));
	size_t cap = (size_t)opt.batch * (PROTO_MAX_ID + 40);
	char *req = malloc(cap);
	int64_t *s, t0;
	struct conn *c;

	if (nb < 1)
		nb = 1;
	if (ids == NULL || req == NULL)
		die("out of memory");
	s = samples_new(nb);
	c = conn_open(opt.socket);
	t0 = now_ns();
	for (long b = 0; b < nb; b++) {
		int64_t t = now_ns();
		len = 0;
		for (int i = 0; i < opt.batch; i++)
			len += snprintf(req + len, cap - (size_t)len,
			    "{\"op\":\"lease\"}\n");
		write_all(c->fd, req, (size_t)len);
		for (int i = 0; i < opt.batch; i++) {
			json_object *o = conn_reply(c, "pipelined lease");
			lease_id(o, ids[i], sizeof(ids[i]));
			json_object_put(o);
		}
		len = 0;
		for (int i = 0; i < opt.batch; i++)
			len += snprintf(req + len, cap - (size_t)len,
			    "{\"op\":\"release\",\"lease\":\"%s\"}\n", ids[i]);
		write_all(c->fd, req, (size_t)len);
		for (int i = 0; i < opt.batch; i++)
			json_object_put(conn_reply(c, "pipelined release"));
		s[b] = (now_ns() - t) / (2 * opt.batch);
	}
	report("pipeline", s, nb, nb * 2 * opt.batch, now_ns() - t0);
	conn_close(c);
	free(s);
	free(req);
	free(ids);
}

/* Lease count ports for an hour and leave them held (pipelined). */
static void
test_fill_quiet(long count)
{
	struct conn *c = conn_open(opt.socket);
	char req[64 * 32];
	long done = 0;

	while (done < count) {
		int k = count - done < 64 ? (int)(count - done) : 64;
		size_t len = 0;
		for (int i = 0; i < k; i++)
			len += (size_t)snprintf(req + len, sizeof(req) - len,
			    "{\"op\":\"lease\",\"ttl\":3600}\n");
		write_all(c->fd, req, len);
		for (int i = 0; i < k; i++)
			json_object_put(conn_reply(c, "fill"));
		done += k;
	}
	conn_close(c);
}

static void
test_fill(long count)
{
	test_fill_quiet(count);
	printf("fill\t%ld\n", count);
	fflush(stdout);
}

static pid_t child_start(void (*serve)(void));

static void
wait_to_be_killed(void)
{
	for (;;)
		pause();
}

/* A process that only waits to be killed: the pid portserver leases go to. */
static pid_t
helper_start(void)
{
	return child_start(wait_to_be_killed);
}

static void
helper_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
}

/* One portserver request: connect, "PID\n", read "PORT\n". */
static int
ps_request(pid_t pid)
{
	char buf[32];
	size_t len = 0;
	int fd, n;

	if ((fd = unix_connect(opt.portserver)) == -1)
		die("connect %s: %s", opt.portserver, strerror(errno));
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)pid);
	write_all(fd, buf, (size_t)n);
	while (len < sizeof(buf) - 1) {
		ssize_t r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			die("portserver recv: %s",
			    errno == EAGAIN ? "timed out" : strerror(errno));
		if (r == 0)
			break;
		len += (size_t)r;
		if (memchr(buf, '\n', len) != NULL)
			break;
	}
	close(fd);
	buf[len] = '\0';
	n = atoi(buf);
	if (n < 1 || n > 65535)
		die("portserver gave no port for pid %ld ('%s')", (long)pid,
		    buf);
	return n;
}

/*
 * n requests, for a pid that lives for PS_PER_PID of them: both servers
 * give the ports of a dead pid back (portd at once through a pidfd,
 * portpicker's portserver when it next comes to them), so the pool never
 * runs dry. Only the requests are timed; returns the time they took.
 */
static int64_t
ps_loop(int64_t *s, long n)
{
	int64_t total = 0;

	for (long done = 0; done < n; done += PS_PER_PID) {
		long k = n - done < PS_PER_PID ? n - done : PS_PER_PID;
		pid_t helper = helper_start();
		for (long i = done; i < done + k; i++) {
			int64_t t = now_ns();
			ps_request(helper);
			s[i] = now_ns() - t;
			total += s[i];
		}
		helper_stop(helper);
	}
	return total;
}

static void
test_ps(void)
{
	int64_t *s = samples_new(opt.n), total;

	if (opt.portserver == NULL)
		die("no --portserver given");
	total = ps_loop(s, opt.n);
	report("portserver", s, opt.n, opt.n, total);
	free(s);
}

static void
ps_child(int idx, int64_t *s, long n)
{
	(void)idx;
	ps_loop(s, n);
}

static void
test_ps_concurrent(void)
{
	if (opt.portserver == NULL)
		die("no --portserver given");
	run_parallel("portserver-concurrent", opt.clients, opt.n / opt.clients,
	    ps_child);
}

/* count portserver requests for --pid, which the caller keeps alive. */
static void
test_ps_fill(long count)
{
	if (opt.portserver == NULL || opt.pid <= 0)
		die("ps-fill needs --portserver and --pid");
	for (long i = 0; i < count; i++)
		ps_request(opt.pid);
	printf("ps-fill\t%ld\n", count);
	fflush(stdout);
}

/* The racy baseline: bind port 0 on [::] (dual), read the port, close. */
static void
bind0_loop(int64_t *s, long n)
{
	for (long i = 0; i < n; i++) {
		struct sockaddr_in6 sa = {
		    .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
		socklen_t len = sizeof(sa);
		int64_t t = now_ns();
		int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd == -1 || bind(fd, (struct sockaddr *)&sa, len) == -1 ||
		    getsockname(fd, (struct sockaddr *)&sa, &len) == -1)
			die("bind 0: %s", strerror(errno));
		close(fd);
		s[i] = now_ns() - t;
		if (ntohs(sa.sin6_port) == 0)
			die("bind 0 gave port 0");
	}
}

static void
test_bind0(void)
{
	int64_t *s = samples_new(opt.n), t = now_ns();

	bind0_loop(s, opt.n);
	report("bind0", s, opt.n, opt.n, now_ns() - t);
	free(s);
}

static void
bind0_child(int idx, int64_t *s, long n)
{
	(void)idx;
	bind0_loop(s, n);
}

static void
test_bind0_concurrent(void)
{
	run_parallel(
	    "bind0-concurrent", opt.clients, opt.n / opt.clients, bind0_child);
}

/*
 * guarantees: the system calls portd's guarantees add to a lease+release
 * pair, timed alone (-n times each): a journal record's append (O_APPEND,
 * 220 bytes, in --dir), a marker's socket + bind + close (names as portd
 * makes them), and the dual-stack and shared-hold setsockopt pair. Prints
 *
 *   guarantees WRITE_US MARKER_US SETSOCKOPT_US
 */
static void
test_guarantees(void)
{
	char rec[220], path[600];
	int64_t t, w, m, o;
	int fd, zero = 0, one = 1;

	memset(rec, 'x', sizeof(rec));
	rec[sizeof(rec) - 1] = '\n';
	snprintf(path, sizeof(path), "%s/guarantees.journal",
	    opt.dir != NULL ? opt.dir : "/tmp");
	if ((fd = open(path,
	         O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600)) ==
	    -1)
		die("%s: %s", path, strerror(errno));
	t = now_ns();
	for (long i = 0; i < opt.n; i++)
		if (write(fd, rec, sizeof(rec)) != (ssize_t)sizeof(rec))
			die("write: %s", strerror(errno));
	w = now_ns() - t;
	close(fd);
	unlink(path);
	t = now_ns();
	for (long i = 0; i < opt.n; i++) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		int n = proto_marker_name(false, (unsigned)(10000 + i % 50000),
		    sun.sun_path + 1, sizeof(sun.sun_path) - 1);

		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) ==
		        -1 ||
		    bind(fd, (struct sockaddr *)&sun,
		        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
		                    (size_t)n)) == -1)
			die("marker: %s", strerror(errno));
		close(fd);
	}
	m = now_ns() - t;
	if ((fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket: %s", strerror(errno));
	t = now_ns();
	for (long i = 0; i < opt.n; i++)
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
		        sizeof(zero)) == -1 ||
		    setsockopt(
		        fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
			die("setsockopt: %s", strerror(errno));
	o = now_ns() - t;
	close(fd);
	printf("guarantees\t%.2f\t%.2f\t%.2f\n",
	    (double)w / 1e3 / (double)opt.n, (double)m / 1e3 / (double)opt.n,
	    (double)o / 1e3 / (double)opt.n);
}

/* Wait up to 10 s for --socket or --portserver to accept a connection. */
static void
test_wait(void)
{
	const char *addr = opt.socket != NULL ? opt.socket : opt.portserver;
	int64_t deadline = now_ns() + 10000000000LL;
	int fd;

	if (addr == NULL)
		die("wait needs --socket or --portserver");
	while ((fd = unix_connect(addr)) == -1) {
		if (now_ns() > deadline)
			die("nothing answers on %s", addr);
		usleep(10000);
	}
	close(fd);
}

/* VmRSS of a process in kB, or -1. */
static long
rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void
test_rss(pid_t pid)
{
	long kb = rss_kb(pid);

	if (kb < 0)
		die("no VmRSS for pid %ld", (long)pid);
	printf("%s\t%ld\n", opt.label ? opt.label : "rss", kb);
	fflush(stdout);
}

/* --- the floors: the same exchanges with no bookkeeping -------------- */

/*
 * Two minimal servers, so that every portd figure has a floor measured in
 * the same run. They use poll() and read()/write(), no event library and
 * no JSON library: what one process on this machine pays to answer the
 * same requests over the same kind of socket.
 *
 * serve-floor answers portd's own lines: a line naming "release" closes
 * the socket its lease id names; any other line is a lease, answered by
 * binding [::]:0 (dual, like portd's default) and keeping the socket. Its
 * replies have the shape of portd's, so the client does the same work
 * against both. serve-ps-floor answers the portserver protocol by binding
 * port 0, closing, and writing the number.
 */

#define FLOOR_CONNS 1024

/* The port of each socket serve-floor holds, by descriptor; 0: none. */
static uint16_t floor_held[65536];

static int
listen_unix(const char *addr)
{
	struct sockaddr_un sun;
	socklen_t len = unix_addr(addr, &sun);
	int fd;

	if (addr[0] != '@')
		unlink(addr);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sun, len) == -1 ||
	    listen(fd, 128) == -1)
		die("listen on %s: %s", addr, strerror(errno));
	return fd;
}

/* Bind a TCP socket to [::]:0; returns it, its port in *ret. */
static int
bind0(uint16_t *ret)
{
	struct sockaddr_in6 sa = {
	    .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd == -1)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, len) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) == -1 ||
	    fd >= (int)nitems(floor_held)) {
		close(fd);
		return -1;
	}
	*ret = ntohs(sa.sin6_port);
	return fd;
}

/* Answer one line (NUL-terminated, no '\n') into out; returns the length. */
static size_t
floor_line(const char *line, size_t len, char *out, size_t cap)
{
	static const char key[] = "\"lease\":\"F";
	const char *k;
	uint16_t port;
	long fd;
	int n;

	if (memmem(line, len, "\"release\"", 9) != NULL) {
		k = memmem(line, len, key, sizeof(key) - 1);
		fd = k != NULL ? strtol(k + sizeof(key) - 1, NULL, 10) : -1;
		if (fd < 0 || fd >= (long)nitems(floor_held) ||
		    floor_held[fd] == 0)
			n = snprintf(out, cap,
			    "{\"id\":null,\"ok\":false,\"error\":{\"code\":"
			    "\"not_found\",\"message\":\"no such lease\"}}\n");
		else {
			port = floor_held[fd];
			floor_held[fd] = 0;
			close((int)fd);
			n = snprintf(out, cap,
			    "{\"id\":null,\"ok\":true,\"released\":[%u],"
			    "\"lease\":\"F%ld\"}\n",
			    port, fd);
		}
	} else if ((fd = bind0(&port)) == -1)
		n = snprintf(out, cap,
		    "{\"id\":null,\"ok\":false,\"error\":{\"code\":"
		    "\"no_ports\",\"message\":\"%s\"}}\n",
		    strerror(errno));
	else {
		floor_held[fd] = port;
		n = snprintf(out, cap,
		    "{\"id\":null,\"ok\":true,\"lease\":{\"id\":\"F%ld\","
		    "\"ports\":[%u]}}\n",
		    fd, port);
	}
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

struct floor_conn {
	size_t len;
	char buf[8192];
};

/* Accept what is waiting on lfd into the poll set. */
static void
floor_accept(int lfd, struct pollfd *pfd, struct floor_conn **conns, int *n)
{
	int fd;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) !=
	       -1) {
		if (*n >= FLOOR_CONNS ||
		    (conns[*n] = calloc(1, sizeof(**conns))) == NULL) {
			close(fd);
			continue;
		}
		pfd[*n] = (struct pollfd){.fd = fd, .events = POLLIN};
		(*n)++;
	}
}

static void
floor_drop(struct pollfd *pfd, struct floor_conn **conns, int i, int *n)
{
	close(pfd[i].fd);
	free(conns[i]);
	(*n)--;
	pfd[i] = pfd[*n];
	conns[i] = conns[*n];
}

/*
 * What a floor server does with a connection once a read added to its
 * buffer: false drops the connection.
 */
typedef bool (*floor_input)(int fd, struct floor_conn *c);

/* Serve the Unix socket at path with input, FLOOR_CONNS clients at most. */
static void
floor_serve(const char *path, floor_input input)
{
	static struct pollfd pfd[FLOOR_CONNS + 1];
	static struct floor_conn *conns[FLOOR_CONNS + 1];
	int n = 1;

	pfd[0] = (struct pollfd){.fd = listen_unix(path), .events = POLLIN};
	for (;;) {
		if (poll(pfd, (nfds_t)n, -1) == -1) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		for (int i = n - 1; i >= 1; i--) {
			struct floor_conn *c = conns[i];
			ssize_t r;

			if (pfd[i].revents == 0)
				continue;
			r = read(pfd[i].fd, c->buf + c->len,
			    sizeof(c->buf) - 1 - c->len);
			if (r == -1 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r > 0)
				c->len += (size_t)r;
			if (r <= 0 || !input(pfd[i].fd, c))
				floor_drop(pfd, conns, i, &n);
		}
		if (pfd[0].revents != 0)
			floor_accept(pfd[0].fd, pfd, conns, &n);
	}
}

/* portd's protocol: answer each whole line, keep the rest. */
static bool
floor_lines(int fd, struct floor_conn *c)
{
	static char out[65536];
	size_t olen = 0, off = 0;
	char *nl;

	while ((nl = memchr(c->buf + off, '\n', c->len - off)) != NULL) {
		*nl = '\0';
		if (sizeof(out) - olen < 512) {
			write_all(fd, out, olen);
			olen = 0;
		}
		olen += floor_line(c->buf + off, (size_t)(nl - (c->buf + off)),
		    out + olen, sizeof(out) - olen);
		off = (size_t)(nl + 1 - c->buf);
	}
	if (olen > 0)
		write_all(fd, out, olen);
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
	return c->len != sizeof(c->buf) - 1;
}

/* A portserver's: one port for the first line (or 32 bytes), then close. */
static bool
floor_ps_request(int fd, struct floor_conn *c)
{
	char reply[16];
	uint16_t port = 0;
	int bfd, k;

	if (memchr(c->buf, '\n', c->len) == NULL && c->len < 32)
		return true;
	if ((bfd = bind0(&port)) != -1)
		close(bfd);
	k = snprintf(reply, sizeof(reply), "%u\n", port);
	(void)send(fd, reply, (size_t)k, MSG_NOSIGNAL);
	return false;
}

static void
serve_floor(void)
{
	if (opt.socket == NULL)
		die("serve-floor needs --socket");
	floor_serve(opt.socket, floor_lines);
}

static void
serve_ps_floor(void)
{
	if (opt.portserver == NULL)
		die("serve-ps-floor needs --portserver");
	floor_serve(opt.portserver, floor_ps_request);
}

/* --- a daemon of our own (restart, --smoke) ---------------------------- */

static struct {
	pid_t owner; /* only the process that started the daemon stops it */
	pid_t pid;
	char dir[160];
	char sock[192];
	char ps[192];
	char log[192];
	char lock[208];
	char journal[208];
	char journal_tmp[224];
} own;

/*
 * Stop the daemon and remove its folder. Runs from atexit and from signal
 * handlers, so it uses async-signal-safe calls only; safe to repeat.
 */
static void
own_cleanup(void)
{
	const char *files[] = {
	    own.sock, own.ps, own.log, own.lock, own.journal, own.journal_tmp};

	if (own.owner != getpid())
		return;
	if (own.pid > 0) {
		kill(own.pid, SIGKILL);
		while (waitpid(own.pid, NULL, 0) == -1 && errno == EINTR)
			;
		own.pid = 0;
	}
	if (own.dir[0] == '\0')
		return;
	for (size_t i = 0; i < nitems(files); i++)
		if (files[i][0] != '\0')
			unlink(files[i]);
	/* A file we do not know of keeps the folder: rmdir says so. */
	if (rmdir(own.dir) == -1) {
		static const char msg[] =
		    "portd-bench: could not remove the temporary folder\n";
		if (write(2, msg, sizeof(msg) - 1) < 0)
			own.dir[0] = '\0';
	}
	own.dir[0] = '\0';
}

static void
own_signal(int sig)
{
	(void)sig;
	own_cleanup();
	_exit(1);
}

/* Show our daemon's log (when this process runs one). */
static void
smoke_dump_log(void)
{
	char line[512];
	FILE *f;

	if (own.owner != getpid() || own.log[0] == '\0' ||
	    (f = fopen(own.log, "r")) == NULL)
		return;
	fprintf(stderr, "--- portd's log:\n");
	while (fgets(line, sizeof(line), f) != NULL)
		fputs(line, stderr);
	fclose(f);
}

/* A private folder under base for the daemon's socket, journal, log. */
static void
own_setup(const char *base)
{
	if ((size_t)snprintf(own.dir, sizeof(own.dir), "%s/portd-bench.XXXXXX",
	        base) >= sizeof(own.dir) - 32)
		die("folder name too long: %s", base);
	if (mkdtemp(own.dir) == NULL) {
		own.dir[0] = '\0';
		die("mkdtemp: %s", strerror(errno));
	}
	snprintf(own.sock, sizeof(own.sock), "%s/portd.sock", own.dir);
	snprintf(own.ps, sizeof(own.ps), "%s/ps.sock", own.dir);
	snprintf(own.log, sizeof(own.log), "%s/portd.log", own.dir);
	/* The daemon keeps its lock and journal beside its socket. */
	snprintf(own.lock, sizeof(own.lock), "%s.lock", own.sock);
	snprintf(own.journal, sizeof(own.journal), "%s.journal", own.sock);
	snprintf(
	    own.journal_tmp, sizeof(own.journal_tmp), "%s.new", own.journal);
	own.owner = getpid();
	atexit(own_cleanup);
	signal(SIGINT, own_signal);
	signal(SIGTERM, own_signal);
	signal(SIGHUP, own_signal);
}

/* Start the daemon on own's paths (again, after a kill: same state). */
static void
own_spawn(const char *portd, const char *pool, bool portserver)
{
	pid_t parent = getpid();
	int fd;

	if ((own.pid = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (own.pid != 0)
		return;
	/* If we die without cleaning up, so does the daemon. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	fd = open(own.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd != -1 && fd != 2) {
		dup2(fd, 2);
		close(fd);
	}
	/* Keep away from the user's own daemon and config. */
	setenv("XDG_CONFIG_HOME", own.dir, 1);
	setenv("XDG_RUNTIME_DIR", own.dir, 1);
	unsetenv("PORTD_SOCKET");
	unsetenv("NOTIFY_SOCKET");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	if (portserver)
		execl(portd, portd, "--socket", own.sock, "--pool", pool,
		    "--quota", "65536", "--max-leases", "65536",
		    "--portserver-address", own.ps, (char *)NULL);
	else
		execl(portd, portd, "--socket", own.sock, "--pool", pool,
		    "--quota", "65536", "--max-leases", "65536", "--log-level",
		    "warning", (char *)NULL);
	_exit(127);
}

/*
 * Until the daemon accepts a connection (2 s at most), or with ready until
 * it answers a request (30 s): its state is restored. The API socket
 * accepts before the journal is read, so a connection alone does not say
 * that; the reply comes once restore is done.
 */
static void
own_wait(bool ready)
{
	int secs = ready ? 30 : 2;
	int64_t deadline = now_ns() + secs * 1000000000LL;
	struct timeval tv = {.tv_sec = 30};
	struct conn *c;

	for (;;) {
		int fd = unix_connect(own.sock);

		if (fd != -1 && !ready) {
			close(fd);
			return;
		}
		if (fd != -1) {
			if ((c = calloc(1, sizeof(*c))) == NULL)
				die("out of memory");
			c->fd = fd;
			setsockopt(
			    fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			send_line(c, "{\"op\":\"hello\"}\n");
			json_object_put(conn_reply(c, "hello"));
			conn_close(c);
			return;
		}
		if (waitpid(own.pid, NULL, WNOHANG) == own.pid) {
			own.pid = 0;
			die("portd exited at start");
		}
		if (now_ns() > deadline)
			die("portd did not answer within %d s", secs);
		usleep(ready ? 1000 : 5000);
	}
}

/* Stop the daemon with sig and reap it; returns its wait status. */
static int
own_stop(int sig)
{
	int st = 0;

	kill(own.pid, sig);
	while (waitpid(own.pid, &st, 0) == -1 && errno == EINTR)
		;
	own.pid = 0;
	return st;
}

/* How many leases the daemon on own.sock reports. */
static long
own_lease_count(void)
{
	struct conn *c = conn_open(own.sock);
	json_object *o, *v;
	long n;

	send_line(c, "{\"op\":\"status\"}\n");
	o = conn_reply(c, "status");
	if (!json_object_object_get_ex(o, "leases", &v) ||
	    !json_object_is_type(v, json_type_int))
		die("status without a lease count");
	n = (long)json_object_get_int64(v);
	json_object_put(o);
	conn_close(c);
	return n;
}

/*
 * restart COUNT: a daemon of our own takes COUNT leases (held sockets,
 * one hour), is killed with SIGKILL and started again on the same
 * journal. Prints
 *
 *   restart COUNT READY_MS IDLE_KB LIVE_KB RESTORED_KB
 *
 * READY_MS from the second exec to the first answered request; the sizes
 * are VmRSS just after the first start, with the leases taken live, and
 * after the restore. Fails unless all COUNT leases came back.
 */
static void
test_restart(long count)
{
	long idle, live, restored, n;
	int64_t t;

	if (opt.portd == NULL)
		die("restart needs --portd BIN");
	own_setup(opt.dir);
	own_spawn(opt.portd, opt.pool, false);
	own_wait(true);
	idle = rss_kb(own.pid);
	opt.socket = own.sock;
	test_fill_quiet(count);
	live = rss_kb(own.pid);
	own_stop(SIGKILL);
	t = now_ns();
	own_spawn(opt.portd, opt.pool, false);
	own_wait(true);
	t = now_ns() - t;
	restored = rss_kb(own.pid);
	if ((n = own_lease_count()) != count)
		die("restart: %ld of %ld leases restored", n, count);
	if (!WIFEXITED(own_stop(SIGTERM)))
		die("restart: portd did not stop on SIGTERM");
	own_cleanup();
	printf("restart\t%ld\t%.1f\t%ld\t%ld\t%ld\n", count, (double)t / 1e6,
	    idle, live, restored);
	fflush(stdout);
}

static void
test_lease_plain(void)
{
	test_lease(false);
}

static void
test_lease_fd(void)
{
	test_lease(true);
}

static void
test_rss_arg(long pid)
{
	test_rss((pid_t)pid);
}

/* The tests by name: run, or run_arg with one numeric argument. */
static const struct test {
	const char *name;
	void (*run)(void);
	void (*run_arg)(long);
	const char *arg;
	long arg_max;
} tests[] = {
    {"lease", test_lease_plain, NULL, NULL, 0},
    {"lease-fd", test_lease_fd, NULL, NULL, 0},
    {"pipeline", test_pipeline, NULL, NULL, 0},
    {"concurrent", test_concurrent, NULL, NULL, 0},
    {"fill", NULL, test_fill, "count", 65536},
    {"portserver", test_ps, NULL, NULL, 0},
    {"portserver-concurrent", test_ps_concurrent, NULL, NULL, 0},
    {"ps-fill", NULL, test_ps_fill, "count", 65536},
    {"bind0", test_bind0, NULL, NULL, 0},
    {"guarantees", test_guarantees, NULL, NULL, 0},
    {"bind0-concurrent", test_bind0_concurrent, NULL, NULL, 0},
    {"rss", NULL, test_rss_arg, "pid", INT32_MAX},
    {"wait", test_wait, NULL, NULL, 0},
    {"restart", NULL, test_restart, "count", 65536},
    {"serve-floor", serve_floor, NULL, NULL, 0},
    {"serve-ps-floor", serve_ps_floor, NULL, NULL, 0},
};

/* Run serve in a child process that dies with us; returns its pid. */
static pid_t
child_start(void (*serve)(void))
{
	pid_t parent = getpid(), pid = fork();

	if (pid == -1)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		own.owner = 0; /* the parent cleans up */
		serve();
		_exit(1);
	}
	return pid;
}

/* Run a floor server in a child process; returns its pid. */
static pid_t
floor_start(void (*serve)(void))
{
	return child_start(serve);
}

/* --- smoke: a private portd, every test a few times ------------------ */

static bool
smoke_skipped(const char *name)
{
	/* Servers run forever; restart gets its own daemon below. */
	return strncmp(name, "serve-", 6) == 0 || strcmp(name, "restart") == 0;
}

static int
smoke_run(void)
{
	char floor_sock[256], ps_floor[64];
	pid_t floor, ps;
	int st;

	if (opt.portd == NULL)
		die("--smoke needs --portd BIN");
	own_setup("/tmp");
	own_spawn(opt.portd, "32000-32099", true);
	own_wait(false);
	opt.socket = own.sock;
	opt.portserver = own.ps;
	opt.n = 20;
	opt.clients = 2;
	opt.batch = 5;
	/* Every test, in a few iterations. */
	for (size_t i = 0; i < nitems(tests); i++) {
		const struct test *t = &tests[i];
		if (smoke_skipped(t->name))
			continue;
		if (t->run != NULL)
			t->run();
		else if (strcmp(t->name, "fill") == 0)
			t->run_arg(10);
		else if (strcmp(t->name, "ps-fill") == 0) {
			opt.pid = helper_start();
			t->run_arg(5);
			helper_stop(opt.pid);
		} else
			t->run_arg(own.pid);
	}
	/* A clean stop, so the daemon's own exit checks (ASan) count. */
	st = own_stop(SIGTERM);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("portd did not exit cleanly (status %#x)", st);

	/* The floors answer the same client code. */
	snprintf(floor_sock, sizeof(floor_sock), "%s/floor.sock", own.dir);
	snprintf(ps_floor, sizeof(ps_floor), "@portd-bench-floor-%ld",
	    (long)getpid());
	opt.socket = floor_sock;
	opt.portserver = ps_floor;
	floor = floor_start(serve_floor);
	ps = floor_start(serve_ps_floor);
	test_wait();
	opt.socket = NULL;
	test_wait();
	opt.socket = floor_sock;
	test_lease_plain();
	test_concurrent();
	test_pipeline();
	test_fill(10);
	test_ps();
	test_ps_concurrent();
	helper_stop(floor);
	helper_stop(ps);
	unlink(floor_sock);
	own_cleanup();

	/* A restart restores every lease. */
	opt.pool = "32000-32099";
	test_restart(50);
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: portd-bench [options] TEST [ARG]\n"
	    "       portd-bench --smoke --portd BIN\n"
	    "\n"
	    "Tests (one result line each: name, n, median us, p99 us, "
	    "ops/s):\n"
	    "  lease                  lease + release, one connection\n"
	    "  lease-fd               the same with \"fd\": true\n"
	    "  pipeline               batches of -b leases, then their "
	    "releases\n"
	    "  concurrent             lease + release in -c processes\n"
	    "  fill COUNT             lease COUNT ports for an hour\n"
	    "  portserver             portserver requests, one at a time\n"
	    "  portserver-concurrent  portserver requests in -c processes\n"
	    "  ps-fill COUNT          COUNT portserver requests for --pid\n"
	    "  bind0                  bind port 0, getsockname, close\n"
	    "  bind0-concurrent       the same in -c processes\n"
	    "  guarantees             time the system calls portd's guarantees "
	    "add\n"
	    "  rss PID                VmRSS of PID in kB\n"
	    "  wait                   until -s or -p accepts (10 s at most)\n"
	    "  restart COUNT          COUNT leases, SIGKILL, time the "
	    "restore;\n"
	    "                         with --portd, --pool, --dir\n"
	    "  serve-floor            the native floor server on -s\n"
	    "  serve-ps-floor         the portserver floor server on -p\n"
	    "\n"
	    "  -s, --socket PATH      portd's API socket\n"
	    "  -p, --portserver ADDR  a portserver (@name: abstract)\n"
	    "  -n, --count N          operations in all (default 1000)\n"
	    "  -c, --clients K        processes (default 8)\n"
	    "  -b, --batch B          pipelined requests (default 64)\n"
	    "  -l, --label NAME       name of the result line\n"
	    "      --pid PID          the pid ps-fill asks for\n"
	    "      --smoke            start a private portd, run every test\n"
	    "      --portd BIN        the portd restart and --smoke start\n"
	    "      --pool LO-HI       restart's pool (default 10000-29999)\n"
	    "      --dir DIR          where restart keeps its files (/tmp)\n");
}

static long
num_arg(const char *s, const char *what, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v < min || v > max)
		die("bad %s '%s' (%ld..%ld)", what, s, min, max);
	return v;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"portserver", required_argument, NULL, 'p'},
	    {"count", required_argument, NULL, 'n'},
	    {"clients", required_argument, NULL, 'c'},
	    {"batch", required_argument, NULL, 'b'},
	    {"label", required_argument, NULL, 'l'},
	    {"pid", required_argument, NULL, 'P'},
	    {"smoke", no_argument, NULL, 'S'},
	    {"portd", required_argument, NULL, 'D'},
	    {"dir", required_argument, NULL, 'd'},
	    {"pool", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *test;
	bool smoke_mode = false;
	int ch;

	while ((ch = getopt_long(
	            argc, argv, "s:p:n:c:b:l:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			opt.socket = optarg;
			break;
		case 'p':
			opt.portserver = optarg;
			break;
		case 'n':
			opt.n = num_arg(optarg, "count", 1, 100000000);
			break;
		case 'c':
			opt.clients =
			    (int)num_arg(optarg, "clients", 1, MAX_CLIENTS);
			break;
		case 'b':
			opt.batch = (int)num_arg(optarg, "batch", 1, 1024);
			break;
		case 'l':
			opt.label = optarg;
			break;
		case 'P':
			opt.pid = (pid_t)num_arg(optarg, "pid", 2, INT32_MAX);
			break;
		case 'S':
			smoke_mode = true;
			break;
		case 'D':
			opt.portd = optarg;
			break;
		case 'd':
			opt.dir = optarg;
			break;
		case 'o':
			opt.pool = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (smoke_mode)
		return smoke_run();
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	test = argv[optind];
	for (size_t i = 0; i < nitems(tests); i++) {
		const struct test *t = &tests[i];
		if (strcmp(test, t->name) != 0)
			continue;
		if (argc - optind - 1 != (t->run_arg != NULL ? 1 : 0))
			break;
		if (t->run_arg != NULL)
			t->run_arg(
			    num_arg(argv[optind + 1], t->arg, 1, t->arg_max));
		else
			t->run();
		return 0;
	}
	usage(stderr);
	return 2;
}
