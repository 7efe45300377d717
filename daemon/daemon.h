/*
 * portd internal header: the daemon's modules, one section per file, so it
 * doubles as a map. The wire contract is proto/proto.h; configuration is
 * config.h; logging is log.h.
 */
#ifndef PORTD_DAEMON_H
#define PORTD_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "config.h"
#include "log.h"
#include "proto.h"

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

struct conn;
struct lease;
struct proc;

/* main.c: the one event base and the live configuration. */
extern struct event_base *portd_base;
extern struct config portd_cfg;
extern int64_t portd_started_ms;
void portd_shutdown(const char *reason);

/* A client of either socket, captured once at accept: every request it
 * makes is checked against this (SO_PEERCRED's uid and pid, the time). */
struct peer {
	int fd; /* the accepted socket; -1 once it is closed */
	uid_t uid;
	pid_t pid;
	uint64_t accepted; /* ticks since boot (/proc/PID/stat's unit) */
};

/* clock (lease.c): wall-clock Unix milliseconds, through the clock that
 * portd_set_clock chose (portd_clock_real unless a test replaced it). */
int64_t portd_clock(void);
int64_t portd_clock_real(void);
void portd_set_clock(int64_t (*clock)(void));

/* alloc.c: the port pool and the kernel sockets that hold ports. */
struct held_socket {
	int fd;
	uint16_t port;
	enum proto_proto proto;   /* PROTO_TCP or PROTO_UDP */
	enum proto_family family; /* dual: one [::] socket, V6ONLY off */
};

struct alloc_request {
	int count;
	enum proto_proto proto;
	enum proto_family family;
	enum proto_hold hold;
	int port; /* first specific port, or 0 */
	bool contiguous;
	enum proto_strategy strategy;
	int min_port; /* lower ports are privileged for this client */
};

/* What alloc_take returns: the ports and the sockets that hold them. */
struct alloc_result {
	int nports;
	uint16_t ports[PROTO_MAX_COUNT];
	int nsocks;
	struct held_socket socks[PROTO_MAX_SOCKETS];
	enum proto_family family; /* dual may become ipv4 without IPv6 */
	bool ipv6;
};

int alloc_init(uint16_t lo, uint16_t hi);
void alloc_shutdown(void);
/* Move the pool to lo-hi (SIGHUP); leases keep their ports. */
int alloc_set_pool(uint16_t lo, uint16_t hi);
/* Choose ports for req, bind them, and mark them owned by owner. */
int alloc_take(const struct alloc_request *req, struct lease *owner,
    struct alloc_result *ret, struct proto_error *err);
/* Mark ports taken by owner without binding (restore of claimed leases). */
int alloc_mark(const uint16_t *ports, int n, struct lease *owner);
/* Give ports back to the pool (and their host-wide markers up); the
 * caller closes the sockets. */
void alloc_put(const uint16_t *ports, int n);
/* Bind the host-wide markers of owned ports that lack them (restore, and
 * its retries): 0, or -1 with err naming the first port another portd
 * has. Ports marked before stay marked. */
int alloc_mark_host(const uint16_t *ports, int n, enum proto_proto proto,
    struct proto_error *err);
/* Whether portd holds the markers of port for proto (TCP, UDP or both). */
bool alloc_marked(uint16_t port, enum proto_proto proto);
/* The abstract socket name (without its leading NUL) that marks port. */
int alloc_marker_name(
    enum proto_proto proto, uint16_t port, char *buf, size_t len);
/* Bind the sockets that hold one port; 0 or -1 with err (busy: -1). */
int alloc_bind_port(uint16_t port, enum proto_proto proto,
    enum proto_family family, enum proto_hold hold, struct held_socket *ret,
    int *ret_n, struct proto_error *err);
struct lease *alloc_owner(uint16_t port);
bool alloc_ipv6(void);
/* Probe IPv6 again (reload): the socket layer and disable_ipv6. */
bool alloc_reprobe_ipv6(void);
/* net.ipv4.ip_unprivileged_port_start: lower ports need privilege. */
int alloc_unprivileged_start(void);
uint16_t alloc_pool_lo(void);
uint16_t alloc_pool_hi(void);
int alloc_pool_size(void);
int alloc_pool_free(void);
void alloc_close_sockets(struct held_socket *socks, int n);
/* The work pool picks did, so a test can tell that a pick costs the same
 * with a full pool as with an empty one. Reset by alloc_init. */
