/* libportd: the public API (see portd.h for every contract). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "portd.h"
#include "proto.h"
#include "shared.h"

struct portd {
	struct io io;
	int timeout_ms;
	int64_t next_id;
	bool broken; /* connection closed after a desynchronizing error */
	char path[108];
	const char *via; /* which discovery step answered (portd_socket_via) */
	char errmsg[PROTO_MAX_ERRMSG + 64];
};

_Static_assert(PORTD_MAX_PORTS == PROTO_MAX_COUNT, "lease size");
_Static_assert(PORTD_MAX_ID == PROTO_MAX_ID, "lease id size");
_Static_assert(PORTD_MAX_NAME == PROTO_MAX_NAME, "lease name size");

/*
 * The daemon's error codes as ours: PROTO_E_X is PORTD_E_X. Their names
 * are the protocol's (proto_errcode_to_string); local failures have their
 * own, below.
 */
static const int from_proto[PROTO_E__MAX] = {
    [PROTO_E_NONE] = PORTD_E_INTERNAL,
    [PROTO_E_BAD_REQUEST] = PORTD_E_BAD_REQUEST,
    [PROTO_E_UNKNOWN_OP] = PORTD_E_UNKNOWN_OP,
    [PROTO_E_REQUEST_TOO_LARGE] = PORTD_E_REQUEST_TOO_LARGE,
    [PROTO_E_NO_PORTS] = PORTD_E_NO_PORTS,
    [PROTO_E_PORT_UNAVAILABLE] = PORTD_E_PORT_UNAVAILABLE,
    [PROTO_E_QUOTA_EXCEEDED] = PORTD_E_QUOTA_EXCEEDED,
    [PROTO_E_NOT_FOUND] = PORTD_E_NOT_FOUND,
    [PROTO_E_FORBIDDEN] = PORTD_E_FORBIDDEN,
    [PROTO_E_RESOURCE_EXHAUSTED] = PORTD_E_RESOURCE_EXHAUSTED,
    [PROTO_E_INTERNAL] = PORTD_E_INTERNAL,
};

static const struct {
	int code;
	const char *name; /* NULL: the protocol's name of the code */
	const char *text;
} errors[] = {
    {PORTD_OK, "ok", "Success"},
    {PORTD_E_BAD_REQUEST, NULL, "Request refused as malformed"},
    {PORTD_E_UNKNOWN_OP, NULL, "Operation unknown to the daemon"},
    {PORTD_E_REQUEST_TOO_LARGE, NULL, "Request too large"},
    {PORTD_E_NO_PORTS, NULL, "No free ports"},
    {PORTD_E_PORT_UNAVAILABLE, NULL, "Port unavailable"},
    {PORTD_E_QUOTA_EXCEEDED, NULL, "Port quota exceeded"},
    {PORTD_E_NOT_FOUND, NULL, "No such lease"},
    {PORTD_E_FORBIDDEN, NULL, "Not allowed"},
    {PORTD_E_RESOURCE_EXHAUSTED, NULL, "Daemon out of resources"},
    {PORTD_E_INTERNAL, NULL, "Internal daemon error"},
    {PORTD_E_NO_DAEMON, "no_daemon", "No daemon answers on the socket"},
    {PORTD_E_TIMEOUT, "timeout", "Timed out waiting for the daemon"},
    {PORTD_E_PROTOCOL, "protocol", "Protocol error in the daemon's reply"},
    {PORTD_E_VERSION, "version", "Daemon speaks another protocol version"},
    {PORTD_E_IO, "io", "Connection to the daemon failed"},
    {PORTD_E_NOMEM, "no_memory", "Out of memory"},
    {PORTD_E_INVALID, "invalid", "Invalid argument"},
};

/*
 * Our public enums and the protocol's, value for value. Ours keep 0 for
 * "the daemon's default", which has no wire name.
 */
static const int proto_out[] = {
    [PORTD_PROTO_TCP] = PROTO_TCP,
    [PORTD_PROTO_UDP] = PROTO_UDP,
    [PORTD_PROTO_BOTH] = PROTO_BOTH,
};
static const int family_out[] = {
    [PORTD_FAMILY_DUAL] = PROTO_FAM_DUAL,
    [PORTD_FAMILY_IPV4] = PROTO_FAM_IPV4,
    [PORTD_FAMILY_IPV6] = PROTO_FAM_IPV6,
};
static const int hold_out[] = {
    [PORTD_HOLD_SHARED] = PROTO_HOLD_SHARED,
    [PORTD_HOLD_EXCLUSIVE] = PROTO_HOLD_EXCLUSIVE,
};
static const int scope_out[] = {
    [PORTD_SCOPE_TTL] = PROTO_SCOPE_TTL,
    [PORTD_SCOPE_SESSION] = PROTO_SCOPE_SESSION,
    [PORTD_SCOPE_PROCESS] = PROTO_SCOPE_PROCESS,
};
static const int strategy_out[] = {
    [PORTD_STRATEGY_POOL] = PROTO_STRATEGY_POOL,
    [PORTD_STRATEGY_EPHEMERAL] = PROTO_STRATEGY_EPHEMERAL,
};

#define nitems(a) (sizeof(a) / sizeof((a)[0]))
/* Our value v in table t (ours to theirs), or -1 for 0 and unknowns. */
#define OUT(t, v) ((v) > 0 && (size_t)(v) < nitems(t) ? (int)t[v] : -1)

