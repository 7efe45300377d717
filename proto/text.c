/*
 * JSON written by hand into a caller's buffer: the bytes json-c writes
 * with JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, without
 * its printbuf and printf. Used for leases (lease.c) and for every
 * serialized message (proto_serialize).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "internal.h"

void
text_int(struct text *t, int64_t v)
{
	/* Two digits a step: the pairs 00 to 99, in order. */
	static const char pairs[] = "0001020304050607080910111213141516171819"
	                            "2021222324252627282930313233343536373839"
	                            "4041424344454647484950515253545556575859"
	                            "6061626364656667686970717273747576777879"
	                            "8081828384858687888990919293949596979899";
	char d[24], *e = d + sizeof(d), *q = e;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	while (u >= 100) {
		q -= 2;
		memcpy(q, pairs + 2 * (u % 100), 2);
		u /= 100;
	}
	if (u >= 10) {
		q -= 2;
		memcpy(q, pairs + 2 * u, 2);
	} else
		*--q = (char)('0' + u);
	if (v < 0)
		*--q = '-';
	text_put(t, q, (size_t)(e - q));
}

void
text_ports(struct text *t, const uint16_t *v, int n)
{
	TEXT_PUT(t, "[");
	for (int i = 0; i < n; i++) {
		if (i > 0)
			TEXT_PUT(t, ",");
		text_int(t, v[i]);
	}
	TEXT_PUT(t, "]");
}

void
text_int_or_null(struct text *t, int64_t v)
{
	if (v < 0)
		TEXT_PUT(t, "null");
	else
		text_int(t, v);
}

/* A JSON string, escaped as json-c escapes it with
 * JSON_C_TO_STRING_NOSLASHESCAPE, so both write the same bytes. */
void
text_str(struct text *t, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	TEXT_PUT(t, "\"");
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[6];
		size_t run = 0;

		/* The common case: a run that needs no escape, in one copy. */
		while ((unsigned char)s[run] >= ' ' && s[run] != '"' &&
		       s[run] != '\\')
			run++;
		if (run > 0) {
			text_put(t, s, run);
			s += run - 1;
			continue;
		}
		switch (c) {
		case '\b':
			TEXT_PUT(t, "\\b");
			break;
		case '\n':
			TEXT_PUT(t, "\\n");
			break;
		case '\r':
			TEXT_PUT(t, "\\r");
			break;
		case '\t':
			TEXT_PUT(t, "\\t");
			break;
		case '\f':
			TEXT_PUT(t, "\\f");
			break;
		case '"':
			TEXT_PUT(t, "\\\"");
			break;
		case '\\':
			TEXT_PUT(t, "\\\\");
			break;
		default:
			if (c < ' ') {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				text_put(t, esc, 6);
			} else
				text_put(t, (const char *)&c, 1);
		}
	}
	TEXT_PUT(t, "\"");
}

/* The tag of values whose string is their JSON text (proto_lease_encode). */
char proto_raw_tag;

void
text_value(struct text *t, json_object *v)
{
	size_t n;
	bool first = true;

	switch (json_object_get_type(v)) {
	case json_type_null:
		TEXT_PUT(t, "null");
		return;
	case json_type_boolean:
		if (json_object_get_boolean(v))
			TEXT_PUT(t, "true");
		else
			TEXT_PUT(t, "false");
		return;
	case json_type_int:
		/* json-c keeps a large positive number as uint64: its own
		 * text then, as for doubles (parsed ones echo their text). */
		if (json_object_get_int64(v) != INT64_MAX) {
			text_int(t, json_object_get_int64(v));
			return;
		}
		break;
	case json_type_string:
		if (json_object_get_userdata(v) == &proto_raw_tag) {
			text_put(t, json_object_get_string(v),
			    (size_t)json_object_get_string_len(v));
			return;
		}
		/* Strings of the protocol hold no NUL (the reader refuses
		 * one); anything else goes through json-c. */
		if (strlen(json_object_get_string(v)) ==
		    (size_t)json_object_get_string_len(v)) {
			text_str(t, json_object_get_string(v));
			return;
		}
		break;
	case json_type_object:
		TEXT_PUT(t, "{");
		json_object_object_foreach(v, key, val)
		{
			if (!first)
				TEXT_PUT(t, ",");
			first = false;
			text_str(t, key);
			TEXT_PUT(t, ":");
			if (val == NULL)
				TEXT_PUT(t, "null");
			else
				text_value(t, val);
		}
		TEXT_PUT(t, "}");
		return;
	case json_type_array:
		TEXT_PUT(t, "[");
		n = json_object_array_length(v);
		for (size_t i = 0; i < n; i++) {
			json_object *e = json_object_array_get_idx(v, i);

			if (i > 0)
				TEXT_PUT(t, ",");
			if (e == NULL)
				TEXT_PUT(t, "null");
			else
				text_value(t, e);
		}
		TEXT_PUT(t, "]");
		return;
	default:
		break;
	}
	{
		const char *s = json_object_to_json_string_length(v,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
		    &n);

		if (s != NULL)
			text_put(t, s, n);
	}
}

