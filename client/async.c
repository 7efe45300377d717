/*
 * libportd's event-loop interface (portd.h, "portd_async_"): requests
 * queued and pipelined on one non-blocking connection, replies matched to
 * them in order, callbacks run from portd_async_process(). The blocking
 * handle underneath keeps the error text and builds and decodes messages,
 * so both interfaces speak the protocol the same way.
 *
 * Sockets handed over with a reply arrive with the reply's first byte (the
 * daemon attaches them to it, one reply a sendmsg), so each batch of fds
 * is kept with the stream offset where its reply begins and given to the
 * line that begins there.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "portd.h"
#include "proto.h"

enum kind { K_LEASE, K_LEASE_FD, K_LEASE_OP, K_RELEASE };

struct pending {
	int64_t id;
	enum kind kind;
	portd_async_cb cb;
	void *arg;
	struct pending *next;
};

/* fds that came with the bytes at stream offset off. */
struct fdbatch {
	uint64_t off;
	int n;
	int fds[CLIENT_MAX_FDS];
	struct fdbatch *next;
};

struct portd_async {
	struct portd *h; /* the connection; error text; message codec */
	int fd;          /* -1 once broken */
	char *out;       /* requests not yet sent */
	size_t outlen, outoff, outsize;
	char *in; /* bytes received, not yet a whole line */
	size_t inlen, insize;
	uint64_t inbase; /* stream offset of in[0] */
	struct fdbatch *batches, **batches_tail;
	struct pending *head, **tail;
	size_t npending;
	int depth;       /* callbacks running */
	bool free_asked; /* portd_async_free from a callback */
	void (*watch)(struct portd_async *, int, void *);
	void *watch_arg;
	int watched; /* events last told to watch */
};

static void
notify(struct portd_async *a)
{
	int ev = portd_async_events(a);

	if (a->watch != NULL && ev != a->watched) {
		a->watched = ev;
		a->watch(a, ev, a->watch_arg);
	}
	a->watched = ev;
}

static void
close_batch(struct fdbatch *b)
{
	for (int i = 0; i < b->n; i++)
		close(b->fds[i]);
	free(b);
}

static void
run_cb(struct portd_async *a, struct pending *p, struct portd_async_reply *r)
{
	if (p->cb != NULL) {
		a->depth++;
		p->cb(a, r, p->arg);
		a->depth--;
	} else
		portd_lease_free(r->lease);
	free(p);
}

/* Break the connection: every pending callback hears err. */
static int
fail_all(struct portd_async *a, int err, const char *msg)
{
	struct portd_async_reply r = {.err = err};
	struct pending *p;

	client_fail(a->h, err, msg);
	if (a->fd != -1) {
		/* Let the loop drop its watches while the fd still exists. */
		if (a->watch != NULL && a->watched != 0) {
			a->watched = 0;
			a->watch(a, 0, a->watch_arg);
		}
		io_close(client_io(a->h));
		a->fd = -1;
	}
	while (a->batches != NULL) {
		struct fdbatch *b = a->batches;
		a->batches = b->next;
		close_batch(b);
	}
	a->batches_tail = &a->batches;
	a->outlen = a->outoff = 0;
	while ((p = a->head) != NULL) {
		a->head = p->next;
		if (a->head == NULL)
			a->tail = &a->head;
		a->npending--;
		r.errmsg = portd_errmsg(a->h);
		run_cb(a, p, &r);
	}
	return err;
}

PORTD_PUBLIC int
portd_async_connect(
    const struct portd_options *opts, struct portd_async **ret_async)
{
	struct portd_async *a;
	struct portd *h;
	struct io *io;
	int rc;

	if (ret_async == NULL)
		return PORTD_E_INVALID;
	if ((rc = portd_connect(opts, &h)) < 0)
		return rc;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		portd_close(h);
		return PORTD_E_NOMEM;
	}
	io = client_io(h);
	a->h = h;
	a->fd = io->fd;
	a->tail = &a->head;
	a->batches_tail = &a->batches;
	/* Nothing follows hello's reply yet; keep whatever did anyway. */
	if (io->len > 0) {
		if ((a->in = malloc(io->len)) == NULL) {
			portd_close(h);
			free(a);
			return PORTD_E_NOMEM;
		}
		memcpy(a->in, io->buf, io->len);
		a->inlen = a->insize = io->len;
		io->len = 0;
	}
	a->watched = portd_async_events(a);
	*ret_async = a;
	return 0;
}

