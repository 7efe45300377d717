/*
 * portpicker's portserver protocol on a second socket: the client writes
 * its pid in ASCII and '\n' and reads a port number and '\n'. A refused
 * request (not a pid of the peer's uid, garbage, more than 20 bytes, no
 * port left) is closed with nothing written, as Google's portserver does;
 * portpicker then reports "Portserver failed to find a port" and picks a
 * port itself. Each answer is a process-scoped lease of the same number for
 * TCP and UDP, allowed only for a pid of the peer's uid, and claimed at
 * once: portpicker's users bind the port themselves, often without
 * SO_REUSEADDR, and the lease keeps it from everyone else until the
 * process exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"

#define PS_MAX_LINE 32
/* Google's portserver refuses a request of more than 20 bytes. */
#define PS_MAX_REQUEST 20

struct ps_conn {
	struct peer peer;
	char buf[PS_MAX_LINE];
	size_t len;
	struct event *ev, *timer;
	struct ps_conn *next;
};

static int ps_fd = -1;
static struct acceptor *ps_acceptor;
static struct ps_conn *ps_conns;
static int ps_nconns;
static bool ps_abstract;
static char ps_path[CONFIG_PATH_MAX];
static uint64_t ps_served;
static void (*ps_freed)(void); /* a descriptor is free again */

static void
ps_close(struct ps_conn *c)
{
	struct ps_conn **pp;

	for (pp = &ps_conns; *pp != c; pp = &(*pp)->next)
		;
	*pp = c->next;
	ps_nconns--;
	event_free(c->ev);
	event_free(c->timer);
	close(c->peer.fd);
	free(c);
	if (ps_freed != NULL)
		ps_freed();
}

/* Send the port and close; port 0 (refused): close with nothing written. */
static void
ps_answer(struct ps_conn *c, int port)
{
	char out[16];
	int n = snprintf(out, sizeof(out), "%d\n", port);

	/* A fresh socket's send buffer takes these few bytes at once. */
	if (port > 0 &&
	    send(c->peer.fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
		log_debug("portserver: reply lost: %s", strerror(errno));
	ps_close(c);
}

/* Lease a port for the pid in c->buf; returns the port or 0. */
static int
ps_lease(struct ps_conn *c)
{
	struct proto_request req = {.count = 1,
	    .proto = PROTO_BOTH,
	    .family = PROTO_FAM_DUAL,
	    .hold = PROTO_HOLD_EXCLUSIVE,
	    .scope = PROTO_SCOPE_PROCESS};
	struct proto_error err;
	struct lease *l;
	char *end;
	long pid;

	errno = 0;
	pid = strtol(c->buf, &end, 10);
	if (c->buf[0] < '0' || c->buf[0] > '9' || errno != 0 ||
	    (*end != '\0' && *end != '\r') || pid < 2 || pid > INT32_MAX) {
		log_debug("portserver: bad request from uid %u",
		    (unsigned)c->peer.uid);
		return 0;
	}
	req.pid = pid;
	snprintf(req.name, sizeof(req.name), "portserver");
	if ((l = lease_grant(&req, &c->peer, NULL, true, &err)) == NULL) {
		/* A pid that is gone or not the peer's is the client's
		 * business; a lease refused is the operator's. */
		if (err.code == PROTO_E_NOT_FOUND ||
		    err.code == PROTO_E_FORBIDDEN)
			log_debug("portserver: pid %ld: %s", pid, err.message);
		else
			log_info("portserver: pid %ld: %s", pid, err.message);
		return 0;
	}
	ps_served++;
	return lease_port0(l);
}

/* Read what the client sent and answer once a line is in; false when c
 * was closed (answered, or the client went away). */
static bool
ps_read(struct ps_conn *c)
{
	char *nl;
	ssize_t n;

	n = recv(c->peer.fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len,
	    MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0) {
		ps_close(c);
		return false;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	if ((nl = memchr(c->buf, '\n', c->len)) != NULL &&
	    (size_t)(nl - c->buf) < PS_MAX_REQUEST) {
		*nl = '\0';
		ps_answer(c, ps_lease(c));
		return false;
	} else if (nl != NULL || c->len > PS_MAX_REQUEST) {
		log_debug("portserver: request over %d bytes from uid %u",
		    PS_MAX_REQUEST, (unsigned)c->peer.uid);
		ps_answer(c, 0);
		return false;
	}
	return true;
}

static void
ps_read_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)ps_read(arg);
}

static void
ps_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ps_close(arg);
}

