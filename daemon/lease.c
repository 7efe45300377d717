/*
 * The lease table: leases by id and by port, TTL timers, quotas per uid,
 * and the one place a lease ends (lease_end).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

#define LEASE_BUCKETS 4096
/* A restored lease that cannot hold its port yet is tried again after
 * 250 ms, then twice as long each time, up to every 30 s. */
#define LEASE_RETRY_MIN_MS 250
#define LEASE_RETRY_MAX_MS 30000

struct lease {
	char id[PROTO_MAX_ID + 1];
	uid_t uid;
	pid_t pid;
	enum proto_proto proto;
	enum proto_family family;
	bool ipv6;
	enum proto_scope scope;
	enum proto_hold hold;
	bool held;       /* meant to be held (not claimed) */
	bool lost;       /* restored, but its port is not all ours yet */
	int64_t ttl;     /* seconds, -1: none */
	int64_t expires; /* Unix ms, -1: none */
	int64_t created; /* Unix ms */
	char *name;      /* NULL: none (most leases); else allocated */

	int nports;
	int nsocks;
	struct held_socket *socks;

	struct event *timer;
	struct event *retry; /* lost: the next attempt to hold it again */
	int retry_ms;        /* lost: the backoff */
	char *lost_reason;   /* lost: why, allocated (NULL: unknown) */
	struct conn *conn;   /* session scope: the owning connection */
	struct proc *proc;   /* process scope: the owning process */
	uint64_t start;      /* owner's start time, for restore */

	TAILQ_ENTRY(lease) entry; /* all leases, oldest first */
	struct lease *hash_next;
	uint16_t ports[]; /* nports of them, allocated with the lease */
};

/* A lease for nports ports, zeroed; sized to them (docs/benchmarks.md:
 * memory per lease). */
static struct lease *
lease_alloc(int nports)
{
	return calloc(
	    1, sizeof(struct lease) + sizeof(uint16_t) * (size_t)nports);
}

/* Keep a copy of s (NULL or "": none); false when out of memory. */
static bool
set_text(char **dst, const char *s)
{
	free(*dst);
	*dst = NULL;
	if (s == NULL || s[0] == '\0')
		return true;
	return (*dst = strdup(s)) != NULL;
}

struct uid_acct {
	uid_t uid;
	int ports;
	struct uid_acct *next;
};

static TAILQ_HEAD(, lease) leases = TAILQ_HEAD_INITIALIZER(leases);
static struct lease *buckets[LEASE_BUCKETS];
static struct uid_acct *accts;
static int nleases, nports_held, nsocks_held, nlost;
static struct lease_counters counters;

int64_t
portd_clock_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t (*clock_fn)(void) = portd_clock_real;

int64_t
portd_clock(void)
{
	return clock_fn();
}

void
portd_set_clock(int64_t (*clock)(void))
{
	clock_fn = clock != NULL ? clock : portd_clock_real;
}

static unsigned
hash(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % LEASE_BUCKETS;
}

