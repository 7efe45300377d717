/*
 * libportd internals: the module map of the library. Nothing here is
 * exported; the public contract is portd.h.
 */
#ifndef PORTD_CLIENT_H
#define PORTD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "proto.h"

struct portd;
struct portd_lease;
struct portd_lease_request;

#define PORTD_PUBLIC __attribute__((visibility("default")))

/*
 * Longest reply line we accept. Larger than a request line (PROTO_MAX_LINE)
 * because a list of many leases is long.
 */
#define CLIENT_MAX_REPLY (16 * 1024 * 1024)
/* Most fds one reply may carry; one cmsg buffer holds the kernel's max. */
#define CLIENT_MAX_FDS 253

/* io.c: one connection, blocking calls with deadlines. */
struct io {
	int fd;                  /* -1 when closed */
	char *buf;               /* received bytes not yet returned */
	size_t len;              /* bytes in buf */
	size_t size;             /* allocated */
	int fds[CLIENT_MAX_FDS]; /* fds received with the current line */
	int nfds;
	bool ctrunc; /* the kernel dropped fds of the current line */
};

/* Deadline in ms on the monotonic clock from a timeout (< 0: none). */
int64_t io_deadline(int timeout_ms);
/* Connect a non-blocking socket to path. 0, or -errno. */
int io_connect(struct io *io, const char *path);
/* Send all of buf before deadline. 0 or a negative portd_error. */
int io_send(struct io *io, const char *buf, size_t len, int64_t deadline);
/*
 * Receive one line (without '\n') before deadline into *ret_line (points
 * into io->buf; valid until the next io call) and *ret_len. The fds that
 * came with it are in io->fds; the caller owns them and must reset nfds.
 * 0 or a negative portd_error.
 */
int io_recv_line(
    struct io *io, int64_t deadline, char **ret_line, size_t *ret_len);
/* Consume the line io_recv_line returned. */
void io_consume(struct io *io, size_t len);
/* Close every received fd not yet taken. */
void io_close_fds(struct io *io);
/* Room for the descriptors of one reply, aligned for cmsg. */
union io_cbuf {
	char buf[CMSG_SPACE(sizeof(int) * CLIENT_MAX_FDS)];
	struct cmsghdr align;
};
/*
 * One recvmsg(flags) into the free end of a growing buffer (*buf of *size
 * bytes, len used; grown to at least 4K of room first, a new one to first
 * bytes), the descriptors into cbuf through msg (its control fields set
 * here). Returns what recvmsg returns; -1 with ENOMEM when the buffer
 * cannot grow.
 */
ssize_t io_recvmsg(int fd, char **buf, size_t *size, size_t len, size_t first,
    union io_cbuf *cbuf, struct msghdr *msg, int flags);
void io_close(struct io *io);

/* spawn.c: where the daemon lives and how to start it. */

/*
 * Resolve the socket path: explicit, else $PORTD_SOCKET, else the per-user
 * default. *ret_is_default tells whether it is the per-user default.
 * 0 or -ENAMETOOLONG.
 */
int spawn_socket_path(
    const char *explicit_path, char *buf, size_t size, bool *ret_is_default);
/*
 * Start portd for the user socket path in the background, detached (its
 * own session, reparented to init), stdin and stdout on /dev/null, stderr
 * appended to portd.log beside the socket when that folder is ours.
 * Returns 0 once the launcher ran, or -errno.
 */
int spawn_daemon(const char *daemon_path, const char *socket_path);

/* portd.c: what the event-loop interface (async.c) shares with the
 * blocking one. Each records its failure on h like the public calls. */
int client_fail(struct portd *h, int err, const char *msg);
struct io *client_io(struct portd *h);
int64_t client_next_id(struct portd *h);
/* The lease request for r, "id" not yet added. */
int client_lease_request(
    struct portd *h, const struct portd_lease_request *r, json_object **ret);
/* The error code (and message on h) of a refusal reply. */
/* renew, claim and release by id, or release by port (id NULL). */
int client_id_request(struct portd *h, enum proto_op op, const char *id,
    uint16_t port, int64_t ttl, json_object **ret);
int client_refusal(struct portd *h, json_object *reply);
/* The lease of an ok reply. */
int client_reply_lease(
    struct portd *h, json_object *reply, struct portd_lease **ret);
/* Move the fds in client_io(h)->fds into l's sockets, matched against the
 * reply's "sockets" array; every fd is closed on failure. */
int client_lease_sockets(
    struct portd *h, json_object *reply, struct portd_lease *l);

#endif
