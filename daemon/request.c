/*
 * Requests: parse a line with the codec, dispatch through the op table,
 * reply. Every failure becomes one structured error reply; nothing a
 * client sends is fatal.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

struct ctx {
	struct conn *conn;
	const struct peer *peer; /* conn's, as accepted */
	const struct proto_request *req;
	struct proto_writer reply; /* the success reply, written as it grows */
	int fds[PROTO_MAX_SOCKETS];
	int nfds;
};

typedef int (*handler_fn)(struct ctx *, struct proto_error *);

static int op_hello(struct ctx *, struct proto_error *);
static int op_lease(struct ctx *, struct proto_error *);
static int op_renew(struct ctx *, struct proto_error *);
static int op_claim(struct ctx *, struct proto_error *);
static int op_release(struct ctx *, struct proto_error *);
static int op_list(struct ctx *, struct proto_error *);
static int op_status(struct ctx *, struct proto_error *);
static int op_metrics(struct ctx *, struct proto_error *);
static int op_stop(struct ctx *, struct proto_error *);
static int op_who(struct ctx *, struct proto_error *);

static const struct {
	enum proto_op op;
	handler_fn fn;
} ops[] = {
    {PROTO_OP_HELLO, op_hello},
    {PROTO_OP_LEASE, op_lease},
    {PROTO_OP_RENEW, op_renew},
    {PROTO_OP_CLAIM, op_claim},
    {PROTO_OP_RELEASE, op_release},
    {PROTO_OP_LIST, op_list},
    {PROTO_OP_STATUS, op_status},
    {PROTO_OP_METRICS, op_metrics},
    {PROTO_OP_STOP, op_stop},
    {PROTO_OP_WHO, op_who},
};

/* A stop was acknowledged: shut down once its reply is queued. */
static char stop_reason[64];

static void
add(json_object *o, const char *key, json_object *v)
{
	json_object_object_add(o, key, v);
}

/* Write key: v into the reply, and drop v. */
static void
put(struct ctx *x, const char *key, json_object *v)
{
	proto_writer_value(&x->reply, key, v);
	json_object_put(v);
}

/* Write a lease into the reply. */
static void
put_lease(struct ctx *x, const char *key, const struct lease *l)
{
	struct proto_lease v;

	lease_view(l, &v);
	proto_writer_lease(&x->reply, key, &v);
}

/* Write every member of the object o, then drop it; -1 for a NULL o or
 * an encoder's failure rc. */
static int
put_members(struct ctx *x, json_object *o, int rc)
{
	if (o != NULL && rc == 0)
		proto_writer_members(&x->reply, o);
	json_object_put(o);
	return o == NULL ? -1 : rc;
}

/* Find the lease a request names (by id, or for release by a port) that
 * the caller may act on. */
static struct lease *
lookup(struct ctx *x, struct proto_error *err)
{
	const struct proto_request *req = x->req;
	struct lease *l;

	/* Only release names a lease by one of its ports. */
	if (req->port != 0) {
		if ((l = lease_by_port((uint16_t)req->port)) == NULL)
			proto_error_set(err, PROTO_E_NOT_FOUND,
			    "no lease holds port %d", req->port);
		else if (!lease_allowed(l, x->peer->uid))
			proto_error_set(err, PROTO_E_FORBIDDEN,
			    "port %d is leased by another user", req->port);
		else
			return l;
		return NULL;
	}
	if ((l = lease_find(req->lease)) == NULL)
		proto_error_set(
		    err, PROTO_E_NOT_FOUND, "no lease '%s'", req->lease);
	else if (!lease_allowed(l, x->peer->uid))
		proto_error_set(err, PROTO_E_FORBIDDEN,
		    "lease '%s' belongs to another user", req->lease);
	else
		return l;
	return NULL;
}

/* Who answers: in hello and status. */
static struct proto_identity
identity(void)
{
	struct proto_identity id = {.version = PROTO_VERSION, .pid = getpid()};

	snprintf(id.name, sizeof(id.name), "portd");
	snprintf(id.release, sizeof(id.release), "%s", PORTD_VERSION);
	return id;
}

static int
op_hello(struct ctx *x, struct proto_error *err)
{
	struct proto_identity id = identity();

	json_object *o = json_object_new_object();

	if (put_members(x, o, o ? proto_identity_encode(o, &id) : -1) == -1)
		return proto_error_set(
		    err, PROTO_E_RESOURCE_EXHAUSTED, "out of memory");
	put(x, "uid", json_object_new_int64(x->peer->uid));
	return 0;
}

