/* Helpers for the handoff tests; see handoff.h. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handoff.h"

static int
make_addr(
    const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return AF_INET;
	}
	ck_assert_int_eq(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1);
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons((uint16_t)port);
	*len = sizeof(*sin6);
	return AF_INET6;
}

int
hb_bind_keep(const char *addr, bool v6only, int type, int port, bool reuse)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int af = make_addr(addr, port, &ss, &len);
	int fd, one = 1, v6 = v6only, e;

	fd = socket(af, type | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (reuse &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	if (af == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof(v6)) == -1)
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, len) == -1)
		goto fail;
	if (type == SOCK_STREAM && listen(fd, 64) == -1)
		goto fail;
	return fd;
fail:
	e = errno;
	close(fd);
	return -e;
}

int
hb_bind(const char *addr, bool v6only, int type, int port, bool reuse)
{
	int fd = hb_bind_keep(addr, v6only, type, port, reuse);

	if (fd < 0)
		return -fd;
	close(fd);
	return 0;
}

int
hb_sock_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int
hb_sock_family(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	return ss.ss_family;
}

int
hb_sock_int(int fd, int level, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, opt, &v, &len) == -1)
		return -1;
	return v;
}

void
hb_close_rst(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

void
hb_reader_init(struct hb_reader *r, int fd)
{
	r->fd = fd;
	r->len = 0;
	r->nfds = 0;
}

static char *
take_line(struct hb_reader *r)
{
	char *nl = memchr(r->buf, '\n', r->len), *line;
	size_t n;

	if (nl == NULL)
		return NULL;
	n = (size_t)(nl - r->buf);
	line = malloc(n + 1);
	ck_assert_ptr_nonnull(line);
	memcpy(line, r->buf, n);
	line[n] = '\0';
	memmove(r->buf, nl + 1, r->len - n - 1);
	r->len -= n + 1;
	return line;
}

char *
hb_read_line(struct hb_reader *r, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	char *line;

	while ((line = take_line(r)) == NULL) {
		size_t room = sizeof(r->buf) - r->len;
		ssize_t n;

		ck_assert_msg(room > 0, "reply line too long");
		n = harness_recv_some(r->fd, r->buf + r->len, room, deadline,
		    r->fds, &r->nfds, (int)(sizeof(r->fds) / sizeof(r->fds[0])),
		    true);
		if (n == 0)
			continue;
		if (n < 0)
			return NULL;
		r->len += (size_t)n;
	}
	return line;
}

json_object *
hb_call(struct hb_reader *r, int *fds, int max, int *nfds, const char *fmt, ...)
{
	char *req = NULL, *line;
	json_object *o;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&req, fmt, ap);
	va_end(ap);
	ck_assert_int_ge(n, 0);
	req = realloc(req, (size_t)n + 2);
	req[n] = '\n';
	harness_send(r->fd, req, (size_t)n + 1);
	req[n] = '\0';
	line = hb_read_line(r, 5000);
	ck_assert_msg(line != NULL, "no reply to %s", req);
	o = json_tokener_parse(line);
	ck_assert_msg(o != NULL, "bad reply to %s: %s", req, line);
	free(line);
	free(req);
	if (nfds != NULL)
		*nfds = 0;
	for (int i = 0; i < r->nfds; i++) {
		if (fds != NULL && nfds != NULL && *nfds < max)
			fds[(*nfds)++] = r->fds[i];
		else
			close(r->fds[i]);
	}
	r->nfds = 0;
	return o;
}

static int
count_pidfd(const char *target, void *arg)
{
	(void)arg;
	return strstr(target, "pidfd") != NULL;
}

static int
scan_fds(pid_t pid, bool pidfds_only)
{
	int n = harness_proc_fds(pid, pidfds_only ? count_pidfd : NULL, NULL);

	ck_assert_msg(n >= 0, "/proc/%d/fd: %s", (int)pid, strerror(errno));
	return n;
}

int
hb_fd_count(pid_t pid)
{
	return scan_fds(pid, false);
}

int
hb_pidfd_count(pid_t pid)
{
	return scan_fds(pid, true);
}

int
hb_fd_count_wait(pid_t pid, int want, int ms)
{
	int64_t deadline = now_ms() + ms;
	int n;

	while ((n = hb_fd_count(pid)) != want && now_ms() < deadline)
		usleep(5000);
	return n;
}

json_object *
hb_lease_on_port(json_object *list, int port)
{
	json_object *arr = reply_get(list, "leases");

	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *l = json_object_array_get_idx(arr, i);
		json_object *ports = reply_get(l, "ports");
		for (size_t k = 0; k < json_object_array_length(ports); k++)
			if (json_object_get_int(
			        json_object_array_get_idx(ports, k)) == port)
				return l;
	}
	return NULL;
}

bool
hb_listed(int conn, int port)
{
	json_object *r = harness_call(conn, "{\"op\":\"list\"}");
	bool found;

	ck_assert_msg(reply_ok(r), "list: %s", json_object_to_json_string(r));
	found = hb_lease_on_port(r, port) != NULL;
	json_object_put(r);
	return found;
}