static struct uid_acct *
acct_get(uid_t uid, bool create)
{
	struct uid_acct *a;

	for (a = accts; a != NULL; a = a->next)
		if (a->uid == uid)
			return a;
	if (!create || (a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->uid = uid;
	a->next = accts;
	accts = a;
	return a;
}

int
lease_uid_ports(uid_t uid)
{
	struct uid_acct *a = acct_get(uid, false);

	return a == NULL ? 0 : a->ports;
}

static void view_as(const struct lease *, bool held, struct proto_lease *);

/* Record l as it is, or, with held false, as it will be once claimed:
 * 0, or -1 when the journal could not take it. */
static int
put_record(const struct lease *l, bool held)
{
	struct proto_lease v;

	/* Without a journal a record costs not even the view. */
	if (!journal_enabled())
		return 0;
	view_as(l, held, &v);
	return journal_put(&v, l->start);
}

/* The journal's rewrite: every live lease, oldest first, as its put
 * record; stops at fn's -1. */
static int
each_record(journal_put_fn fn, void *arg)
{
	struct proto_lease v;
	struct lease *l;

	TAILQ_FOREACH(l, &leases, entry)
	{
		lease_view(l, &v);
		if (fn(&v, l->start, arg) == -1)
			return -1;
	}
	return 0;
}

static int lease_restore(const struct proto_lease *, uint64_t);

/* What the journal asks of the table, so that it calls nothing of
 * lease.c by name. */
static const struct journal_table journal_table = {
    .each = each_record,
    .count = lease_count,
    .restore = lease_restore,
};

int
lease_init(void)
{
	memset(buckets, 0, sizeof(buckets));
	TAILQ_INIT(&leases);
	memset(&counters, 0, sizeof(counters));
	nleases = nports_held = nsocks_held = nlost = 0;
	proc_on_exit(lease_end_proc);
	journal_init(&journal_table);
	return 0;
}

void
lease_shutdown(void)
{
	struct lease *l;
	struct uid_acct *a;

	/* Stopping ends no lease for good: the journal keeps them. Here we
	 * only let go of the sockets and memory, once the journal has every
	 * end it is owed. */
	journal_flush();
	while ((l = TAILQ_FIRST(&leases)) != NULL)
		lease_end(l, LEASE_END_STOPPING);
	while ((a = accts) != NULL) {
		accts = a->next;
		free(a);
	}
}

/*
 * Lease ids: "L" and 16 hex digits of a counter run through a keyed
 * permutation of 64-bit numbers (xor-shift-multiply steps, each one a
 * bijection), the key drawn once per process. Within a process no two
 * ids are alike; across restarts the key changes, and the table check
 * below skips an id a restored lease already has. The ids are names, not
 * secrets: every act on a lease checks its owner (lease_allowed). One
 * getrandom per process instead of one per lease.
 */
static uint64_t
id_mix(uint64_t x, const uint64_t key[2])
{
	x ^= key[0];
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dULL;
	x ^= x >> 33;
	return x ^ key[1];
}

static void
make_id(char *buf)
{
	static const char hex[] = "0123456789abcdef";
	static uint64_t key[2], counter;
	static bool keyed;
	uint64_t r;

	if (!keyed) {
		if (getrandom(key, sizeof(key), 0) != sizeof(key)) {
			key[0] = (uint64_t)portd_clock_real() ^
			         ((uint64_t)getpid() << 32);
			key[1] = (uint64_t)random() << 32 ^ (uint64_t)random();
		}
		keyed = true;
	}
	do {
		r = id_mix(counter++, key);
		buf[0] = 'L';
		for (int i = 16; i >= 1; i--, r >>= 4)
			buf[i] = hex[r & 15];
		buf[17] = '\0';
	} while (lease_find(buf) != NULL);
}

struct lease *
lease_grant(const struct proto_request *req, const struct peer *peer,
    struct conn *conn, bool claimed, struct proto_error *err)
{
	struct proc *proc = NULL;

	if (req->scope == PROTO_SCOPE_PROCESS) {
		proc = req->pid != 0
		           ? proc_watch_pid((pid_t)req->pid, peer->uid, 0, err)
		           : proc_watch_peer(peer, err);
		if (proc == NULL)
			return NULL;
	}
	/* lease_create takes proc's reference, on failure too. */
	return lease_create(
	    req, peer->uid, peer->pid, conn, proc, claimed, err);
}

struct lease *
lease_find(const char *id)
{
	struct lease *l;

	for (l = buckets[hash(id)]; l != NULL; l = l->hash_next)
		if (strcmp(l->id, id) == 0)
			return l;
	return NULL;
}

struct lease *
lease_by_port(uint16_t port)
{
	return alloc_owner(port);
}

bool
lease_allowed(const struct lease *l, uid_t uid)
{
	return uid == 0 || uid == l->uid;
}

static void lease_timer_cb(evutil_socket_t, short, void *);
static void lease_free(struct lease *);

/* (Re)arm l's timer for l->expires, making the timer on first use. */
static int
arm_until_expiry(struct lease *l)
{
	int64_t ms = l->expires - portd_clock();
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	if (l->timer == NULL &&
	    (l->timer = evtimer_new(portd_base, lease_timer_cb, l)) == NULL)
		return -1;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return evtimer_add(l->timer, &tv);
}

static void
lease_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lease *l = arg;

	(void)fd;
	(void)what;
	/* A timer may fire a little early on a clock step; check. */
	if (l->expires > portd_clock() && arm_until_expiry(l) == 0)
		return;
	lease_end(l, LEASE_END_EXPIRED);
}

/* Set the TTL and (re)arm the timer; re-adding a pending timer resets it. */
static int
arm(struct lease *l, int64_t ttl)
{
	l->ttl = ttl;
	if (ttl < 0) {
		l->expires = -1;
		if (l->timer != NULL)
			evtimer_del(l->timer);
		return 0;
	}
	l->expires = portd_clock() + ttl * 1000;
	return arm_until_expiry(l);
}

/* Put a complete lease into the table and its counts. */
static void
link_lease(struct lease *l, struct uid_acct *acct)
{
	unsigned h = hash(l->id);

	l->hash_next = buckets[h];
	buckets[h] = l;
	TAILQ_INSERT_TAIL(&leases, l, entry);
	acct->ports += l->nports;
	nleases++;
	nports_held += l->nports;
	if (l->held)
		nsocks_held += l->nsocks;
}

static void close_claimed(struct lease *);

struct lease *
lease_create(const struct proto_request *req, uid_t uid, pid_t pid,
    struct conn *conn, struct proc *proc, bool claimed, struct proto_error *err)
{
	struct alloc_request areq;
	struct alloc_result *res = NULL;
	struct uid_acct *acct;
	struct lease *l = NULL;
	int64_t ttl = -1;
	int nports = req->count;

	/* How long: scope ttl defaults to default_ttl; others have none. */
	if (req->has_ttl)
		ttl = req->ttl;
	else if (req->scope == PROTO_SCOPE_TTL)
		ttl = portd_cfg.default_ttl;
	if (ttl > portd_cfg.max_ttl) {
		proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'ttl' %lld exceeds the maximum of %lld seconds",
		    (long long)ttl, (long long)portd_cfg.max_ttl);
		goto fail;
	}
	if (nleases >= portd_cfg.max_leases) {
		proto_error_set(err, PROTO_E_RESOURCE_EXHAUSTED,
		    "portd holds its maximum of %d leases",
		    portd_cfg.max_leases);
		goto fail;
	}
	if ((acct = acct_get(uid, true)) == NULL)
		goto nomem;
	if (acct->ports + nports > portd_cfg.quota) {
		proto_error_set(err, PROTO_E_QUOTA_EXCEEDED,
		    "uid %u holds %d ports; %d more would exceed the quota "
		    "of %d",
		    (unsigned)uid, acct->ports, nports, portd_cfg.quota);
		goto fail;
	}

	if ((l = lease_alloc(nports)) == NULL ||
	    (res = malloc(sizeof(*res))) == NULL)
		goto nomem;
	areq = (struct alloc_request){.count = req->count,
	    .proto = req->proto,
	    .family = req->family,
	    .hold = req->hold,
	    .port = req->port,
	    .contiguous = req->contiguous,
	    .strategy = req->strategy,
	    /* Root may lease what it may bind; nobody else below. */
	    .min_port = uid == 0 ? 0 : alloc_unprivileged_start()};
	if (alloc_take(&areq, l, res, err) == -1)
		goto fail;
	if (res->nports > nports)
		fatalx("alloc_take gave %d ports for %d", res->nports, nports);
	l->socks = malloc(sizeof(*l->socks) * (size_t)res->nsocks);
	if (l->socks == NULL) {
		alloc_close_sockets(res->socks, res->nsocks);
		alloc_put(res->ports, res->nports);
		goto nomem;
	}
	memcpy(l->socks, res->socks, sizeof(*l->socks) * (size_t)res->nsocks);
	l->nsocks = res->nsocks;
	l->nports = res->nports;
	memcpy(l->ports, res->ports, sizeof(l->ports[0]) * (size_t)l->nports);
	l->family = res->family;
	l->ipv6 = res->ipv6;
	free(res);
	res = NULL;

	make_id(l->id);
	l->uid = uid;
	l->pid = pid;
	l->proto = req->proto;
	l->scope = req->scope;
	l->hold = req->hold;
	l->held = true;
	l->created = portd_clock();
	l->conn = req->scope == PROTO_SCOPE_SESSION ? conn : NULL;
	if (!set_text(&l->name, req->name)) {
		lease_free(l);
		l = NULL;
		goto nomem;
	}
	if (proc != NULL) {
		/* The caller's reference is the lease's from here: lease_end
		 * drops it on the failure paths below. */
		l->proc = proc;
		l->pid = proc_pid(proc);
		l->start = proc_start(proc);
	} else if (l->scope == PROTO_SCOPE_SESSION) {
		/* After a restart the session is gone; its process may not
		 * be. Remember which process it was. */
		uid_t owner;
		if (proc_identity(pid, &l->start, &owner) == -1)
			l->start = 0;
	}
	if (arm(l, ttl) == -1) {
		lease_free(l);
		proto_error_set(err, PROTO_E_INTERNAL, "cannot arm a timer");
		return NULL;
	}

	link_lease(l, acct);
	/* Claimed at once: one record says so, and the sockets, which proved
	 * the ports free, close after it as a claim's do. */
	if (put_record(l, !claimed) == -1) {
		proto_error_set(err, PROTO_E_INTERNAL,
		    "cannot record the lease in the journal");
		lease_end(l, LEASE_END_UNDONE);
		return NULL;
	}
	counters.created++;
	if (claimed)
		close_claimed(l);
	else
		service_store(l->id, l->socks, l->nsocks);
	service_status_changed();
	log_debug("lease %s: %d port(s) from %d for uid %u", l->id, l->nports,
	    l->ports[0], (unsigned)uid);
	return l;
nomem:
	proto_error_set(err, PROTO_E_RESOURCE_EXHAUSTED, "out of memory");
fail:
	free(res);
	free(l);
	proc_unref(proc); /* not yet the lease's: drop it here */
	return NULL;
}

