/*
 * libportd: the client library of portd, the port-lease daemon.
 *
 * A lease is a set of TCP and/or UDP ports that the daemon holds (keeps
 * bound) for you until the lease ends, so no other program can take them
 * between the moment you learn the number and the moment you bind it.
 * See portd(8) for the daemon and libportd(3) for a walk-through.
 *
 * Conventions, true of every function below unless it says otherwise:
 *
 *  - Errors: functions return 0 (or a documented non-negative value) on
 *    success and a negative enum portd_error code on failure. Codes from
 *    PORTD_E_BAD_REQUEST to PORTD_E_INTERNAL are the daemon's refusals;
 *    portd_errmsg() then holds the daemon's message text. The others are
 *    local failures; portd_errmsg() describes them too.
 *  - Output parameters are named ret_... and are left untouched on failure.
 *  - Blocking: every call that talks to the daemon blocks until the reply
 *    arrives or the handle's timeout passes (poll(2); EINTR is retried).
 *  - The library never logs, never exits, never raises SIGPIPE (it writes
 *    with MSG_NOSIGNAL) and creates every descriptor with O_CLOEXEC.
 *  - Thread safety: a handle is not thread-safe; use one handle per thread
 *    (or lock around it). Different handles are independent.
 *    portd_pick_port() is thread-safe.
 *  - fork(): a child inherits the handle's socket. Leases of scope session
 *    then live until both processes close it. Do not use one handle from
 *    two processes: their replies would interleave.
 *  - After a local failure that may have desynchronized the connection
 *    (PORTD_E_TIMEOUT, PORTD_E_IO, PORTD_E_PROTOCOL) the handle is closed
 *    inside: every later call fails with PORTD_E_IO. Session leases of that
 *    connection end. Close it and connect again.
 */
#ifndef PORTD_H
#define PORTD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PORTD_PROTOCOL_VERSION   1   /* the wire protocol this library speaks */
#define PORTD_MAX_PORTS          64  /* ports in one lease */
#define PORTD_MAX_SOCKETS        128 /* sockets handed over with one lease */
#define PORTD_MAX_ID             64  /* bytes of a lease id */
#define PORTD_MAX_NAME           128 /* bytes of a lease name */
#define PORTD_DEFAULT_TIMEOUT_MS 5000
#define PORTD_AUTOSTART_WAIT_MS  2000

enum portd_error {
	PORTD_OK = 0,
	/* Refusals by the daemon (the protocol's error codes). */
	PORTD_E_BAD_REQUEST = -1,
	PORTD_E_UNKNOWN_OP = -2,
	PORTD_E_REQUEST_TOO_LARGE = -3,
	PORTD_E_NO_PORTS = -4,
	PORTD_E_PORT_UNAVAILABLE = -5,
	PORTD_E_QUOTA_EXCEEDED = -6,
	PORTD_E_NOT_FOUND = -7,
	PORTD_E_FORBIDDEN = -8,
	PORTD_E_RESOURCE_EXHAUSTED = -9,
	PORTD_E_INTERNAL = -10,
	/* Local failures. */
	PORTD_E_NO_DAEMON = -100, /* nothing answers on the socket */
	PORTD_E_TIMEOUT = -101,   /* no complete reply within the timeout */
	PORTD_E_PROTOCOL = -102,  /* the reply broke the protocol */
	PORTD_E_VERSION = -103,   /* the daemon does not speak our version */
	PORTD_E_IO = -104,        /* connection lost, or a system call failed */
	PORTD_E_NOMEM = -105,     /* out of memory */
	PORTD_E_INVALID = -106,   /* a bad argument; nothing was sent */
};

/* All enums: 0 is "let the daemon decide", so zeroed requests are valid. */
enum portd_proto {
	PORTD_PROTO_DEFAULT = 0, /* tcp */
	PORTD_PROTO_TCP = 1,
	PORTD_PROTO_UDP = 2,
	PORTD_PROTO_BOTH = 3, /* the same number for TCP and UDP */
};

enum portd_family {
	PORTD_FAMILY_DEFAULT = 0, /* dual */
	PORTD_FAMILY_DUAL,        /* IPv4 and IPv6 wildcards */
	PORTD_FAMILY_IPV4,
	PORTD_FAMILY_IPV6,
};

enum portd_hold {
	PORTD_HOLD_DEFAULT = 0, /* shared for tcp, exclusive otherwise */
	PORTD_HOLD_SHARED,      /* SO_REUSEADDR servers may co-bind */
	PORTD_HOLD_EXCLUSIVE,   /* nobody binds until claimed */
};

