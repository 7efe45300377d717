/*
 * One client connection: line framing with hard limits, a deadline for a
 * request that has begun but not ended, replies queued in request order
 * (some carrying descriptors), and back-pressure on a client that does not
 * read. conn_close() is the only way a connection ends; its memory is
 * freed later from the event loop, never inside its own callback.
 */
#include <errno.h>
#include <stdarg.h>
#include <linux/sockios.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "daemon.h"
#include "fault.h"

#define READ_CHUNK 16384

struct outmsg {
	TAILQ_ENTRY(outmsg) entry;
	char *buf;
	size_t len, off;
	int nfds;
	int fds[PROTO_MAX_SOCKETS];
};

struct conn {
	struct peer peer;
	struct event *rev, *wev, *timer;
	struct evbuffer *in;
	TAILQ_HEAD(, outmsg) out;
	size_t outbytes;
	bool reading;   /* rev is armed */
	bool draining;  /* close once the output is flushed */
	bool eof;       /* half-closed: answer what came, then drain */
	bool dead;      /* closed; memory freed later */
	bool stalled;   /* paused for the per-uid or total output cap */
	int fd_replies; /* fd-carrying replies the client may not have read */
	TAILQ_ENTRY(conn) entry;
};

static TAILQ_HEAD(, conn) conns = TAILQ_HEAD_INITIALIZER(conns);
static int nconns;
static void (*on_free)(void); /* a descriptor is free again */

/*
 * Queued output, counted honestly: a reply costs its bytes, its struct
 * outmsg and the allocator's headers of both. A connection is paused
 * (not read) past max-output of its own, past max-output-per-uid for
 * all of its uid's connections, or past max-output-total for everyone's;
 * the last two are only summed once a connection holds more than
 * OUT_QUIET, so a client that reads its replies never pays for them.
 */
#define OUT_OVERHEAD 32 /* malloc headers of the message and its text */
#define OUT_QUIET    4096
#define TRIM_BYTES   (4 * 1024 * 1024) /* freed before malloc_trim */

static size_t out_total;    /* every connection's queued output */
static size_t out_freed;    /* queued output freed since the last trim */
static uint64_t out_stalls; /* pauses for the per-uid or total cap */
static int nstalled;        /* connections paused for those caps */
static struct event *resume_ev;
static struct event *trim_ev; /* a second after a flood's end */

static void conn_read_cb(evutil_socket_t, short, void *);
static void conn_write_cb(evutil_socket_t, short, void *);
static void conn_timer_cb(evutil_socket_t, short, void *);
static void conn_flush(struct conn *);
static void resume_cb(evutil_socket_t, short, void *);
static void trim_cb(evutil_socket_t, short, void *);

void
conn_on_free(void (*fn)(void))
{
	on_free = fn;
}

int
conn_count(void)
{
	return nconns;
}

int
conn_count_uid(uid_t uid)
{
	struct conn *c;
	int n = 0;

	TAILQ_FOREACH(c, &conns, entry)
	if (c->peer.uid == uid)
		n++;
	return n;
}

const struct peer *
conn_peer(const struct conn *c)
{
	return &c->peer;
}