int
lease_renew(struct lease *l, bool has_ttl, int64_t ttl, struct proto_error *err)
{
	int64_t old_ttl = l->ttl, old_expires = l->expires;

	if (!has_ttl)
		ttl = l->ttl > 0 ? l->ttl : portd_cfg.default_ttl;
	if (ttl > portd_cfg.max_ttl)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'ttl' %lld exceeds the maximum of %lld seconds",
		    (long long)ttl, (long long)portd_cfg.max_ttl);
	if (arm(l, ttl) == -1)
		return proto_error_set(
		    err, PROTO_E_INTERNAL, "cannot arm a timer");
	/* The new expiry must be on disk, or a restart would end the lease
	 * at the old one. */
	if (put_record(l, l->held) == -1) {
		l->ttl = old_ttl;
		l->expires = old_expires;
		if (old_expires >= 0)
			arm_until_expiry(l);
		else if (l->timer != NULL)
			evtimer_del(l->timer);
		return proto_error_set(err, PROTO_E_INTERNAL,
		    "cannot record the renewal in the journal; the lease "
		    "keeps its old expiry");
	}
	counters.renewed++;
	return 0;
}

static bool hold_missing(struct lease *);
static void set_lost(struct lease *, bool);

int
lease_claim(struct lease *l, struct proto_error *err)
{
	if (!l->held)
		return 0;
	/* Recorded first: a claim the journal lacks would be restored as
	 * held, and its sockets cannot be opened again once closed. */
	if (put_record(l, false) == -1)
		return proto_error_set(err, PROTO_E_INTERNAL,
		    "cannot record the claim in the journal; portd still "
		    "holds the ports");
	service_unstore(l->id);
	close_claimed(l);
	return 0;
}

