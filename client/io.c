/* libportd: one Unix stream connection with deadlines and fd passing. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "portd.h"

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
io_deadline(int timeout_ms)
{
	if (timeout_ms < 0)
		return -1;
	return mono_ms() + timeout_ms;
}

/* Wait for events on io->fd until deadline: 0, PORTD_E_TIMEOUT or IO. */
static int
io_wait(struct io *io, short events, int64_t deadline)
{
	struct pollfd pfd = {.fd = io->fd, .events = events};
	int left, n;

	for (;;) {
		if (deadline < 0)
			left = -1;
		else {
			int64_t d = deadline - mono_ms();
			if (d <= 0)
				return PORTD_E_TIMEOUT;
			left = d > 60000 ? 60000 : (int)d;
		}
		n = poll(&pfd, 1, left);
		if (n > 0)
			return 0;
		if (n == -1 && errno != EINTR)
			return PORTD_E_IO;
	}
}

int
io_connect(struct io *io, const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return -errno;
	/*
	 * A Unix stream connect completes at once or fails; EAGAIN means a
	 * full backlog, which the caller treats like "not answering".
	 */
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int e = errno;
		if (e == EINTR)
			continue;
		close(fd);
		return -e;
	}
	io->fd = fd;
	io->len = 0;
	io->nfds = 0;
	io->ctrunc = false;
	return 0;
}

int
io_send(struct io *io, const char *buf, size_t len, int64_t deadline)
{
	int rc;

	while (len > 0) {
		ssize_t n = send(io->fd, buf, len, MSG_NOSIGNAL);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno != EAGAIN)
			return PORTD_E_IO;
		if ((rc = io_wait(io, POLLOUT, deadline)) < 0)
			return rc;
	}
	return 0;
}

/* Take the fds of every SCM_RIGHTS cmsg; close what does not fit. */
static void
io_take_fds(struct io *io, struct msghdr *msg)
{
	struct cmsghdr *c;

	if (msg->msg_flags & MSG_CTRUNC)
		io->ctrunc = true;
	for (c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (io->nfds < CLIENT_MAX_FDS)
				io->fds[io->nfds++] = fd;
			else
				close(fd);
		}
	}
}

int
io_recv_line(struct io *io, int64_t deadline, char **ret_line, size_t *ret_len)
{
	size_t scanned = 0;
	int rc;

	for (;;) {
		char *nl = NULL;
		union io_cbuf cbuf;
		struct msghdr msg = {0};
		ssize_t n;

		if (io->len > scanned)
			nl = memchr(io->buf + scanned, '\n', io->len - scanned);
		if (nl != NULL) {
			*ret_line = io->buf;
			*ret_len = (size_t)(nl - io->buf);
			return 0;
		}
		scanned = io->len;
		if (io->len > CLIENT_MAX_REPLY)
			return PORTD_E_PROTOCOL;
		n = io_recvmsg(io->fd, &io->buf, &io->size, io->len, 8192,
		    &cbuf, &msg, MSG_CMSG_CLOEXEC);
		if (n == -1 && errno == ENOMEM)
			return PORTD_E_NOMEM;
		if (n > 0 || (n == 0 && msg.msg_controllen > 0))
			io_take_fds(io, &msg);
		if (n > 0) {
			io->len += (size_t)n;
			continue;
		}
		if (n == 0)
			return PORTD_E_IO; /* the daemon closed the connection
			                    */
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return PORTD_E_IO;
		if ((rc = io_wait(io, POLLIN, deadline)) < 0)
			return rc;
	}
}

ssize_t
io_recvmsg(int fd, char **buf, size_t *size, size_t len, size_t first,
    union io_cbuf *cbuf, struct msghdr *msg, int flags)
{
	struct iovec iov;
	ssize_t n;

	if (*size - len < 4096) {
		size_t grown = *size == 0 ? first : *size * 2;
		char *p = realloc(*buf, grown);

		if (p == NULL) {
			errno = ENOMEM;
			return -1;
		}
		*buf = p;
		*size = grown;
	}
	iov.iov_base = *buf + len;
	iov.iov_len = *size - len;
	msg->msg_iov = &iov;
	msg->msg_iovlen = 1;
	msg->msg_control = cbuf->buf;
	msg->msg_controllen = sizeof(cbuf->buf);
	n = recvmsg(fd, msg, flags);
	msg->msg_iov = NULL; /* iov ends here; the control data stays */
	msg->msg_iovlen = 0;
	return n;
}

void
io_consume(struct io *io, size_t len)
{
	if (len > io->len)
		len = io->len;
	memmove(io->buf, io->buf + len, io->len - len);
	io->len -= len;
}

void
io_close_fds(struct io *io)
{
	for (int i = 0; i < io->nfds; i++)
		if (io->fds[i] >= 0)
			close(io->fds[i]);
	io->nfds = 0;
	io->ctrunc = false;
}

void
io_close(struct io *io)
{
	io_close_fds(io);
	if (io->fd >= 0)
		close(io->fd);
	io->fd = -1;
	free(io->buf);
	io->buf = NULL;
	io->len = io->size = 0;
}