static void
timer_arm(struct conn *c, int ms)
{
	struct timeval tv = {
	    .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	evtimer_add(c->timer, &tv);
}

static void
reading(struct conn *c, bool on)
{
	if (on == c->reading || c->dead)
		return;
	if (on)
		event_add(c->rev, NULL);
	else
		event_del(c->rev);
	c->reading = on;
}

struct conn *
conn_new(const struct peer *peer)
{
	struct conn *c;
	int fd = peer->fd;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->peer = *peer;
	TAILQ_INIT(&c->out);
	if (resume_ev == NULL)
		resume_ev = event_new(portd_base, -1, 0, resume_cb, NULL);
	if (trim_ev == NULL)
		trim_ev = evtimer_new(portd_base, trim_cb, NULL);
	if (resume_ev == NULL || trim_ev == NULL) {
		free(c);
		return NULL;
	}
	c->rev =
	    event_new(portd_base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	c->wev =
	    event_new(portd_base, fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
	c->timer = evtimer_new(portd_base, conn_timer_cb, c);
	c->in = evbuffer_new();
	if (c->rev == NULL || c->wev == NULL || c->timer == NULL ||
	    c->in == NULL) {
		if (c->rev)
			event_free(c->rev);
		if (c->wev)
			event_free(c->wev);
		if (c->timer)
			event_free(c->timer);
		if (c->in)
			evbuffer_free(c->in);
		free(c);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&conns, c, entry);
	nconns++;
	reading(c, true);
	log_debug("connection from uid %u pid %d", (unsigned)peer->uid,
	    (int)peer->pid);
	return c;
}

static size_t
outmsg_cost(const struct outmsg *m)
{
	return sizeof(*m) + m->len + OUT_OVERHEAD;
}

/* What c's queue costs now: what is left of its messages, in full. */
static void
charge(struct conn *c, size_t add, size_t sub)
{
	c->outbytes += add;
	c->outbytes -= sub;
	out_total += add;
	out_total -= sub;
	out_freed += sub;
}

/* Queued output of every connection of uid. */
static size_t
uid_outbytes(uid_t uid)
{
	struct conn *c;
	size_t n = 0;

	TAILQ_FOREACH(c, &conns, entry)
	if (c->peer.uid == uid)
		n += c->outbytes;
	return n;
}

/* c paused for a shared cap, or no longer. */
static void
set_stalled(struct conn *c, bool stalled)
{
	if (c->stalled == stalled)
		return;
	c->stalled = stalled;
	nstalled += stalled ? 1 : -1;
	if (stalled)
		out_stalls++;
}

/* Whether c must stop reading: its own cap, its uid's, everyone's. */
static bool
out_full(struct conn *c)
{
	if (c->outbytes > portd_cfg.max_output)
		return true;
	if (c->outbytes <= OUT_QUIET)
		return false;
	if (out_total > portd_cfg.max_output_total ||
	    uid_outbytes(c->peer.uid) > portd_cfg.max_output_per_uid) {
		set_stalled(c, true);
		return true;
	}
	return false;
}

/* Whether c may read again: half of each cap it was paused for. */
static bool
out_room(struct conn *c)
{
	if (c->outbytes > portd_cfg.max_output / 2)
		return false;
	if (c->stalled &&
	    (out_total > portd_cfg.max_output_total / 2 ||
	        uid_outbytes(c->peer.uid) > portd_cfg.max_output_per_uid / 2))
		return false;
	set_stalled(c, false);
	return true;
}

size_t
conn_queued_output(void)
{
	return out_total;
}

uint64_t
conn_output_stalls(void)
{
	return out_stalls;
}

/* Output was freed: give memory back after a flood, and wake the
 * connections paused for the shared caps. */
static void
out_released(void)
{
	struct timeval second = {1, 0};

	/* At most once a second, so a busy daemon does not trim per reply;
	 * closed connections' buffers are freed by then too. */
	if (out_freed >= TRIM_BYTES && trim_ev != NULL &&
	    !evtimer_pending(trim_ev, NULL))
		evtimer_add(trim_ev, &second);
	if (nstalled > 0 && resume_ev != NULL)
		event_active(resume_ev, EV_TIMEOUT, 0);
}

static void
trim_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	out_freed = 0;
#ifdef __GLIBC__
	malloc_trim(0); /* glibc keeps a flood's freed heap otherwise */
#endif
}

/* Paused connections, once output was freed: read those that may. */
static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c, *next;

	(void)fd;
	(void)what;
	(void)arg;
	for (c = TAILQ_FIRST(&conns); c != NULL && nstalled > 0; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->stalled && !c->dead)
			conn_flush(c);
	}
}