/* A held lease's claim, once recorded: its sockets close. */
static void
close_claimed(struct lease *l)
{
	alloc_close_sockets(l->socks, l->nsocks);
	nsocks_held -= l->nsocks;
	l->held = false;
	counters.claimed++;
	/* A lost lease claimed needs only its markers now. */
	if (l->lost && hold_missing(l))
		set_lost(l, false);
}

/* Metric labels and log words, not protocol. */
static const struct {
	const char *label; /* metrics */
	const char *text;  /* the log */
} end_names[LEASE_END__MAX] = {
    [LEASE_END_RELEASED] = {"released", "released"},
    [LEASE_END_EXPIRED] = {"expired", "expired"},
    [LEASE_END_SESSION] = {"session", "ended with its session"},
    [LEASE_END_PROCESS] = {"process", "ended with its process"},
    [LEASE_END_UNCLAIMED] = {"unclaimed", "could not be claimed"},
    [LEASE_END_HANDOFF] = {"handoff", "could not be handed over"},
    [LEASE_END_STOPPING] = {"stopping", "kept in the journal"},
    [LEASE_END_UNDONE] = {"undone", "undone: the journal did not take it"},
};

const char *
lease_end_label(enum lease_end why)
{
	return why < LEASE_END__MAX ? end_names[why].label : "?";
}

