/*
 * portd-bench: time portd and its peers from the client's side of the
 * socket. Each test prints one result line, tab-separated:
 *
 *   NAME  N  MEDIAN_US  P99_US  OPS_PER_S
 *
 * N is the number of timed operations, the percentiles are of their
 * latencies in microseconds, and OPS_PER_S is N over the time they took
 * (for the concurrent tests: all clients' operations over the wall-clock
 * time from the first start to the last end). bench/run.sh starts the
 * peers, runs the tests and turns the lines into a report; --smoke starts
 * a private portd and runs every test a few times, for ctest.
 *
 * Nothing here asserts a speed: a test fails only when an operation does.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
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

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

#define RBUF_SIZE   (PROTO_MAX_LINE + 4096)
#define MAX_FDS     (PROTO_MAX_COUNT * 2)
#define IO_TIMEOUT  5   /* seconds: a daemon that hangs fails the test */
#define PS_PER_PID  250 /* portserver requests made for one pid */
#define MAX_CLIENTS 64

static struct {
	const char *socket;
	const char *portserver;
	const char *label;
	long n;
	int clients;
	int batch;
	pid_t pid;
} opt = {.n = 1000, .clients = 8, .batch = 64};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));
static void smoke_dump_log(void);

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

static int
unix_connect(const char *addr)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = IO_TIMEOUT};
	size_t n = strlen(addr);
	socklen_t len;
	int fd;

	if (n == 0 || n >= sizeof(sun.sun_path))
		die("bad socket address '%s'", addr);
	memcpy(sun.sun_path, addr, n);
	/* '@name' is the abstract namespace, as portpicker spells it. */
	if (addr[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	                  (addr[0] == '@' ? 0 : 1));
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
test_fill(long count)
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
	printf("fill\t%ld\n", count);
	fflush(stdout);
}

/* A process that only waits to be killed: the pid portserver leases go to. */
static pid_t
helper_start(void)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == -1)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		for (;;)
			pause();
	}
	return pid;
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
    {"bind0-concurrent", test_bind0_concurrent, NULL, NULL, 0},
    {"rss", NULL, test_rss_arg, "pid", INT32_MAX},
    {"wait", test_wait, NULL, NULL, 0},
};

/* --- smoke: a private portd, every test a few times ------------------ */

static struct {
	pid_t owner; /* only the process that started the daemon stops it */
	pid_t pid;
	char dir[32];
	char sock[64];
	char ps[64];
	char log[64];
	char lock[80];
	char journal[80];
	char journal_tmp[96];
} smoke;

/*
 * Stop the daemon and remove its folder. Runs from atexit and from signal
 * handlers, so it uses async-signal-safe calls only; safe to repeat.
 */
static void
smoke_cleanup(void)
{
	const char *files[] = {smoke.sock, smoke.ps, smoke.log, smoke.lock,
	    smoke.journal, smoke.journal_tmp};

	if (smoke.owner != getpid())
		return;
	if (smoke.pid > 0) {
		kill(smoke.pid, SIGKILL);
		while (waitpid(smoke.pid, NULL, 0) == -1 && errno == EINTR)
			;
		smoke.pid = 0;
	}
	if (smoke.dir[0] == '\0')
		return;
	for (size_t i = 0; i < nitems(files); i++)
		if (files[i][0] != '\0')
			unlink(files[i]);
	/* A file we do not know of keeps the folder: rmdir says so. */
	if (rmdir(smoke.dir) == -1) {
		static const char msg[] =
		    "portd-bench: could not remove the temporary folder\n";
		if (write(2, msg, sizeof(msg) - 1) < 0)
			smoke.dir[0] = '\0';
	}
	smoke.dir[0] = '\0';
}

static void
smoke_signal(int sig)
{
	(void)sig;
	smoke_cleanup();
	_exit(1);
}

/* Show the smoke daemon's log (when this process runs one). */
static void
smoke_dump_log(void)
{
	char line[512];
	FILE *f;

	if (smoke.owner != getpid() || smoke.log[0] == '\0' ||
	    (f = fopen(smoke.log, "r")) == NULL)
		return;
	fprintf(stderr, "--- portd's log:\n");
	while (fgets(line, sizeof(line), f) != NULL)
		fputs(line, stderr);
	fclose(f);
}