static void
outmsg_free(struct outmsg *m)
{
	for (int i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	free(m->buf);
	free(m);
}

static void
conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	event_free(c->rev);
	event_free(c->wev);
	event_free(c->timer);
	evbuffer_free(c->in);
	free(c);
}

void
conn_close(struct conn *c, const char *reason)
{
	struct outmsg *m;
	struct timeval zero = {0, 0};

	if (c == NULL || c->dead)
		return;
	log_debug("connection from uid %u pid %d closed: %s",
	    (unsigned)c->peer.uid, (int)c->peer.pid, reason);
	c->dead = true;
	TAILQ_REMOVE(&conns, c, entry);
	nconns--;
	event_del(c->rev);
	event_del(c->wev);
	event_del(c->timer);
	while ((m = TAILQ_FIRST(&c->out)) != NULL) {
		TAILQ_REMOVE(&c->out, m, entry);
		charge(c, 0, outmsg_cost(m) - m->off);
		outmsg_free(m);
	}
	set_stalled(c, false);
	out_released();
	close(c->peer.fd);
	c->peer.fd = -1;
	lease_end_conn(c);
	if (on_free != NULL)
		on_free();
	/* Callers may still hold c on their stack: free it from the loop. */
	if (event_base_once(
	        portd_base, -1, EV_TIMEOUT, conn_free_cb, c, &zero) == -1)
		log_warnx("cannot schedule a connection's release; leaking it");
}

void
conn_close_all(void)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&conns)) != NULL)
		conn_close(c, "shutting down");
	if (resume_ev != NULL) {
		event_free(resume_ev);
		resume_ev = NULL;
	}
	if (trim_ev != NULL) {
		event_free(trim_ev);
		trim_ev = NULL;
	}
}

/* Send one error line and close once it is flushed. */
static void __attribute__((format(printf, 3, 4)))
conn_fail(struct conn *c, enum proto_errcode code, const char *fmt, ...)
{
	struct proto_error err = {.code = code};
	json_object *r;
	char *text;
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err.message, sizeof(err.message), fmt, ap);
	va_end(ap);
	r = proto_reply_error(NULL, &err);
	if (r != NULL && (text = proto_serialize(r, &len)) != NULL)
		conn_reply(c, text, len, NULL, 0);
	json_object_put(r);
	c->draining = true;
	reading(c, false);
	evbuffer_drain(c->in, evbuffer_get_length(c->in));
	timer_arm(c, portd_cfg.request_timeout_ms);
	conn_flush(c);
}

/* Handle every complete line in the input buffer. */
static void
conn_process(struct conn *c)
{
	struct evbuffer_ptr p;
	size_t eol;
	char *line;
	bool handled = false;

	while (!c->dead && !c->draining) {
		p = evbuffer_search_eol(c->in, NULL, &eol, EVBUFFER_EOL_LF);
		if (p.pos == -1)
			break;
		if ((size_t)p.pos > PROTO_MAX_LINE) {
			conn_fail(c, PROTO_E_REQUEST_TOO_LARGE,
			    "request line exceeds %d bytes", PROTO_MAX_LINE);
			return;
		}
		if ((line = malloc((size_t)p.pos + 1)) == NULL) {
			conn_close(c, "out of memory");
			return;
		}
		evbuffer_remove(c->in, line, (size_t)p.pos);
		evbuffer_drain(c->in, 1);
		line[p.pos] = '\0';
		request_handle(c, line, (size_t)p.pos);
		free(line);
		handled = true;
		/* A pipelining client that does not read waits here. */
		if (out_full(c))
			break;
	}
	if (c->dead || c->draining)
		return;
	if (evbuffer_get_length(c->in) > PROTO_MAX_LINE) {
		conn_fail(c, PROTO_E_REQUEST_TOO_LARGE,
		    "request line exceeds %d bytes", PROTO_MAX_LINE);
		return;
	}
	if (c->eof) {
		/* Half-closed: the rest of the input waits until the
		 * client has read enough; the deadline counts from the
		 * last progress (conn_write_cb), not from the EOF. */
		if (out_full(c)) {
			timer_arm(c, portd_cfg.request_timeout_ms);
			return;
		}
		/* Every complete request is answered; a partial one left
		 * can never end. Close once the replies are out. */
		evbuffer_drain(c->in, evbuffer_get_length(c->in));
		c->draining = true;
		timer_arm(c, portd_cfg.request_timeout_ms);
		conn_flush(c);
		return;
	}
	/* Deadline: from the first byte of a request to its '\n'. */
	if (out_full(c)) {
		reading(c, false);
		timer_arm(c, portd_cfg.request_timeout_ms);
	} else if (evbuffer_get_length(c->in) > 0) {
		/* A request that began after one we just handled gets a
		 * deadline of its own, not what is left of the last one's. */
		if (handled || !evtimer_pending(c->timer, NULL))
			timer_arm(c, portd_cfg.request_timeout_ms);
	} else
		evtimer_del(c->timer);
}

