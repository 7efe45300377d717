/*
 * libportd against a real portd (pool 26000-26799), and against fake
 * servers for what a healthy daemon never does: refusing our version,
 * never answering, dying mid-call, sending the wrong fds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "portd.h"

static const char *const pool_args[] = {"--pool", "26000-26799", NULL};
static struct daemon_proc d;

static struct portd *
connect_to(const char *sock)
{
	struct portd_options o = {.socket = sock};
	struct portd *h = NULL;
	int rc = portd_connect(&o, &h);

	ck_assert_msg(rc == 0, "connect: %s", portd_strerror(rc));
	return h;
}

static int
count_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(dir);
	while ((e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n - 1; /* the DIR's own fd */
}

static int
sock_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static size_t
count_leases(struct portd *h)
{
	struct portd_lease *all = NULL;
	size_t n = 99;

	ck_assert_int_eq(portd_list(h, false, &all, &n), 0);
	portd_lease_list_free(all, n);
	return n;
}

/* ---- fake servers ---- */

/* One scripted answer: reply (with "@ID@" for the request's id). */
struct step {
	const char *reply; /* NULL: never answer */
	int nfds;          /* /dev/null fds attached to the reply */
	bool die;          /* SIGKILL ourselves after reading the request */
	bool hangup;       /* close instead of answering */
	bool exit_after;   /* exit right after answering */
};

struct fake {
	pid_t pid;
	char dir[64];
	char sock[108];
};

static long long
read_request(int fd)
{
	char buf[70000], *p;
	size_t len = 0;

	while (len < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + len, 1);
		if (n <= 0)
			return -1;
		if (buf[len++] == '\n')
			break;
	}
	buf[len] = '\0';
	p = strstr(buf, "\"id\":");
	return p ? atoll(p + 5) : 0;
}