/* Their value p as ours: the index of p in t (ours to theirs), or def. */
static int
map_in(const int *t, size_t n, int p, int def)
{
	for (size_t i = 1; i < n; i++)
		if (t[i] == p)
			return (int)i;
	return def;
}
#define IN(t, p, def) map_in(t, nitems(t), (int)(p), def)

PORTD_PUBLIC const char *
portd_error_name(int err)
{
	for (size_t i = 0; i < nitems(errors); i++) {
		if (errors[i].code != err)
			continue;
		if (errors[i].name != NULL)
			return errors[i].name;
		for (int c = PROTO_E_NONE + 1; c < PROTO_E__MAX; c++)
			if (from_proto[c] == err)
				return proto_errcode_to_string(c);
	}
	return "unknown";
}

PORTD_PUBLIC const char *
portd_strerror(int err)
{
	for (size_t i = 0; i < nitems(errors); i++)
		if (errors[i].code == err)
			return errors[i].text;
	return "Unknown error";
}

/*
 * portd_X_name and portd_X_from_name: our value through its table to the
 * protocol's, and the protocol's name table (proto/names.c) for the name.
 */
#define NAME_LOOKUP(kind, table)                                               \
	PORTD_PUBLIC const char *portd_##kind##_name(enum portd_##kind v)      \
	{                                                                      \
		int p = OUT(table, v);                                         \
		return p < 0 ? "?" : proto_##kind##_to_string(p);              \
	}                                                                      \
	PORTD_PUBLIC int portd_##kind##_from_name(const char *name)            \
	{                                                                      \
		return IN(                                                     \
		    table, proto_##kind##_from_string(name), PORTD_E_INVALID); \
	}

NAME_LOOKUP(proto, proto_out)
NAME_LOOKUP(family, family_out)
NAME_LOOKUP(hold, hold_out)
NAME_LOOKUP(scope, scope_out)
NAME_LOOKUP(strategy, strategy_out)

/* Record a failure on h and return err. */
static int __attribute__((format(printf, 3, 4)))
fail(struct portd *h, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->errmsg, sizeof(h->errmsg), fmt, ap);
	va_end(ap);
	return err;
}

int
client_fail(struct portd *h, int err, const char *msg)
{
	return fail(h, err, "%s", msg);
}

struct io *
client_io(struct portd *h)
{
	return &h->io;
}

int64_t
client_next_id(struct portd *h)
{
	return h->next_id++;
}

/*
 * A failure after which the byte stream can no longer be trusted: close
 * the connection so no later reply is taken for another request's.
 */
static int
fail_conn(struct portd *h, int err, const char *what)
{
	io_close(&h->io);
	h->broken = true;
	switch (err) {
	case PORTD_E_TIMEOUT:
		return fail(
		    h, err, "%s: no reply from the daemon in time", what);
	case PORTD_E_NOMEM:
		return fail(h, err, "%s: out of memory", what);
	case PORTD_E_PROTOCOL:
		return fail(
		    h, err, "%s: malformed reply from the daemon", what);
	default:
		return fail(h, err, "%s: connection to the daemon lost%s%s",
		    what, errno ? ": " : "", errno ? strerror(errno) : "");
	}
}

/*
 * Send req (adding "id"; req is consumed) and read its reply. On success
 * *ret_reply is an ok reply. With keep_fds the fds that came with the
 * reply stay in h->io for the caller; otherwise they are closed.
 */
static int
call(struct portd *h, json_object *req, bool keep_fds, json_object **ret_reply)
{
	char op[16] = "request"; /* copied: req is freed on some paths */
	struct proto_error perr = {0};
	json_object *reply, *v;
	int64_t deadline, id;
	char *line;
	size_t len;
	int rc;

	h->errmsg[0] = '\0';
	if (req == NULL)
		return fail(h, PORTD_E_NOMEM, "out of memory");
	if (json_object_object_get_ex(req, "op", &v))
		snprintf(op, sizeof(op), "%s", json_object_get_string(v));
	if (h->broken) {
		json_object_put(req);
		return fail(h, PORTD_E_IO,
		    "%s: connection closed after an earlier error", op);
	}
	id = h->next_id++;
	json_object_object_add(req, "id", json_object_new_int64(id));
	line = proto_serialize(req, &len);
	if (line == NULL) {
		json_object_put(req);
		return fail(h, PORTD_E_NOMEM, "%s: out of memory", op);
	}
	deadline = io_deadline(h->timeout_ms);
	errno = 0;
	rc = io_send(&h->io, line, len, deadline);
	free(line);
	if (rc == 0) {
		errno = 0;
		rc = io_recv_line(&h->io, deadline, &line, &len);
	}
	if (rc < 0) {
		rc = fail_conn(h, rc, op);
		json_object_put(req);
		return rc;
	}
	reply = proto_parse_object_max(line, len, CLIENT_MAX_REPLY, &perr);
	io_consume(&h->io, len + 1);
	if (reply == NULL || !json_object_object_get_ex(reply, "id", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) != id ||
	    !json_object_object_get_ex(reply, "ok", &v) ||
	    !json_object_is_type(v, json_type_boolean)) {
		json_object_put(reply);
		rc = fail_conn(h, PORTD_E_PROTOCOL, op);
		json_object_put(req);
		return rc;
	}
	json_object_put(req);
	if (!keep_fds || !json_object_get_boolean(v))
		io_close_fds(&h->io);
	if (!json_object_get_boolean(v)) {
		rc = client_refusal(h, reply);
		json_object_put(reply);
		return rc;
	}
	*ret_reply = reply;
	return 0;
}

