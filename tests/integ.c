/* Helpers shared by the integration tests; see integ.h. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integ.h"

static void
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

int
become_uid(uid_t uid)
{
	if (setgroups(0, NULL) == -1 || setresgid(uid, uid, uid) == -1 ||
	    setresuid(uid, uid, uid) == -1)
		return -1;
	return 0;
}

/* The child of exchange_as: reports on fd out, one record a line. */
static void __attribute__((noreturn))
exchange_child(int out, uid_t uid, const char *sock, const char *data,
    size_t len, int nreplies, int timeout_ms, int wait_close_ms)
{
	char buf[64];
	int fd;

	if (become_uid(uid) == -1) {
		snprintf(buf, sizeof(buf), "C %d\n", errno);
		write_all(out, buf, strlen(buf));
		_exit(1);
	}
	if ((fd = harness_connect(sock)) == -1) {
		snprintf(buf, sizeof(buf), "C %d\n", errno);
		write_all(out, buf, strlen(buf));
		_exit(0);
	}
	harness_send_upto(fd, data, len, 0, 0);
	for (int i = 0; i < nreplies; i++) {
		char *line = harness_recv_line(fd, timeout_ms, NULL, NULL);
		if (line == NULL)
			break;
		write_all(out, "L ", 2);
		write_all(out, line, strlen(line));
		write_all(out, "\n", 1);
		free(line);
	}
	if (wait_close_ms > 0 && wait_closed(fd, wait_close_ms))
		write_all(out, "E\n", 2);
	close(fd);
	_exit(0);
}

pid_t
fork_duplex(int *cmd, int *rep)
{
	int c[2], r[2];
	pid_t pid;

	ck_assert_int_eq(pipe2(c, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(r, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	close(pid == 0 ? c[1] : c[0]);
	close(pid == 0 ? r[0] : r[1]);
	*cmd = pid == 0 ? c[0] : c[1];
	*rep = pid == 0 ? r[1] : r[0];
	return pid;
}

void
exchange_as(uid_t uid, const char *sock, const char *data, size_t len,
    int nreplies, int timeout_ms, int wait_close_ms, struct exchange *ret)
{
	char *buf = NULL, *line, *save = NULL;
	size_t cap = 0, used = 0;
	int p[2], status;
	pid_t pid;

	memset(ret, 0, sizeof(*ret));
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		close(p[0]);
		exchange_child(p[1], uid, sock, data, len, nreplies, timeout_ms,
		    wait_close_ms);
	}
	close(p[1]);
	for (;;) {
		ssize_t n;
		if (cap - used < 65536) {
			cap = cap * 2 + 65536;
			buf = realloc(buf, cap + 1);
			ck_assert_ptr_nonnull(buf);
		}
		n = read(p[0], buf + used, cap - used);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += (size_t)n;
	}
	close(p[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	ck_assert_msg(
	    WIFEXITED(status), "client as uid %u crashed", (unsigned)uid);
	if (buf == NULL)
		return;
	buf[used] = '\0';
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == 'C')
			ret->connect_errno = atoi(line + 2);
		else if (line[0] == 'E')
			ret->closed = true;
		else if (line[0] == 'L' && ret->n < 64)
			ret->lines[ret->n++] = strdup(line + 2);
	}
	free(buf);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "could not become uid %u: errno %d", (unsigned)uid,
	    ret->connect_errno);
}

json_object *
exchange_reply(const struct exchange *x, int i)
{
	json_object *o;

	ck_assert_msg(x->connect_errno == 0, "connect as another user: %s",
	    strerror(x->connect_errno));
	ck_assert_msg(i < x->n, "reply %d missing (got %d)", i, x->n);
	o = json_tokener_parse(x->lines[i]);
	ck_assert_msg(o != NULL, "bad reply: %s", x->lines[i]);
	return o;
}

void
exchange_free(struct exchange *x)
{
	for (int i = 0; i < x->n; i++)
		free(x->lines[i]);
	x->n = 0;
}

void
open_dir(struct daemon_proc *d)
{
	ck_assert_int_eq(chmod(d->dir, 0755), 0);
}

const char *
read_text(const char *path)
{
	static char buf[65536];
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	buf[0] = '\0';
	if (fd != -1) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

bool
wait_closed(int fd, int ms)
{
	int64_t deadline = now_ms() + ms;
	char scratch[4096];

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return false;
		n = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
		if (n == 0 || (n == -1 && errno == ECONNRESET))
			return true;
	}
}

const char *
line_code(const char *line)
{
	static char buf[64];
	json_object *o = json_tokener_parse(line);
	const char *code = "?";

	if (o != NULL && reply_ok(o))
		code = "ok";
	else if (o != NULL && reply_error(o) != NULL)
		code = reply_error(o);
	snprintf(buf, sizeof(buf), "%s", code);
	json_object_put(o);
	return buf;
}

const char *
recv_code(int fd, int ms)
{
	static char code[64];
	char *line = harness_recv_line(fd, ms, NULL, NULL);

	if (line == NULL)
		return NULL;
	snprintf(code, sizeof(code), "%s", line_code(line));
	free(line);
	return code;
}

size_t
take_replies(char *buf, size_t len, int *got, bool want_ok)
{
	char *line = buf, *nl;

	while ((nl = memchr(line, '\n', len - (size_t)(line - buf)))) {
		json_object *r;

		*nl = '\0';
		r = json_tokener_parse(line);
		ck_assert_msg(r != NULL && (!want_ok || reply_ok(r)),
		    "reply %d: %s", *got, line);
		ck_assert_int_eq(reply_int(r, "id"), *got);
		json_object_put(r);
		(*got)++;
		line = nl + 1;
	}
	len -= (size_t)(line - buf);
	memmove(buf, line, len);
	return len;
}

void
hello_ok(int fd)
{
	json_object *r = harness_call(fd, "{\"op\":\"hello\"}");

	ck_assert_msg(reply_ok(r), "%s", json_object_to_json_string(r));
	json_object_put(r);
}

void
expect_error(int fd, const char *code, const char *req)
{
	json_object *r = harness_call(fd, "%s", req);
	const char *got = reply_error(r);

	ck_assert_msg(got != NULL && strcmp(got, code) == 0,
	    "%s: want %s, got %s", req, code, json_object_to_json_string(r));
	json_object_put(r);
}

int
proc_fd_count(pid_t pid)
{
	int n = harness_proc_fds(pid, NULL, NULL);

	ck_assert_int_ge(n, 0);
	return n;
}

long
proc_rss_kb(pid_t pid)
{
	char path[64];
	const char *s;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	s = strstr(read_text(path), "VmRSS:");
	ck_assert_ptr_nonnull(s);
	return strtol(s + 6, NULL, 10);
}

long
proc_cpu_ticks(pid_t pid)
{
	char path[64];
	const char *s;
	long utime = 0, stime = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	s = strrchr(read_text(path), ')');
	ck_assert_ptr_nonnull(s);
	/* Fields 14 and 15; field 3 follows the ')'. */
	ck_assert_int_eq(sscanf(s + 2,
	                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
	                     "%*u %ld %ld",
	                     &utime, &stime),
	    2);
	return utime + stime;
}

static const char *const addrs[] = {"0.0.0.0", "::", "127.0.0.1", "::1"};

void
assert_plain_blocked(int port, int type)
{
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		int e = try_bind_addr(addrs[i], type, port, false);
		ck_assert_msg(e == EADDRINUSE,
		    "plain %s bind to [%s]:%d: %s (want EADDRINUSE)",
		    type == SOCK_STREAM ? "tcp" : "udp", addrs[i], port,
		    e ? strerror(e) : "succeeded");
	}
}