static int
op_lease(struct ctx *x, struct proto_error *err)
{
	const struct proto_request *req = x->req;
	const struct held_socket *socks;
	struct lease *l;
	json_object *arr;
	int n;

	if (req->fd && !conn_fd_budget(x->conn))
		return proto_error_set(err, PROTO_E_RESOURCE_EXHAUSTED,
		    "too many unread replies carrying sockets on this "
		    "connection; read them first");
	if ((l = lease_grant(req, x->peer, x->conn, false, err)) == NULL)
		return -1;
	put_lease(x, "lease", l);
	if (!req->fd)
		return 0;

	socks = lease_sockets(l, &n);
	arr = json_object_new_array();
	for (int i = 0; i < n; i++) {
		struct proto_socket ps = {.port = socks[i].port,
		    .proto = socks[i].proto,
		    .family = socks[i].family};
		int fd = fcntl(socks[i].fd, F_DUPFD_CLOEXEC, 3);

		if (fd == -1) {
			int e = errno;
			json_object_put(arr);
			lease_end(l, LEASE_END_HANDOFF);
			return proto_error_set(err,
			    e == EMFILE || e == ENFILE
			        ? PROTO_E_RESOURCE_EXHAUSTED
			        : PROTO_E_INTERNAL,
			    "cannot pass the sockets: %s", strerror(e));
		}
		x->fds[x->nfds++] = fd;
		json_object_array_add(arr, proto_socket_encode(&ps));
	}
	put(x, "sockets", arr);
	return 0;
}

static int
op_renew(struct ctx *x, struct proto_error *err)
{
	struct lease *l = lookup(x, err);

	if (l == NULL ||
	    lease_renew(l, x->req->has_ttl, x->req->ttl, err) == -1)
		return -1;
	put_lease(x, "lease", l);
	return 0;
}

static int
op_claim(struct ctx *x, struct proto_error *err)
{
	struct lease *l = lookup(x, err);

	if (l == NULL)
		return -1;
	if (lease_claim(l, err) == -1)
		return -1;
	put_lease(x, "lease", l);
	return 0;
}

static int
op_release(struct ctx *x, struct proto_error *err)
{
	struct lease *l;
	struct proto_lease v;

	if ((l = lookup(x, err)) == NULL)
		return -1;
	lease_view(l, &v);
	if (lease_release(l, err) == -1)
		return -1;
	proto_writer_ints(&x->reply, "released", v.ports, v.nports);
	proto_writer_str(&x->reply, "lease", v.id);
	return 0;
}

static void
list_one(struct lease *l, void *arg)
{
	json_object_array_add(arg, lease_json(l));
}

static int
op_list(struct ctx *x, struct proto_error *err)
{
	json_object *arr;

	if (x->req->all && x->peer->uid != 0)
		return proto_error_set(err, PROTO_E_FORBIDDEN,
		    "only root may list every user's leases");
	arr = json_object_new_array();
	lease_foreach(x->req->all, x->peer->uid, list_one, arr);
	put(x, "leases", arr);
	return 0;
}

static json_object *config_json(void);
/*
 * The owner's command line (full: /proc/PID/cmdline, arguments joined by
 * spaces) or only its name (/proc/PID/comm, what ps shows every user);
 * NULL when the process is gone or is not the lease's any more.
 */
static json_object *
owner_command(pid_t pid, uint64_t want_start, bool full)
{
	char path[64], buf[256];
	uint64_t start;
	uid_t uid;
	ssize_t n;
	int fd;

	if (pid <= 0 || proc_identity(pid, &start, &uid) == -1 ||
	    (want_start != 0 && start != want_start))
		return NULL;
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid,
	    full ? "cmdline" : "comm");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	for (ssize_t i = 0; i < n; i++)
		if ((unsigned char)buf[i] < 0x20)
			buf[i] = ' ';
		else if ((unsigned char)buf[i] >= 0x7f)
			buf[i] =
			    '?'; /* ASCII only: valid JSON whatever it is */
	while (n > 0 && buf[n - 1] == ' ')
		buf[--n] = '\0';
	return json_object_new_string(buf);
}

/*
 * who: any user may ask who leases a port. The owner and root see the
 * whole lease and the owner's command line; another user sees what ps
 * would show them (uid, pid, process name) and the lease's id, ports,
 * protocol, state and name, not its timings.
 */