static void
smoke_start(const char *portd)
{
	pid_t parent = getpid();
	int64_t deadline;
	int fd;

	snprintf(smoke.dir, sizeof(smoke.dir), "/tmp/portd-bench.XXXXXX");
	if (mkdtemp(smoke.dir) == NULL) {
		smoke.dir[0] = '\0';
		die("mkdtemp: %s", strerror(errno));
	}
	snprintf(smoke.sock, sizeof(smoke.sock), "%s/portd.sock", smoke.dir);
	snprintf(smoke.ps, sizeof(smoke.ps), "%s/ps.sock", smoke.dir);
	snprintf(smoke.log, sizeof(smoke.log), "%s/portd.log", smoke.dir);
	/* The daemon keeps its lock and journal beside its socket. */
	snprintf(smoke.lock, sizeof(smoke.lock), "%s.lock", smoke.sock);
	snprintf(
	    smoke.journal, sizeof(smoke.journal), "%s.journal", smoke.sock);
	snprintf(smoke.journal_tmp, sizeof(smoke.journal_tmp), "%s.new",
	    smoke.journal);
	smoke.owner = parent;
	atexit(smoke_cleanup);
	signal(SIGINT, smoke_signal);
	signal(SIGTERM, smoke_signal);
	signal(SIGHUP, smoke_signal);
	if ((smoke.pid = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (smoke.pid == 0) {
		/* If we die without cleaning up, so does the daemon. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		fd = open(smoke.log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd != -1 && fd != 2) {
			dup2(fd, 2);
			close(fd);
		}
		/* Keep away from the user's own daemon and config. */
		setenv("XDG_CONFIG_HOME", smoke.dir, 1);
		setenv("XDG_RUNTIME_DIR", smoke.dir, 1);
		unsetenv("PORTD_SOCKET");
		unsetenv("NOTIFY_SOCKET");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		execl(portd, portd, "--socket", smoke.sock, "--pool",
		    "32000-32099", "--portserver-address", smoke.ps,
		    (char *)NULL);
		_exit(127);
	}
	deadline = now_ns() + 2000000000LL;
	for (;;) {
		fd = unix_connect(smoke.sock);
		if (fd != -1) {
			close(fd);
			break;
		}
		if (waitpid(smoke.pid, NULL, WNOHANG) == smoke.pid) {
			smoke.pid = 0;
			die("portd exited at start");
		}
		if (now_ns() > deadline)
			die("portd did not answer within 2 s");
		usleep(5000);
	}
	opt.socket = smoke.sock;
	opt.portserver = smoke.ps;
}

static int
smoke_run(const char *portd)
{
	int st;

	if (portd == NULL)
		die("--smoke needs --portd BIN");
	smoke_start(portd);
	opt.n = 20;
	opt.clients = 2;
	opt.batch = 5;
	/* Every test, in a few iterations. */
	for (size_t i = 0; i < nitems(tests); i++) {
		const struct test *t = &tests[i];
		if (t->run != NULL)
			t->run();
		else if (strcmp(t->name, "fill") == 0)
			t->run_arg(10);
		else if (strcmp(t->name, "ps-fill") == 0) {
			opt.pid = helper_start();
			t->run_arg(5);
			helper_stop(opt.pid);
		} else
			t->run_arg(smoke.pid);
	}
	/* A clean stop, so the daemon's own exit checks (ASan) count. */
	kill(smoke.pid, SIGTERM);
	while (waitpid(smoke.pid, &st, 0) == -1 && errno == EINTR)
		;
	smoke.pid = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("portd did not exit cleanly (status %#x)", st);
	smoke_cleanup();
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
	    "  rss PID                VmRSS of PID in kB\n"
	    "  wait                   until -s or -p accepts (10 s at most)\n"
	    "\n"
	    "  -s, --socket PATH      portd's API socket\n"
	    "  -p, --portserver ADDR  a portserver (@name: abstract)\n"
	    "  -n, --count N          operations in all (default 1000)\n"
	    "  -c, --clients K        processes (default 8)\n"
	    "  -b, --batch B          pipelined requests (default 64)\n"
	    "  -l, --label NAME       name of the result line\n"
	    "      --pid PID          the pid ps-fill asks for\n"
	    "      --smoke            start a private portd, run every test\n"
	    "      --portd BIN        the portd to start for --smoke\n");
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
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *portd = NULL, *test;
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
			portd = optarg;
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
		return smoke_run(portd);
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
