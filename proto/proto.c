/* portd wire protocol v1: strict parsing and encoding (see proto.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static const char *const errcode_names[PROTO_E__MAX] = {
    [PROTO_E_NONE] = "none",
    [PROTO_E_BAD_REQUEST] = "bad_request",
    [PROTO_E_UNKNOWN_OP] = "unknown_op",
    [PROTO_E_REQUEST_TOO_LARGE] = "request_too_large",
    [PROTO_E_NO_PORTS] = "no_ports",
    [PROTO_E_PORT_UNAVAILABLE] = "port_unavailable",
    [PROTO_E_QUOTA_EXCEEDED] = "quota_exceeded",
    [PROTO_E_NOT_FOUND] = "not_found",
    [PROTO_E_FORBIDDEN] = "forbidden",
    [PROTO_E_RESOURCE_EXHAUSTED] = "resource_exhausted",
    [PROTO_E_INTERNAL] = "internal",
};

static const char *const op_names[PROTO_OP__MAX] = {
    [PROTO_OP_HELLO] = "hello",
    [PROTO_OP_LEASE] = "lease",
    [PROTO_OP_RENEW] = "renew",
    [PROTO_OP_CLAIM] = "claim",
    [PROTO_OP_RELEASE] = "release",
    [PROTO_OP_LIST] = "list",
    [PROTO_OP_STATUS] = "status",
};

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
};

/* Longest TTL the codec lets through; the daemon applies its own maximum. */
#define PROTO_TTL_LIMIT (366LL * 24 * 3600)

const char *
proto_errcode_name(enum proto_errcode c)
{
	if (c < 0 || c >= PROTO_E__MAX)
		return "internal";
	return errcode_names[c];
}

enum proto_errcode
proto_errcode_from_name(const char *s)
{
	for (int i = 1; i < PROTO_E__MAX; i++)
		if (strcmp(s, errcode_names[i]) == 0)
			return i;
	return PROTO_E_INTERNAL;
}

const char *
proto_op_name(enum proto_op op)
{
	if (op < 0 || op >= PROTO_OP__MAX)
		return "?";
	return op_names[op];
}

const char *
proto_proto_name(enum proto_proto p)
{
	switch (p) {
	case PROTO_TCP:
		return "tcp";
	case PROTO_UDP:
		return "udp";
	case PROTO_BOTH:
		return "both";
	}
	return "?";
}

const char *
proto_family_name(enum proto_family f)
{
	switch (f) {
	case PROTO_FAM_DUAL:
		return "dual";
	case PROTO_FAM_IPV4:
		return "ipv4";
	case PROTO_FAM_IPV6:
		return "ipv6";
	}
	return "?";
}

const char *
proto_hold_name(enum proto_hold h)
{
	return h == PROTO_HOLD_SHARED ? "shared" : "exclusive";
}

const char *
proto_scope_name(enum proto_scope s)
{
	switch (s) {
	case PROTO_SCOPE_TTL:
		return "ttl";
	case PROTO_SCOPE_SESSION:
		return "session";
	case PROTO_SCOPE_PROCESS:
		return "process";
	}
	return "?";
}

int
proto_error_set(
    struct proto_error *err, enum proto_errcode code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -1;
}

bool
proto_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t n;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else
			return false;
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and beyond U+10FFFF. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += n + 1;
	}
	return true;
}

bool
proto_label_valid(const char *s, size_t len)
{
	if (len > PROTO_MAX_NAME)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

bool
proto_lease_id_valid(const char *s, size_t len)
{
	if (len == 0 || len > PROTO_MAX_ID)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* A key or value safe to quote back in an error message. */
static const char *
printable(const char *s, size_t len)
{
	if (len > 64 || !proto_label_valid(s, len))
		return "(unprintable)";
	return s;
}

/* Arrays and objects around the deepest value, o itself included. The
 * tokenizer's limit bounds the recursion. */
static int
nesting(json_object *o)
{
	int deepest = 0, d;

	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, val)
		{
			(void)key;
			if ((d = nesting(val)) > deepest)
				deepest = d;
		}
		return deepest + 1;
	}
	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			if ((d = nesting(json_object_array_get_idx(o, i))) >
			    deepest)
				deepest = d;
		return deepest + 1;
	}
	return 0;
}