static int
op_who(struct ctx *x, struct proto_error *err)
{
	const struct proto_request *req = x->req;
	struct lease *l = lease_by_port((uint16_t)req->port);
	struct proto_lease v;
	json_object *o, *own, *a;
	bool full;

	(void)err;
	put(x, "port", json_object_new_int(req->port));
	put(x, "proto",
	    json_object_new_string(proto_proto_to_string(req->proto)));
	if (l != NULL) {
		lease_view(l, &v);
		if (!(v.proto & req->proto))
			l = NULL;
	}
	put(x, "leased", json_object_new_boolean(l != NULL));
	if (l == NULL)
		return 0;
	full = lease_allowed(l, x->peer->uid);
	if (full) {
		o = lease_json(l);
	} else {
		o = json_object_new_object();
		add(o, "id", json_object_new_string(v.id));
		a = json_object_new_array();
		for (int i = 0; i < v.nports; i++)
			json_object_array_add(
			    a, json_object_new_int(v.ports[i]));
		add(o, "ports", a);
		add(o, "proto",
		    json_object_new_string(proto_proto_to_string(v.proto)));
		add(o, "name", json_object_new_string(v.name));
		own = json_object_new_object();
		add(own, "uid", json_object_new_int64(v.uid));
		add(own, "pid", json_object_new_int(v.pid));
		add(o, "owner", own);
		add(o, "held", json_object_new_boolean(v.held));
		add(o, "state",
		    json_object_new_string(proto_state_to_string(v.state)));
	}
	put(x, "lease", o);
	put(x, "command", owner_command(v.pid, lease_owner_start(l), full));
	return 0;
}

static int
op_status(struct ctx *x, struct proto_error *err)
{
	const struct lease_counters *lc = lease_counters();
	const struct request_counters *rc = metrics_request_counters();
	struct proto_status st = {.identity = identity(),
	    .uptime = (portd_clock_real() - portd_started_ms) / 1000,
	    .leases = lease_count(),
	    .ports = lease_ports_held(),
	    .sockets = lease_sockets_held(),
	    /* Restored leases portd cannot hold yet (retried). */
	    .unheld = lease_lost_count(),
	    .connections = conn_count(),
	    .queued_output = (int64_t)conn_queued_output(),
	    .output_stalls = (int64_t)conn_output_stalls(),
	    .pool_lo = alloc_pool_lo(),
	    .pool_hi = alloc_pool_hi(),
	    .pool_size = alloc_pool_size(),
	    .pool_free = alloc_pool_free(),
	    .pool_strategy = (int)portd_cfg.strategy,
	    .ipv6 = alloc_ipv6(),
	    .counters = {
	        [PROTO_COUNTER_REQUESTS] = (int64_t)rc->requests,
	        [PROTO_COUNTER_ERRORS] = (int64_t)rc->errors,
	        [PROTO_COUNTER_LEASES_CREATED] = (int64_t)lc->created,
	        [PROTO_COUNTER_LEASES_RELEASED] =
	            (int64_t)lc->ended[LEASE_END_RELEASED],
	        [PROTO_COUNTER_LEASES_EXPIRED] =
	            (int64_t)lc->ended[LEASE_END_EXPIRED],
	        [PROTO_COUNTER_LEASES_SESSION_ENDED] =
	            (int64_t)lc->ended[LEASE_END_SESSION],
	        [PROTO_COUNTER_LEASES_PROCESS_ENDED] =
	            (int64_t)lc->ended[LEASE_END_PROCESS],
	        [PROTO_COUNTER_CLAIMS] = (int64_t)lc->claimed,
	        [PROTO_COUNTER_RENEWALS] = (int64_t)lc->renewed,
	    }};

	json_object *o = json_object_new_object();

	if (put_members(x, o,
	        o ? proto_status_encode(o, &st, config_json()) : -1) == -1)
		return proto_error_set(
		    err, PROTO_E_RESOURCE_EXHAUSTED, "out of memory");
	return 0;
}

static json_object *
str_or_null(const char *s)
{
	return s[0] == '\0' ? NULL : json_object_new_string(s);
}