/*
 * One read(2) straight into the input buffer's free space. evbuffer_read
 * asks the kernel first how much is waiting (ioctl FIONREAD), a second
 * system call on every request; a request line is small, and whatever
 * does not fit this read is there for the next. Returns what read does.
 */
static ssize_t
conn_read(struct conn *c)
{
	struct evbuffer_iovec v;
	ssize_t n;

	if (evbuffer_reserve_space(c->in, READ_CHUNK, &v, 1) < 1) {
		errno = ENOMEM;
		return -1;
	}
	if (v.iov_len > READ_CHUNK)
		v.iov_len = READ_CHUNK;
	n = read(c->peer.fd, v.iov_base, v.iov_len);
	if (n > 0) {
		v.iov_len = (size_t)n;
		if (evbuffer_commit_space(c->in, &v, 1) == -1) {
			errno = ENOMEM;
			return -1;
		}
	}
	return n;
}

static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	ssize_t n;

	(void)fd;
	(void)what;
	n = conn_read(c);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		conn_close(c, "read error");
		return;
	}
	if (n == 0) {
		/* Half-close: answer the complete requests, then go. */
		reading(c, false);
		c->eof = true;
		conn_process(c);
		return;
	}
	conn_process(c);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->draining)
		conn_close(c, "could not deliver the last reply in time");
	else if (c->stalled && TAILQ_EMPTY(&c->out))
		timer_arm(c, portd_cfg.request_timeout_ms); /* others' output */
	else if (c->outbytes > portd_cfg.max_output || c->stalled)
		conn_close(c, "client does not read its replies");
	else {
		conn_fail(c, PROTO_E_BAD_REQUEST,
		    "request not completed within the deadline");
	}
}