enum portd_scope {
	PORTD_SCOPE_DEFAULT = 0, /* ttl */
	PORTD_SCOPE_TTL,         /* ends when the TTL runs out */
	PORTD_SCOPE_SESSION,     /* ends with this connection */
	PORTD_SCOPE_PROCESS,     /* ends when the process (pid) exits */
};

enum portd_strategy {
	PORTD_STRATEGY_DEFAULT = 0, /* the daemon's configured strategy */
	PORTD_STRATEGY_POOL,        /* from the daemon's pool range */
	PORTD_STRATEGY_EPHEMERAL,   /* let the kernel pick (bind to 0) */
};

/* Options of portd_connect(). Zeroed fields mean the defaults. */
struct portd_options {
	/*
	 * API socket path, used alone. NULL: $PORTD_SOCKET if set and not
	 * empty (used alone), else the system socket /run/portd/portd.sock
	 * ($PORTD_SYSTEM_SOCKET when set) if a daemon answers there, else the
	 * per-user default $XDG_RUNTIME_DIR/portd/portd.sock, or
	 * /tmp/portd-$UID/portd.sock without XDG_RUNTIME_DIR.
	 */
	const char *socket;
	/* Per call, in ms: 0 = PORTD_DEFAULT_TIMEOUT_MS, < 0 = no limit. */
	int timeout_ms;
	/*
	 * Start a per-user portd in the background when nothing answers,
	 * then wait up to PORTD_AUTOSTART_WAIT_MS for it. Only done for the
	 * per-user default socket: never when the path came from .socket
	 * or $PORTD_SOCKET, and never when $PORTD_NO_AUTOSTART is "1".
	 */
	bool autostart;
	/*
	 * The portd binary to start. NULL: "portd" in $PATH, else the
	 * installed one (sbindir).
	 */
	const char *daemon_path;
	/* When not NULL, portd_connect() writes why it failed here. */
	char *errbuf;
	size_t errbuf_size;
};

/* What to lease. Zeroed fields take the daemon's defaults. */
struct portd_lease_request {
	unsigned count; /* ports, 1..PORTD_MAX_PORTS; 0 = 1 */
	enum portd_proto proto;
	enum portd_family family;
	uint16_t port;   /* a specific port; 0 = any */
	bool contiguous; /* ports p, p+1, ... */
	enum portd_hold hold;
	int64_t ttl; /* seconds; 0 = default (none for session) */
	enum portd_scope scope;
	pid_t pid;        /* process scope: pid to watch; 0 = caller */
	const char *name; /* label, <= PORTD_MAX_NAME printable; NULL */
	bool fd;          /* hand the bound sockets over */
	enum portd_strategy strategy;
};

/* A socket handed over with a lease (request.fd). */
struct portd_socket {
	int fd; /* owned by the lease; set to -1 to keep it past free */
	uint16_t port;
	enum portd_proto proto;   /* PORTD_PROTO_TCP or PORTD_PROTO_UDP */
	enum portd_family family; /* dual: one IPv6 socket, V6ONLY off */
};

/*
 * A lease as the daemon reports it. Allocated by the library, freed with
 * portd_lease_free(); fields may be added at the end in later versions.
 */
struct portd_lease {
	char id[PORTD_MAX_ID + 1]; /* opaque */
	size_t nports;
	uint16_t ports[PORTD_MAX_PORTS];
	enum portd_proto proto;
	enum portd_family family;
	bool ipv6; /* false: IPv4 only (a dual lease on a host without v6) */
	enum portd_scope scope;
	enum portd_hold hold;
	int64_t ttl;     /* seconds, -1 for none */
	int64_t expires; /* Unix time in ms, -1 for never */
	int64_t created; /* Unix time in ms */
	char name[PORTD_MAX_NAME + 1];
	uid_t owner_uid;
	pid_t owner_pid;
	bool held;       /* the daemon holds the sockets now */
	size_t nsockets; /* request.fd: in the order the daemon sent them */
	struct portd_socket *sockets;
	char *json; /* the lease object as one line of JSON */
	/* "held", "claimed" or "unheld" (restored, its port not bindable
	 * again yet; the daemon retries); "" from an older daemon. */
	char state[16];
	char reason[256]; /* why not held or reserved, else "" */
};

struct portd_counter {
	char name[64];
	int64_t value;
};

struct portd_setting {
	char name[64];
	char value[256]; /* durations in seconds, sizes in bytes */
};

