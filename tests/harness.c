/* Test harness: a real portd on a private socket, real sockets to it. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "proto.h"

const char *harness_portd_bin = PORTD_BIN;
const char *harness_portd_faults_bin = PORTD_FAULTS_BIN;
const char *harness_bin_dir = PORTD_BIN_DIR;

int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

pid_t
harness_spawn_on(const char *sock, const char *log, const char *const *args)
{
	const char *argv[64];
	char dir[128];
	int n = 0, fd;
	pid_t pid;

	/* Config and runtime folders: the socket's own, never the user's. */
	snprintf(dir, sizeof(dir), "%s", sock);
	if (strrchr(dir, '/') != NULL)
		*strrchr(dir, '/') = '\0';
	argv[n++] = harness_portd_bin;
	argv[n++] = "--socket";
	argv[n++] = sock;
	for (int i = 0; args != NULL && args[i] != NULL && n < 62; i++)
		argv[n++] = args[i];
	argv[n] = NULL;

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd != -1) {
			dup2(fd, 2);
			close(fd);
		}
		setenv("XDG_CONFIG_HOME", dir, 1);
		setenv("XDG_RUNTIME_DIR", dir, 1);
		unsetenv("NOTIFY_SOCKET");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

pid_t
harness_spawn(struct daemon_proc *d, const char *const *args)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "/tmp/portd-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(d->dir));
	snprintf(d->sock, sizeof(d->sock), "%s/portd.sock", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/portd.log", d->dir);
	d->pid = harness_spawn_on(d->sock, d->log, args);
	return d->pid;
}

void
harness_restart(struct daemon_proc *d, const char *const *args)
{
	d->pid = harness_spawn_on(d->sock, d->log, args);
	if (!harness_wait_ready(d->sock, 5000))
		ck_abort_msg("portd did not start again: %s", harness_log(d));
}

int
harness_wait_exit(pid_t pid, int ms)
{
	int64_t deadline = now_ms() + ms;
	int status;

	do {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r == -1 && errno != EINTR)
			return -1;
		usleep(2000);
	} while (now_ms() < deadline);
	return -1;
}

bool
harness_wait_ready(const char *sock, int ms)
{
	int64_t deadline = now_ms() + ms;

	do {
		int fd = harness_connect(sock);
		if (fd != -1) {
			close(fd);
			return true;
		}
		usleep(5000);
	} while (now_ms() < deadline);
	return false;
}

void
harness_start(struct daemon_proc *d, const char *const *args)
{
	harness_spawn(d, args);
	if (!harness_wait_ready(d->sock, 5000))
		ck_abort_msg("portd did not start: %s", harness_log(d));
}

int
harness_kill(struct daemon_proc *d, int sig)
{
	int status = 0;

	if (d->pid <= 0)
		return 0;
	kill(d->pid, sig);
	while (waitpid(d->pid, &status, 0) == -1 && errno == EINTR)
		;
	d->pid = 0;
	return status;
}