json_object *
proto_parse_object(const char *line, size_t len, struct proto_error *err)
{
	return proto_parse_object_max(line, len, PROTO_MAX_LINE, err);
}

/*
 * What json-c lets through that JSON does not allow, and what would let a
 * key hide its real name: single quotes, and \u0000 (a key is cut at the
 * NUL, so "count\u0000x" would act as "count").
 */
static int
lexical_check(const char *line, size_t len, struct proto_error *err)
{
	bool in_str = false;

	for (size_t i = 0; i < len; i++) {
		char c = line[i];

		if (!in_str) {
			if (c == '"')
				in_str = true;
			else if (c == '\'')
				return proto_error_set(err, PROTO_E_BAD_REQUEST,
				    "invalid JSON: single quotes");
		} else if (c == '"')
			in_str = false;
		else if (c == '\\') {
			if (i + 5 < len && line[i + 1] == 'u' &&
			    memcmp(line + i + 2, "0000", 4) == 0)
				return proto_error_set(err, PROTO_E_BAD_REQUEST,
				    "strings may not contain a NUL (\\u0000)");
			i++; /* the escaped character */
		}
	}
	return 0;
}

json_object *
proto_parse_object_max(
    const char *line, size_t len, size_t max, struct proto_error *err)
{
	json_tokener *tok;
	json_object *obj;
	enum json_tokener_error jerr;
	size_t end;

	if (len > max || len > INT32_MAX) {
		proto_error_set(err, PROTO_E_REQUEST_TOO_LARGE,
		    "line of %zu bytes exceeds the limit of %zu", len, max);
		return NULL;
	}
	if (memchr(line, '\0', len) != NULL) {
		proto_error_set(
		    err, PROTO_E_BAD_REQUEST, "line contains a NUL byte");
		return NULL;
	}
	if (lexical_check(line, len, err) == -1)
		return NULL;
	/*
	 * json-c counts every value as a level, a scalar too: with a limit
	 * of 16 it took 16 empty arrays inside each other but refused 16
	 * holding a number. Let it go one further; nesting() counts the
	 * arrays and objects, the top level included, as the spec does.
	 */
	tok = json_tokener_new_ex(PROTO_MAX_DEPTH + 1);
	if (tok == NULL) {
		proto_error_set(err, PROTO_E_INTERNAL, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	                                JSON_TOKENER_VALIDATE_UTF8 |
	                                JSON_TOKENER_ALLOW_TRAILING_CHARS);
	obj = json_tokener_parse_ex(tok, line, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (obj == NULL && jerr == json_tokener_continue) {
		/* A number or literal at the end of the input ends only with
		 * the terminating NUL: give it one, so "42" is no object
		 * rather than incomplete. An object never needs it. */
		json_object *last = json_tokener_parse_ex(tok, "", 1);

		if (json_tokener_get_error(tok) == json_tokener_success) {
			json_object_put(last);
			json_tokener_free(tok);
			proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "a message must be a JSON object");
			return NULL;
		}
	}
	json_tokener_free(tok);

	if (obj == NULL) {
		if (jerr == json_tokener_continue)
			proto_error_set(
			    err, PROTO_E_BAD_REQUEST, "incomplete JSON");
		else if (jerr == json_tokener_error_depth)
			proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "JSON nested deeper than %d", PROTO_MAX_DEPTH);
		else
			proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "invalid JSON: %s", json_tokener_error_desc(jerr));
		return NULL;
	}
	for (; end < len; end++) {
		if (line[end] != ' ' && line[end] != '\t' &&
		    line[end] != '\r') {
			proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "unexpected data after the JSON object");
			json_object_put(obj);
			return NULL;
		}
	}
	if (!json_object_is_type(obj, json_type_object)) {
		proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "a message must be a JSON object");
		json_object_put(obj);
		return NULL;
	}
	if (nesting(obj) > PROTO_MAX_DEPTH) {
		proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "JSON nested deeper than %d", PROTO_MAX_DEPTH);
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

int
proto_get_int(json_object *obj, const char *key, int64_t min, int64_t max,
    int64_t *ret, struct proto_error *err)
{
	json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return proto_error_set(
		    err, PROTO_E_BAD_REQUEST, "'%s' must be an integer", key);
	/* json-c saturates overflowing literals; errno tells, and so does
	 * the range check below for every limit we use. */
	errno = 0;
	n = json_object_get_int64(v);
	if (errno != 0 || n < min || n > max)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'%s' must be between %lld and %lld", key, (long long)min,
		    (long long)max);
	*ret = n;
	return 0;
}

