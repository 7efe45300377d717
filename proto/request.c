/*
 * portd wire protocol: the request codec (see proto.h): a request line
 * parsed and validated into a struct proto_request, and the reply envelope.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "proto.h"

/* The fields each op accepts besides "op" and "id". */
static const char *const op_fields[PROTO_OP__MAX][16] = {
    [PROTO_OP_HELLO] = {"version"},
    [PROTO_OP_LEASE] = {"count", "proto", "family", "port", "contiguous",
        "hold", "ttl", "scope", "pid", "name", "fd", "strategy"},
    [PROTO_OP_RENEW] = {"lease", "ttl"},
    [PROTO_OP_CLAIM] = {"lease"},
    [PROTO_OP_RELEASE] = {"lease", "port"},
    [PROTO_OP_LIST] = {"all"},
    [PROTO_OP_STATUS] = {NULL},
    [PROTO_OP_METRICS] = {NULL},
    [PROTO_OP_STOP] = {NULL},
    [PROTO_OP_WHO] = {"port", "proto"},
};

/* Longest TTL the codec lets through; the daemon applies its own maximum. */
#define PROTO_TTL_LIMIT (366LL * 24 * 3600)

/*
 * A request's members as the decoder below reads them, from either
 * reader: json-c's tree, once its op and every key are known (so at most
 * "op", "id" and the op's fields), or the scan of the canonical shape.
 * Keys need not be NUL-terminated.
 */
#define MEMBERS_MAX 16
struct members {
	int n;
	const char *key[MEMBERS_MAX];
	size_t klen[MEMBERS_MAX];
	struct pval v[MEMBERS_MAX];
};

static const struct pval *
member(const struct members *m, const char *key)
{
	size_t n = strlen(key);

	for (int i = 0; i < m->n; i++)
		if (m->klen[i] == n && memcmp(m->key[i], key, n) == 0)
			return &m->v[i];
	return NULL;
}

static int
get_int(const struct members *m, const char *key, int64_t min, int64_t max,
    int64_t *ret, struct proto_error *err)
{
	const struct pval *p = member(m, key);

	return p == NULL ? 0 : pval_int(p, key, min, max, ret, err);
}

static int
get_bool(const struct members *m, const char *key, bool *ret,
    struct proto_error *err)
{
	const struct pval *p = member(m, key);

	return p == NULL ? 0 : pval_bool(p, key, ret, err);
}

/* Read an enumerated string field by its name table into *ret. */
static int
get_enum(const struct members *m, const char *key, const struct proto_names *t,
    int *ret, struct proto_error *err)
{
	const struct pval *p = member(m, key);
	char buf[32], expect[128];
	int v;

	if (p == NULL)
		return 0;
	if (pval_string_check(p, key, sizeof(buf) - 1, err) == -1)
		return -1;
	memcpy(buf, p->s, p->len);
	buf[p->len] = '\0';
	if ((v = proto_names_find(t, buf)) >= 0) {
		*ret = v;
		return 0;
	}
	proto_names_join(t, expect, sizeof(expect));
	return proto_error_set(err, PROTO_E_BAD_REQUEST,
	    "'%s' must be one of %s, not '%s'", key, expect,
	    proto_printable(buf, strlen(buf)));
}

static int
check_id(json_object *id, struct proto_error *err)
{
	switch (json_object_get_type(id)) {
	case json_type_null:
	case json_type_boolean:
	case json_type_int:
		return 0;
	case json_type_double:
		if (!isfinite(json_object_get_double(id)))
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "'id' must be a finite number");
		return 0;
	case json_type_string:
		return proto_string_check(id, "id", PROTO_MAX_REQID, err);
	default:
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'id' must be a scalar (string, number, boolean or null)");
	}
}

/* An optional "ttl" (lease, renew): r->ttl and r->has_ttl. */
static int
get_ttl(
    const struct members *o, struct proto_request *r, struct proto_error *err)
{
	if (member(o, "ttl") == NULL)
		return 0;
	if (get_int(o, "ttl", 1, PROTO_TTL_LIMIT, &r->ttl, err) == -1)
		return -1;
	r->has_ttl = true;
	return 0;
}