/*
 * The reply writer (proto.h). A struct text with a heap buffer: writing
 * past cap leaves len counting, so each piece is written at most twice,
 * once into a buffer grown to fit.
 */
static bool
writer_fit(struct proto_writer *w, const struct text *t)
{
	size_t cap;
	char *p;

	if (t->len < t->cap)
		return true;
	/* 512: a reply with one lease fits the first buffer. */
	for (cap = w->cap < 512 ? 512 : w->cap; cap <= t->len; cap *= 2)
		;
	if ((p = realloc(w->p, cap)) == NULL) {
		w->nomem = true;
		return false;
	}
	w->p = p;
	w->cap = cap;
	return false;
}

/* Run WRITE (on struct text t) at the writer's end, again if it grew. */
#define WRITER_DO(w, WRITE)                                                    \
	do {                                                                   \
		for (int try_ = 0; try_ < 2 && !(w)->nomem; try_++) {          \
			struct text t = {                                      \
			    .p = (w)->p, .len = (w)->len, .cap = (w)->cap};    \
			WRITE;                                                 \
			if (writer_fit((w), &t)) {                             \
				(w)->len = t.len;                              \
				break;                                         \
			}                                                      \
		}                                                              \
	} while (0)

static void
text_key(struct text *t, const char *key)
{
	TEXT_PUT(t, ",");
	text_str(t, key);
	TEXT_PUT(t, ":");
}

void
proto_writer_reply(struct proto_writer *w, json_object *id)
{
	*w = (struct proto_writer){0};
	WRITER_DO(w, {
		TEXT_PUT(&t, "{\"id\":");
		text_value(&t, id);
		TEXT_PUT(&t, ",\"ok\":true");
	});
}

void
proto_writer_value(struct proto_writer *w, const char *key, json_object *v)
{
	WRITER_DO(w, {
		text_key(&t, key);
		text_value(&t, v);
	});
}

void
proto_writer_members(struct proto_writer *w, json_object *o)
{
	json_object_object_foreach(o, key, val) proto_writer_value(w, key, val);
}

void
proto_writer_str(struct proto_writer *w, const char *key, const char *s)
{
	WRITER_DO(w, {
		text_key(&t, key);
		text_str(&t, s);
	});
}

void
proto_writer_ints(
    struct proto_writer *w, const char *key, const uint16_t *v, int n)
{
	WRITER_DO(w, {
		text_key(&t, key);
		text_ports(&t, v, n);
	});
}

void
proto_writer_lease(
    struct proto_writer *w, const char *key, const struct proto_lease *l)
{
	WRITER_DO(w, {
		text_key(&t, key);
		text_lease(&t, l);
	});
}

char *
proto_writer_end(struct proto_writer *w, size_t *ret_len)
{
	char *p;

	WRITER_DO(w, TEXT_PUT(&t, "}\n"));
	if (w->nomem) {
		proto_writer_free(w);
		return NULL;
	}
	p = w->p;
	*ret_len = w->len;
	*w = (struct proto_writer){0};
	return p;
}

void
proto_writer_free(struct proto_writer *w)
{
	free(w->p);
	*w = (struct proto_writer){0};
}