int
client_refusal(struct portd *h, json_object *reply)
{
	const char *code = proto_errcode_to_string(PROTO_E_INTERNAL), *msg = "";
	json_object *e, *v;
	int rc;

	if (json_object_object_get_ex(reply, "error", &e)) {
		if (json_object_object_get_ex(e, "code", &v) &&
		    json_object_is_type(v, json_type_string))
			code = json_object_get_string(v);
		if (json_object_object_get_ex(e, "message", &v) &&
		    json_object_is_type(v, json_type_string))
			msg = json_object_get_string(v);
	}
	rc = from_proto[proto_errcode_from_string(code)];
	return fail(h, rc, "%s", msg[0] ? msg : code);
}

static int
hello(struct portd *h)
{
	struct proto_request pr;
	struct proto_identity id;
	json_object *reply;
	int rc;

	proto_request_init(&pr, PROTO_OP_HELLO);
	pr.version = PORTD_PROTOCOL_VERSION;
	rc = call(h, proto_request_encode(&pr), false, &reply);
	if (rc == PORTD_E_NOMEM || rc == PORTD_E_TIMEOUT || rc == PORTD_E_IO ||
	    rc == PORTD_E_PROTOCOL)
		return rc;
	if (rc < 0) {
		char msg[sizeof(h->errmsg)];

		snprintf(msg, sizeof(msg), "%s", h->errmsg);
		return fail(h, PORTD_E_VERSION,
		    "daemon refused protocol version %d: %s: %s",
		    PORTD_PROTOCOL_VERSION, portd_error_name(rc), msg);
	}
	proto_identity_decode(reply, &id);
	if (id.version != PORTD_PROTOCOL_VERSION) {
		char got[32] = "(none)";

		if (id.version != -1)
			snprintf(
			    got, sizeof(got), "%lld", (long long)id.version);
		rc = fail(h, PORTD_E_VERSION,
		    "daemon speaks protocol version %s, not %d", got,
		    PORTD_PROTOCOL_VERSION);
		json_object_put(reply);
		return rc;
	}
	json_object_put(reply);
	return 0;
}

static bool
autostart_enabled(const struct portd_options *opts, bool is_default)
{
	const char *env = getenv("PORTD_NO_AUTOSTART");

	return opts->autostart && is_default &&
	       !(env != NULL && strcmp(env, "1") == 0);
}

static int
connect_socket(
    struct portd *h, const struct portd_options *opts, bool is_default)
{
	int64_t deadline;
	int rc, spawned;

	rc = io_connect(&h->io, h->path);
	if (rc == 0)
		return 0;
	if (rc == -ENAMETOOLONG)
		return fail(
		    h, PORTD_E_INVALID, "%s: socket path too long", h->path);
	if ((rc != -ENOENT && rc != -ECONNREFUSED && rc != -EAGAIN) ||
	    !autostart_enabled(opts, is_default))
		return fail(h, PORTD_E_NO_DAEMON, "no daemon at %s: %s",
		    h->path, strerror(-rc));

	spawned = spawn_daemon(opts->daemon_path, h->path);
	if (spawned < 0)
		return fail(h, PORTD_E_NO_DAEMON,
		    "no daemon at %s, and portd could not be started: %s",
		    h->path, strerror(-spawned));
	/*
	 * Several clients may start a daemon at once; the daemon's lock
	 * lets one win and the others exit, so just keep connecting.
	 */
	deadline = io_deadline(PORTD_AUTOSTART_WAIT_MS);
	do {
		usleep(10000);
		if ((rc = io_connect(&h->io, h->path)) == 0)
			return 0;
	} while (io_deadline(0) < deadline);
	return fail(h, PORTD_E_NO_DAEMON,
	    "no daemon at %s: started portd, but it did not answer within "
	    "%d ms: %s",
	    h->path, PORTD_AUTOSTART_WAIT_MS, strerror(-rc));
}

/*
 * Discovery step 3: the system socket, when a daemon answers there. Its
 * path is $PORTD_SYSTEM_SOCKET when set (tests, packagers). 0 when
 * connected and greeted; else -1, with h->path left at the system path.
 */
static int
connect_system(struct portd *h)
{
	const char *env = getenv("PORTD_SYSTEM_SOCKET");
	int n;

	if (env != NULL && env[0] != '\0')
		n = snprintf(h->path, sizeof(h->path), "%s", env);
	else
		n = proto_socket_path(true, h->path, sizeof(h->path));
	if (n < 0 || (size_t)n >= sizeof(h->path))
		return -1;
	if (io_connect(&h->io, h->path) != 0)
		return -1;
	if (hello(h) != 0) {
		io_close(&h->io);
		h->io.fd = -1;
		h->broken = false;
		return -1;
	}
	return 0;
}