/* One sendmsg of msg to c's client (or the fault injected there). */
static ssize_t
out_send(struct conn *c, struct msghdr *msg)
{
	int f;

	if ((f = FAULT(SENDMSG)) > 0) {
		errno = f;
		return -1;
	}
	if (f == FAULT_SHORT && msg->msg_iov[0].iov_len > 1)
		msg->msg_iov[0].iov_len /= 2;
	return sendmsg(c->peer.fd, msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* A send failed for good (not EAGAIN): the client is gone. */
static void
out_failed(struct conn *c)
{
	log_debug("send to uid %u: %s", (unsigned)c->peer.uid, strerror(errno));
	conn_close(c, "write error");
}

/* Write what the socket takes. Returns -1 if the conn was closed. */
static int
conn_write(struct conn *c)
{
	struct outmsg *m;
	size_t before = out_freed;

	while ((m = TAILQ_FIRST(&c->out)) != NULL) {
		struct iovec iov = {
		    .iov_base = m->buf + m->off, .iov_len = m->len - m->off};
		union {
			char buf[CMSG_SPACE(sizeof(int) * PROTO_MAX_SOCKETS)];
			struct cmsghdr align;
		} cbuf;
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n;

		if (m->nfds > 0) {
			struct cmsghdr *cm;
			size_t fdlen = sizeof(int) * (size_t)m->nfds;

			memset(&cbuf, 0, sizeof(cbuf));
			msg.msg_control = cbuf.buf;
			msg.msg_controllen = CMSG_SPACE(fdlen);
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(fdlen);
			memcpy(CMSG_DATA(cm), m->fds, fdlen);
		}
		n = out_send(c, &msg);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			out_failed(c);
			return -1; /* conn_close released its output */
		}
		/* The fds went with the first byte; the kernel has them. */
		for (int i = 0; i < m->nfds; i++)
			close(m->fds[i]);
		m->nfds = 0;
		m->off += (size_t)n;
		charge(c, 0, (size_t)n);
		if (m->off < m->len)
			break;
		TAILQ_REMOVE(&c->out, m, entry);
		charge(c, 0, outmsg_cost(m) - m->len);
		outmsg_free(m);
	}
	/* Only on progress: a paused connection woken for nothing must not
	 * wake the others again, or the loop would spin. */
	if (out_freed != before)
		out_released();
	return 0;
}

static void
conn_flush(struct conn *c)
{
	if (c->dead || conn_write(c) == -1)
		return;
	if (TAILQ_EMPTY(&c->out)) {
		event_del(c->wev);
		if (c->draining) {
			conn_close(c, "closed after the last reply");
			return;
		}
	} else
		event_add(c->wev, NULL);
	/* Back-pressure: read again once the client caught up. */
	if (!c->draining && !c->reading && out_room(c)) {
		if (!c->eof)
			reading(c, true);
		evtimer_del(c->timer);
		conn_process(c);
	}
}

static void
conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	/* The client reads: progress, so the deadline starts again. */
	if (c->draining || c->eof || c->stalled ||
	    c->outbytes > portd_cfg.max_output / 2)
		timer_arm(c, portd_cfg.request_timeout_ms);
	conn_flush(c);
}

int
conn_reply(struct conn *c, char *text, size_t len, int *fds, int nfds)
{
	struct outmsg *m;
	size_t sent = 0;

	if (!c->dead && nfds == 0 && TAILQ_EMPTY(&c->out) && !c->draining) {
		/* Nothing queued before it: send the line now. Sent whole, as
		 * a reply almost always is, it never enters the queue; in
		 * part, the rest is queued. */
		struct iovec iov = {.iov_base = text, .iov_len = len};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n = out_send(c, &msg);

		if (n == (ssize_t)len) {
			free(text);
			return 0;
		}
		if (n == -1 && errno != EAGAIN && errno != EINTR) {
			free(text);
			out_failed(c);
			return 0;
		}
		sent = n > 0 ? (size_t)n : 0;
	}
	if (c->dead || (m = calloc(1, sizeof(*m))) == NULL) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		free(text);
		return -1;
	}
	m->buf = text;
	m->len = len;
	m->off = sent;
	if (nfds > 0) {
		memcpy(m->fds, fds, sizeof(int) * (size_t)nfds);
		c->fd_replies++;
	}
	m->nfds = nfds;
	TAILQ_INSERT_TAIL(&c->out, m, entry);
	charge(c, outmsg_cost(m) - sent, 0);
	if (!c->draining)
		conn_flush(c);
	return 0;
}

bool
conn_fd_budget(struct conn *c)
{
	int unread = 0;

	/* Descriptors in flight are charged to portd's uid; a client that
	 * never reads could make sendmsg fail for everyone. Once the
	 * socket's send queue is empty the client has read them all. */
	if (TAILQ_EMPTY(&c->out) && ioctl(c->peer.fd, SIOCOUTQ, &unread) == 0 &&
	    unread == 0)
		c->fd_replies = 0;
	return c->fd_replies < portd_cfg.max_fd_replies;
}