/*
 * The daemon's status. Numbers the daemon did not send are -1. Freed with
 * portd_status_free().
 */
struct portd_status {
	int64_t version;  /* protocol version */
	char server[128]; /* name and version, e.g. "portd 0.1.0" */
	pid_t pid;
	int64_t uptime; /* seconds */
	int64_t leases, ports, sockets, connections;
	int64_t pool_lo, pool_hi, pool_size, pool_free;
	size_t ncounters;
	struct portd_counter *counters;
	char *json; /* the whole reply as one line of JSON */
	/* The effective configuration, by config file key ("quota",
	 * "max-ttl", ...), values as text ("" for none). */
	size_t nsettings;
	struct portd_setting *settings;
};

struct portd;

/*
 * Connect to the daemon and check that it speaks PORTD_PROTOCOL_VERSION
 * (hello). opts may be NULL for the defaults. On success *ret_handle is a
 * new handle, closed with portd_close(). Errors: PORTD_E_NO_DAEMON
 * (nothing answers; after the autostart wait when autostart applies),
 * PORTD_E_VERSION, PORTD_E_TIMEOUT, PORTD_E_IO, PORTD_E_PROTOCOL,
 * PORTD_E_NOMEM, PORTD_E_INVALID (path too long).
 */
int portd_connect(const struct portd_options *opts, struct portd **ret_handle);

/* Close the connection (ending its session leases) and free h. NULL-safe. */
void portd_close(struct portd *h);

/* The socket path this handle uses (or tried). Valid until portd_close. */
const char *portd_socket_path(const struct portd *h);

/*
 * Which step of the discovery order found the daemon (docs/protocol.md,
 * "Finding the daemon"): "explicit" (portd_options.socket), "PORTD_SOCKET",
 * "system" (a daemon answered on the system socket, or $PORTD_SYSTEM_SOCKET)
 * or "user" (the per-user socket, perhaps auto-started).
 */
const char *portd_socket_via(const struct portd *h);

/*
 * Who leases port for proto (TCP or UDP), as the daemon tells any user:
 * *ret_json is the reply line ("leased", and "lease" and "command" when
 * it is), malloc'd, freed by the caller. docs/protocol.md, op who.
 */
int portd_who(
    struct portd *h, uint16_t port, enum portd_proto proto, char **ret_json);

/*
 * Text of the last failure on h: the daemon's message for its refusals,
 * a description for local failures, "" when the last call succeeded.
 * Valid until the next call on h. NULL-safe (returns "").
 */
const char *portd_errmsg(const struct portd *h);

/*
 * Code name of an error: the daemon's code ("not_found", ...) for
 * refusals, "no_daemon", "timeout", "protocol", "version", "io",
 * "no_memory", "invalid" for local ones, "ok" for 0, "unknown" otherwise.
 */
const char *portd_error_name(int err);

/* A short English description of err; never NULL. */
const char *portd_strerror(int err);

/*
 * Lease ports. req may be NULL for one TCP port with every default. On
 * success *ret_lease is a new lease (portd_lease_free). With req->fd,
 * ret_lease->sockets holds the bound sockets, one fd each, owned by the
 * lease. If the sockets that arrive do not match what the daemon listed,
 * they are closed, the lease is released and the call fails with
 * PORTD_E_PROTOCOL (PORTD_E_IO when the kernel dropped some, for example
 * at RLIMIT_NOFILE).
 */
int portd_lease(struct portd *h, const struct portd_lease_request *req,
    struct portd_lease **ret_lease);

/*
 * Extend lease id by ttl seconds from now (ttl <= 0: by its own TTL).
 * ret_lease may be NULL; else it receives the updated lease.
 */
int portd_renew(struct portd *h, const char *id, int64_t ttl,
    struct portd_lease **ret_lease);

/*
 * Claim lease id: the daemon closes its sockets (the ports stay reserved)
 * so the owner can bind them itself. ret_lease may be NULL.
 */
int portd_claim(
    struct portd *h, const char *id, struct portd_lease **ret_lease);

/* End lease id. Returns the number of ports released (> 0). */
int portd_release(struct portd *h, const char *id);

/* End the lease that holds port. Returns the number of ports released. */
int portd_release_port(struct portd *h, uint16_t port);

/*
 * The caller's leases (every uid's with all, which only root may ask).
 * On success *ret_leases is an array of *ret_count leases (NULL when 0),
 * freed with portd_lease_list_free().
 */
int portd_list(struct portd *h, bool all, struct portd_lease **ret_leases,
    size_t *ret_count);