struct alloc_stats {
	uint64_t picks;    /* single pool ports chosen (or tried) */
	uint64_t examined; /* ports taken off the free queue for them */
	uint64_t binds;    /* bind attempts on pool ports, busy ones too */
};
const struct alloc_stats *alloc_stats(void);

/* lease.c: the lease table, TTLs, quotas and ownership. */
/* Why a lease ends (lease_end). The first ones end it for good: the end is
 * journaled and counted. The last two are not ends: the lease lives on in
 * the journal and the service manager's store (portd stops), or it was
 * never acknowledged (a change the journal did not take). */
enum lease_end {
	LEASE_END_RELEASED,  /* a release request */
	LEASE_END_EXPIRED,   /* its TTL ran out */
	LEASE_END_SESSION,   /* its connection closed */
	LEASE_END_PROCESS,   /* its process exited */
	LEASE_END_UNCLAIMED, /* portserver: the claim could not be recorded */
	LEASE_END_HANDOFF,   /* its sockets could not be passed */
	LEASE_END_FOR_GOOD,  /* (the count of the ends above) */
	LEASE_END_STOPPING = LEASE_END_FOR_GOOD,
	LEASE_END_UNDONE,
	LEASE_END__MAX
};
/* The end's label in metrics ("released", "session", ...) and its words in
 * the log ("ended with its session"). */
const char *lease_end_label(enum lease_end);
const char *lease_end_text(enum lease_end);
struct lease_counters {
	uint64_t created, claimed, renewed;
	uint64_t ended[LEASE_END_FOR_GOOD]; /* by reason */
};

/* Also gives the journal its struct journal_table (journal_init): the
 * rewrite's walk of the table, the live count, and the restore of each
 * lease read back (lease.c's static lease_restore). */
int lease_init(void);
void lease_shutdown(void);
/* Create a lease for the request on behalf of uid/pid (and conn for
 * session scope); claimed: claimed at once, its one journal record saying
 * so (the portserver's leases). The caller's reference on proc (may be
 * NULL) passes to lease_create on every path: the lease keeps it, or it is
 * dropped on failure; the caller never drops it after the call. */
struct lease *lease_create(const struct proto_request *req, uid_t uid,
    pid_t pid, struct conn *conn, struct proc *proc, bool claimed,
    struct proto_error *err);
/* The one way a client's request becomes a lease, on either socket: the
 * owner process watched as the scope asks (req->pid, else the peer), then
 * lease_create. conn: the session's connection (NULL for none). Takes no
 * reference from the caller. */
struct lease *lease_grant(const struct proto_request *req,
    const struct peer *peer, struct conn *conn, bool claimed,
    struct proto_error *err);
struct lease *lease_find(const char *id);
struct lease *lease_by_port(uint16_t port);
/* Whether uid may act on / see the lease (owner or root). */
bool lease_allowed(const struct lease *, uid_t uid);
int lease_renew(
    struct lease *, bool has_ttl, int64_t ttl, struct proto_error *err);
/* Claim / release: recorded in the journal first; -1 (err, the lease
 * unchanged) when the record cannot be written. */
int lease_claim(struct lease *, struct proto_error *err);
int lease_release(struct lease *, struct proto_error *err);
/* End a lease in the table for why, count it, and free it. An end for
 * good that the journal cannot take now is written later
 * (journal_del_later). */
void lease_end(struct lease *, enum lease_end why);
/* The lease's id. */
const char *lease_key(const struct lease *);
/* End every session lease of conn. */
void lease_end_conn(struct conn *);
/* End every lease of a process that exited; how many. Registered with
 * proc_on_exit by lease_init. */
int lease_end_proc(struct proc *);
void lease_view(const struct lease *, struct proto_lease *ret);
const struct held_socket *lease_sockets(const struct lease *, int *ret_n);
uint16_t lease_port0(const struct lease *);
/* Call fn for each lease (of uid, or all when all is true). */
void lease_foreach(
    bool all, uid_t uid, void (*fn)(struct lease *, void *), void *arg);