static int
parse_lease(
    const struct members *o, struct proto_request *r, struct proto_error *err)
{
	const struct pval *v;
	int64_t n;
	int e = 0;

	n = 1;
	if (get_int(o, "count", 1, PROTO_MAX_COUNT, &n, err) == -1)
		return -1;
	r->count = (int)n;
	e = PROTO_TCP;
	if (get_enum(o, "proto", &proto_names_proto, &e, err) == -1)
		return -1;
	r->proto = e;
	e = PROTO_FAM_DUAL;
	if (get_enum(o, "family", &proto_names_family, &e, err) == -1)
		return -1;
	r->family = e;
	n = 0;
	if (get_int(o, "port", 1, 65535, &n, err) == -1)
		return -1;
	r->port = (int)n;
	if (get_bool(o, "contiguous", &r->contiguous, err) == -1)
		return -1;
	e = -1;
	if (get_enum(o, "hold", &proto_names_hold, &e, err) == -1)
		return -1;
	r->has_hold = e != -1;
	r->hold =
	    r->proto == PROTO_TCP ? PROTO_HOLD_SHARED : PROTO_HOLD_EXCLUSIVE;
	if (r->has_hold)
		r->hold = e;
	if (get_ttl(o, r, err) == -1)
		return -1;
	e = PROTO_SCOPE_TTL;
	if (get_enum(o, "scope", &proto_names_scope, &e, err) == -1)
		return -1;
	r->scope = e;
	n = 0;
	if (get_int(o, "pid", INT32_MIN, INT32_MAX, &n, err) == -1)
		return -1;
	if (member(o, "pid") != NULL && n < 2)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'pid' must be a process id of 2 or more");
	r->pid = n;
	if ((v = member(o, "name")) != NULL) {
		if (pval_string_check(v, "name", PROTO_MAX_NAME, err) == -1)
			return -1;
		if (!proto_label_valid(v->s, v->len))
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "'name' may hold only printable ASCII characters");
		memcpy(r->name, v->s, v->len);
		r->name[v->len] = '\0';
	}
	if (get_bool(o, "fd", &r->fd, err) == -1)
		return -1;
	e = PROTO_STRATEGY_DEFAULT;
	if (get_enum(o, "strategy", &proto_names_strategy, &e, err) == -1)
		return -1;
	r->strategy = e;

	/* Combinations. */
	if (r->hold == PROTO_HOLD_SHARED && r->proto != PROTO_TCP)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'hold' shared is for tcp only; udp is always exclusive");
	if (r->pid != 0 && r->scope != PROTO_SCOPE_PROCESS)
		return proto_error_set(
		    err, PROTO_E_BAD_REQUEST, "'pid' goes with scope process");
	if (r->strategy == PROTO_STRATEGY_EPHEMERAL && r->port != 0)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'port' and strategy ephemeral exclude each other");
	if (r->strategy == PROTO_STRATEGY_EPHEMERAL && r->contiguous &&
	    r->count > 1)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "strategy ephemeral cannot give contiguous ports");
	if (r->port != 0 && r->port + r->count - 1 > 65535)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'port' + 'count' runs past 65535");
	return 0;
}

static int
get_lease_id(const struct members *o, struct proto_request *r, bool required,
    struct proto_error *err)
{
	const struct pval *v = member(o, "lease");

	if (v == NULL) {
		if (required)
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "'lease' (a lease id) is required");
		return 0;
	}
	/* A lease id holds no NUL, so a json-c string cut at one fails. */
	if (v->type != json_type_string || !proto_lease_id_valid(v->s, v->len))
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'lease' must be a lease id string");
	memcpy(r->lease, v->s, v->len);
	r->lease[v->len] = '\0';
	return 0;
}