void
assert_reuse_blocked(int port, int type)
{
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		int e = try_bind_addr(addrs[i], type, port, true);
		ck_assert_msg(e == EADDRINUSE,
		    "SO_REUSEADDR %s bind to [%s]:%d: %s (want "
		    "EADDRINUSE)",
		    type == SOCK_STREAM ? "tcp" : "udp", addrs[i], port,
		    e ? strerror(e) : "succeeded");
	}
}

void
assert_port_free(int port, int type)
{
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		int e = try_bind_addr(addrs[i], type, port, false);
		ck_assert_msg(e == 0, "plain %s bind to [%s]:%d: %s",
		    type == SOCK_STREAM ? "tcp" : "udp", addrs[i], port,
		    strerror(e));
	}
}

void
assert_cobind(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct linger lg = {1, 0};
	int lfd, cfd, afd;

	lfd = bind_listen("0.0.0.0", port, true);
	ck_assert_msg(lfd >= 0, "SO_REUSEADDR server on port %d: %s", port,
	    strerror(-lfd));
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(cfd, 0);
	ck_assert_msg(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)) == 0,
	    "connect to the co-bound server on %d: %s", port, strerror(errno));
	afd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(afd, 0);
	/* Reset rather than close, so no TIME_WAIT keeps the port. */
	setsockopt(afd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(afd);
	close(cfd);
	close(lfd);
}

bool
list_has(int fd, const char *id)
{
	json_object *r = harness_call(fd, "{\"op\":\"list\"}");
	json_object *a = reply_get(r, "leases");
	bool found;

	ck_assert_msg(reply_ok(r) && a != NULL, "list failed: %s",
	    json_object_to_json_string(r));
	found = find_lease(a, id) != NULL;
	json_object_put(r);
	return found;
}