static void
destroy(struct portd_async *a)
{
	fail_all(a, PORTD_E_IO, "closed before the reply came");
	portd_close(a->h);
	free(a->out);
	free(a->in);
	free(a);
}

PORTD_PUBLIC void
portd_async_free(struct portd_async *a)
{
	if (a == NULL)
		return;
	if (a->depth > 0) {
		a->free_asked = true;
		return;
	}
	destroy(a);
}

PORTD_PUBLIC int
portd_async_fd(const struct portd_async *a)
{
	return a != NULL ? a->fd : -1;
}

PORTD_PUBLIC int
portd_async_events(const struct portd_async *a)
{
	if (a == NULL || a->fd == -1)
		return 0;
	return PORTD_ASYNC_READ |
	       (a->outlen > a->outoff ? PORTD_ASYNC_WRITE : 0);
}

PORTD_PUBLIC void
portd_async_set_watch(struct portd_async *a,
    void (*fn)(struct portd_async *, int, void *), void *arg)
{
	if (a == NULL)
		return;
	a->watch = fn;
	a->watch_arg = arg;
	a->watched = portd_async_events(a);
}

PORTD_PUBLIC size_t
portd_async_pending(const struct portd_async *a)
{
	return a != NULL ? a->npending : 0;
}

PORTD_PUBLIC const char *
portd_async_errmsg(const struct portd_async *a)
{
	return a != NULL ? portd_errmsg(a->h) : "";
}

/* Queue req (consumed) with an id; the callback waits for its reply. */
static int
submit(struct portd_async *a, json_object *req, enum kind kind,
    portd_async_cb cb, void *arg)
{
	struct pending *p;
	char *line;
	size_t len;

	if (req == NULL)
		return client_fail(a->h, PORTD_E_NOMEM, "out of memory");
	if (a->fd == -1) {
		json_object_put(req);
		return client_fail(a->h, PORTD_E_IO,
		    "connection closed after an earlier error");
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		json_object_put(req);
		return client_fail(a->h, PORTD_E_NOMEM, "out of memory");
	}
	p->id = client_next_id(a->h);
	json_object_object_add(req, "id", json_object_new_int64(p->id));
	line = proto_serialize(req, &len);
	json_object_put(req);
	if (line == NULL) {
		free(p);
		return client_fail(a->h, PORTD_E_NOMEM, "out of memory");
	}
	if (a->outsize - a->outlen < len) {
		size_t size = a->outsize ? a->outsize : 4096;
		char *q;

		/* Sent bytes are dropped before the buffer grows. */
		if (a->outoff > 0) {
			memmove(
			    a->out, a->out + a->outoff, a->outlen - a->outoff);
			a->outlen -= a->outoff;
			a->outoff = 0;
		}
		while (size - a->outlen < len)
			size *= 2;
		if (size != a->outsize) {
			if ((q = realloc(a->out, size)) == NULL) {
				free(line);
				free(p);
				return client_fail(
				    a->h, PORTD_E_NOMEM, "out of memory");
			}
			a->out = q;
			a->outsize = size;
		}
	}
	memcpy(a->out + a->outlen, line, len);
	a->outlen += len;
	free(line);
	p->kind = kind;
	p->cb = cb;
	p->arg = arg;
	*a->tail = p;
	a->tail = &p->next;
	a->npending++;
	client_fail(a->h, 0, "");
	notify(a);
	return 0;
}

PORTD_PUBLIC int
portd_async_lease(struct portd_async *a, const struct portd_lease_request *req,
    portd_async_cb cb, void *arg)
{
	static const struct portd_lease_request defaults = {0};
	json_object *o;
	int rc;

	if (a == NULL)
		return PORTD_E_INVALID;
	if (req == NULL)
		req = &defaults;
	if ((rc = client_lease_request(a->h, req, &o)) < 0)
		return rc;
	return submit(a, o, req->fd ? K_LEASE_FD : K_LEASE, cb, arg);
}

/* renew, claim and release by id or by port: one request, one kind. */
static int
submit_id(struct portd_async *a, enum proto_op op, const char *id,
    uint16_t port, int64_t ttl, enum kind kind, portd_async_cb cb, void *arg)
{
	json_object *o;
	int rc;

	if (a == NULL)
		return PORTD_E_INVALID;
	if ((rc = client_id_request(a->h, op, id, port, ttl, &o)) < 0)
		return rc;
	return submit(a, o, kind, cb, arg);
}