int
proto_get_bool(
    json_object *obj, const char *key, bool *ret, struct proto_error *err)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'%s' must be true or false", key);
	*ret = json_object_get_boolean(v);
	return 0;
}

/* Validate a JSON string value: length, NUL bytes, UTF-8, control chars. */
static int
string_check(
    json_object *v, const char *key, size_t max, struct proto_error *err)
{
	const char *s;
	size_t len;

	if (!json_object_is_type(v, json_type_string))
		return proto_error_set(
		    err, PROTO_E_BAD_REQUEST, "'%s' must be a string", key);
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len > max)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'%s' is longer than %zu bytes", key, max);
	if (strlen(s) != len)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'%s' contains a NUL character", key);
	if (!proto_utf8_valid(s, len))
		return proto_error_set(
		    err, PROTO_E_BAD_REQUEST, "'%s' is not valid UTF-8", key);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "'%s' contains a control character", key);
	return 0;
}

int
proto_get_string(json_object *obj, const char *key, size_t max, char *ret,
    struct proto_error *err)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	if (string_check(v, key, max, err) == -1)
		return -1;
	memcpy(ret, json_object_get_string(v),
	    (size_t)json_object_get_string_len(v) + 1);
	return 0;
}

/* Read an enumerated string field: names[i] maps to values[i]. */
static int
get_enum(json_object *obj, const char *key, const char *const *names,
    const int *values, int *ret, struct proto_error *err)
{
	char buf[32];
	char expect[128] = "";

	buf[0] = '\0';
	if (!json_object_object_get_ex(obj, key, NULL))
		return 0;
	if (proto_get_string(obj, key, sizeof(buf) - 1, buf, err) == -1)
		return -1;
	for (int i = 0; names[i] != NULL; i++) {
		if (strcmp(buf, names[i]) == 0) {
			*ret = values[i];
			return 0;
		}
		if (i > 0)
			strcat(expect, ", ");
		strcat(expect, names[i]);
	}
	return proto_error_set(err, PROTO_E_BAD_REQUEST,
	    "'%s' must be one of %s, not '%s'", key, expect,
	    printable(buf, strlen(buf)));
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
		return string_check(id, "id", PROTO_MAX_REQID, err);
	default:
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'id' must be a scalar (string, number, boolean or null)");
	}
}