PORTD_PUBLIC int
portd_connect(const struct portd_options *opts, struct portd **ret_handle)
{
	static const struct portd_options defaults = {0};
	struct portd *h;
	bool is_default = false;
	int rc;

	if (opts == NULL)
		opts = &defaults;
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		rc = PORTD_E_NOMEM;
		if (opts->errbuf != NULL && opts->errbuf_size > 0)
			snprintf(
			    opts->errbuf, opts->errbuf_size, "out of memory");
		return rc;
	}
	h->io.fd = -1;
	h->next_id = 1;
	h->timeout_ms =
	    opts->timeout_ms == 0 ? PORTD_DEFAULT_TIMEOUT_MS : opts->timeout_ms;
	if (spawn_socket_path(
	        opts->socket, h->path, sizeof(h->path), &is_default) < 0)
		rc = fail(h, PORTD_E_INVALID, "socket path too long");
	else if (!is_default) {
		h->via = opts->socket != NULL && opts->socket[0] != '\0'
		             ? "explicit"
		             : "PORTD_SOCKET";
		if ((rc = connect_socket(h, opts, false)) == 0)
			rc = hello(h);
	} else if (connect_system(h) == 0) {
		h->via = "system";
		rc = 0;
	} else {
		char sys[sizeof(h->path)];

		snprintf(sys, sizeof(sys), "%s", h->path);
		spawn_socket_path(NULL, h->path, sizeof(h->path), &is_default);
		h->via = "user";
		if ((rc = connect_socket(h, opts, true)) == 0)
			rc = hello(h);
		if (rc == PORTD_E_NO_DAEMON) {
			char msg[sizeof(h->errmsg)];

			snprintf(msg, sizeof(msg), "%s", h->errmsg);
			fail(h, rc,
			    "%s; tried the system socket %s and the user "
			    "socket %s: start one (systemctl enable --now "
			    "portd.socket, or portd &), or set PORTD_SOCKET",
			    msg, sys, h->path);
		}
	}
	if (rc < 0) {
		if (opts->errbuf != NULL && opts->errbuf_size > 0)
			snprintf(
			    opts->errbuf, opts->errbuf_size, "%s", h->errmsg);
		portd_close(h);
		return rc;
	}
	*ret_handle = h;
	return 0;
}

PORTD_PUBLIC void
portd_close(struct portd *h)
{
	if (h == NULL)
		return;
	io_close(&h->io);
	free(h);
}

PORTD_PUBLIC const char *
portd_socket_path(const struct portd *h)
{
	return h != NULL ? h->path : "";
}

PORTD_PUBLIC const char *
portd_socket_via(const struct portd *h)
{
	return h != NULL && h->via != NULL ? h->via : "";
}

PORTD_PUBLIC const char *
portd_errmsg(const struct portd *h)
{
	return h != NULL ? h->errmsg : "";
}

/* Decode one lease object into a new struct portd_lease. */
static int
lease_from_json(struct portd *h, json_object *o, struct portd_lease **ret)
{
	struct proto_error perr = {0};
	struct proto_lease pl;
	struct portd_lease *l;
	const char *js;

	if (proto_lease_decode(o, &pl, &perr) == -1)
		return fail(h, PORTD_E_PROTOCOL, "bad lease in reply: %s",
		    perr.message);
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return fail(h, PORTD_E_NOMEM, "out of memory");
	js = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (js == NULL || (l->json = strdup(js)) == NULL) {
		free(l);
		return fail(h, PORTD_E_NOMEM, "out of memory");
	}
	memcpy(l->id, pl.id, sizeof(l->id));
	l->nports = (size_t)pl.nports;
	memcpy(l->ports, pl.ports, sizeof(l->ports));
	l->proto = IN(proto_out, pl.proto, PORTD_PROTO_TCP);
	l->family = IN(family_out, pl.family, PORTD_FAMILY_DUAL);
	l->ipv6 = pl.ipv6;
	l->scope = IN(scope_out, pl.scope, PORTD_SCOPE_TTL);
	l->hold = IN(hold_out, pl.hold, PORTD_HOLD_SHARED);
	l->ttl = pl.ttl;
	l->expires = pl.expires;
	l->created = pl.created;
	memcpy(l->name, pl.name, sizeof(l->name));
	l->owner_uid = (uid_t)pl.uid;
	l->owner_pid = (pid_t)pl.pid;
	l->held = pl.held;
	snprintf(
	    l->state, sizeof(l->state), "%s", proto_state_to_string(pl.state));
	snprintf(l->reason, sizeof(l->reason), "%s", pl.reason);
	*ret = l;
	return 0;
}

/* Reply {"lease": {...}} to a new lease. */
int
client_reply_lease(
    struct portd *h, json_object *reply, struct portd_lease **ret)
{
	json_object *o;

	if (!json_object_object_get_ex(reply, "lease", &o))
		return fail(h, PORTD_E_PROTOCOL, "reply without a lease");
	return lease_from_json(h, o, ret);
}

PORTD_PUBLIC void
portd_lease_free(struct portd_lease *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->nsockets; i++)
		if (l->sockets[i].fd >= 0)
			close(l->sockets[i].fd);
	free(l->sockets);
	free(l->json);
	free(l);
}

PORTD_PUBLIC void
portd_lease_list_free(struct portd_lease *leases, size_t count)
{
	if (leases == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		for (size_t j = 0; j < leases[i].nsockets; j++)
			if (leases[i].sockets[j].fd >= 0)
				close(leases[i].sockets[j].fd);
		free(leases[i].sockets);
		free(leases[i].json);
	}
	free(leases);
}

/* Build the lease request into *ret. 0 or a negative error. */
int
client_lease_request(
    struct portd *h, const struct portd_lease_request *r, json_object **ret)
{
	struct proto_request pr;
	json_object *o;