/* The op's fields, once r->op, r->id and the keys are known good. */
static int
decode(
    const struct members *o, struct proto_request *r, struct proto_error *err)
{
	switch (r->op) {
	case PROTO_OP_HELLO:
		if (get_int(o, "version", 1, INT32_MAX, &r->version, err) == -1)
			return -1;
		if (r->version != 0 && r->version != PROTO_VERSION)
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "protocol version %lld is not supported "
			    "(this server speaks %d)",
			    (long long)r->version, PROTO_VERSION);
		return 0;
	case PROTO_OP_LEASE:
		return parse_lease(o, r, err);
	case PROTO_OP_RENEW:
		if (get_lease_id(o, r, true, err) == -1)
			return -1;
		return get_ttl(o, r, err);
	case PROTO_OP_CLAIM:
		return get_lease_id(o, r, true, err);
	case PROTO_OP_RELEASE: {
		int64_t port = 0;
		if (get_lease_id(o, r, false, err) == -1 ||
		    get_int(o, "port", 1, 65535, &port, err) == -1)
			return -1;
		r->port = (int)port;
		if ((r->lease[0] != '\0') == (r->port != 0))
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "release takes exactly one of 'lease' and 'port'");
		return 0;
	}
	case PROTO_OP_LIST:
		return get_bool(o, "all", &r->all, err);
	case PROTO_OP_WHO: {
		int64_t port = 0;
		int e = PROTO_TCP;
		if (get_int(o, "port", 1, 65535, &port, err) == -1 ||
		    get_enum(o, "proto", &proto_names_proto, &e, err) == -1)
			return -1;
		if (port == 0)
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "'port' (1-65535) is required");
		r->port = (int)port;
		r->proto = e;
		return 0;
	}
	case PROTO_OP_STATUS:
	case PROTO_OP_METRICS:
	case PROTO_OP_STOP:
	case PROTO_OP__MAX:
		break;
	}
	return 0;
}

static bool
field_known(enum proto_op op, const char *key, size_t len)
{
	const char *const *f = op_fields[op];

	if ((len == 2 && memcmp(key, "op", 2) == 0) ||
	    (len == 2 && memcmp(key, "id", 2) == 0))
		return true;
	for (int i = 0; f[i] != NULL; i++)
		if (strlen(f[i]) == len && memcmp(key, f[i], len) == 0)
			return true;
	return false;
}

void
proto_request_init(struct proto_request *r, enum proto_op op)
{
	memset(r, 0, sizeof(*r));
	r->op = op;
	r->count = 1;
	r->proto = PROTO_TCP;
}

int
proto_request_parse_json(const char *line, size_t len, struct proto_request *r,
    struct proto_error *err)
{
	struct members m = {0};
	json_object *o, *v;
	const char *opname;
	int op, rc = -1;

	proto_request_init(r, PROTO_OP__MAX); /* until the line names an op */
	err->code = PROTO_E_NONE;
	err->message[0] = '\0';

	if ((o = proto_parse_object(line, len, err)) == NULL)
		return -1;

	if (json_object_object_get_ex(o, "id", &v)) {
		if (check_id(v, err) == -1)
			goto out;
		r->id = json_object_get(v); /* NULL for a JSON null */
	}
	if (!json_object_object_get_ex(o, "op", &v)) {
		proto_error_set(err, PROTO_E_BAD_REQUEST, "'op' is required");
		goto out;
	}
	if (!json_object_is_type(v, json_type_string)) {
		proto_error_set(
		    err, PROTO_E_BAD_REQUEST, "'op' must be a string");
		goto out;
	}
	opname = json_object_get_string(v);
	/* strcmp alone would take "status\u0000junk" for "status". */
	op = strlen(opname) == (size_t)json_object_get_string_len(v)
	         ? proto_op_from_string(opname)
	         : -1;
	r->op = op >= 0 ? (enum proto_op)op : PROTO_OP__MAX;
	if (r->op == PROTO_OP__MAX) {
		proto_error_set(err, PROTO_E_UNKNOWN_OP, "unknown op '%s'",
		    proto_printable(
		        opname, (size_t)json_object_get_string_len(v)));
		goto out;
	}

	json_object_object_foreach(o, key, val)
	{
		if (!field_known(r->op, key, strlen(key))) {
			proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "unknown field '%s' for op '%s'",
			    proto_printable(key, strlen(key)),
			    proto_op_to_string(r->op));
			goto out;
		}
		/* Every key known and none twice: they fit. */
		m.key[m.n] = key;
		m.klen[m.n] = strlen(key);
		pval_of(val, &m.v[m.n]);
		m.n++;
	}
	rc = decode(&m, r, err);
out:
	json_object_put(o);
	return rc;
}

/*
 * The fast reader. A request in the canonical shape, as libportd writes
 * it, goes around json-c: no white space, keys and strings of printable
 * ASCII without escapes, integers of at most 18 digits without a leading
 * zero, true and false, each key once and known to its op. That is a
 * subset of the JSON the json-c reader takes, and on it both readers
 * see the same members with the same values, which then go through the
 * one decoder above. Anything else (white space, an escape, a null, a
 * float, a nested value, an unknown op or key, a bad id) is left to the
 * json-c reader, which gives the answer or the error: -1 here only means
 * "not this shape". fuzz_proto checks the two readers agree.
 */