static int
parse_lease(json_object *o, struct proto_request *r, struct proto_error *err)
{
	static const char *const pnames[] = {"tcp", "udp", "both", NULL};
	static const int pvals[] = {PROTO_TCP, PROTO_UDP, PROTO_BOTH};
	static const char *const fnames[] = {"dual", "ipv4", "ipv6", NULL};
	static const int fvals[] = {
	    PROTO_FAM_DUAL, PROTO_FAM_IPV4, PROTO_FAM_IPV6};
	static const char *const hnames[] = {"shared", "exclusive", NULL};
	static const int hvals[] = {PROTO_HOLD_SHARED, PROTO_HOLD_EXCLUSIVE};
	static const char *const snames[] = {"ttl", "session", "process", NULL};
	static const int svals[] = {
	    PROTO_SCOPE_TTL, PROTO_SCOPE_SESSION, PROTO_SCOPE_PROCESS};
	static const char *const tnames[] = {"pool", "ephemeral", NULL};
	static const int tvals[] = {
	    PROTO_STRATEGY_POOL, PROTO_STRATEGY_EPHEMERAL};
	int64_t n;
	int e = 0;

	n = 1;
	if (proto_get_int(o, "count", 1, PROTO_MAX_COUNT, &n, err) == -1)
		return -1;
	r->count = (int)n;
	e = PROTO_TCP;
	if (get_enum(o, "proto", pnames, pvals, &e, err) == -1)
		return -1;
	r->proto = e;
	e = PROTO_FAM_DUAL;
	if (get_enum(o, "family", fnames, fvals, &e, err) == -1)
		return -1;
	r->family = e;
	n = 0;
	if (proto_get_int(o, "port", 1, 65535, &n, err) == -1)
		return -1;
	r->port = (int)n;
	if (proto_get_bool(o, "contiguous", &r->contiguous, err) == -1)
		return -1;
	e = -1;
	if (get_enum(o, "hold", hnames, hvals, &e, err) == -1)
		return -1;
	r->has_hold = e != -1;
	r->hold =
	    r->proto == PROTO_TCP ? PROTO_HOLD_SHARED : PROTO_HOLD_EXCLUSIVE;
	if (r->has_hold)
		r->hold = e;
	if (json_object_object_get_ex(o, "ttl", NULL)) {
		if (proto_get_int(o, "ttl", 1, PROTO_TTL_LIMIT, &r->ttl, err) ==
		    -1)
			return -1;
		r->has_ttl = true;
	}
	e = PROTO_SCOPE_TTL;
	if (get_enum(o, "scope", snames, svals, &e, err) == -1)
		return -1;
	r->scope = e;
	n = 0;
	if (proto_get_int(o, "pid", INT32_MIN, INT32_MAX, &n, err) == -1)
		return -1;
	if (json_object_object_get_ex(o, "pid", NULL) && n < 2)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'pid' must be a process id of 2 or more");
	r->pid = n;
	if (json_object_object_get_ex(o, "name", NULL)) {
		json_object *v = json_object_object_get(o, "name");
		if (string_check(v, "name", PROTO_MAX_NAME, err) == -1)
			return -1;
		if (!proto_label_valid(json_object_get_string(v),
		        (size_t)json_object_get_string_len(v)))
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "'name' may hold only printable ASCII characters");
		strcpy(r->name, json_object_get_string(v));
	}
	if (proto_get_bool(o, "fd", &r->fd, err) == -1)
		return -1;
	e = PROTO_STRATEGY_DEFAULT;
	if (get_enum(o, "strategy", tnames, tvals, &e, err) == -1)
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
get_lease_id(json_object *o, struct proto_request *r, bool required,
    struct proto_error *err)
{
	json_object *v;

	if (!json_object_object_get_ex(o, "lease", &v)) {
		if (required)
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "'lease' (a lease id) is required");
		return 0;
	}
	if (!json_object_is_type(v, json_type_string) ||
	    !proto_lease_id_valid(json_object_get_string(v),
	        (size_t)json_object_get_string_len(v)))
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'lease' must be a lease id string");
	strcpy(r->lease, json_object_get_string(v));
	return 0;
}

int
proto_request_parse(const char *line, size_t len, struct proto_request *r,
    struct proto_error *err)
{
	json_object *o, *v;
	const char *opname;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	r->count = 1;
	r->proto = PROTO_TCP;
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
	r->op = PROTO_OP__MAX;
	/* strcmp alone would take "status\u0000junk" for "status". */
	for (int i = 0; i < PROTO_OP__MAX; i++)
		if (strcmp(opname, op_names[i]) == 0 &&
		    strlen(opname) == (size_t)json_object_get_string_len(v))
			r->op = i;
	if (r->op == PROTO_OP__MAX) {
		proto_error_set(err, PROTO_E_UNKNOWN_OP, "unknown op '%s'",
		    printable(opname, (size_t)json_object_get_string_len(v)));
		goto out;
	}