/* Refused (caps, out of descriptors): closed with nothing written, as
 * Google's portserver does; portpicker then picks a port itself. */
static void
ps_refuse(const struct peer *peer, const char *why)
{
	log_debug("portserver: uid %d refused: %s", (int)peer->uid, why);
	close(peer->fd);
}

static void
ps_take(const struct peer *peer, const char *why)
{
	struct timeval tv = {.tv_sec = portd_cfg.request_timeout_ms / 1000,
	    .tv_usec = (portd_cfg.request_timeout_ms % 1000) * 1000};
	struct ps_conn *c;
	int fd = peer->fd;

	(void)why;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->peer = *peer;
	c->ev = event_new(portd_base, fd, EV_READ | EV_PERSIST, ps_read_cb, c);
	c->timer = evtimer_new(portd_base, ps_timer_cb, c);
	if (c->ev == NULL || c->timer == NULL) {
		if (c->ev != NULL)
			event_free(c->ev);
		if (c->timer != NULL)
			event_free(c->timer);
		close(fd);
		free(c);
		return;
	}
	c->next = ps_conns;
	ps_conns = c;
	ps_nconns++;
	/*
	 * A client writes its line as soon as it is connected, so it is
	 * most often here by the time we accept: answered at once, the
	 * connection never enters the event loop (no epoll_ctl to add and
	 * remove it, no wake-up). Otherwise wait for it, with its deadline.
	 */
	if (!ps_read(c))
		return;
	if (event_add(c->ev, NULL) == -1 || evtimer_add(c->timer, &tv) == -1)
		ps_close(c);
}

int
portserver_count(void)
{
	return ps_nconns;
}

int
portserver_count_uid(uid_t uid)
{
	int n = 0;

	for (struct ps_conn *c = ps_conns; c != NULL; c = c->next)
		n += c->peer.uid == uid;
	return n;
}

static const struct acceptor_ops ps_ops = {
    .take = ps_take,
    .refuse = ps_refuse,
    .count = portserver_count,
    .count_uid = portserver_count_uid,
};

/* Accept on ps_fd; freed is told of each closed client. */
static int
ps_start(void (*freed)(void))
{
	ps_freed = freed;
	ps_acceptor = acceptor_new(ps_fd, "the portserver endpoint", &ps_ops);
	return ps_acceptor == NULL ? -1 : 0;
}

int
portserver_open(const char *addr, void (*freed)(void))
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	socklen_t len;
	size_t n = strlen(addr);

	if (n == 0 || n >= sizeof(sun.sun_path)) {
		log_warnx("portserver address too long or empty: %s", addr);
		return -1;
	}
	ps_abstract = addr[0] == '@';
	memcpy(sun.sun_path, addr, n);
	if (ps_abstract)
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	                  (ps_abstract ? 0 : 1));
	ps_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (ps_fd == -1) {
		log_warn("portserver socket");
		return -1;
	}
	if (!ps_abstract && listener_clear_stale(addr, &sun) == -1)
		goto fail;
	if (bind(ps_fd, (struct sockaddr *)&sun, len) == -1 ||
	    (!ps_abstract && chmod(addr, portd_cfg.socket_mode) == -1) ||
	    listen(ps_fd, 128) == -1) {
		log_warn("portserver %s", addr);
		goto fail;
	}
	if (ps_start(freed) == -1)
		goto fail;
	snprintf(ps_path, sizeof(ps_path), "%s", addr);
	log_info("serving the portserver protocol on %s", addr);
	return 0;
fail:
	close(ps_fd);
	ps_fd = -1;
	return -1;
}

int
portserver_adopt(int fd, void (*freed)(void))
{
	int fl = fcntl(fd, F_GETFL);

	/* The service manager made it and owns its name: never unlinked. */
	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
		log_warn("adopting the portserver socket");
		return -1;
	}
	ps_fd = fd;
	ps_abstract = true; /* nothing of ours to unlink */
	if (ps_start(freed) == -1) {
		ps_fd = -1;
		close(fd);
		return -1;
	}
	log_info("serving the portserver protocol on the passed socket");
	return 0;
}

void
portserver_close(void)
{
	while (ps_conns != NULL)
		ps_close(ps_conns);
	acceptor_free(ps_acceptor);
	ps_acceptor = NULL;
	if (ps_fd != -1) {
		close(ps_fd);
		if (!ps_abstract && ps_path[0] != '\0')
			unlink(ps_path);
	}
	ps_fd = -1;
}

uint64_t
portserver_served(void)
{
	return ps_served;
}