const char *
lease_end_text(enum lease_end why)
{
	return why < LEASE_END__MAX ? end_names[why].text : "?";
}

/* Let go of what a lease has: its timers, its process, its sockets and
 * ports, its memory. A lease that never reached the table ends here. */
static void
lease_free(struct lease *l)
{
	if (l->timer != NULL)
		event_free(l->timer);
	if (l->retry != NULL)
		event_free(l->retry);
	proc_unref(l->proc);
	if (l->held)
		alloc_close_sockets(l->socks, l->nsocks);
	alloc_put(l->ports, l->nports);
	free(l->socks);
	free(l->name);
	free(l->lost_reason);
	free(l);
}

static void end_lease(struct lease *, enum lease_end, bool record);

void
lease_end(struct lease *l, enum lease_end why)
{
	if (l != NULL)
		end_lease(l, why, true);
}

int
lease_release(struct lease *l, struct proto_error *err)
{
	/* Recorded first: a release the journal lacks would bring the lease
	 * back at the next start. */
	if (journal_del(l->id) == -1)
		return proto_error_set(err, PROTO_E_INTERNAL,
		    "cannot record the release in the journal; the lease is "
		    "still held");
	end_lease(l, LEASE_END_RELEASED, false);
	return 0;
}

const char *
lease_key(const struct lease *l)
{
	return l->id;
}

/* Take l out of the table and free it; for an end for good, count it and
 * record it in the journal unless the caller did. */
static void
end_lease(struct lease *l, enum lease_end why, bool record)
{
	struct lease **pp;
	struct uid_acct *a;

	log_debug("lease %s %s", l->id, lease_end_text(why));
	for (pp = &buckets[hash(l->id)]; *pp != l; pp = &(*pp)->hash_next)
		;
	*pp = l->hash_next;
	TAILQ_REMOVE(&leases, l, entry);
	nleases--;
	nports_held -= l->nports;
	if (l->held)
		nsocks_held -= l->nsocks;
	if (l->lost)
		nlost--;
	if ((a = acct_get(l->uid, false)) != NULL)
		a->ports -= l->nports;
	if (why < LEASE_END_FOR_GOOD) {
		counters.ended[why]++;
		if (l->held)
			service_unstore(l->id);
		/* It ended whatever the journal says: if the end cannot be
		 * written now, it is owed. */
		if (record && journal_del(l->id) == -1)
			journal_del_later(l->id);
		service_status_changed();
	}
	lease_free(l);
}