	json_object_object_foreach(o, key, val)
	{
		bool known = strcmp(key, "op") == 0 || strcmp(key, "id") == 0;
		(void)val;
		for (int i = 0; !known && op_fields[r->op][i] != NULL; i++)
			known = strcmp(key, op_fields[r->op][i]) == 0;
		if (!known) {
			proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "unknown field '%s' for op '%s'",
			    printable(key, strlen(key)), op_names[r->op]);
			goto out;
		}
	}

	switch (r->op) {
	case PROTO_OP_HELLO:
		if (proto_get_int(
		        o, "version", 1, INT32_MAX, &r->version, err) == -1)
			goto out;
		if (r->version != 0 && r->version != PROTO_VERSION) {
			proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "protocol version %lld is not supported "
			    "(this server speaks %d)",
			    (long long)r->version, PROTO_VERSION);
			goto out;
		}
		break;
	case PROTO_OP_LEASE:
		if (parse_lease(o, r, err) == -1)
			goto out;
		break;
	case PROTO_OP_RENEW:
		if (get_lease_id(o, r, true, err) == -1)
			goto out;
		if (json_object_object_get_ex(o, "ttl", NULL)) {
			if (proto_get_int(o, "ttl", 1, PROTO_TTL_LIMIT, &r->ttl,
			        err) == -1)
				goto out;
			r->has_ttl = true;
		}
		break;
	case PROTO_OP_CLAIM:
		if (get_lease_id(o, r, true, err) == -1)
			goto out;
		break;
	case PROTO_OP_RELEASE: {
		int64_t port = 0;
		if (get_lease_id(o, r, false, err) == -1 ||
		    proto_get_int(o, "port", 1, 65535, &port, err) == -1)
			goto out;
		r->port = (int)port;
		if ((r->lease[0] != '\0') == (r->port != 0)) {
			proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "release takes exactly one of 'lease' and 'port'");
			goto out;
		}
		break;
	}
	case PROTO_OP_LIST:
		if (proto_get_bool(o, "all", &r->all, err) == -1)
			goto out;
		break;
	case PROTO_OP_STATUS:
	case PROTO_OP__MAX:
		break;
	}
	rc = 0;
out:
	json_object_put(o);
	return rc;
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
	json_object_object_add(
	    e, "code", json_object_new_string(proto_errcode_name(err->code)));
	json_object_object_add(
	    e, "message", json_object_new_string(err->message));
	json_object_object_add(o, "error", e);
	return o;
}

static json_object *
int_or_null(int64_t v)
{
	return v < 0 ? NULL : json_object_new_int64(v);
}

json_object *
proto_lease_encode(const struct proto_lease *l)
{
	json_object *o = json_object_new_object(), *a, *own;

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "id", json_object_new_string(l->id));
	a = json_object_new_array();
	for (int i = 0; i < l->nports; i++)
		json_object_array_add(a, json_object_new_int(l->ports[i]));
	json_object_object_add(o, "ports", a);
	json_object_object_add(
	    o, "proto", json_object_new_string(proto_proto_name(l->proto)));
	json_object_object_add(
	    o, "family", json_object_new_string(proto_family_name(l->family)));
	json_object_object_add(o, "ipv6", json_object_new_boolean(l->ipv6));
	json_object_object_add(
	    o, "scope", json_object_new_string(proto_scope_name(l->scope)));
	json_object_object_add(
	    o, "hold", json_object_new_string(proto_hold_name(l->hold)));
	json_object_object_add(o, "ttl", int_or_null(l->ttl));
	json_object_object_add(o, "expires", int_or_null(l->expires));
	json_object_object_add(o, "created", json_object_new_int64(l->created));
	json_object_object_add(o, "name", json_object_new_string(l->name));
	own = json_object_new_object();
	json_object_object_add(own, "uid", json_object_new_int64(l->uid));
	json_object_object_add(own, "pid", json_object_new_int(l->pid));
	json_object_object_add(o, "owner", own);
	json_object_object_add(o, "held", json_object_new_boolean(l->held));
	return o;
}

/* Decode a required enum value by name. */
static int
decode_name(json_object *o, const char *key, const char *(*namef)(int),
    int first, int last, int *ret, struct proto_error *err)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return proto_error_set(
		    err, PROTO_E_INTERNAL, "'%s' missing in reply", key);
	for (int i = first; i <= last; i++) {
		if (strcmp(json_object_get_string(v), namef(i)) == 0) {
			*ret = i;
			return 0;
		}
	}
	return proto_error_set(err, PROTO_E_INTERNAL, "bad '%s' in reply", key);
}

static const char *
pname(int i)
{
	return proto_proto_name(i);
}
static const char *
fname(int i)
{
	return proto_family_name(i);
}
static const char *
sname(int i)
{
	return proto_scope_name(i);
}
static const char *
hname(int i)
{
	return proto_hold_name(i);
}

/* An integer that may be null (-1). */
static int
decode_opt_int(
    json_object *o, const char *key, int64_t *ret, struct proto_error *err)
{
	json_object *v;

	*ret = -1;
	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return 0;
	return proto_get_int(o, key, 0, INT64_MAX, ret, err);
}