int lease_count(void);
int lease_ports_held(void);
int lease_sockets_held(void);
int lease_uid_ports(uid_t uid);
const struct lease_counters *lease_counters(void);

json_object *lease_json(const struct lease *);
/* Start time (ticks since boot) of the owner process, 0 if unknown. */
uint64_t lease_owner_start(const struct lease *);
/* Whether portd holds l's sockets now (not claimed, not lost). */
bool lease_held(const struct lease *);
/* Why a restored lease is not held (retried with backoff), or NULL. */
const char *lease_lost_reason(const struct lease *);
/* Restored leases waiting to be held again. */
int lease_lost_count(void);

/* jrecord.c: the journal's lines (checksummed records) and the loader. */
#define JOURNAL_VERSION 2 /* 2: a checksum on every record */
struct jbuf {
	char *p;
	size_t len, cap;
	int nrecords;
};
/* Append rec (consumed) to b as one line with its checksum. */
int jrecord_add(struct jbuf *b, json_object *rec);
/* The same for an object already written as text ("{...}", no newline). */
int jrecord_add_text(struct jbuf *b, const char *text, size_t len);
/* The two records of the table, written without building objects: a
 * lease as it is now (with its owner's start time), and an end. */
int jrecord_add_put(struct jbuf *b, const struct proto_lease *, uint64_t start);
int jrecord_add_del(struct jbuf *b, const char *id);
void jbuf_free(struct jbuf *b);
uint32_t jrecord_crc32(const void *data, size_t len);
enum jline {
	JLINE_OK,
	JLINE_HEADER,
	JLINE_CORRUPT,       /* not JSON, or not a journal record */
	JLINE_CHECKSUM,      /* a wrong checksum, or none in version 2 */
	JLINE_TORN,          /* the last line, without its newline */
	JLINE_OTHER_VERSION, /* the header of a version this portd lacks */
};
struct jload {
	/* Told of each line that is not a plain record (may be NULL). */
	void (*report)(void *arg, int line, enum jline what);
	void *arg;
	/* Results: lease id -> its last put record, ended leases removed. */
	json_object *map;
	int version;
	size_t complete; /* bytes up to the end of the last whole line */
	bool torn;
	int64_t other_version;
};
/* Read a journal's bytes into j->map (the caller puts it); -1 for
 * another version (map NULL) or no memory. */
int jrecord_load(const char *buf, size_t len, struct jload *j);
/* The lease and its owner's start time of a record of j->map. */
int jrecord_decode(json_object *rec, struct proto_lease *v, uint64_t *start,
    struct proto_error *err);

/* journal.c: the state journal beside the API socket. A record log: it
 * is fed leases as records and asks the table what it needs through the
 * struct journal_table lease.c registers, so it calls nothing of lease.c. */
/* One live lease of the rewrite, with its owner's start time; -1 stops
 * the walk. */
typedef int (*journal_put_fn)(
    const struct proto_lease *, uint64_t start, void *arg);
struct journal_table {
	/* Call fn for every live lease, oldest first, until it returns -1;
	 * returns what the last call did (0 when there was none). */
	int (*each)(journal_put_fn fn, void *arg);
	/* Live leases, weighed against the records (the rewrite's rule). */
	int (*count)(void);
	/* Re-create one lease read at open: 0, -1 when it has ended
	 * meanwhile (dropped), -2 when its owner lives but cannot be watched
	 * now (portd stops before anything is rewritten). */
	int (*restore)(const struct proto_lease *, uint64_t start);
};
/* Register the table (lease_init does), before journal_open. */
void journal_init(const struct journal_table *);
/* Open (creating) the journal, restore its leases, compact it. */
int journal_open(const char *path);
void journal_close(void);
bool journal_enabled(void);
/* Record a lease as it is now (with its owner's start time) / its end: 0,
 * or -1 when it could not be written (nothing of it is left in the file;
 * the caller undoes the change or, for an end it cannot undo, calls
 * journal_del_later). */