	if ((unsigned)r->proto > PORTD_PROTO_BOTH ||
	    (unsigned)r->family > PORTD_FAMILY_IPV6 ||
	    (unsigned)r->hold > PORTD_HOLD_EXCLUSIVE ||
	    (unsigned)r->scope > PORTD_SCOPE_PROCESS ||
	    (unsigned)r->strategy > PORTD_STRATEGY_EPHEMERAL || r->ttl < 0 ||
	    r->pid < 0 || r->count > INT32_MAX)
		return fail(h, PORTD_E_INVALID, "lease: invalid request field");
	if (r->name != NULL && strlen(r->name) > PROTO_MAX_NAME)
		return fail(h, PORTD_E_INVALID,
		    "lease: name longer than %d bytes", PROTO_MAX_NAME);
	proto_request_init(&pr, PROTO_OP_LEASE);
	if (r->count != 0)
		pr.count = (int)r->count;
	if (r->proto != PORTD_PROTO_DEFAULT)
		pr.proto = OUT(proto_out, r->proto);
	if (r->family != PORTD_FAMILY_DEFAULT)
		pr.family = OUT(family_out, r->family);
	pr.port = r->port;
	pr.contiguous = r->contiguous;
	if ((pr.has_hold = r->hold != PORTD_HOLD_DEFAULT))
		pr.hold = OUT(hold_out, r->hold);
	if ((pr.has_ttl = r->ttl > 0))
		pr.ttl = r->ttl;
	if (r->scope != PORTD_SCOPE_DEFAULT)
		pr.scope = OUT(scope_out, r->scope);
	pr.pid = r->pid;
	if (r->name != NULL)
		strcpy(pr.name, r->name);
	pr.fd = r->fd;
	if (r->strategy != PORTD_STRATEGY_DEFAULT)
		pr.strategy = OUT(strategy_out, r->strategy);
	if ((o = proto_request_encode(&pr)) == NULL)
		return fail(h, PORTD_E_NOMEM, "lease: out of memory");
	*ret = o;
	return 0;
}

/*
 * A request on one lease (renew with ttl > 0, claim, release) or, with
 * id NULL, a release by port. 0 or a negative error.
 */
int
client_id_request(struct portd *h, enum proto_op op, const char *id,
    uint16_t port, int64_t ttl, json_object **ret)
{
	struct proto_request pr;

	proto_request_init(&pr, op);
	if (id == NULL && port != 0)
		pr.port = port;
	else if (id == NULL || !proto_lease_id_valid(id, strlen(id)))
		return fail(h, PORTD_E_INVALID, "invalid lease id");
	else
		strcpy(pr.lease, id);
	if ((pr.has_ttl = ttl > 0))
		pr.ttl = ttl;
	if ((*ret = proto_request_encode(&pr)) == NULL)
		return fail(h, PORTD_E_NOMEM, "out of memory");
	return 0;
}

/* Best effort, after a failed hand-over: do not leave the lease behind. */
static void
release_quietly(struct portd *h, const char *id)
{
	char msg[sizeof(h->errmsg)];
	json_object *o, *reply;

	memcpy(msg, h->errmsg, sizeof(msg));
	if (client_id_request(h, PROTO_OP_RELEASE, id, 0, 0, &o) == 0 &&
	    call(h, o, false, &reply) == 0)
		json_object_put(reply);
	memcpy(h->errmsg, msg, sizeof(msg));
}

/*
 * Match the fds that came with a lease reply to its "sockets" array. On
 * failure every fd is closed.
 */