/* Status of the daemon; free with portd_status_free(). */
int portd_status(struct portd *h, struct portd_status **ret_status);

/*
 * The daemon's metrics in the Prometheus text format (what its HTTP
 * endpoint serves, if it has one). On success *ret_text is a malloc'd,
 * NUL-terminated string for the caller to free().
 */
int portd_metrics(struct portd *h, char **ret_text);

/*
 * Stop the daemon (root or the daemon's own uid only: PORTD_E_FORBIDDEN
 * otherwise). It stops as on SIGTERM: no lease ends, the next start
 * restores them. Waits, within the handle's timeout, until the daemon has
 * closed the connection; the handle is then closed (PORTD_E_IO on later
 * calls). Returns the daemon's pid; *ret_leases (may be NULL) receives
 * how many leases it kept.
 */
int portd_stop(struct portd *h, int64_t *ret_leases);

/* Free a lease: closes the fds still in sockets[] (not -1). NULL-safe. */
void portd_lease_free(struct portd_lease *lease);
/* Free an array from portd_list(). NULL-safe. */
void portd_lease_list_free(struct portd_lease *leases, size_t count);
void portd_status_free(struct portd_status *status);

/* Wire names: "tcp", "dual", "shared", "session", ... ("?" if unknown,
 * and for the DEFAULT values, which have no name). */
const char *portd_proto_name(enum portd_proto p);
const char *portd_family_name(enum portd_family f);
const char *portd_hold_name(enum portd_hold h);
const char *portd_scope_name(enum portd_scope s);
const char *portd_strategy_name(enum portd_strategy s);

/* The value of a wire name ("udp" -> PORTD_PROTO_UDP), or PORTD_E_INVALID
 * for a name the protocol does not know. */
int portd_proto_from_name(const char *name);
int portd_family_from_name(const char *name);
int portd_hold_from_name(const char *name);
int portd_scope_from_name(const char *name);
int portd_strategy_from_name(const char *name);

/*
 * For test code: lease one TCP port (hold shared, scope process: it ends
 * when the calling process exits) and return its number, or a negative
 * portd_error. The library opens a connection on first use (default
 * socket, autostart unless $PORTD_NO_AUTOSTART) and keeps it for later
 * calls; a forked child opens its own. Thread-safe. Bind the port with
 * SO_REUSEADDR: portd keeps holding it until the process exits.
 */
int portd_pick_port(void);

/*
 * Give back early a port from portd_pick_port() or portd_pick_port_proto()
 * (or any lease of the caller's uid that holds port): the lease ends and
 * the port returns to the pool. 0, or a negative portd_error
 * (PORTD_E_NOT_FOUND when no lease holds it). Thread-safe; uses the same
 * connection as portd_pick_port().
 */
int portd_return_port(uint16_t port);

/*
 * portd_pick_port() for another protocol: PORTD_PROTO_TCP is
 * portd_pick_port(); PORTD_PROTO_UDP and PORTD_PROTO_BOTH (one number
 * free for TCP and UDP) lease exclusively and claim at once, so the caller
 * can bind the port without SO_REUSEADDR: portd no longer holds the
 * sockets, but keeps the port reserved (never handed out again) until the
 * process exits or portd_return_port(). Between the claim and your bind
 * another program that binds that number explicitly could take it; for no
 * window at all use portd_pick_sockets(). Returns the port or a negative
 * portd_error (PORTD_E_INVALID for another proto).
 */
int portd_pick_port_proto(enum portd_proto proto);

/*
 * The one-call form with fd handoff: lease one port of proto (scope
 * process) and receive its bound sockets, dual-stack ([::], V6ONLY off).
 * *ret_tcp_fd receives the TCP socket (bound, not listening: call
 * listen()) for PORTD_PROTO_TCP and PORTD_PROTO_BOTH, *ret_udp_fd the UDP
 * socket for PORTD_PROTO_UDP and PORTD_PROTO_BOTH; the other is set to
 * -1. Either pointer may be NULL when its protocol is not asked for. The
 * sockets are the caller's to close (O_CLOEXEC set). Returns the port or
 * a negative portd_error; no fd is left open on failure.
 */
int portd_pick_sockets(
    enum portd_proto proto, int *ret_tcp_fd, int *ret_udp_fd);