static int
scan_str(const char **pp, const char *end, const char **ret, size_t *ret_len)
{
	const char *p = *pp, *b;

	if (p == end || *p != '"')
		return -1;
	for (b = ++p; p < end && *p != '"'; p++)
		if (*p < 0x20 || *p > 0x7e || *p == '\\')
			return -1;
	if (p == end)
		return -1;
	*ret = b;
	*ret_len = (size_t)(p - b);
	*pp = p + 1;
	return 0;
}

static int
scan_value(const char **pp, const char *end, struct pval *v)
{
	const char *p = *pp;
	bool neg = false;
	int digits = 0;

	memset(v, 0, sizeof(*v));
	if (p == end)
		return -1;
	if (*p == '"') {
		v->type = json_type_string;
		return scan_str(pp, end, &v->s, &v->len);
	}
	if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
		v->type = json_type_boolean;
		v->b = true;
		*pp = p + 4;
		return 0;
	}
	if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
		v->type = json_type_boolean;
		*pp = p + 5;
		return 0;
	}
	if (*p == '-') {
		neg = true;
		p++;
	}
	if (p == end || *p < '0' || *p > '9' || (*p == '0' && neg))
		return -1;
	if (*p == '0')
		p++; /* 0, and nothing may follow it but ',' or '}' */
	else
		for (; p < end && *p >= '0' && *p <= '9' && digits < 18;
		     p++, digits++)
			v->i = v->i * 10 + (*p - '0');
	/* A 19th digit, a leading zero, a fraction or an exponent: the
	 * caller finds no ',' or '}' here and leaves the line to json-c. */
	if (neg)
		v->i = -v->i;
	v->type = json_type_int;
	*pp = p;
	return 0;
}

static int
scan_members(const char *line, size_t len, struct members *m)
{
	const char *p = line, *end = line + len;

	m->n = 0;
	if (len > PROTO_MAX_LINE || p == end || *p++ != '{')
		return -1;
	for (;;) {
		if (m->n == MEMBERS_MAX ||
		    scan_str(&p, end, &m->key[m->n], &m->klen[m->n]) == -1 ||
		    p == end || *p++ != ':' ||
		    scan_value(&p, end, &m->v[m->n]) == -1 || p == end)
			return -1;
		for (int i = 0; i < m->n; i++)
			if (m->klen[i] == m->klen[m->n] &&
			    memcmp(m->key[i], m->key[m->n], m->klen[i]) == 0)
				return -1;
		m->n++;
		if (*p == '}')
			return p + 1 == end ? 0 : -1;
		if (*p++ != ',')
			return -1;
	}
}

static int
fast_parse(
    const char *line, size_t len, struct proto_request *r, struct members *m)
{
	const struct pval *v;
	char name[16];
	int op;

	if (scan_members(line, len, m) == -1 || (v = member(m, "op")) == NULL ||
	    v->type != json_type_string || v->len >= sizeof(name))
		return -1;
	memcpy(name, v->s, v->len);
	name[v->len] = '\0';
	if ((op = proto_op_from_string(name)) < 0)
		return -1;
	for (int i = 0; i < m->n; i++)
		if (!field_known((enum proto_op)op, m->key[i], m->klen[i]))
			return -1;
	if ((v = member(m, "id")) != NULL) {
		if (v->type == json_type_string && v->len > PROTO_MAX_REQID)
			return -1;
		r->id = v->type == json_type_int ? json_object_new_int64(v->i)
		        : v->type == json_type_boolean
		            ? json_object_new_boolean(v->b)
		            : json_object_new_string_len(v->s, (int)v->len);
		if (r->id == NULL)
			return -1; /* json-c's reader then says out of memory */
	}
	r->op = (enum proto_op)op;
	return 0;
}

int
proto_request_parse_fast(const char *line, size_t len, struct proto_request *r,
    struct proto_error *err)
{
	struct members m;

	proto_request_init(r, PROTO_OP__MAX);
	err->code = PROTO_E_NONE;
	err->message[0] = '\0';
	if (fast_parse(line, len, r, &m) == 0)
		return decode(&m, r, err);
	proto_request_clear(r);
	return 1;
}

int
proto_request_parse(const char *line, size_t len, struct proto_request *r,
    struct proto_error *err)
{
	int rc = proto_request_parse_fast(line, len, r, err);