int
client_lease_sockets(struct portd *h, json_object *reply, struct portd_lease *l)
{
	struct proto_error perr = {0};
	struct proto_socket ps;
	json_object *a;
	size_t n;

	if (h->io.ctrunc) {
		io_close_fds(&h->io);
		return fail(h, PORTD_E_IO,
		    "lease: the kernel dropped sockets the daemon sent "
		    "(out of file descriptors?)");
	}
	if (!json_object_object_get_ex(reply, "sockets", &a) ||
	    !json_object_is_type(a, json_type_array)) {
		io_close_fds(&h->io);
		return fail(h, PORTD_E_PROTOCOL,
		    "lease: reply without a sockets array");
	}
	n = json_object_array_length(a);
	if (n != (size_t)h->io.nfds || n > PORTD_MAX_SOCKETS) {
		int got = h->io.nfds;
		io_close_fds(&h->io);
		return fail(h, PORTD_E_PROTOCOL,
		    "lease: %zu sockets listed but %d received", n, got);
	}
	if (n == 0)
		return 0;
	if ((l->sockets = calloc(n, sizeof(*l->sockets))) == NULL) {
		io_close_fds(&h->io);
		return fail(h, PORTD_E_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if (proto_socket_decode(
		        json_object_array_get_idx(a, i), &ps, &perr) == -1) {
			io_close_fds(&h->io);
			return fail(h, PORTD_E_PROTOCOL,
			    "lease: bad socket in reply: %s", perr.message);
		}
		l->sockets[i].port = ps.port;
		l->sockets[i].proto = IN(proto_out, ps.proto, PORTD_PROTO_TCP);
		l->sockets[i].family =
		    IN(family_out, ps.family, PORTD_FAMILY_DUAL);
	}
	/* Moved into the lease only once all are known good. */
	for (size_t i = 0; i < n; i++) {
		l->sockets[i].fd = h->io.fds[i];
		l->nsockets++;
	}
	h->io.nfds = 0;
	return 0;
}

PORTD_PUBLIC int
portd_lease(struct portd *h, const struct portd_lease_request *req,
    struct portd_lease **ret_lease)
{
	static const struct portd_lease_request defaults = {0};
	struct portd_lease *l = NULL;
	json_object *o = NULL, *reply = NULL;
	int rc;

	if (h == NULL || ret_lease == NULL)
		return PORTD_E_INVALID;
	if (req == NULL)
		req = &defaults;
	if ((rc = client_lease_request(h, req, &o)) < 0)
		return rc;
	if ((rc = call(h, o, req->fd, &reply)) < 0)
		return rc;
	rc = client_reply_lease(h, reply, &l);
	if (rc == 0 && req->fd)
		rc = client_lease_sockets(h, reply, l);
	else
		io_close_fds(&h->io);
	json_object_put(reply);
	if (rc < 0) {
		if (l != NULL)
			release_quietly(h, l->id);
		portd_lease_free(l);
		return rc;
	}
	*ret_lease = l;
	return 0;
}

/* renew and claim: an op on one lease id that answers with the lease. */
static int
lease_op(struct portd *h, enum proto_op op, const char *id, int64_t ttl,
    struct portd_lease **ret_lease)
{
	struct portd_lease *l;
	json_object *o, *reply;
	int rc;

	if (h == NULL)
		return PORTD_E_INVALID;
	if ((rc = client_id_request(h, op, id, 0, ttl, &o)) < 0)
		return rc;
	if ((rc = call(h, o, false, &reply)) < 0)
		return rc;
	if (ret_lease != NULL) {
		rc = client_reply_lease(h, reply, &l);
		if (rc == 0)
			*ret_lease = l;
	}
	json_object_put(reply);
	return rc;
}

PORTD_PUBLIC int
portd_renew(struct portd *h, const char *id, int64_t ttl,
    struct portd_lease **ret_lease)
{
	return lease_op(h, PROTO_OP_RENEW, id, ttl, ret_lease);
}

PORTD_PUBLIC int
portd_claim(struct portd *h, const char *id, struct portd_lease **ret_lease)
{
	return lease_op(h, PROTO_OP_CLAIM, id, 0, ret_lease);
}

/* release: answers {"released": [ports]}; returns how many. */
static int
release(struct portd *h, json_object *o)
{
	json_object *reply, *a;
	int rc;

	if ((rc = call(h, o, false, &reply)) < 0)
		return rc;
	if (!json_object_object_get_ex(reply, "released", &a) ||
	    !json_object_is_type(a, json_type_array))
		rc = fail(h, PORTD_E_PROTOCOL, "release: reply without ports");
	else
		rc = (int)json_object_array_length(a);
	json_object_put(reply);
	return rc;
}

PORTD_PUBLIC int
portd_release(struct portd *h, const char *id)
{
	json_object *o;
	int rc;

	if (h == NULL)
		return PORTD_E_INVALID;
	if ((rc = client_id_request(h, PROTO_OP_RELEASE, id, 0, 0, &o)) < 0)
		return rc;
	return release(h, o);
}

PORTD_PUBLIC int
portd_release_port(struct portd *h, uint16_t port)
{
	json_object *o;
	int rc;

	if (h == NULL)
		return PORTD_E_INVALID;
	if (port == 0)
		return fail(h, PORTD_E_INVALID, "invalid port 0");
	if ((rc = client_id_request(h, PROTO_OP_RELEASE, NULL, port, 0, &o)) <
	    0)
		return rc;
	return release(h, o);
}

PORTD_PUBLIC int
portd_list(struct portd *h, bool all, struct portd_lease **ret_leases,
    size_t *ret_count)
{
	struct portd_lease *arr = NULL, *l;
	struct proto_request pr;
	json_object *reply, *a;
	size_t n = 0;
	int rc;

	if (h == NULL || ret_leases == NULL || ret_count == NULL)
		return PORTD_E_INVALID;
	proto_request_init(&pr, PROTO_OP_LIST);
	pr.all = all;
	if ((rc = call(h, proto_request_encode(&pr), false, &reply)) < 0)
		return rc;
	if (!json_object_object_get_ex(reply, "leases", &a) ||
	    !json_object_is_type(a, json_type_array)) {
		json_object_put(reply);
		return fail(h, PORTD_E_PROTOCOL, "list: reply without leases");
	}
	if (json_object_array_length(a) > 0 &&
	    (arr = calloc(json_object_array_length(a), sizeof(*arr))) == NULL) {
		json_object_put(reply);
		return fail(h, PORTD_E_NOMEM, "list: out of memory");
	}
	for (; n < json_object_array_length(a); n++) {
		rc = lease_from_json(h, json_object_array_get_idx(a, n), &l);
		if (rc < 0) {
			portd_lease_list_free(arr, n);
			json_object_put(reply);
			return rc;
		}
		arr[n] = *l;
		free(l);
	}
	json_object_put(reply);
	*ret_leases = arr;
	*ret_count = n;
	return 0;
}

PORTD_PUBLIC void
portd_status_free(struct portd_status *s)
{
	if (s == NULL)
		return;
	free(s->counters);
	free(s->settings);
	free(s->json);
	free(s);
}

PORTD_PUBLIC int
portd_status(struct portd *h, struct portd_status **ret_status)
{
	struct portd_status *s;
	struct proto_status st;
	json_object *reply, *v;
	const char *js;
	int rc;

	if (h == NULL || ret_status == NULL)
		return PORTD_E_INVALID;
	if ((rc = call(h, proto_request_new(PROTO_OP_STATUS), false, &reply)) <
	    0)
		return rc;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto nomem;
	json_object_object_del(reply, "id");
	json_object_object_del(reply, "ok");
	js = json_object_to_json_string_ext(
	    reply, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (js == NULL || (s->json = strdup(js)) == NULL)
		goto nomem;
	proto_status_decode(reply, &st);
	s->version = st.identity.version;
	if (st.identity.release[0] != '\0')
		snprintf(s->server, sizeof(s->server), "%s %s",
		    st.identity.name, st.identity.release);
	else
		snprintf(s->server, sizeof(s->server), "%s", st.identity.name);
	s->pid = (pid_t)st.identity.pid;
	s->uptime = st.uptime;
	s->leases = st.leases;
	s->ports = st.ports;
	s->sockets = st.sockets;
	s->connections = st.connections;
	s->pool_lo = st.pool_lo;
	s->pool_hi = st.pool_hi;
	s->pool_size = st.pool_size;
	s->pool_free = st.pool_free;
	if ((s->counters = calloc(PROTO_COUNTER__MAX, sizeof(*s->counters))) ==
	    NULL)
		goto nomem;
	for (int i = 0; i < PROTO_COUNTER__MAX; i++) {
		struct portd_counter *c = &s->counters[s->ncounters];

		if (st.counters[i] < 0)
			continue;
		snprintf(c->name, sizeof(c->name), "%s", proto_counter_name(i));
		c->value = st.counters[i];
		s->ncounters++;
	}
	if (json_object_object_get_ex(reply, "config", &v) &&
	    json_object_is_type(v, json_type_object) &&
	    json_object_object_length(v) > 0) {
		s->settings = calloc(
		    (size_t)json_object_object_length(v), sizeof(*s->settings));
		if (s->settings == NULL)
			goto nomem;
		json_object_object_foreach(v, key, val)
		{
			struct portd_setting *c = &s->settings[s->nsettings++];
			snprintf(c->name, sizeof(c->name), "%s", key);
			if (json_object_is_type(val, json_type_boolean))
				snprintf(c->value, sizeof(c->value), "%s",
				    json_object_get_boolean(val) ? "yes"
				                                 : "no");
			else if (val != NULL)
				snprintf(c->value, sizeof(c->value), "%s",
				    json_object_get_string(val));
		}
	}
	json_object_put(reply);
	*ret_status = s;
	return 0;
nomem:
	portd_status_free(s);
	json_object_put(reply);
	return fail(h, PORTD_E_NOMEM, "status: out of memory");
}

PORTD_PUBLIC int
portd_metrics(struct portd *h, char **ret_text)
{
	json_object *reply, *v;
	char *text;
	int rc;

	if (h == NULL || ret_text == NULL)
		return PORTD_E_INVALID;
	if ((rc = call(h, proto_request_new(PROTO_OP_METRICS), false, &reply)) <
	    0)
		return rc;
	if (!json_object_object_get_ex(reply, "text", &v) ||
	    !json_object_is_type(v, json_type_string))
		rc = fail(h, PORTD_E_PROTOCOL, "metrics: reply without text");
	else if ((text = strdup(json_object_get_string(v))) == NULL)
		rc = fail(h, PORTD_E_NOMEM, "metrics: out of memory");
	else
		*ret_text = text;
	json_object_put(reply);
	return rc;
}

PORTD_PUBLIC int
portd_who(
    struct portd *h, uint16_t port, enum portd_proto proto, char **ret_json)
{
	struct proto_request pr;
	json_object *reply;
	const char *js;
	int rc;

	if (h == NULL || ret_json == NULL || port == 0 ||
	    (proto != PORTD_PROTO_TCP && proto != PORTD_PROTO_UDP))
		return PORTD_E_INVALID;
	proto_request_init(&pr, PROTO_OP_WHO);
	pr.port = port;
	pr.proto = OUT(proto_out, proto);
	if ((rc = call(h, proto_request_encode(&pr), false, &reply)) < 0)
		return rc;
	js = json_object_to_json_string_ext(
	    reply, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (js == NULL || (*ret_json = strdup(js)) == NULL)
		rc = fail(h, PORTD_E_NOMEM, "who: out of memory");
	json_object_put(reply);
	return rc;
}

PORTD_PUBLIC int
portd_stop(struct portd *h, int64_t *ret_leases)
{
	json_object *reply;
	int64_t pid, leases;
	char *line;
	size_t len;
	int rc;

	if (h == NULL)
		return PORTD_E_INVALID;
	if ((rc = call(h, proto_request_new(PROTO_OP_STOP), false, &reply)) < 0)
		return rc;
	pid = proto_reply_int(reply, "pid");
	leases = proto_reply_int(reply, "leases");
	json_object_put(reply);
	if (pid <= 0)
		return fail(h, PORTD_E_PROTOCOL, "stop: reply without a pid");
	/* The daemon closes every connection as it stops: wait for it. */
	rc = io_recv_line(&h->io, io_deadline(h->timeout_ms), &line, &len);
	io_close(&h->io);
	h->broken = true;
	if (rc == PORTD_E_TIMEOUT)
		return fail(h, rc,
		    "stop: portd (pid %lld) acknowledged but did not close "
		    "the connection in time",
		    (long long)pid);
	if (rc == 0)
		return fail(h, PORTD_E_PROTOCOL, "stop: a reply after stop");
	if (ret_leases != NULL)
		*ret_leases = leases;
	fail(h, 0, "%s", "");
	return (int)pid;
}

static pthread_mutex_t pick_lock = PTHREAD_MUTEX_INITIALIZER;
static struct portd *pick_handle; /* open for the life of the process */
static pid_t pick_pid;            /* the process that opened it */

/*
 * Run fn on the process's shared handle, under pick_lock: connect on
 * first use (and again in a forked child), and once more if the daemon
 * went away since (a restart).
 */
static int
with_pick_handle(int (*fn)(struct portd *, void *), void *arg)
{
	const struct portd_options opts = {.autostart = true};
	int rc = 0;

	pthread_mutex_lock(&pick_lock);
	/* A forked child must not share its parent's connection: replies
	 * would interleave. Closing our copy leaves the parent's intact. */
	if (pick_handle != NULL && pick_pid != getpid()) {
		portd_close(pick_handle);
		pick_handle = NULL;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		if (pick_handle == NULL) {
			if ((rc = portd_connect(&opts, &pick_handle)) < 0)
				break;
			pick_pid = getpid();
		}
		rc = fn(pick_handle, arg);
		if (rc >= 0 || !pick_handle->broken)
			break;
		portd_close(pick_handle);
		pick_handle = NULL;
	}
	pthread_mutex_unlock(&pick_lock);
	return rc;
}

struct pick {
	enum portd_proto proto;
	bool claim, fd;
	int tcp_fd, udp_fd; /* fd handoff */
};

static int
pick_one(struct portd *h, void *arg)
{
	struct pick *pk = arg;
	const struct portd_lease_request req = {
	    .proto = pk->proto,
	    .scope = PORTD_SCOPE_PROCESS,
	    .pid = getpid(),
	    .fd = pk->fd,
	};
	struct portd_lease *l;
	int rc;

	if ((rc = portd_lease(h, &req, &l)) < 0)
		return rc;
	if (l->nports != 1) {
		release_quietly(h, l->id);
		portd_lease_free(l);
		return fail(h, PORTD_E_PROTOCOL, "lease: not one port");
	}
	rc = l->ports[0];
	if (pk->claim && (rc = portd_claim(h, l->id, NULL)) == 0)
		rc = l->ports[0];
	for (size_t i = 0; rc > 0 && i < l->nsockets; i++) {
		int *slot = l->sockets[i].proto == PORTD_PROTO_UDP
		                ? &pk->udp_fd
		                : &pk->tcp_fd;
		if (*slot == -1) {
			*slot = l->sockets[i].fd;
			l->sockets[i].fd = -1;
		}
	}
	if (rc < 0)
		release_quietly(h, l->id);
	portd_lease_free(l);
	return rc;
}

PORTD_PUBLIC int
portd_pick_port(void)
{
	struct pick pk = {.proto = PORTD_PROTO_TCP, .tcp_fd = -1, .udp_fd = -1};

	return with_pick_handle(pick_one, &pk);
}

PORTD_PUBLIC int
portd_pick_port_proto(enum portd_proto proto)
{
	struct pick pk = {.proto = proto, .tcp_fd = -1, .udp_fd = -1};

	if (proto != PORTD_PROTO_TCP && proto != PORTD_PROTO_UDP &&
	    proto != PORTD_PROTO_BOTH)
		return PORTD_E_INVALID;
	/* Exclusive holds: nobody binds until claimed, the caller included. */
	pk.claim = proto != PORTD_PROTO_TCP;
	return with_pick_handle(pick_one, &pk);
}

PORTD_PUBLIC int
portd_pick_sockets(enum portd_proto proto, int *ret_tcp_fd, int *ret_udp_fd)
{
	struct pick pk = {
	    .proto = proto, .fd = true, .tcp_fd = -1, .udp_fd = -1};
	bool want_tcp = proto == PORTD_PROTO_TCP || proto == PORTD_PROTO_BOTH;
	bool want_udp = proto == PORTD_PROTO_UDP || proto == PORTD_PROTO_BOTH;
	int rc;

	if ((!want_tcp && !want_udp) || (want_tcp && ret_tcp_fd == NULL) ||
	    (want_udp && ret_udp_fd == NULL))
		return PORTD_E_INVALID;
	rc = with_pick_handle(pick_one, &pk);
	/* A dual lease is one socket a protocol; anything else is wrong. */
	if (rc > 0 &&
	    ((want_tcp && pk.tcp_fd == -1) || (want_udp && pk.udp_fd == -1)))
		rc = PORTD_E_PROTOCOL;
	if (rc < 0) {
		if (pk.tcp_fd != -1)
			close(pk.tcp_fd);
		if (pk.udp_fd != -1)
			close(pk.udp_fd);
		return rc;
	}
	if (ret_tcp_fd != NULL)
		*ret_tcp_fd = pk.tcp_fd;
	if (ret_udp_fd != NULL)
		*ret_udp_fd = pk.udp_fd;
	return rc;
}

static int
return_one(struct portd *h, void *arg)
{
	int rc = portd_release_port(h, *(uint16_t *)arg);

	return rc > 0 ? 0 : rc;
}

PORTD_PUBLIC int
portd_return_port(uint16_t port)
{
	if (port == 0)
		return PORTD_E_INVALID;
	return with_pick_handle(return_one, &port);
}