int journal_put(const struct proto_lease *, uint64_t start);
int journal_del(const char *id);
/* Write the end of lease id before the next record (and retry each
 * second): for ends that happened whether or not they were recorded. */
void journal_del_later(const char *id);
/* Write what is owed (late ends, or a rewrite): before stopping. */
void journal_flush(void);
int journal_compact(void);
struct journal_stats {
	int64_t bytes;        /* size of the file now; -1 without a journal */
	uint64_t compactions; /* rewrites since start */
};
void journal_stats(struct journal_stats *ret);
const char *journal_path(void);

/* service.c: socket activation, sd_notify, the fd store. */
/* status writes the one-line status for the service manager into buf
 * (ready: the line sent with READY=1); main.c gives it, so service.c asks
 * no other module for counts. */
int service_init(void (*status)(char *buf, size_t len, bool ready));
int service_api_fd(void);        /* the activated API socket, or -1 */
int service_portserver_fd(void); /* the passed "portserver" socket, or -1 */
int service_stored_count(void);  /* sockets passed back from the store */
int service_take_stored(
    const char *id, uint16_t port, enum proto_proto, enum proto_family);
void service_drop_strays(void);
void service_store(const char *id, const struct held_socket *, int n);
void service_unstore(const char *id);
void service_ready(void);
void service_reloading(bool done);
void service_stopping(void);
void service_status_changed(void);

/* conn.c: one client connection: framing, limits, replies in order. */
/* A connection for peer, owning peer->fd from here; NULL (out of memory)
 * leaves the fd to the caller. */
struct conn *conn_new(const struct peer *peer);
/* The one teardown path; deferred when called from the conn's callbacks. */
void conn_close(struct conn *, const char *reason);
/* Queue one reply line (text, malloc'd, len bytes with its '\n') with fds
 * (dup'd by the caller); the conn owns both from here on, and frees or
 * closes them on every path. */
int conn_reply(struct conn *, char *text, size_t len, int *fds, int nfds);
/* Who is on the other end, as captured at accept. */
const struct peer *conn_peer(const struct conn *);
int conn_count(void);
int conn_count_uid(uid_t uid);
/* Queued output of every connection, in bytes as conn.c counts them,
 * and how often a connection was paused for the per-uid or total cap. */
size_t conn_queued_output(void);
uint64_t conn_output_stalls(void);
/* What to call once a connection's descriptor is closed: a slot free
 * for accept again (the EMFILE pause). Registered by listener.c, which
 * makes the connections, so conn.c calls nothing of it. */
void conn_on_free(void (*fn)(void));
/* Whether conn may be sent another fd-carrying reply now. */
bool conn_fd_budget(struct conn *);
void conn_close_all(void);

/* proc.c: processes that own leases, watched through pidfds. */
/* Watch the connecting process (SO_PEERPIDFD, else pidfd_open checked
 * against the accept time). The new reference goes to the caller. */
struct proc *proc_watch_peer(const struct peer *, struct proto_error *err);
/* Watch pid, which must belong to peer_uid (unless root) and, when
 * want_start is not 0, have started at that tick (restore). */
struct proc *proc_watch_pid(
    pid_t pid, uid_t peer_uid, uint64_t want_start, struct proto_error *err);
void proc_unref(struct proc *);
/* What to call when a watched process exits (p is kept for the call); it
 * returns how many leases ended. Registered from above (lease_init), so
 * proc.c calls nothing of the modules that use it. */
void proc_on_exit(int (*fn)(struct proc *));
pid_t proc_pid(const struct proc *);
uint64_t proc_start(const struct proc *);
int proc_count(void);
/* The monotonic clock in seconds, for durations. */
double proc_monotonic(void);
/* Process exits that ended leases, and how long ending them took. */
#define PROC_RECLAIM_BUCKETS 10
extern const double proc_reclaim_bounds[PROC_RECLAIM_BUCKETS]; /* s */
struct proc_stats {
	uint64_t reclaims;                    /* exits that ended leases */
	uint64_t count[PROC_RECLAIM_BUCKETS]; /* took <= bound i (not above
	                                         bound i-1) */
	uint64_t over;                        /* took more than the last */
	double sum;                           /* seconds, all reclaims */
};
const struct proc_stats *proc_stats(void);
/* Start time and real uid of a live pid; -1 if it is gone. */
int proc_identity(pid_t pid, uint64_t *ret_start, uid_t *ret_uid);
uint64_t proc_now_ticks(void);

