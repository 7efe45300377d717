/*
 * Metrics: the daemon's gauges and counters in the Prometheus text format
 * (version 0.0.4), served at /metrics by libevent's evhttp and returned by
 * the API's "metrics" op. Nothing here keeps a count of its own: every
 * figure is read at scrape time from the module that owns it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "daemon.h"

#define METRICS_TIMEOUT_S     10   /* a scrape's whole request */
#define METRICS_MAX_HEADERS   8192 /* bytes of a request's headers */
#define METRICS_ACCEPT_PAUSED 1    /* s to wait after an accept error */

static struct evhttp *http;
static struct evhttp_bound_socket *bound;
static struct event *resume_ev;
static char bound_addr[CONFIG_ADDR_MAX];
double metrics_restore_seconds;
static struct request_counters requests;

void
metrics_count_request(void)
{
	requests.requests++;
}

void
metrics_count_reply(enum proto_op op, const struct proto_error *err)
{
	requests.by_op[op]++;
	if (err == NULL)
		return;
	requests.errors++;
	if (err->code > PROTO_E_NONE && err->code < PROTO_E__MAX)
		requests.errors_by[op][err->code]++;
}

const struct request_counters *
metrics_request_counters(void)
{
	return &requests;
}

static void
head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(
	    b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
gauge(struct evbuffer *b, const char *name, const char *help, double v)
{
	head(b, name, "gauge", help);
	evbuffer_add_printf(b, "%s %.17g\n", name, v);
}

static void
counter(struct evbuffer *b, const char *name, const char *help, uint64_t v)
{
	head(b, name, "counter", help);
	evbuffer_add_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

/* Leases and ports by scope and protocol, and ports by uid. */
struct tally {
	uint64_t leases[3][4]; /* [scope][proto bits] */
	uint64_t ports[3][4];
	uint64_t claimed;
	struct {
		uid_t uid;
		uint64_t ports;
	} * uids;
	size_t nuids, cap;
	bool nomem;
};

static void
tally_one(struct lease *l, void *arg)
{
	struct tally *t = arg;
	struct proto_lease v;
	size_t i;

	lease_view(l, &v);
	if (v.scope <= PROTO_SCOPE_PROCESS && v.proto >= PROTO_TCP &&
	    v.proto <= PROTO_BOTH) {
		t->leases[v.scope][v.proto]++;
		t->ports[v.scope][v.proto] += (uint64_t)v.nports;
	}
	if (!v.held)
		t->claimed++;
	for (i = 0; i < t->nuids && t->uids[i].uid != v.uid; i++)
		;
	if (i == t->nuids) {
		if (t->nuids == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 16;
			void *p = realloc(t->uids, cap * sizeof(*t->uids));
			if (p == NULL) {
				t->nomem = true;
				return;
			}
			t->uids = p;
			t->cap = cap;
		}
		t->uids[t->nuids].uid = v.uid;
		t->uids[t->nuids++].ports = 0;
	}
	t->uids[i].ports += (uint64_t)v.nports;
}

static int
uid_cmp(const void *a, const void *b)
{
	uid_t x = *(const uid_t *)a, y = *(const uid_t *)b;

	return x < y ? -1 : x > y;
}

static void
render_leases(struct evbuffer *b, struct tally *t)
{
	static const enum proto_proto protos[] = {
	    PROTO_TCP, PROTO_UDP, PROTO_BOTH};
	static const char *const names[2] = {
	    "portd_leases", "portd_leased_ports"};
	static const char *const helps[2] = {
	    "Live leases, by scope and protocol.",
	    "Ports held by live leases, by scope and protocol."};

	for (int k = 0; k < 2; k++) {
		head(b, names[k], "gauge", helps[k]);
		for (int s = PROTO_SCOPE_TTL; s <= PROTO_SCOPE_PROCESS; s++)
			for (size_t p = 0; p < nitems(protos); p++)
				evbuffer_add_printf(b,
				    "%s{scope=\"%s\",proto=\"%s\"} %llu\n",
				    names[k], proto_scope_to_string(s),
				    proto_proto_to_string(protos[p]),
				    (unsigned long long)(k == 0
				                             ? t->leases
				                                   [s]
				                                   [protos[p]]
				                             : t->ports[s][protos
				                                       [p]]));
	}
	gauge(b, "portd_claimed_leases",
	    "Live leases whose sockets the owner took over (claim).",
	    (double)t->claimed);
	if (t->nuids > 1)
		qsort(t->uids, t->nuids, sizeof(*t->uids), uid_cmp);
	head(b, "portd_user_leased_ports", "gauge",
	    "Ports held by live leases, by owner uid (the quota counts "
	    "these).");
	for (size_t i = 0; i < t->nuids; i++)
		evbuffer_add_printf(b,
		    "portd_user_leased_ports{uid=\"%u\"} %llu\n",
		    (unsigned)t->uids[i].uid,
		    (unsigned long long)t->uids[i].ports);
}

static void
render_requests(struct evbuffer *b)
{
	const struct request_counters *rc = &requests;

	head(b, "portd_requests_total", "counter",
	    "API requests, by op (\"invalid\": the line named no known op).");
	for (int op = 0; op <= PROTO_OP__MAX; op++)
		evbuffer_add_printf(b, "portd_requests_total{op=\"%s\"} %llu\n",
		    op == PROTO_OP__MAX ? "invalid" : proto_op_to_string(op),
		    (unsigned long long)rc->by_op[op]);
	head(b, "portd_request_errors_total", "counter",
	    "API requests refused, by op and error code (pairs seen so far).");
	for (int op = 0; op <= PROTO_OP__MAX; op++)
		for (int e = PROTO_E_NONE + 1; e < PROTO_E__MAX; e++)
			if (rc->errors_by[op][e] != 0)
				evbuffer_add_printf(b,
				    "portd_request_errors_total{op=\"%s\","
				    "code=\"%s\"} %llu\n",
				    op == PROTO_OP__MAX
				        ? "invalid"
				        : proto_op_to_string(op),
				    proto_errcode_to_string(e),
				    (unsigned long long)rc->errors_by[op][e]);
}

static void
render_ends(struct evbuffer *b)
{
	const struct lease_counters *lc = lease_counters();

	counter(
	    b, "portd_leases_created_total", "Leases granted.", lc->created);
	head(b, "portd_leases_ended_total", "counter",
	    "Leases ended, by reason (released, TTL expired, session closed, "
	    "owning process exited, portserver claim not recorded, sockets "
	    "not passed).");
	for (int i = 0; i < LEASE_END_FOR_GOOD; i++)
		evbuffer_add_printf(b,
		    "portd_leases_ended_total{reason=\"%s\"} %llu\n",
		    lease_end_label(i), (unsigned long long)lc->ended[i]);
	counter(b, "portd_lease_claims_total",
	    "Claims: portd closed a lease's sockets for its owner to bind.",
	    lc->claimed);
	counter(b, "portd_lease_renewals_total", "Renewals of a lease's TTL.",
	    lc->renewed);
}

static void
render_reclaims(struct evbuffer *b)
{
	const struct proc_stats *ps = proc_stats();
	uint64_t cum = 0;

	counter(b, "portd_process_reclaims_total",
	    "Exits of owning processes that ended leases.", ps->reclaims);
	head(b, "portd_process_reclaim_duration_seconds", "histogram",
	    "From seeing an owning process exit (its pidfd readable) to its "
	    "ports being free again.");
	for (int i = 0; i < PROC_RECLAIM_BUCKETS; i++) {
		cum += ps->count[i];
		evbuffer_add_printf(b,
		    "portd_process_reclaim_duration_seconds_bucket{le=\"%g\"} "
		    "%llu\n",
		    proc_reclaim_bounds[i], (unsigned long long)cum);
	}
	cum += ps->over;
	evbuffer_add_printf(b,
	    "portd_process_reclaim_duration_seconds_bucket{le=\"+Inf\"} "
	    "%llu\n"
	    "portd_process_reclaim_duration_seconds_sum %.9f\n"
	    "portd_process_reclaim_duration_seconds_count %llu\n",
	    (unsigned long long)cum, ps->sum, (unsigned long long)cum);
}

static int
render(struct evbuffer *b)
{
	struct tally t = {0};
	struct journal_stats js;

	lease_foreach(true, 0, tally_one, &t);
	if (t.nomem) {
		free(t.uids);
		return -1;
	}
	head(b, "portd_build_info", "gauge", "portd's version, always 1.");
	evbuffer_add_printf(b,
	    "portd_build_info{version=\"%s\",protocol=\"%d\"} 1\n",
	    PORTD_VERSION, PROTO_VERSION);
	gauge(b, "portd_start_time_seconds",
	    "When this portd started, in Unix seconds.",
	    (double)portd_started_ms / 1000.0);
	gauge(b, "portd_pool_ports", "Ports in the pool.",
	    (double)alloc_pool_size());
	gauge(b, "portd_pool_free_ports",
	    "Pool ports neither leased nor known to be busy.",
	    (double)alloc_pool_free());
	gauge(b, "portd_quota_ports", "Ports each uid may lease at once.",
	    (double)portd_cfg.quota);
	render_leases(b, &t);
	free(t.uids);
	gauge(b, "portd_held_sockets",
	    "Sockets portd holds open for live leases.",
	    (double)lease_sockets_held());
	gauge(b, "portd_connections", "Open API connections.",
	    (double)conn_count());
	gauge(b, "portd_watched_processes",
	    "Owning processes watched through a pidfd.", (double)proc_count());
	render_requests(b);
	render_ends(b);
	render_reclaims(b);
	counter(b, "portd_portserver_requests_total",
	    "Ports handed out over the portserver protocol.",
	    portserver_served());
	journal_stats(&js);
	gauge(b, "portd_journal_bytes",
	    "Size of the state journal (-1: running without one).",
	    (double)js.bytes);
	counter(b, "portd_journal_compactions_total",
	    "Rewrites of the journal to one record a lease (one at start).",
	    js.compactions);
	gauge(b, "portd_restore_duration_seconds",
	    "How long the last start took to restore the journal's leases.",
	    metrics_restore_seconds);
	return 0;
}

char *
metrics_text(size_t *ret_len)
{
	struct evbuffer *b = evbuffer_new();
	size_t len;
	char *s = NULL;

	if (b == NULL)
		return NULL;
	if (render(b) == 0) {
		len = evbuffer_get_length(b);
		if ((s = malloc(len + 1)) != NULL) {
			evbuffer_remove(b, s, len);
			s[len] = '\0';
			*ret_len = len;
		}
	}
	evbuffer_free(b);
	return s;
}

static void
metrics_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b;

	(void)arg;
	if ((b = evbuffer_new()) == NULL || render(b) == -1) {
		if (b != NULL)
			evbuffer_free(b);
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

static void
notfound_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_send_error(req, HTTP_NOTFOUND, "only /metrics is served here");
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (bound != NULL)
		evconnlistener_enable(evhttp_bound_socket_get_listener(bound));
}

/* An accept error (EMFILE) leaves the socket readable: libevent would call
 * us in a loop. Pause accepting for a second instead. */
static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct timeval tv = {METRICS_ACCEPT_PAUSED, 0};

	(void)arg;
	log_warn("metrics: accept");
	evconnlistener_disable(l);
	evtimer_add(resume_ev, &tv);
}

int
metrics_open(const char *addr)
{
	char host[INET6_ADDRSTRLEN + 1], why[256];
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	uint16_t port;
	bool lo;

	if (config_parse_hostport(
	        addr, host, sizeof(host), &port, &lo, why, sizeof(why)) == -1) {
		log_warnx("metrics: %s", why);
		return -1;
	}
	if ((http = evhttp_new(portd_base)) == NULL ||
	    (resume_ev = evtimer_new(portd_base, resume_cb, NULL)) == NULL) {
		log_warnx("metrics: out of memory");
		metrics_close();
		return -1;
	}
	/* A scrape is one small GET: refuse everything else early. */
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_timeout(http, METRICS_TIMEOUT_S);
	evhttp_set_max_headers_size(http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(http, 0);
	evhttp_set_cb(http, "/metrics", metrics_cb, NULL);
	evhttp_set_gencb(http, notfound_cb, NULL);
	if ((bound = evhttp_bind_socket_with_handle(http, host, port)) ==
	    NULL) {
		log_warn("metrics: cannot listen on %s", addr);
		metrics_close();
		return -1;
	}
	evconnlistener_set_error_cb(
	    evhttp_bound_socket_get_listener(bound), accept_error_cb);
	if (getsockname(evhttp_bound_socket_get_fd(bound),
	        (struct sockaddr *)&ss, &sslen) == 0) {
		char num[INET6_ADDRSTRLEN];
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &s6->sin6_addr, num, sizeof(num));
			snprintf(bound_addr, sizeof(bound_addr), "[%s]:%u", num,
			    ntohs(s6->sin6_port));
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &s4->sin_addr, num, sizeof(num));
			snprintf(bound_addr, sizeof(bound_addr), "%s:%u", num,
			    ntohs(s4->sin_port));
		}
	}
	log_info("metrics on http://%s/metrics", bound_addr);
	return 0;
}

const char *
metrics_bound(void)
{
	return bound != NULL && bound_addr[0] != '\0' ? bound_addr : NULL;
}

void
metrics_close(void)
{
	if (http != NULL)
		evhttp_free(http); /* frees the bound socket too */
	if (resume_ev != NULL)
		event_free(resume_ev);
	http = NULL;
	bound = NULL;
	resume_ev = NULL;
	bound_addr[0] = '\0';
}