static void
remove_dir(const char *dir)
{
	char cmd[256];

	if (dir[0] == '\0' || strncmp(dir, "/tmp/portd-test.", 16) != 0)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

void
harness_stop(struct daemon_proc *d)
{
	int status;

	if (d->pid > 0) {
		status = harness_kill(d, SIGTERM);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			ck_abort_msg(
			    "portd did not exit cleanly (status %#x): %s",
			    status, harness_log(d));
	}
	remove_dir(d->dir);
}

const char *
harness_log(struct daemon_proc *d)
{
	static char buf[16384];
	ssize_t n = 0;
	int fd = open(d->log, O_RDONLY);

	buf[0] = '\0';
	if (fd != -1) {
		off_t size = lseek(fd, 0, SEEK_END);
		off_t start = size > (off_t)sizeof(buf) - 1
		                  ? size - (off_t)sizeof(buf) + 1
		                  : 0;
		n = pread(fd, buf, sizeof(buf) - 1, start);
		close(fd);
		buf[n > 0 ? n : 0] = '\0';
	}
	return buf;
}

int
harness_connect(const char *sock)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

size_t
harness_send_upto(
    int fd, const void *buf, size_t len, size_t chunk, unsigned pause_us)
{
	const char *p = buf;
	size_t sent = 0;

	while (sent < len) {
		size_t want =
		    chunk > 0 && chunk < len - sent ? chunk : len - sent;
		ssize_t n = send(fd, p + sent, want, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		sent += (size_t)n;
		if (pause_us > 0)
			usleep(pause_us);
	}
	return sent;
}

void
harness_send(int fd, const void *buf, size_t len)
{
	ck_assert_msg(harness_send_upto(fd, buf, len, 0, 0) == len, "send: %s",
	    strerror(errno));
}

/* Per-fd read-ahead so lines split across reads are kept. */
static struct {
	int fd;
	char buf[256 * 1024];
	size_t len;
} ra[16];

static char *
take_line(int slot)
{
	char *nl = memchr(ra[slot].buf, '\n', ra[slot].len);
	char *line;
	size_t n;

	if (nl == NULL)
		return NULL;
	n = (size_t)(nl - ra[slot].buf);
	line = malloc(n + 1);
	memcpy(line, ra[slot].buf, n);
	line[n] = '\0';
	memmove(ra[slot].buf, nl + 1, ra[slot].len - n - 1);
	ra[slot].len -= n + 1;
	return line;
}

ssize_t
harness_recv_some(int fd, char *buf, size_t len, int64_t deadline, int *fds,
    int *nfds, int max, bool strict)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	union {
		char buf[CMSG_SPACE(sizeof(int) * 256)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = cbuf.buf,
	    .msg_controllen = sizeof(cbuf.buf)};
	struct cmsghdr *c;
	int64_t left = deadline - now_ms();
	ssize_t n;

	if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
		return -1;
	n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	if (n == -1 && errno == EINTR)
		return 0;
	if (n <= 0)
		return -1;
	ck_assert_msg(!(msg.msg_flags & MSG_CTRUNC), "MSG_CTRUNC");
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		int k;

		if (strict) {
			ck_assert_int_eq(c->cmsg_level, SOL_SOCKET);
			ck_assert_int_eq(c->cmsg_type, SCM_RIGHTS);
		} else if (c->cmsg_level != SOL_SOCKET ||
		           c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++) {
			int rfd;

			memcpy(
			    &rfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (strict)
				ck_assert_int_lt(*nfds, max);
			if (*nfds < max)
				fds[(*nfds)++] = rfd;
			else
				close(rfd);
		}
	}
	return n;
}

char *
harness_recv_line(int fd, int timeout_ms, int *fds, int *nfds)
{
	int64_t deadline = now_ms() + timeout_ms;
	int slot = -1, got = 0;
	char *line;

	for (int i = 0; i < 16; i++)
		if (ra[i].fd == fd && ra[i].len > 0)
			slot = i;
	if (slot == -1) {
		for (int i = 0; i < 16; i++)
			if (ra[i].len == 0) {
				slot = i;
				break;
			}
		ck_assert_int_ne(slot, -1);
		ra[slot].fd = fd;
	}
	if (nfds != NULL)
		*nfds = 0;
	while ((line = take_line(slot)) == NULL) {
		size_t room = sizeof(ra[slot].buf) - ra[slot].len;
		ssize_t n;

		if (room == 0)
			ck_abort_msg("reply line too long for the harness");
		n = harness_recv_some(fd, ra[slot].buf + ra[slot].len, room,
		    deadline, fds, &got, fds != NULL ? 64 : 0, false);
		if (n == 0)
			continue;
		if (n < 0)
			return NULL;
		ra[slot].len += (size_t)n;
	}
	if (nfds != NULL)
		*nfds = got;
	return line;
}

static json_object *
vcall(int fd, int *fds, int *nfds, const char *fmt, va_list ap)
{
	char *req = NULL, *line;
	json_object *o;
	int n;

	n = vasprintf(&req, fmt, ap);
	ck_assert_int_ge(n, 0);
	req = realloc(req, (size_t)n + 2);
	req[n] = '\n';
	harness_send(fd, req, (size_t)n + 1);
	line = harness_recv_line(fd, 5000, fds, nfds);
	req[n] = '\0';
	ck_assert_msg(line != NULL, "no reply to %s", req);
	o = json_tokener_parse(line);
	ck_assert_msg(o != NULL, "bad reply to %s: %s", req, line);
	free(line);
	free(req);
	return o;
}

json_object *
harness_call_fds(int fd, int *fds, int *nfds, const char *fmt, ...)
{
	va_list ap;
	json_object *o;

	va_start(ap, fmt);
	o = vcall(fd, fds, nfds, fmt, ap);
	va_end(ap);
	return o;
}

json_object *
reply_get(json_object *obj, const char *path)
{
	char key[64];
	const char *dot;

	while (obj != NULL && *path != '\0') {
		dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		snprintf(key, sizeof(key), "%.*s", (int)n, path);
		if (!json_object_object_get_ex(obj, key, &obj))
			return NULL;
		path += n + (dot ? 1 : 0);
	}
	return obj;
}

bool
reply_ok(json_object *r)
{
	return json_object_get_boolean(reply_get(r, "ok"));
}

const char *
reply_error(json_object *r)
{
	if (reply_ok(r))
		return NULL;
	return json_object_get_string(reply_get(r, "error.code"));
}

/* The value at path, which must be of type (what names it in the message). */
static json_object *
reply_typed(
    json_object *obj, const char *path, json_type type, const char *what)
{
	json_object *v = reply_get(obj, path);

	ck_assert_msg(v != NULL && json_object_is_type(v, type),
	    "no %s '%s' in %s", what, path, json_object_to_json_string(obj));
	return v;
}

int64_t
reply_int(json_object *obj, const char *path)
{
	return json_object_get_int64(
	    reply_typed(obj, path, json_type_int, "integer"));
}

const char *
reply_str(json_object *obj, const char *path)
{
	return json_object_get_string(
	    reply_typed(obj, path, json_type_string, "string"));
}

int64_t
status_int(int fd, const char *path)
{
	json_object *r = harness_call(fd, "{\"op\":\"status\"}");
	int64_t v = reply_int(r, path);

	json_object_put(r);
	return v;
}

const char *
lease_id(json_object *r)
{
	ck_assert_msg(
	    reply_ok(r), "lease failed: %s", json_object_to_json_string(r));
	return reply_str(r, "lease.id");
}

int
lease_port(json_object *r, int i)
{
	json_object *a = reply_get(r, "lease.ports");

	ck_assert_msg(
	    reply_ok(r) && a != NULL && (int)json_object_array_length(a) > i,
	    "no port %d in %s", i, json_object_to_json_string(r));
	return (int)json_object_get_int64(json_object_array_get_idx(a, i));
}

void
assert_proto_error(
    const char *what, const struct proto_error *err, int code, const char *msg)
{
	ck_assert_msg((int)err->code == code, "%s: code %s (%s), want %s", what,
	    proto_errcode_to_string(err->code), err->message,
	    proto_errcode_to_string((enum proto_errcode)code));
	ck_assert_msg(strstr(err->message, msg) != NULL,
	    "%s: message \"%s\" lacks \"%s\"", what, err->message, msg);
}

json_object *
find_lease(json_object *arr, const char *id)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *l = json_object_array_get_idx(arr, i);
		if (strcmp(reply_str(l, "id"), id) == 0)
			return l;
	}
	return NULL;
}