/* listener.c: the API socket, accept, peer credentials, limits. */
int listener_open(const char *path, mode_t mode);
/* A socket file at path: 0 if there is none or it was stale and is gone;
 * -1 (logged) if it is live or not a socket, which are left alone. */
int listener_clear_stale(const char *path, const struct sockaddr_un *sun);
/* Whether the peer of an accepted Unix connection is in portd's network
 * namespace (SO_NETNS_COOKIE; true where the kernel cannot tell). */
bool listener_same_netns(int fd);
/* Take over a listening socket systemd made (socket activation). */
int listener_adopt(int fd, const char *path);
void listener_close(void);
/* Re-arm accept after a descriptor was freed (EMFILE pause). The
 * endpoints are handed it (conn_on_free, portserver_open), so they call
 * nothing of listener.c to give a slot back. */
void listener_resume(void);
/* Accepting, shared by every listening socket (see listener.c): take
 * gets an accepted connection, refuse one turned away (caps, out of
 * descriptors; cred may be NULL), with why; both own fd. */
struct ucred;
struct acceptor;
/* take or refuse own peer->fd from the call on. */
typedef void (*acceptor_fn)(const struct peer *peer, const char *why);
/* What an endpoint gives its acceptor: the two above, and how many of
 * its connections are open (of every uid, or of one), for the caps. */
struct acceptor_ops {
	acceptor_fn take;
	acceptor_fn refuse;
	int (*count)(void);
	int (*count_uid)(uid_t uid);
};
struct acceptor *acceptor_new(
    int fd, const char *what, const struct acceptor_ops *ops);
void acceptor_free(struct acceptor *);
/* Connections on every socket, or of one uid: what the caps count (the
 * sum of every acceptor's ops). */
int listener_conns(bool of_uid, uid_t uid);
/* Connections refused for want of a descriptor, since start. */
uint64_t listener_refused_emfile(void);
/* Directory of the API socket, for state beside it. */
const char *listener_path(void);

/* portserver.c: portpicker's portserver protocol on a second socket. */
/* Serve it on addr; freed is called as each client is closed (main.c
 * passes listener_resume). */
int portserver_open(const char *addr, void (*freed)(void));
/* Serve the portserver protocol on a listening socket passed by the
 * service manager (named "portserver"). */
int portserver_adopt(int fd, void (*freed)(void));
void portserver_close(void);
uint64_t portserver_served(void);
int portserver_count(void);
int portserver_count_uid(uid_t uid);

/* metrics.c: the Prometheus text, over HTTP (evhttp) and the API. */
/* Serve /metrics on addr ("PORT", "HOST:PORT", "[V6]:PORT"). */
int metrics_open(const char *addr);
void metrics_close(void);
/* The address the endpoint listens on ("127.0.0.1:9464"), or NULL. */
const char *metrics_bound(void);
/* How long the start's restore from the journal took (main.c says). */
extern double metrics_restore_seconds;
/* The metrics text, NUL-terminated; the caller frees it. */
char *metrics_text(size_t *ret_len);
/* The API's request counters. They live here, and request.c bumps them
 * as it handles a line, so metrics.c reads nothing of request.c. */
struct request_counters {
	uint64_t requests, errors;
	/* By op; [PROTO_OP__MAX] counts lines that named no known op. */
	uint64_t by_op[PROTO_OP__MAX + 1];
	uint64_t errors_by[PROTO_OP__MAX + 1][PROTO_E__MAX];
};
/* A line came in: counted before it is handled (status counts itself). */
void metrics_count_request(void);
/* Its answer: op (PROTO_OP__MAX for none known), and the error's code,
 * or NULL when it succeeded. */
void metrics_count_reply(enum proto_op op, const struct proto_error *err);
const struct request_counters *metrics_request_counters(void);

/* request.c: the op table and handlers. */
/* Handle one request line from conn: parse, dispatch, reply. */
void request_handle(struct conn *, const char *line, size_t len);

#endif