/* End every lease whose session is conn or whose process is proc. */
static int
end_owned(const struct conn *c, const struct proc *p, enum lease_end why)
{
	struct lease *l, *next;
	int n = 0;

	for (l = TAILQ_FIRST(&leases); l != NULL; l = next) {
		next = TAILQ_NEXT(l, entry);
		if ((c != NULL && l->conn == c) ||
		    (p != NULL && l->proc == p)) {
			lease_end(l, why);
			n++;
		}
	}
	return n;
}

void
lease_end_conn(struct conn *c)
{
	end_owned(c, NULL, LEASE_END_SESSION);
}

int
lease_end_proc(struct proc *p)
{
	return end_owned(NULL, p, LEASE_END_PROCESS);
}

/* s (NULL: empty) into buf, cut to fit; no printf on the hot path. */
static void
copy_str(char *buf, size_t size, const char *s)
{
	size_t n = s != NULL ? strnlen(s, size - 1) : 0;

	memcpy(buf, s != NULL ? s : "", n);
	buf[n] = '\0';
}

void
lease_view(const struct lease *l, struct proto_lease *v)
{
	view_as(l, l->held, v);
}

/* The view of l as if its sockets were held or not (held false: claimed). */
static void
view_as(const struct lease *l, bool held, struct proto_lease *v)
{
	memset(v, 0, sizeof(*v));
	memcpy(v->id, l->id, sizeof(v->id));
	v->nports = l->nports;
	memcpy(v->ports, l->ports, sizeof(l->ports[0]) * (size_t)l->nports);
	v->proto = l->proto;
	v->family = l->family;
	v->ipv6 = l->ipv6;
	v->scope = l->scope;
	v->hold = l->hold;
	v->ttl = l->ttl;
	v->expires = l->expires;
	v->created = l->created;
	copy_str(v->name, sizeof(v->name), l->name);
	v->uid = (uint32_t)l->uid;
	v->pid = l->pid;
	/* Held only where portd holds the sockets now. A lost claimed
	 * lease stays "claimed", with the reason its port is not reserved. */
	v->held = held && !l->lost;
	v->state = !held     ? PROTO_STATE_CLAIMED
	           : l->lost ? PROTO_STATE_UNHELD
	                     : PROTO_STATE_HELD;
	if (l->lost)
		copy_str(v->reason, sizeof(v->reason), l->lost_reason);
}

const struct held_socket *
lease_sockets(const struct lease *l, int *ret_n)
{
	*ret_n = l->held ? l->nsocks : 0;
	return l->socks;
}

json_object *
lease_json(const struct lease *l)
{
	struct proto_lease v;

	lease_view(l, &v);
	return proto_lease_encode(&v);
}

uint64_t
lease_owner_start(const struct lease *l)
{
	return l->start;
}

/* Whether l has a socket for port and proto. */
static bool
has_socket(const struct lease *l, uint16_t port, enum proto_proto proto)
{
	for (int i = 0; i < l->nsocks; i++)
		if (l->socks[i].port == port && l->socks[i].proto == proto)
			return true;
	return false;
}

/*
 * Hold what a restored lease lacks: the host-wide markers of its ports
 * and, unless it is claimed, its sockets (from the service manager's
 * store first, else bound again). A port whose marker another portd has
 * is left alone: that portd leased it while we were down. Returns true
 * when nothing is missing; else the first reason is in l->lost_reason.
 */