static int
bind_sa(struct sockaddr *sa, socklen_t salen, int type, bool reuse, bool v6only,
    bool keep, bool do_listen)
{
	int fd, one = 1, rc = 0;

	fd = socket(sa->sa_family, type | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return errno;
	if (reuse)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa->sa_family == AF_INET6)
		setsockopt(
		    fd, IPPROTO_IPV6, IPV6_V6ONLY, &(int){v6only}, sizeof(int));
	if (bind(fd, sa, salen) == -1)
		rc = errno;
	else if (do_listen && listen(fd, 16) == -1)
		rc = errno;
	if (keep && rc == 0)
		return -fd;
	close(fd);
	return rc;
}

int
try_bind(int family, int type, int port, bool reuse)
{
	if (family == AF_INET) {
		struct sockaddr_in sin = {
		    .sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		return bind_sa((struct sockaddr *)&sin, sizeof(sin), type,
		    reuse, false, false, type == SOCK_STREAM);
	} else {
		struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6,
		    .sin6_port = htons((uint16_t)port),
		    .sin6_addr = in6addr_any};
		return bind_sa((struct sockaddr *)&sin6, sizeof(sin6), type,
		    reuse, true, false, type == SOCK_STREAM);
	}
}

int
try_bind_addr(const char *addr, int type, int port, bool reuse)
{
	struct sockaddr_in sin = {
	    .sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct sockaddr_in6 sin6 = {
	    .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};

	if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1)
		return bind_sa((struct sockaddr *)&sin, sizeof(sin), type,
		    reuse, false, false, type == SOCK_STREAM);
	ck_assert_int_eq(inet_pton(AF_INET6, addr, &sin6.sin6_addr), 1);
	return bind_sa((struct sockaddr *)&sin6, sizeof(sin6), type, reuse,
	    true, false, type == SOCK_STREAM);
}

int
bind_listen(const char *addr, int port, bool reuse)
{
	struct sockaddr_in sin = {
	    .sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct sockaddr_in6 sin6 = {
	    .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
	int rc;

	if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1)
		rc = bind_sa((struct sockaddr *)&sin, sizeof(sin), SOCK_STREAM,
		    reuse, false, true, true);
	else {
		ck_assert_int_eq(inet_pton(AF_INET6, addr, &sin6.sin6_addr), 1);
		rc = bind_sa((struct sockaddr *)&sin6, sizeof(sin6),
		    SOCK_STREAM, reuse, true, true, true);
	}
	return -rc; /* bind_sa: errno on failure, -fd when kept */
}

int
harness_proc_fds(
    pid_t pid, int (*each)(const char *target, void *arg), void *arg)
{
	char path[64], link[384], target[256];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		ssize_t len;
		int r;

		if (e->d_name[0] == '.')
			continue;
		if (each == NULL) {
			n++;
			continue;
		}
		snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
		if ((len = readlink(link, target, sizeof(target) - 1)) <= 0)
			continue;
		target[len] = '\0';
		if ((r = each(target, arg)) < 0)
			break;
		n += r;
	}
	closedir(d);
	return n;
}

int
harness_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	signal(SIGPIPE, SIG_IGN);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