/*
 * The event-loop interface: one connection whose requests never block,
 * for servers built on libevent, libuv, epoll or poll, in the manner of
 * hiredis's async context. Requests are queued (pipelined) and answered
 * in order through callbacks; the loop watches portd_async_fd() for the
 * events portd_async_events() names and calls portd_async_process() when
 * they happen. client/examples/libevent_lease.c drives it from libevent.
 *
 *  - Threads: a context is not thread-safe; use it from its loop's thread.
 *  - Callbacks run only inside portd_async_process() and portd_async_free()
 *    (never inside a submit call), in the order the requests were made. A
 *    callback may submit more requests and may call portd_async_free() on
 *    its own context (the free is then finished once it returns).
 *  - After a local failure (the daemon closed the connection, a malformed
 *    reply, out of memory) every pending callback is called with the
 *    error, and every later submit fails with PORTD_E_IO.
 *  - No deadlines: arm a timer in your loop and call portd_async_free() to
 *    give up.
 */
struct portd_async;

#define PORTD_ASYNC_READ  0x1 /* the fd must be watched for readability */
#define PORTD_ASYNC_WRITE 0x2 /* ... and for writability */

/* What a request's callback is told. Valid during the callback only. */
struct portd_async_reply {
	int err; /* 0, or a negative portd_error */
	const char
	    *errmsg; /* the daemon's message or a description; "" if ok */
	/* lease, renew, claim: the lease, owned by the callback from here on
	 * (free it with portd_lease_free(), or keep it). NULL on error. */
	struct portd_lease *lease;
	int released; /* release: how many ports were released */
};

typedef void (*portd_async_cb)(
    struct portd_async *a, struct portd_async_reply *reply, void *arg);

/*
 * Connect as portd_connect() does (same options, discovery and hello; this
 * one call blocks until the daemon answered hello, within opts'
 * timeout, and longer when it starts a daemon) and switch the connection
 * to non-blocking use. *ret_async is freed with portd_async_free().
 * Errors: those of portd_connect().
 */
int portd_async_connect(
    const struct portd_options *opts, struct portd_async **ret_async);

/*
 * Free a context: pending callbacks are called with PORTD_E_IO ("closed
 * before the reply came"), the connection is closed (its session leases
 * end). NULL-safe. Called from one of its callbacks it takes effect once
 * the callback returns.
 */
void portd_async_free(struct portd_async *a);

/* The connection's socket, to watch; -1 after a failure. Do not read,
 * write or close it. */
int portd_async_fd(const struct portd_async *a);

/* The events to watch now: PORTD_ASYNC_READ while the connection is up,
 * | PORTD_ASYNC_WRITE while requests wait to be sent. 0 after a failure. */
int portd_async_events(const struct portd_async *a);

/*
 * Called (when set) whenever portd_async_events() changes, so the loop
 * can add or drop its write watch, as hiredis's addWrite/delWrite hooks
 * do; told 0 after a failure, before the fd is closed, so the loop can
 * drop every watch on it. fn may be NULL to stop.
 */
void portd_async_set_watch(struct portd_async *a,
    void (*fn)(struct portd_async *a, int events, void *arg), void *arg);

/*
 * Do the I/O that events (PORTD_ASYNC_READ and/or PORTD_ASYNC_WRITE, as
 * the loop saw them) allow without blocking: send queued requests, read
 * what has arrived, and call the callbacks of complete replies. Returns 0,
 * or the negative portd_error that broke the connection (after calling
 * every pending callback with it).
 */
int portd_async_process(struct portd_async *a, int events);

/* Requests sent or queued whose callback has not run yet. */
size_t portd_async_pending(const struct portd_async *a);

/* Text of the last failure on a ("" if none), like portd_errmsg(). */
const char *portd_async_errmsg(const struct portd_async *a);

/*
 * Queue a request; cb (which may be NULL) receives its outcome later. 0,
 * or a negative portd_error when nothing was queued: PORTD_E_INVALID (a
 * bad argument, as the blocking call would say), PORTD_E_NOMEM,
 * PORTD_E_IO (the connection failed earlier). req may be NULL as for
 * portd_lease(); with req->fd the lease's sockets come in reply->lease.
 * ttl as for portd_renew().
 */
int portd_async_lease(struct portd_async *a,
    const struct portd_lease_request *req, portd_async_cb cb, void *arg);
int portd_async_renew(struct portd_async *a, const char *id, int64_t ttl,
    portd_async_cb cb, void *arg);
int portd_async_claim(
    struct portd_async *a, const char *id, portd_async_cb cb, void *arg);
int portd_async_release(
    struct portd_async *a, const char *id, portd_async_cb cb, void *arg);
int portd_async_release_port(
    struct portd_async *a, uint16_t port, portd_async_cb cb, void *arg);

#ifdef __cplusplus
}
#endif

#endif