/* The effective configuration, by config file key; durations in seconds. */
static json_object *
config_json(void)
{
	static const char *const levels[] = {"emerg", "alert", "crit", "err",
	    "warning", "notice", "info", "debug"};
	const struct config *c = &portd_cfg;
	json_object *o = json_object_new_object();
	char buf[32];

	add(o, "mode", json_object_new_string(c->system ? "system" : "user"));
	add(o, "socket", json_object_new_string(c->socket_path));
	add(o, "config-file", str_or_null(c->config_file));
	add(o, "journal",
	    journal_enabled() ? json_object_new_string(journal_path()) : NULL);
	snprintf(buf, sizeof(buf), "%u-%u", alloc_pool_lo(), alloc_pool_hi());
	add(o, "pool", json_object_new_string(buf));
	add(o, "strategy",
	    json_object_new_string(proto_strategy_to_string(c->strategy)));
	add(o, "quota", json_object_new_int(c->quota));
	add(o, "max-leases", json_object_new_int(c->max_leases));
	add(o, "default-ttl", json_object_new_int64(c->default_ttl));
	add(o, "max-ttl", json_object_new_int64(c->max_ttl));
	add(o, "max-connections", json_object_new_int(c->max_conns));
	add(o, "max-connections-per-uid",
	    json_object_new_int(c->max_conns_per_uid));
	add(o, "request-timeout",
	    json_object_new_double(c->request_timeout_ms / 1000.0));
	add(o, "max-output", json_object_new_int64((int64_t)c->max_output));
	add(o, "max-output-per-uid",
	    json_object_new_int64((int64_t)c->max_output_per_uid));
	add(o, "max-output-total",
	    json_object_new_int64((int64_t)c->max_output_total));
	add(o, "max-fd-replies", json_object_new_int(c->max_fd_replies));
	snprintf(buf, sizeof(buf), "%04o", (unsigned)c->socket_mode);
	add(o, "socket-mode", json_object_new_string(buf));
	add(o, "portserver-address", str_or_null(c->portserver));
	add(o, "metrics-address",
	    metrics_bound() ? json_object_new_string(metrics_bound()) : NULL);
	add(o, "metrics-allow-remote",
	    json_object_new_boolean(c->metrics_remote));
	add(o, "allow-ephemeral-pool",
	    json_object_new_boolean(c->allow_ephemeral_pool));
	add(o, "log-level",
	    json_object_new_string(c->log_level >= 0 && c->log_level <= 7
	                               ? levels[c->log_level]
	                               : "info"));
	return o;
}

static int
op_metrics(struct ctx *x, struct proto_error *err)
{
	size_t len;
	char *text;

	if ((text = metrics_text(&len)) == NULL)
		return proto_error_set(
		    err, PROTO_E_RESOURCE_EXHAUSTED, "out of memory");
	put(x, "text", json_object_new_string_len(text, (int)len));
	free(text);
	return 0;
}

static int
op_stop(struct ctx *x, struct proto_error *err)
{
	uid_t uid = x->peer->uid;

	/* The socket may be open to everyone (system mode): stopping is for
	 * the daemon's own user and root. */
	if (uid != 0 && uid != geteuid())
		return proto_error_set(err, PROTO_E_FORBIDDEN,
		    "only root or uid %u may stop this portd",
		    (unsigned)geteuid());
	put(x, "stopping", json_object_new_boolean(true));
	put(x, "pid", json_object_new_int(getpid()));
	put(x, "leases", json_object_new_int(lease_count()));
	put(x, "journal", json_object_new_boolean(journal_enabled()));
	snprintf(stop_reason, sizeof(stop_reason), "stop requested by uid %u",
	    (unsigned)uid);
	return 0;
}

void
request_handle(struct conn *c, const char *line, size_t len)
{
	struct proto_request req;
	struct proto_error err;
	struct ctx x = {.conn = c, .peer = conn_peer(c), .req = &req};
	json_object *reply;
	enum proto_op op;
	char *text;
	size_t tlen;
	int rc = -1;

	metrics_count_request();
	if (proto_request_parse(line, len, &req, &err) == 0) {
		proto_writer_reply(&x.reply, req.id);
		if (x.reply.nomem)
			proto_error_set(
			    &err, PROTO_E_RESOURCE_EXHAUSTED, "out of memory");
		for (size_t i = 0; !x.reply.nomem && i < nitems(ops); i++)
			if (ops[i].op == req.op)
				rc = ops[i].fn(&x, &err);
	}
	op = req.op <= PROTO_OP__MAX ? req.op : PROTO_OP__MAX;
	metrics_count_reply(op, rc == 0 ? NULL : &err);
	if (rc == 0)
		text = proto_writer_end(&x.reply, &tlen);
	else {
		log_debug("uid %u: %s: %s", (unsigned)x.peer->uid,
		    proto_errcode_to_string(err.code), err.message);
		proto_writer_free(&x.reply);
		for (int i = 0; i < x.nfds; i++)
			close(x.fds[i]);
		x.nfds = 0;
		reply = proto_reply_error(req.id, &err);
		text = reply != NULL ? proto_serialize(reply, &tlen) : NULL;
		json_object_put(reply);
	}
	if (text == NULL) {
		for (int i = 0; i < x.nfds; i++)
			close(x.fds[i]);
		conn_close(c, "out of memory for a reply");
	} else if (conn_reply(c, text, tlen, x.fds, x.nfds) == -1)
		conn_close(c, "cannot queue a reply");
	proto_request_clear(&req);
	if (stop_reason[0] != '\0')
		portd_shutdown(stop_reason);
}