static bool
hold_missing(struct lease *l)
{
	static const enum proto_proto order[] = {PROTO_TCP, PROTO_UDP};
	struct proto_error err;
	bool ok = true;

	set_text(&l->lost_reason, NULL);
	if (alloc_mark_host(l->ports, l->nports, l->proto, &err) == -1) {
		set_text(&l->lost_reason, err.message);
		ok = false;
	}
	if (!l->held)
		return ok;
	for (int i = 0; i < l->nports; i++) {
		for (int k = 0; k < 2; k++) {
			struct held_socket *s = &l->socks[l->nsocks];
			int fd, n = 0;

			if (!(l->proto & order[k]) ||
			    has_socket(l, l->ports[i], order[k]))
				continue;
			fd = service_take_stored(
			    l->id, l->ports[i], order[k], l->family);
			if (fd != -1) {
				*s = (struct held_socket){.fd = fd,
				    .port = l->ports[i],
				    .proto = order[k],
				    .family = l->family};
				l->nsocks++;
				continue;
			}
			if (!alloc_marked(l->ports[i], order[k])) {
				ok = false;
				continue;
			}
			if (alloc_bind_port(l->ports[i], order[k], l->family,
			        l->hold, s, &n, &err) != 0) {
				if (l->lost_reason == NULL)
					set_text(&l->lost_reason, err.message);
				ok = false;
				continue;
			}
			l->nsocks += n;
		}
	}
	return ok;
}

static void
set_lost(struct lease *l, bool lost)
{
	if (l->lost != lost)
		nlost += lost ? 1 : -1;
	l->lost = lost;
	if (!lost) {
		l->retry_ms = 0;
		if (l->retry != NULL)
			evtimer_del(l->retry);
	}
	service_status_changed();
}

static void retry_cb(evutil_socket_t, short, void *);

/* Try a lost lease again later, backing off to LEASE_RETRY_MAX_MS. */
static void
schedule_retry(struct lease *l)
{
	struct timeval tv;

	l->retry_ms = l->retry_ms == 0 ? LEASE_RETRY_MIN_MS : l->retry_ms * 2;
	if (l->retry_ms > LEASE_RETRY_MAX_MS)
		l->retry_ms = LEASE_RETRY_MAX_MS;
	if (l->retry == NULL &&
	    (l->retry = evtimer_new(portd_base, retry_cb, l)) == NULL) {
		log_warnx("lease %s: cannot arm the retry timer", l->id);
		return;
	}
	tv.tv_sec = l->retry_ms / 1000;
	tv.tv_usec = (l->retry_ms % 1000) * 1000;
	evtimer_add(l->retry, &tv);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lease *l = arg;
	int before = l->nsocks;
	bool ok;

	(void)fd;
	(void)what;
	ok = hold_missing(l);
	if (l->held && l->nsocks != before) {
		nsocks_held += l->nsocks - before;
		/* Store the set afresh: it has new binds. */
		service_unstore(l->id);
		service_store(l->id, l->socks, l->nsocks);
	}
	if (ok) {
		log_info("lease %s: holds its ports again", l->id);
		set_lost(l, false);
		return;
	}
	log_debug("lease %s: still not held: %s", l->id,
	    l->lost_reason ? l->lost_reason : "");
	schedule_retry(l);
}

bool
lease_held(const struct lease *l)
{
	return l->held && !l->lost;
}

const char *
lease_lost_reason(const struct lease *l)
{
	return l->lost ? (l->lost_reason ? l->lost_reason : "") : NULL;
}

int
lease_lost_count(void)
{
	return nlost;
}

/* Re-create a lease from the journal (journal_table.restore): hold its
 * ports again (from the service manager's store when it kept them),
 * re-arm its TTL, re-watch its process. Returns -1 when the lease has
 * ended meanwhile, -2 when its owner lives but cannot be watched now (out
 * of descriptors). */