static void
send_reply(int fd, const char *tmpl, long long id, int nfds)
{
	char idbuf[32], *out, *at;
	size_t len;
	int fds[8];
	union {
		char buf[CMSG_SPACE(sizeof(fds))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov;
	struct msghdr msg = {0};

	snprintf(idbuf, sizeof(idbuf), "%lld", id);
	out = malloc(strlen(tmpl) + 64);
	at = strstr(tmpl, "@ID@");
	if (at != NULL)
		sprintf(
		    out, "%.*s%s%s\n", (int)(at - tmpl), tmpl, idbuf, at + 4);
	else
		sprintf(out, "%s\n", tmpl);
	len = strlen(out);
	iov.iov_base = out;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (nfds > 0) {
		struct cmsghdr *c;
		for (int i = 0; i < nfds; i++)
			fds[i] = open("/dev/null", O_RDONLY);
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	while (len > 0) {
		ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n <= 0)
			_exit(1);
		len -= (size_t)n;
		iov.iov_base = (char *)iov.iov_base + n;
		iov.iov_len = len;
		msg.msg_control = NULL;
		msg.msg_controllen = 0;
	}
	free(out);
}

static const char hello_ok[] =
    "{\"id\":@ID@,\"ok\":true,\"version\":1,\"server\":{\"name\":\"fake\","
    "\"version\":\"0\"},\"pid\":1,\"uid\":0}";

/* Serve one connection by the script, in a child process. */
static void
fake_start(struct fake *f, const struct step *steps, int nsteps)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int lfd, fd;

	snprintf(f->dir, sizeof(f->dir), "/tmp/portd-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	snprintf(f->sock, sizeof(f->sock), "%s/fake.sock", f->dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->sock);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	f->pid = fork();
	ck_assert_int_ne(f->pid, -1);
	if (f->pid != 0) {
		close(lfd);
		return;
	}
	fd = accept(lfd, NULL, NULL);
	for (int i = 0; fd >= 0 && i < nsteps; i++) {
		long long id = read_request(fd);
		if (id < 0)
			_exit(0);
		if (steps[i].die)
			kill(getpid(), SIGKILL);
		if (steps[i].hangup)
			_exit(0);
		if (steps[i].reply == NULL)
			for (;;)
				pause();
		send_reply(fd, steps[i].reply, id, steps[i].nfds);
		if (steps[i].exit_after)
			_exit(0);
	}
	while (read_request(fd) >= 0)
		;
	_exit(0);
}

static void
fake_stop(struct fake *f)
{
	char path[160];

	if (f->pid > 0) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
	}
	snprintf(path, sizeof(path), "%s", f->sock);
	unlink(path);
	rmdir(f->dir);
}

/* portd_connect with o to a fake playing steps fails with want and gives
 * no handle; the fake is left running. */
static void
connect_fails(struct fake *f, const struct step *steps, int nsteps,
    struct portd_options *o, int want)
{
	struct portd *h = NULL;

	fake_start(f, steps, nsteps);
	o->socket = f->sock;
	ck_assert_int_eq(portd_connect(o, &h), want);
	ck_assert_ptr_null(h);
}

/* ---- against the real daemon ---- */

static void
setup(void)
{
	harness_start(&d, pool_args);
}

static void
teardown(void)
{
	harness_stop(&d);
}

START_TEST(lease_renew_claim_release)
{
	struct portd *h = connect_to(d.sock);
	struct portd_lease_request req = {
	    .count = 3, .contiguous = true, .ttl = 60, .name = "web"};
	struct portd_lease *l = NULL, *r = NULL;
	int64_t expires;

	ck_assert_int_eq(portd_lease(h, &req, &l), 0);
	ck_assert_str_eq(portd_errmsg(h), "");
	ck_assert_uint_eq(l->nports, 3);
	ck_assert_int_ge(l->ports[0], 26000);
	ck_assert_int_le(l->ports[2], 26799);
	ck_assert_int_eq(l->ports[1], l->ports[0] + 1);
	ck_assert_int_eq(l->ports[2], l->ports[0] + 2);
	ck_assert_int_eq(l->proto, PORTD_PROTO_TCP);
	ck_assert_int_eq(l->family, PORTD_FAMILY_DUAL);
	ck_assert_int_eq(l->hold, PORTD_HOLD_SHARED);
	ck_assert_int_eq(l->scope, PORTD_SCOPE_TTL);
	ck_assert_int_eq(l->ttl, 60);
	ck_assert_str_eq(l->name, "web");
	ck_assert_int_eq(l->owner_uid, getuid());
	ck_assert_int_eq(l->owner_pid, getpid());
	ck_assert(l->held);
	ck_assert_int_gt(l->created, 0);
	ck_assert_int_ge(l->expires, l->created + 59000);
	ck_assert_uint_eq(l->nsockets, 0);
	ck_assert_ptr_nonnull(strstr(l->json, l->id));
	/* Held means held: a plain bind fails. */
	ck_assert_int_eq(
	    try_bind(AF_INET, SOCK_STREAM, l->ports[0], false), EADDRINUSE);
	expires = l->expires;

	ck_assert_int_eq(portd_renew(h, l->id, 3600, &r), 0);
	ck_assert_str_eq(r->id, l->id);
	ck_assert_int_gt(r->expires, expires);
	portd_lease_free(r);
	ck_assert_int_eq(portd_renew(h, l->id, 0, NULL), 0);

	r = NULL;
	ck_assert_int_eq(portd_claim(h, l->id, &r), 0);
	ck_assert(!r->held);
	portd_lease_free(r);
	/* Claimed: the owner can bind it now. */
	ck_assert_int_eq(try_bind(AF_INET, SOCK_STREAM, l->ports[0], false), 0);

	ck_assert_uint_eq(count_leases(h), 1);
	ck_assert_int_eq(portd_release(h, l->id), 3);
	ck_assert_uint_eq(count_leases(h), 0);
	portd_lease_free(l);
	portd_close(h);
}
END_TEST

START_TEST(release_by_port)
{
	struct portd *h = connect_to(d.sock);
	struct portd_lease_request req = {.count = 2, .proto = PORTD_PROTO_UDP};
	struct portd_lease *l;

	ck_assert_int_eq(portd_lease(h, &req, &l), 0);
	ck_assert_int_eq(l->proto, PORTD_PROTO_UDP);
	ck_assert_int_eq(l->hold, PORTD_HOLD_EXCLUSIVE);
	ck_assert_int_eq(portd_release_port(h, l->ports[1]), 2);
	ck_assert_int_eq(portd_release_port(h, l->ports[1]), PORTD_E_NOT_FOUND);
	ck_assert_str_ne(portd_errmsg(h), "");
	portd_lease_free(l);
	portd_close(h);
}
END_TEST

START_TEST(lease_with_fds)
{
	struct portd *h = connect_to(d.sock);
	struct portd_lease_request req = {.count = 2,
	    .proto = PORTD_PROTO_BOTH,
	    .family = PORTD_FAMILY_DUAL,
	    .fd = true};
	struct portd_lease *l;
	int before = count_fds(), type;
	socklen_t len = sizeof(type);

	ck_assert_int_eq(portd_lease(h, &req, &l), 0);
	ck_assert_uint_eq(l->nports, 2);
	ck_assert_uint_ge(l->nsockets, 4); /* tcp + udp for each port */
	for (size_t i = 0; i < l->nsockets; i++) {
		struct portd_socket *s = &l->sockets[i];
		ck_assert_int_ge(s->fd, 0);
		ck_assert_int_eq(sock_port(s->fd), s->port);
		ck_assert(s->port == l->ports[0] || s->port == l->ports[1]);
		ck_assert_int_eq(
		    getsockopt(s->fd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
		ck_assert_int_eq(type,
		    s->proto == PORTD_PROTO_TCP ? SOCK_STREAM : SOCK_DGRAM);
		ck_assert_int_eq(
		    fcntl(s->fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	}
	ck_assert_int_eq(count_fds(), before + (int)l->nsockets);
	/* A socket the caller keeps survives portd_lease_free. */
	int kept = l->sockets[0].fd;
	l->sockets[0].fd = -1;
	portd_lease_free(l);
	ck_assert_int_eq(count_fds(), before + 1);
	ck_assert_int_eq(fcntl(kept, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(kept);
	portd_close(h);
}
END_TEST

START_TEST(list_and_status)
{
	struct portd *h = connect_to(d.sock), *h2 = connect_to(d.sock);
	struct portd_lease_request req = {.scope = PORTD_SCOPE_SESSION};
	struct portd_lease *l, *all;
	struct portd_status *s;
	size_t n;
	bool found = false;

	ck_assert_int_eq(portd_lease(h, &req, &l), 0);
	ck_assert_int_eq(l->scope, PORTD_SCOPE_SESSION);
	ck_assert_int_eq(l->expires, -1);
	ck_assert_int_eq(portd_list(h2, false, &all, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(all[0].id, l->id);
	portd_lease_list_free(all, n);
	ck_assert_int_eq(portd_list(h2, true, &all, &n), 0); /* as root */
	portd_lease_list_free(all, n);

	ck_assert_int_eq(portd_status(h2, &s), 0);
	ck_assert_int_eq(s->version, 1);
	ck_assert_str_eq(s->server, "portd " PORTD_VERSION);
	ck_assert_int_eq(s->pid, d.pid);
	ck_assert_int_ge(s->uptime, 0);
	ck_assert_int_eq(s->leases, 1);
	ck_assert_int_eq(s->ports, 1);
	ck_assert_int_ge(s->sockets, 1);
	ck_assert_int_eq(s->connections, 2);
	ck_assert_int_eq(s->pool_lo, 26000);
	ck_assert_int_eq(s->pool_hi, 26799);
	ck_assert_int_eq(s->pool_size, 800);
	ck_assert_int_eq(s->pool_free, 799);
	for (size_t i = 0; i < s->ncounters; i++)
		if (strcmp(s->counters[i].name, "leases_created") == 0)
			found = s->counters[i].value == 1;
	ck_assert(found);
	ck_assert_ptr_nonnull(strstr(s->json, "\"counters\""));
	ck_assert_ptr_null(strstr(s->json, "\"ok\""));
	portd_status_free(s);

	/* A session lease ends with its connection. */
	portd_lease_free(l);
	portd_close(h);
	for (int i = 0; i < 200 && count_leases(h2) != 0; i++)
		usleep(10000);
	ck_assert_uint_eq(count_leases(h2), 0);
	portd_close(h2);
}
END_TEST

START_TEST(daemon_refusals)
{
	struct portd *h = connect_to(d.sock);
	struct portd_lease_request req = {0};
	struct portd_lease *l, *sentinel = (struct portd_lease *)&req;
	int fd;

	l = sentinel;
	ck_assert_int_eq(portd_release(h, "Lnonexistent"), PORTD_E_NOT_FOUND);
	ck_assert_str_ne(portd_errmsg(h), "");
	ck_assert_int_eq(
	    portd_renew(h, "Lnonexistent", 10, &l), PORTD_E_NOT_FOUND);
	ck_assert_ptr_eq(l, sentinel);
	ck_assert_int_eq(portd_claim(h, "Lnonexistent", &l), PORTD_E_NOT_FOUND);
	ck_assert_ptr_eq(l, sentinel);

	req.name = "bad\x01name";
	ck_assert_int_eq(portd_lease(h, &req, &l), PORTD_E_BAD_REQUEST);
	ck_assert_ptr_eq(l, sentinel);
	req.name = NULL;
	req.count = 65;
	ck_assert_int_eq(portd_lease(h, &req, &l), PORTD_E_BAD_REQUEST);
	req.count = 0;

	/* A busy specific port. */
	fd = bind_listen("0.0.0.0", 26799, false);
	ck_assert_int_ge(fd, 0);
	req.port = 26799;
	ck_assert_int_eq(portd_lease(h, &req, &l), PORTD_E_PORT_UNAVAILABLE);
	ck_assert_ptr_eq(l, sentinel);
	close(fd);

	/* The handle is still good after refusals. */
	ck_assert_uint_eq(count_leases(h), 0);
	portd_close(h);
}
END_TEST

START_TEST(local_invalid_arguments)
{
	struct portd *h = connect_to(d.sock);
	struct portd_lease_request req = {.proto = 9};
	struct portd_lease *l = NULL;
	struct portd_status *s = NULL;

	ck_assert_int_eq(portd_lease(h, &req, &l), PORTD_E_INVALID);
	ck_assert_ptr_null(l);
	req.proto = 0;
	req.ttl = -5;
	ck_assert_int_eq(portd_lease(h, &req, &l), PORTD_E_INVALID);
	ck_assert_int_eq(portd_release(h, NULL), PORTD_E_INVALID);
	ck_assert_int_eq(portd_release(h, "bad id\n"), PORTD_E_INVALID);
	ck_assert_int_eq(portd_release_port(h, 0), PORTD_E_INVALID);
	ck_assert_int_eq(portd_claim(h, "", NULL), PORTD_E_INVALID);
	ck_assert_int_eq(portd_lease(NULL, NULL, &l), PORTD_E_INVALID);
	ck_assert_int_eq(portd_status(NULL, &s), PORTD_E_INVALID);
	ck_assert_int_eq(portd_list(h, false, NULL, NULL), PORTD_E_INVALID);
	/* Nothing was sent: the handle still works. */
	ck_assert_int_eq(portd_lease(h, NULL, &l), 0);
	portd_lease_free(l);
	portd_close(h);
}
END_TEST

START_TEST(daemon_killed_between_calls)
{
	struct portd *h = connect_to(d.sock);
	struct portd_lease *l = NULL;

	harness_kill(&d, SIGKILL);
	ck_assert_int_eq(portd_lease(h, NULL, &l), PORTD_E_IO);
	ck_assert_ptr_null(l);
	ck_assert_str_ne(portd_errmsg(h), "");
	/* The handle stays closed. */
	ck_assert_int_eq(portd_lease(h, NULL, &l), PORTD_E_IO);
	portd_close(h);
}
END_TEST

/* The kernel drops fds at RLIMIT_NOFILE: MSG_CTRUNC must not leak. */
START_TEST(fds_truncated_by_rlimit)
{
	struct portd *h = connect_to(d.sock);
	struct portd_lease_request req = {.count = 4, .fd = true};
	struct portd_lease *l = NULL;
	struct rlimit old, lim;
	int before, nfree = 0, fd;

	/* A limit just above the two lowest free fd numbers. */
	for (fd = 0; nfree < 3; fd++)
		if (fcntl(fd, F_GETFD) == -1 && errno == EBADF)
			nfree++;
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	before = count_fds();
	lim = old;
	lim.rlim_cur = (rlim_t)fd - 1;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
	ck_assert_int_eq(portd_lease(h, &req, &l), PORTD_E_IO);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	ck_assert_msg(
	    strstr(portd_errmsg(h), "dropped") != NULL, "%s", portd_errmsg(h));
	ck_assert_ptr_null(l);
	ck_assert_int_eq(count_fds(), before);
	/* The lease was given back. */
	ck_assert_uint_eq(count_leases(h), 0);
	portd_close(h);
}
END_TEST

START_TEST(socket_from_environment)
{
	struct portd *h = NULL;
	struct portd_options o = {0};

	setenv("PORTD_SOCKET", d.sock, 1);
	ck_assert_int_eq(portd_connect(NULL, &h), 0);
	ck_assert_str_eq(portd_socket_path(h), d.sock);
	portd_close(h);
	/* An explicit path wins over the environment. */
	setenv("PORTD_SOCKET", "/nonexistent/portd.sock", 1);
	o.socket = d.sock;
	ck_assert_int_eq(portd_connect(&o, &h), 0);
	ck_assert_str_eq(portd_socket_path(h), d.sock);
	portd_close(h);
}
END_TEST

START_TEST(pick_port)
{
	struct portd *h = connect_to(d.sock);
	struct portd_lease *all;
	size_t n;
	int p1, p2;

	setenv("PORTD_SOCKET", d.sock, 1);
	p1 = portd_pick_port();
	p2 = portd_pick_port();
	ck_assert_int_ge(p1, 26000);
	ck_assert_int_le(p1, 26799);
	ck_assert_int_ge(p2, 26000);
	ck_assert_int_ne(p1, p2);
	ck_assert_int_eq(portd_list(h, false, &all, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(all[0].scope, PORTD_SCOPE_PROCESS);
	ck_assert_int_eq(all[0].owner_pid, getpid());
	portd_lease_list_free(all, n);
	/* A SO_REUSEADDR server co-binds while portd holds the port. */
	int fd = bind_listen("0.0.0.0", p1, true);
	ck_assert_int_ge(fd, 0);
	close(fd);
	/* After a daemon restart the library connects again. */
	harness_stop(&d);
	harness_start(&d, pool_args);
	setenv("PORTD_SOCKET", d.sock, 1);
	ck_assert_int_ge(portd_pick_port(), 26000);
	portd_close(h);
}
END_TEST

/* A port picked by a process is free again once that process exits. */
START_TEST(pick_port_ends_with_process)
{
	int pipefd[2], port = 0, status;
	int64_t deadline;
	pid_t pid;

	setenv("PORTD_SOCKET", d.sock, 1);
	ck_assert_int_ge(portd_pick_port(), 26000); /* the parent's handle */
	ck_assert_int_eq(pipe(pipefd), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		port = portd_pick_port();
		_exit(write(pipefd[1], &port, sizeof(port)) == sizeof(port) &&
		              port > 0
		          ? 0
		          : 1);
	}
	ck_assert_int_eq(read(pipefd[0], &port, sizeof(port)), sizeof(port));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	deadline = now_ms() + 1000;
	while (try_bind(AF_INET, SOCK_STREAM, port, false) != 0 &&
	       now_ms() < deadline)
		usleep(5000);
	ck_assert_int_eq(try_bind(AF_INET, SOCK_STREAM, port, false), 0);
	/* The parent's connection survived the child's close. */
	ck_assert_int_ge(portd_pick_port(), 26000);
	close(pipefd[0]);
	close(pipefd[1]);
}
END_TEST

/* ---- without a daemon ---- */

START_TEST(no_daemon)
{
	char dir[] = "/tmp/portd-test.XXXXXX", sock[128], err[256] = "";
	struct portd_options o = {.socket = sock,
	    .autostart = true,
	    .errbuf = err,
	    .errbuf_size = sizeof(err)};
	struct portd *h = (struct portd *)dir;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/portd.sock", dir);
	/* Explicit path: no autostart even when asked. */
	ck_assert_int_eq(portd_connect(&o, &h), PORTD_E_NO_DAEMON);
	ck_assert_ptr_eq(h, (struct portd *)dir);
	ck_assert_ptr_nonnull(strstr(err, sock));
	ck_assert(access(sock, F_OK) == -1);

	/* The per-user default, with autostart turned off. */
	unsetenv("PORTD_SOCKET");
	setenv("XDG_RUNTIME_DIR", dir, 1);
	setenv("PORTD_NO_AUTOSTART", "1", 1);
	o.socket = NULL;
	ck_assert_int_eq(portd_connect(&o, &h), PORTD_E_NO_DAEMON);
	snprintf(sock, sizeof(sock), "%s/portd/portd.sock", dir);
	ck_assert_msg(strstr(err, sock) != NULL, "%s", err);
	unsetenv("XDG_RUNTIME_DIR");
	ck_assert_int_eq(portd_connect(&o, &h), PORTD_E_NO_DAEMON);
	snprintf(sock, sizeof(sock), "/tmp/portd-%u/portd.sock",
	    (unsigned)geteuid());
	ck_assert_msg(strstr(err, sock) != NULL, "%s", err);
	ck_assert_ptr_eq(h, (struct portd *)dir);
	/* A path that cannot be a socket address. */
	char longpath[200];
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	o.socket = longpath;
	ck_assert_int_eq(portd_connect(&o, &h), PORTD_E_INVALID);
	rmdir(dir);
}
END_TEST

START_TEST(wrong_version)
{
	const struct step refuse[] = {{.reply = "{\"id\":@ID@,\"ok\":false,"
	                                        "\"error\":{\"code\":"
	                                        "\"bad_request\",\"message\":"
	                                        "\"version 1 unsupported\"}}"}};
	const struct step v2[] = {{.reply = "{\"id\":@ID@,\"ok\":true,"
	                                    "\"version\":2}"}};
	char err[256];
	struct portd_options o = {.errbuf = err, .errbuf_size = sizeof(err)};
	struct fake f;

	connect_fails(&f, refuse, 1, &o, PORTD_E_VERSION);
	ck_assert_msg(strstr(err, "version 1 unsupported") != NULL, "%s", err);
	fake_stop(&f);

	connect_fails(&f, v2, 1, &o, PORTD_E_VERSION);
	fake_stop(&f);
}
END_TEST

START_TEST(timeout_silent_server)
{
	const struct step silent[] = {{.reply = NULL}};
	const struct step late[] = {{.reply = hello_ok}, {.reply = NULL}};
	struct portd_options o = {.timeout_ms = 200};
	struct portd *h = NULL;
	struct portd_status *s = NULL;
	struct fake f;

	connect_fails(&f, silent, 1, &o, PORTD_E_TIMEOUT);
	fake_stop(&f);

	fake_start(&f, late, 2);
	o.socket = f.sock;
	ck_assert_int_eq(portd_connect(&o, &h), 0);
	ck_assert_int_eq(portd_status(h, &s), PORTD_E_TIMEOUT);
	ck_assert_ptr_null(s);
	/* After a timeout the reply could still come: the handle is shut. */
	ck_assert_int_eq(portd_status(h, &s), PORTD_E_IO);
	portd_close(h);
	fake_stop(&f);
}
END_TEST

START_TEST(killed_mid_call)
{
	const struct step steps[] = {{.reply = hello_ok}, {.die = true}};
	struct portd *h = NULL;
	struct portd_lease *l = NULL;
	struct fake f;

	/* Writing to a dead peer must not raise SIGPIPE. */
	signal(SIGPIPE, SIG_DFL);
	fake_start(&f, steps, 2);
	h = connect_to(f.sock);
	ck_assert_int_eq(portd_lease(h, NULL, &l), PORTD_E_IO);
	ck_assert_ptr_null(l);
	ck_assert_int_eq(portd_lease(h, NULL, &l), PORTD_E_IO);
	portd_close(h);
	fake_stop(&f);
}
END_TEST

START_TEST(write_to_closed_peer)
{
	const struct step steps[] = {{.reply = hello_ok, .exit_after = true}};
	struct portd *h;
	struct portd_lease *l = NULL;
	struct fake f;

	/* The peer is gone before we write: EPIPE, not SIGPIPE. */
	signal(SIGPIPE, SIG_DFL);
	fake_start(&f, steps, 1);
	h = connect_to(f.sock);
	ck_assert_int_eq(waitpid(f.pid, NULL, 0), f.pid);
	f.pid = 0;
	ck_assert_int_eq(portd_lease(h, NULL, &l), PORTD_E_IO);
	ck_assert_ptr_null(l);
	portd_close(h);
	fake_stop(&f);
}
END_TEST

#define LEASE_JSON                                                             \
	"{\"id\":\"Lfake\",\"ports\":[26900],\"proto\":\"tcp\",\"family\":"    \
	"\"ipv4\",\"scope\":\"ttl\",\"hold\":\"shared\",\"ttl\":60,"           \
	"\"expires\":1,\"created\":1,\"name\":\"\",\"owner\":{\"uid\":0,"      \
	"\"pid\":1},\"held\":true}"

START_TEST(fd_count_mismatch)
{
	const struct step steps[] = {{.reply = hello_ok},
	    {.reply = "{\"id\":@ID@,\"ok\":true,\"lease\":" LEASE_JSON
	              ",\"sockets\":[{\"port\":26900,\"proto\":\"tcp\","
	              "\"family\":\"ipv4\"},{\"port\":26900,\"proto\":"
	              "\"udp\",\"family\":\"ipv4\"}]}",
	        .nfds = 1},
	    {.reply = "{\"id\":@ID@,\"ok\":true,\"released\":[26900]}"},
	    {.reply = "{\"id\":@ID@,\"ok\":true,\"lease\":" LEASE_JSON "}",
	        .nfds = 3},
	    {.reply = "{\"id\":@ID@,\"ok\":true,\"lease\":" LEASE_JSON "}"}};
	struct portd_lease_request req = {.fd = true};
	struct portd_lease *l = NULL;
	struct portd *h;
	struct fake f;
	int before;

	fake_start(&f, steps, 5);
	h = connect_to(f.sock);
	before = count_fds();
	/* Two listed, one sent: closed, released, refused. */
	ck_assert_int_eq(portd_lease(h, &req, &l), PORTD_E_PROTOCOL);
	ck_assert_ptr_null(l);
	ck_assert_int_eq(count_fds(), before);
	/* Unasked-for fds are closed and the call succeeds. */
	ck_assert_int_eq(portd_lease(h, NULL, &l), 0);
	ck_assert_uint_eq(l->nsockets, 0);
	ck_assert_int_eq(l->family, PORTD_FAMILY_IPV4);
	ck_assert(!l->ipv6);
	portd_lease_free(l);
	ck_assert_int_eq(count_fds(), before);
	/* fd asked for, no sockets array at all. */
	ck_assert_int_eq(portd_lease(h, &req, &l), PORTD_E_PROTOCOL);
	portd_close(h);
	fake_stop(&f);
}
END_TEST

START_TEST(malformed_replies)
{
	const struct step garbage[] = {
	    {.reply = hello_ok}, {.reply = "this is not json"}};
	const struct step wrong_id[] = {{.reply = hello_ok},
	    {.reply = "{\"id\":12345,\"ok\":true,\"leases\":[]}"}};
	const struct step bad_lease[] = {{.reply = hello_ok},
	    {.reply = "{\"id\":@ID@,\"ok\":true,\"leases\":[{\"id\":1}]}"},
	    {.reply = "{\"id\":@ID@,\"ok\":true,\"leases\":[]}"}};
	struct portd_lease *all = NULL;
	size_t n = 0;
	struct portd *h;
	struct fake f;

	fake_start(&f, garbage, 2);
	h = connect_to(f.sock);
	ck_assert_int_eq(portd_list(h, false, &all, &n), PORTD_E_PROTOCOL);
	portd_close(h);
	fake_stop(&f);

	fake_start(&f, wrong_id, 2);
	h = connect_to(f.sock);
	ck_assert_int_eq(portd_list(h, false, &all, &n), PORTD_E_PROTOCOL);
	portd_close(h);
	fake_stop(&f);

	/* A bad lease in a well-framed reply keeps the connection. */
	fake_start(&f, bad_lease, 3);
	h = connect_to(f.sock);
	ck_assert_int_eq(portd_list(h, false, &all, &n), PORTD_E_PROTOCOL);
	ck_assert_ptr_null(all);
	ck_assert_int_eq(portd_list(h, false, &all, &n), 0);
	ck_assert_uint_eq(n, 0);
	portd_close(h);
	fake_stop(&f);
}
END_TEST

/* A list longer than a request line (64 KiB) still parses. */
START_TEST(long_list_reply)
{
	enum { N = 600 };
	size_t size = N * (sizeof(LEASE_JSON) + 1) + 128, len;
	char *reply = malloc(size);
	struct step steps[] = {{.reply = hello_ok}, {.reply = reply}};
	struct portd_lease *all;
	struct portd *h;
	struct fake f;
	size_t n;

	len = (size_t)sprintf(reply, "{\"id\":@ID@,\"ok\":true,\"leases\":[");
	for (int i = 0; i < N; i++)
		len += (size_t)sprintf(
		    reply + len, "%s%s", i ? "," : "", LEASE_JSON);
	sprintf(reply + len, "]}");
	ck_assert_uint_gt(strlen(reply), 65536);
	fake_start(&f, steps, 2);
	h = connect_to(f.sock);
	ck_assert_int_eq(portd_list(h, false, &all, &n), 0);
	ck_assert_uint_eq(n, N);
	ck_assert_str_eq(all[N - 1].id, "Lfake");
	portd_lease_list_free(all, n);
	portd_close(h);
	fake_stop(&f);
	free(reply);
}
END_TEST

START_TEST(names_and_null_safety)
{
	static const int codes[] = {PORTD_E_BAD_REQUEST, PORTD_E_UNKNOWN_OP,
	    PORTD_E_REQUEST_TOO_LARGE, PORTD_E_NO_PORTS,
	    PORTD_E_PORT_UNAVAILABLE, PORTD_E_QUOTA_EXCEEDED, PORTD_E_NOT_FOUND,
	    PORTD_E_FORBIDDEN, PORTD_E_RESOURCE_EXHAUSTED, PORTD_E_INTERNAL,
	    PORTD_E_NO_DAEMON, PORTD_E_TIMEOUT, PORTD_E_PROTOCOL,
	    PORTD_E_VERSION, PORTD_E_IO, PORTD_E_NOMEM, PORTD_E_INVALID};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		ck_assert_str_ne(portd_error_name(codes[i]), "unknown");
		ck_assert_str_ne(portd_strerror(codes[i]), "Unknown error");
	}
	ck_assert_str_eq(portd_error_name(PORTD_E_NOT_FOUND), "not_found");
	ck_assert_str_eq(portd_error_name(PORTD_E_NO_DAEMON), "no_daemon");
	ck_assert_str_eq(portd_error_name(0), "ok");
	ck_assert_str_eq(portd_error_name(-9999), "unknown");
	ck_assert_ptr_nonnull(portd_strerror(12345));
	ck_assert_str_eq(portd_proto_name(PORTD_PROTO_BOTH), "both");
	ck_assert_str_eq(portd_family_name(PORTD_FAMILY_IPV6), "ipv6");
	ck_assert_str_eq(portd_hold_name(PORTD_HOLD_EXCLUSIVE), "exclusive");
	ck_assert_str_eq(portd_scope_name(PORTD_SCOPE_PROCESS), "process");
	ck_assert_str_eq(portd_proto_name(PORTD_PROTO_DEFAULT), "?");
	portd_close(NULL);
	portd_lease_free(NULL);
	portd_lease_list_free(NULL, 3);
	portd_status_free(NULL);
	ck_assert_str_eq(portd_errmsg(NULL), "");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("client");
	TCase *live = tcase_create("daemon");
	TCase *fake = tcase_create("fake");

	tcase_add_checked_fixture(live, setup, teardown);
	tcase_set_timeout(live, 30);
	tcase_add_test(live, lease_renew_claim_release);
	tcase_add_test(live, release_by_port);
	tcase_add_test(live, lease_with_fds);
	tcase_add_test(live, list_and_status);
	tcase_add_test(live, daemon_refusals);
	tcase_add_test(live, local_invalid_arguments);
	tcase_add_test(live, daemon_killed_between_calls);
	tcase_add_test(live, fds_truncated_by_rlimit);
	tcase_add_test(live, socket_from_environment);
	tcase_add_test(live, pick_port);
	tcase_add_test(live, pick_port_ends_with_process);
	suite_add_tcase(s, live);

	tcase_set_timeout(fake, 30);
	tcase_add_test(fake, no_daemon);
	tcase_add_test(fake, wrong_version);
	tcase_add_test(fake, timeout_silent_server);
	tcase_add_test(fake, killed_mid_call);
	tcase_add_test(fake, write_to_closed_peer);
	tcase_add_test(fake, fd_count_mismatch);
	tcase_add_test(fake, malformed_replies);
	tcase_add_test(fake, long_list_reply);
	tcase_add_test(fake, names_and_null_safety);
	suite_add_tcase(s, fake);
	return harness_run(s);
}