PORTD_PUBLIC int
portd_async_renew(struct portd_async *a, const char *id, int64_t ttl,
    portd_async_cb cb, void *arg)
{
	return submit_id(a, PROTO_OP_RENEW, id, 0, ttl, K_LEASE_OP, cb, arg);
}

PORTD_PUBLIC int
portd_async_claim(
    struct portd_async *a, const char *id, portd_async_cb cb, void *arg)
{
	return submit_id(a, PROTO_OP_CLAIM, id, 0, 0, K_LEASE_OP, cb, arg);
}

PORTD_PUBLIC int
portd_async_release(
    struct portd_async *a, const char *id, portd_async_cb cb, void *arg)
{
	return submit_id(a, PROTO_OP_RELEASE, id, 0, 0, K_RELEASE, cb, arg);
}

PORTD_PUBLIC int
portd_async_release_port(
    struct portd_async *a, uint16_t port, portd_async_cb cb, void *arg)
{
	if (a != NULL && port == 0)
		return client_fail(a->h, PORTD_E_INVALID, "invalid port 0");
	return submit_id(
	    a, PROTO_OP_RELEASE, NULL, port, 0, K_RELEASE, cb, arg);
}

/* Send what the socket takes. 0, or a negative error. */
static int
do_write(struct portd_async *a)
{
	while (a->outoff < a->outlen) {
		ssize_t n = send(a->fd, a->out + a->outoff,
		    a->outlen - a->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			a->outoff += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return 0;
		return fail_all(a, PORTD_E_IO, "connection to the daemon lost");
	}
	a->outlen = a->outoff = 0;
	return 0;
}

/* Read what is there. 1 at EOF, 0, or a negative error. */
static int
do_read(struct portd_async *a)
{
	for (;;) {
		union io_cbuf cbuf;
		struct msghdr msg = {0};
		struct fdbatch *b = NULL;
		struct cmsghdr *c;
		ssize_t n;

		if (a->inlen > CLIENT_MAX_REPLY)
			return fail_all(a, PORTD_E_PROTOCOL,
			    "malformed reply from the daemon: line too long");
		n = io_recvmsg(a->fd, &a->in, &a->insize, a->inlen, 16384,
		    &cbuf, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n == -1 && errno == ENOMEM)
			return fail_all(a, PORTD_E_NOMEM, "out of memory");
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return 0;
		if (n == -1)
			return fail_all(
			    a, PORTD_E_IO, "connection to the daemon lost");
		for (c = CMSG_FIRSTHDR(&msg); c != NULL;
		     c = CMSG_NXTHDR(&msg, c)) {
			size_t k;

			if (c->cmsg_level != SOL_SOCKET ||
			    c->cmsg_type != SCM_RIGHTS ||
			    c->cmsg_len < CMSG_LEN(0))
				continue;
			k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			if (b == NULL && (b = calloc(1, sizeof(*b))) == NULL) {
				/* Close what came, then give up. */
				for (size_t i = 0; i < k; i++) {
					int fd;
					memcpy(&fd,
					    CMSG_DATA(c) + i * sizeof(int),
					    sizeof(fd));
					close(fd);
				}
				return fail_all(
				    a, PORTD_E_NOMEM, "out of memory");
			}
			for (size_t i = 0; i < k; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int),
				    sizeof(fd));
				if (b->n < CLIENT_MAX_FDS)
					b->fds[b->n++] = fd;
				else
					close(fd);
			}
		}
		if (b != NULL) {
			/* The kernel ends a read with the chunk that carried
			 * fds, and glues earlier fd-less bytes before it: the
			 * fds belong to the last line that starts in it. */
			const char *nl = n > 1 ? memrchr(a->in + a->inlen, '\n',
			                             (size_t)n - 1)
			                       : NULL;
			b->off =
			    a->inbase + a->inlen +
			    (nl ? (uint64_t)(nl - (a->in + a->inlen)) + 1 : 0);
			*a->batches_tail = b;
			a->batches_tail = &b->next;
		}
		if (msg.msg_flags & MSG_CTRUNC)
			return fail_all(a, PORTD_E_IO,
			    "the kernel dropped sockets the daemon sent (out "
			    "of file descriptors?)");
		if (n == 0)
			return 1;
		a->inlen += (size_t)n;
	}
}