int
proto_lease_decode(
    json_object *o, struct proto_lease *l, struct proto_error *err)
{
	json_object *a, *own;
	int64_t n;
	int e = 0;

	memset(l, 0, sizeof(*l));
	if (!json_object_is_type(o, json_type_object))
		return proto_error_set(
		    err, PROTO_E_INTERNAL, "lease is not an object");
	if (proto_get_string(o, "id", PROTO_MAX_ID, l->id, err) == -1 ||
	    l->id[0] == '\0')
		return proto_error_set(
		    err, PROTO_E_INTERNAL, "lease without an id");
	if (!json_object_object_get_ex(o, "ports", &a) ||
	    !json_object_is_type(a, json_type_array) ||
	    json_object_array_length(a) > PROTO_MAX_COUNT)
		return proto_error_set(
		    err, PROTO_E_INTERNAL, "lease without ports");
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *p = json_object_array_get_idx(a, i);
		if (!json_object_is_type(p, json_type_int) ||
		    json_object_get_int64(p) < 1 ||
		    json_object_get_int64(p) > 65535)
			return proto_error_set(
			    err, PROTO_E_INTERNAL, "bad port in lease");
		l->ports[l->nports++] = (uint16_t)json_object_get_int64(p);
	}
	if (decode_name(o, "proto", pname, PROTO_TCP, PROTO_BOTH, &e, err))
		return -1;
	l->proto = e;
	if (decode_name(
	        o, "family", fname, PROTO_FAM_DUAL, PROTO_FAM_IPV6, &e, err))
		return -1;
	l->family = e;
	if (decode_name(o, "scope", sname, PROTO_SCOPE_TTL, PROTO_SCOPE_PROCESS,
	        &e, err))
		return -1;
	l->scope = e;
	if (decode_name(o, "hold", hname, PROTO_HOLD_SHARED,
	        PROTO_HOLD_EXCLUSIVE, &e, err))
		return -1;
	l->hold = e;
	l->ipv6 = l->family != PROTO_FAM_IPV4;
	if (proto_get_bool(o, "ipv6", &l->ipv6, err) == -1 ||
	    proto_get_bool(o, "held", &l->held, err) == -1 ||
	    decode_opt_int(o, "ttl", &l->ttl, err) == -1 ||
	    decode_opt_int(o, "expires", &l->expires, err) == -1 ||
	    decode_opt_int(o, "created", &l->created, err) == -1 ||
	    proto_get_string(o, "name", PROTO_MAX_NAME, l->name, err) == -1)
		return -1;
	if (json_object_object_get_ex(o, "owner", &own)) {
		n = 0;
		if (proto_get_int(own, "uid", 0, UINT32_MAX, &n, err) == -1)
			return -1;
		l->uid = (uint32_t)n;
		n = 0;
		if (proto_get_int(own, "pid", 0, INT32_MAX, &n, err) == -1)
			return -1;
		l->pid = (int32_t)n;
	}
	return 0;
}

json_object *
proto_socket_encode(const struct proto_socket *s)
{
	json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "port", json_object_new_int(s->port));
	json_object_object_add(
	    o, "proto", json_object_new_string(proto_proto_name(s->proto)));
	json_object_object_add(
	    o, "family", json_object_new_string(proto_family_name(s->family)));
	return o;
}

int
proto_socket_decode(
    json_object *o, struct proto_socket *s, struct proto_error *err)
{
	int64_t port = 0;
	int e = 0;

	memset(s, 0, sizeof(*s));
	if (proto_get_int(o, "port", 1, 65535, &port, err) == -1 || port == 0)
		return proto_error_set(
		    err, PROTO_E_INTERNAL, "socket without a port");
	s->port = (uint16_t)port;
	if (decode_name(o, "proto", pname, PROTO_TCP, PROTO_UDP, &e, err))
		return -1;
	s->proto = e;
	if (decode_name(
	        o, "family", fname, PROTO_FAM_DUAL, PROTO_FAM_IPV6, &e, err))
		return -1;
	s->family = e;
	return 0;
}

char *
proto_serialize(json_object *obj, size_t *ret_len)
{
	size_t len;
	const char *s;
	char *out;

	s = json_object_to_json_string_length(
	    obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (s == NULL || (out = malloc(len + 2)) == NULL)
		return NULL;
	memcpy(out, s, len);
	out[len] = '\n';
	out[len + 1] = '\0';
	*ret_len = len + 1;
	return out;
}
