/*
 * portd wire protocol: the strict JSON reader (see proto.h). Every line the
 * daemon or a client reads, a request, a reply or a journal record, comes
 * through proto_parse_object_max() and the field readers below.
 */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "proto.h"

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

const char *
proto_printable(const char *s, size_t len)
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
/* Length of the JSON number at s (RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?
 * ([eE][+-]?[0-9]+)?), or 0 if what starts there is not one. */
static size_t
number_len(const char *s, size_t len)
{
	size_t i = 0, d;

	if (i < len && s[i] == '-')
		i++;
	if (i < len && s[i] == '0')
		i++;
	else if (i < len && s[i] >= '1' && s[i] <= '9')
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	else
		return 0;
	if (i < len && s[i] == '.') {
		for (d = ++i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return 0;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		if (++i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return 0;
	}
	/* "00", "1.2.3": more of a number than the grammar takes. */
	if (i < len && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
		return 0;
	return i;
}

/* The value of the 4 hex digits at s, or -1. */
static long
hex4(const char *s)
{
	long v = 0;

	for (int k = 0; k < 4; k++) {
		char c = s[k];
		int d = c >= '0' && c <= '9'   ? c - '0'
		        : c >= 'a' && c <= 'f' ? c - 'a' + 10
		        : c >= 'A' && c <= 'F' ? c - 'A' + 10
		                               : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/*
 * What json-c takes but JSON is not, refused before it parses: single
 * quotes, \u0000, numbers outside the grammar ("1.", "-.5", "00", which
 * json-c keeps as written and so echoed back as invalid JSON in an id),
 * lone UTF-16 surrogates (json-c puts U+FFFD in their place, so the id
 * echoed was not the id sent) and UTF-8 that is overlong or encodes a
 * surrogate (json-c lets those through).
 */
static int
lexical_check(const char *line, size_t len, struct proto_error *err)
{
	bool in_str = false;

	if (!proto_utf8_valid(line, len))
		return proto_error_set(
		    err, PROTO_E_BAD_REQUEST, "invalid JSON: not valid UTF-8");
	for (size_t i = 0; i < len; i++) {
		char c = line[i];

		if (!in_str) {
			size_t n;

			if (c == '"')
				in_str = true;
			else if (c == '\'')
				return proto_error_set(err, PROTO_E_BAD_REQUEST,
				    "invalid JSON: single quotes");
			else if (c == '-' && i + 1 < len && line[i + 1] == 'I')
				continue; /* -Infinity: refused by type */
			else if (c == '-' || c == '.' ||
			         (c >= '0' && c <= '9')) {
				if ((n = number_len(line + i, len - i)) == 0)
					return proto_error_set(err,
					    PROTO_E_BAD_REQUEST,
					    "invalid JSON: a number outside "
					    "JSON's grammar");
				i += n - 1;
			}
		} else if (c == '"')
			in_str = false;
		else if (c == '\\') {
			long u, lo;

			if (i + 5 < len && line[i + 1] == 'u' &&
			    (u = hex4(line + i + 2)) >= 0) {
				if (u == 0)
					return proto_error_set(err,
					    PROTO_E_BAD_REQUEST,
					    "strings may not contain a NUL "
					    "(\\u0000)");
				if (u >= 0xdc00 && u <= 0xdfff)
					goto lone;
				if (u >= 0xd800 && u <= 0xdbff) {
					if (!(i + 11 < len &&
					        line[i + 6] == '\\' &&
					        line[i + 7] == 'u' &&
					        (lo = hex4(line + i + 8)) >=
					            0xdc00 &&
					        lo <= 0xdfff))
						goto lone;
					i += 6; /* the low half */
				}
				i += 5;
				continue;
			}
			i++; /* the escaped character */
		}
	}
	return 0;
lone:
	return proto_error_set(
	    err, PROTO_E_BAD_REQUEST, "invalid JSON: a lone UTF-16 surrogate");
}

/*
 * One tokener per thread, reset for each line: making and freeing one per
 * line was a tenth of a parse. A thread's tokener is freed when it exits
 * (the key's destructor); without a key, one per line as before.
 */
static pthread_key_t tok_key;
static bool tok_keyed;
static pthread_once_t tok_once = PTHREAD_ONCE_INIT;

static void
tok_free(void *t)
{
	json_tokener_free(t);
}

static void
tok_init(void)
{
	tok_keyed = pthread_key_create(&tok_key, tok_free) == 0;
}

/* The thread's tokener, reset; *ret_own when the caller must free it. */
static json_tokener *
tokener(bool *ret_own)
{
	json_tokener *t;

	pthread_once(&tok_once, tok_init);
	*ret_own = false;
	if (tok_keyed && (t = pthread_getspecific(tok_key)) != NULL) {
		json_tokener_reset(t);
		return t;
	}
	if ((t = json_tokener_new_ex(PROTO_MAX_DEPTH + 1)) == NULL)
		return NULL;
	*ret_own = !tok_keyed || pthread_setspecific(tok_key, t) != 0;
	return t;
}

json_object *
proto_parse_object_max(
    const char *line, size_t len, size_t max, struct proto_error *err)
{
	json_tokener *tok;
	json_object *obj;
	enum json_tokener_error jerr;
	size_t end;
	bool own;

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
	if ((tok = tokener(&own)) == NULL) {
		proto_error_set(err, PROTO_E_INTERNAL, "out of memory");
		return NULL;
	}
	/* No JSON_TOKENER_VALIDATE_UTF8: lexical_check has validated the
	 * whole line already, more strictly (overlong forms, surrogates). */
	json_tokener_set_flags(
	    tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
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
			if (own)
				json_tokener_free(tok);
			proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "a message must be a JSON object");
			return NULL;
		}
	}
	if (own)
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

void
pval_of(json_object *v, struct pval *p)
{
	memset(p, 0, sizeof(*p));
	p->type = json_object_get_type(v);
	switch (p->type) {
	case json_type_int:
		/* json-c saturates overflowing literals; errno tells. */
		errno = 0;
		p->i = json_object_get_int64(v);
		p->overflow = errno != 0;
		break;
	case json_type_boolean:
		p->b = json_object_get_boolean(v);
		break;
	case json_type_string:
		p->s = json_object_get_string(v);
		p->len = (size_t)json_object_get_string_len(v);
		break;
	default:
		break;
	}
}

int
pval_int(const struct pval *p, const char *key, int64_t min, int64_t max,
    int64_t *ret, struct proto_error *err)
{
	if (p->type != json_type_int)
		return proto_error_set(
		    err, PROTO_E_BAD_REQUEST, "'%s' must be an integer", key);
	/* The range check below also catches a saturated literal for
	 * every limit we use; overflow makes sure of it. */
	if (p->overflow || p->i < min || p->i > max)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'%s' must be between %lld and %lld", key, (long long)min,
		    (long long)max);
	*ret = p->i;
	return 0;
}

int
pval_bool(
    const struct pval *p, const char *key, bool *ret, struct proto_error *err)
{
	if (p->type != json_type_boolean)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'%s' must be true or false", key);
	*ret = p->b;
	return 0;
}

int
pval_string_check(
    const struct pval *p, const char *key, size_t max, struct proto_error *err)
{
	if (p->type != json_type_string)
		return proto_error_set(
		    err, PROTO_E_BAD_REQUEST, "'%s' must be a string", key);
	if (p->len > max)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'%s' is longer than %zu bytes", key, max);
	if (memchr(p->s, '\0', p->len) != NULL)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "'%s' contains a NUL character", key);
	if (!proto_utf8_valid(p->s, p->len))
		return proto_error_set(
		    err, PROTO_E_BAD_REQUEST, "'%s' is not valid UTF-8", key);
	for (size_t i = 0; i < p->len; i++)
		if ((unsigned char)p->s[i] < 0x20 || p->s[i] == 0x7f)
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "'%s' contains a control character", key);
	return 0;
}

int
proto_get_int(json_object *obj, const char *key, int64_t min, int64_t max,
    int64_t *ret, struct proto_error *err)
{
	json_object *v;
	struct pval p;

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	pval_of(v, &p);
	return pval_int(&p, key, min, max, ret, err);
}

int
proto_get_bool(
    json_object *obj, const char *key, bool *ret, struct proto_error *err)
{
	json_object *v;
	struct pval p;

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	pval_of(v, &p);
	return pval_bool(&p, key, ret, err);
}

int
proto_string_check(
    json_object *v, const char *key, size_t max, struct proto_error *err)
{
	struct pval p;

	pval_of(v, &p);
	return pval_string_check(&p, key, max, err);
}

int
proto_get_string(json_object *obj, const char *key, size_t max, char *ret,
    struct proto_error *err)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	if (proto_string_check(v, key, max, err) == -1)
		return -1;
	memcpy(ret, json_object_get_string(v),
	    (size_t)json_object_get_string_len(v) + 1);
	return 0;
}

char *
proto_serialize(json_object *obj, size_t *ret_len)
{
	char buf[4096], *out;
	struct text t = {.p = buf, .cap = sizeof(buf)};

	/* One pass into the stack, a second one only for a long reply. */
	text_value(&t, obj);
	if ((out = malloc(t.len + 2)) == NULL)
		return NULL;
	if (t.len < sizeof(buf))
		memcpy(out, buf, t.len);
	else {
		t = (struct text){.p = out, .cap = t.len + 1};
		text_value(&t, obj);
	}
	out[t.len] = '\n';
	out[t.len + 1] = '\0';
	*ret_len = t.len + 1;
	return out;
}