static int
lease_restore(const struct proto_lease *v, uint64_t owner_start)
{
	struct proto_error err;
	struct uid_acct *acct;
	struct lease *l;
	struct proc *proc = NULL;
	int64_t now = portd_clock();
	bool complete;

	if (v->nports == 0 || lease_find(v->id) != NULL)
		return -1;
	if (v->expires >= 0 && v->expires <= now) {
		log_debug("lease %s expired while portd was down", v->id);
		return -1;
	}
	if (v->scope != PROTO_SCOPE_TTL) {
		/* A session ends with its connection, which a restart
		 * closed; its process may live on: tie the lease to it. */
		proc = owner_start == 0
		           ? NULL
		           : proc_watch_pid(v->pid, v->uid, owner_start, &err);
		if (proc == NULL && owner_start != 0 &&
		    (err.code == PROTO_E_RESOURCE_EXHAUSTED ||
		        err.code == PROTO_E_INTERNAL)) {
			/* Not gone: portd cannot watch it now. Dropping
			 * the lease would lose it for good. */
			log_warnx("lease %s: cannot watch its owner %d: %s",
			    v->id, (int)v->pid, err.message);
			return -2;
		}
		if (proc == NULL) {
			log_debug("lease %s: its owner %d is gone", v->id,
			    (int)v->pid);
			return -1;
		}
	}
	if ((l = lease_alloc(v->nports)) == NULL ||
	    (acct = acct_get(v->uid, true)) == NULL) {
		free(l);
		proc_unref(proc);
		return -1;
	}
	memcpy(l->id, v->id, sizeof(l->id));
	l->uid = v->uid;
	l->pid = v->pid;
	l->proto = v->proto;
	l->family = v->family;
	l->ipv6 = v->ipv6;
	l->scope =
	    v->scope == PROTO_SCOPE_SESSION ? PROTO_SCOPE_PROCESS : v->scope;
	l->hold = v->hold;
	l->created = v->created;
	l->ttl = v->ttl;
	l->expires = v->expires;
	l->nports = v->nports;
	memcpy(l->ports, v->ports, sizeof(l->ports[0]) * (size_t)l->nports);
	l->proc = proc;
	l->start = owner_start;
	if (alloc_mark(l->ports, l->nports, l) == -1) {
		log_warnx("lease %s: its ports are leased twice in the "
		          "journal; dropped",
		    l->id);
		proc_unref(proc);
		free(l);
		return -1;
	}
	/* From here on every path lets go through lease_free. */
	if (!set_text(&l->name, v->name)) {
		lease_free(l);
		return -1;
	}
	/* An unheld lease is one to hold: it was lost at an earlier start. */
	l->held = v->held || v->state == PROTO_STATE_UNHELD;
	if (l->held && (l->socks = calloc((size_t)l->nports * 2,
	                    sizeof(*l->socks))) == NULL) {
		lease_free(l);
		return -1;
	}
	complete = hold_missing(l);
	if (l->expires >= 0 && arm_until_expiry(l) == -1) {
		lease_free(l);
		return -1;
	}
	link_lease(l, acct);
	if (!complete) {
		/* Not held: say so, and keep trying (docs/reliability.md). */
		log_warnx("lease %s: cannot hold port %u again: %s; retrying",
		    l->id, l->ports[0], l->lost_reason ? l->lost_reason : "");
		set_lost(l, true);
		schedule_retry(l);
	}
	if (l->held) {
		/* Store the set afresh: some sockets may be new binds. */
		service_unstore(l->id);
		service_store(l->id, l->socks, l->nsocks);
	}
	return 0;
}

uint16_t
lease_port0(const struct lease *l)
{
	return l->ports[0];
}

void
lease_foreach(
    bool all, uid_t uid, void (*fn)(struct lease *, void *), void *arg)
{
	struct lease *l, *next;

	for (l = TAILQ_FIRST(&leases); l != NULL; l = next) {
		next = TAILQ_NEXT(l, entry);
		if (all || l->uid == uid)
			fn(l, arg);
	}
}

int
lease_count(void)
{
	return nleases;
}

int
lease_ports_held(void)
{
	return nports_held;
}

int
lease_sockets_held(void)
{
	return nsocks_held;
}

const struct lease_counters *
lease_counters(void)
{
	return &counters;
}