	return rc != 1 ? rc : proto_request_parse_json(line, len, r, err);
}

void
proto_request_clear(struct proto_request *r)
{
	if (r->id != NULL)
		json_object_put(r->id);
	r->id = NULL;
}

json_object *
proto_reply_ok(json_object *id)
{
	json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "id", json_object_get(id));
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

json_object *
proto_reply_error(json_object *id, const struct proto_error *err)
{
	json_object *o = json_object_new_object(), *e;

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "id", json_object_get(id));
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	e = json_object_new_object();
	json_object_object_add(e, "code",
	    json_object_new_string(proto_errcode_to_string(err->code)));
	json_object_object_add(
	    e, "message", json_object_new_string(err->message));
	json_object_object_add(o, "error", e);
	return o;
}

json_object *
proto_request_new(enum proto_op op)
{
	json_object *o = json_object_new_object();

	if (o != NULL &&
	    json_object_object_add(
	        o, "op", json_object_new_string(proto_op_to_string(op))) != 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

json_object *
proto_request_add(json_object *o, const char *key, json_object *value)
{
	if (o == NULL || value == NULL ||
	    json_object_object_add(o, key, value) != 0) {
		json_object_put(value);
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Add key: value to o unless o is already NULL (see proto_request_add). */
#define PUT(o, key, value) ((o) = proto_request_add((o), key, value))
#define PUT_NAME(o, key, kind, v)                                              \
	PUT(o, key, json_object_new_string(proto_##kind##_to_string(v)))

static json_object *
encode_lease(json_object *o, const struct proto_request *r)
{
	if (r->count != 1)
		PUT(o, "count", json_object_new_int(r->count));
	if (r->proto != PROTO_TCP)
		PUT_NAME(o, "proto", proto, r->proto);
	if (r->family != PROTO_FAM_DUAL)
		PUT_NAME(o, "family", family, r->family);
	if (r->port != 0)
		PUT(o, "port", json_object_new_int(r->port));
	if (r->contiguous)
		PUT(o, "contiguous", json_object_new_boolean(1));
	if (r->has_hold)
		PUT_NAME(o, "hold", hold, r->hold);
	if (r->has_ttl)
		PUT(o, "ttl", json_object_new_int64(r->ttl));
	if (r->scope != PROTO_SCOPE_TTL)
		PUT_NAME(o, "scope", scope, r->scope);
	if (r->pid != 0)
		PUT(o, "pid", json_object_new_int64(r->pid));
	if (r->name[0] != '\0')
		PUT(o, "name", json_object_new_string(r->name));
	if (r->fd)
		PUT(o, "fd", json_object_new_boolean(1));
	if (r->strategy != PROTO_STRATEGY_DEFAULT)
		PUT_NAME(o, "strategy", strategy, r->strategy);
	return o;
}

json_object *
proto_request_encode(const struct proto_request *r)
{
	json_object *o;

	if ((unsigned)r->op >= PROTO_OP__MAX)
		return NULL;
	o = proto_request_new(r->op);
	if (r->id != NULL)
		PUT(o, "id", json_object_get(r->id));
	switch (r->op) {
	case PROTO_OP_HELLO:
		if (r->version != 0)
			PUT(o, "version", json_object_new_int64(r->version));
		break;
	case PROTO_OP_LEASE:
		o = encode_lease(o, r);
		break;
	case PROTO_OP_RENEW:
	case PROTO_OP_CLAIM:
	case PROTO_OP_RELEASE:
		if (r->lease[0] != '\0')
			PUT(o, "lease", json_object_new_string(r->lease));
		if (r->op == PROTO_OP_RENEW && r->has_ttl)
			PUT(o, "ttl", json_object_new_int64(r->ttl));
		if (r->op == PROTO_OP_RELEASE && r->port != 0)
			PUT(o, "port", json_object_new_int(r->port));
		break;
	case PROTO_OP_LIST:
		if (r->all)
			PUT(o, "all", json_object_new_boolean(1));
		break;
	case PROTO_OP_WHO:
		PUT(o, "port", json_object_new_int(r->port));
		if (r->proto != PROTO_TCP)
			PUT_NAME(o, "proto", proto, r->proto);
		break;
	case PROTO_OP_STATUS:
	case PROTO_OP_METRICS:
	case PROTO_OP_STOP:
	case PROTO_OP__MAX:
		break;
	}
	return o;
}