/* Move the fds of the line at stream offsets [from, to] into io; close
 * any that came before it (they had no line). */
static void
take_fds(struct portd_async *a, uint64_t from, uint64_t to, struct io *io)
{
	struct fdbatch *b;

	while ((b = a->batches) != NULL && b->off <= to) {
		a->batches = b->next;
		if (a->batches == NULL)
			a->batches_tail = &a->batches;
		for (int i = 0; i < b->n; i++) {
			if (b->off >= from && io->nfds < CLIENT_MAX_FDS)
				io->fds[io->nfds++] = b->fds[i];
			else
				close(b->fds[i]);
		}
		b->n = 0;
		free(b);
	}
}

/* One reply line: match it to the oldest request and run its callback.
 * 0, or a negative error that broke the connection. */
static int
dispatch(struct portd_async *a, const char *line, size_t len)
{
	struct portd_async_reply r = {0};
	struct proto_error perr = {0};
	struct io *io = client_io(a->h);
	struct pending *p = a->head;
	json_object *reply, *v, *arr;

	reply = proto_parse_object_max(line, len, CLIENT_MAX_REPLY, &perr);
	if (p == NULL || reply == NULL ||
	    !json_object_object_get_ex(reply, "id", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) != p->id ||
	    !json_object_object_get_ex(reply, "ok", &v) ||
	    !json_object_is_type(v, json_type_boolean)) {
		json_object_put(reply);
		io_close_fds(io);
		return fail_all(
		    a, PORTD_E_PROTOCOL, "malformed reply from the daemon");
	}
	a->head = p->next;
	if (a->head == NULL)
		a->tail = &a->head;
	a->npending--;
	client_fail(a->h, 0, "");
	if (!json_object_get_boolean(v))
		r.err = client_refusal(a->h, reply);
	else if (p->kind == K_RELEASE) {
		if (!json_object_object_get_ex(reply, "released", &arr) ||
		    !json_object_is_type(arr, json_type_array))
			r.err = client_fail(a->h, PORTD_E_PROTOCOL,
			    "release: reply without ports");
		else
			r.released = (int)json_object_array_length(arr);
	} else if ((r.err = client_reply_lease(a->h, reply, &r.lease)) == 0 &&
	           p->kind == K_LEASE_FD &&
	           (r.err = client_lease_sockets(a->h, reply, r.lease)) < 0) {
		/* Do not leave behind a lease whose sockets went astray. */
		portd_async_release(a, r.lease->id, NULL, NULL);
		client_fail(a->h, r.err, "lease: sockets not received");
		portd_lease_free(r.lease);
		r.lease = NULL;
	}
	io_close_fds(io); /* any the request did not ask for */
	json_object_put(reply);
	r.errmsg = portd_errmsg(a->h);
	run_cb(a, p, &r);
	return 0;
}

PORTD_PUBLIC int
portd_async_process(struct portd_async *a, int events)
{
	size_t start = 0;
	int rc = 0, eof = 0;
	char *nl;

	if (a == NULL || a->depth > 0)
		return PORTD_E_INVALID;
	if (a->fd == -1)
		return client_fail(a->h, PORTD_E_IO,
		    "connection closed after an earlier error");
	a->depth++; /* a free from a callback waits for us */
	if (events & PORTD_ASYNC_WRITE)
		rc = do_write(a);
	if (rc == 0 && (events & PORTD_ASYNC_READ))
		eof = rc = do_read(a);
	while (rc >= 0 && a->fd != -1 && !a->free_asked && a->inlen > start &&
	       (nl = memchr(a->in + start, '\n', a->inlen - start)) != NULL) {
		size_t len = (size_t)(nl - (a->in + start));
		struct io *io = client_io(a->h);

		take_fds(a, a->inbase + start, a->inbase + start + len, io);
		rc = dispatch(a, a->in + start, len);
		start += len + 1;
	}
	if (a->fd != -1 && start > 0) {
		memmove(a->in, a->in + start, a->inlen - start);
		a->inlen -= start;
		a->inbase += start;
	}
	if (eof == 1 && a->fd != -1 && !a->free_asked)
		rc =
		    fail_all(a, PORTD_E_IO, "the daemon closed the connection");
	else if (rc > 0)
		rc = 0;
	a->depth--;
	if (a->free_asked) {
		destroy(a);
		return rc;
	}
	notify(a);
	return rc;
}
