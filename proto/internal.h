/*
 * proto internals, shared by its files and used nowhere else: the string
 * tables behind the typed *_to_string and *_from_string lookups of proto.h
 * (for loops over every name, as in an error message listing them), and
 * the string checks of the strict reader.
 */
#ifndef PORTD_PROTO_INTERNAL_H
#define PORTD_PROTO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto.h"

/* names[v] is the wire name of value v, NULL where v has none. */
struct proto_names {
	const char *const *names;
	int n;
};

extern const struct proto_names proto_names_errcode;
extern const struct proto_names proto_names_op;
extern const struct proto_names proto_names_proto;
extern const struct proto_names proto_names_family;
extern const struct proto_names proto_names_hold;
extern const struct proto_names proto_names_scope;
extern const struct proto_names proto_names_state;
extern const struct proto_names proto_names_strategy;

/* The name of v, or NULL. */
const char *proto_names_get(const struct proto_names *, int v);
/* The value named s, or -1. */
int proto_names_find(const struct proto_names *, const char *s);
/* "a, b, c" into buf; returns its length. */
size_t proto_names_join(const struct proto_names *, char *buf, size_t size);

/*
 * json.c: one value as the field checks see it, from json-c's tree
 * (pval_of) or from request.c's scan of the canonical request shape. A
 * string's bytes are not NUL-terminated; s points into the line or into
 * json-c's object.
 */
struct pval {
	enum json_type type;
	bool overflow; /* an int json-c saturated */
	bool b;
	int64_t i;
	const char *s;
	size_t len;
};
void pval_of(json_object *v, struct pval *p);
/* The checks behind proto_get_int, _bool and proto_string_check. */
int pval_int(const struct pval *, const char *key, int64_t min, int64_t max,
    int64_t *ret, struct proto_error *err);
int pval_bool(
    const struct pval *, const char *key, bool *ret, struct proto_error *err);
int pval_string_check(
    const struct pval *, const char *key, size_t max, struct proto_error *err);

/* json.c: validate a JSON string value (length, NUL, UTF-8, control
 * characters); s, or "(unprintable)", when safe to quote in a message. */
int proto_string_check(
    json_object *v, const char *key, size_t max, struct proto_error *err);
const char *proto_printable(const char *s, size_t len);

/* text.c: JSON written by hand into a fixed buffer, byte for byte what
 * json-c writes with JSON_C_TO_STRING_PLAIN | NOSLASHESCAPE. len counts
 * past cap (nothing is written there), so a caller can retry bigger. */
struct text {
	char *p;
	size_t len, cap;
};
static inline void
text_put(struct text *t, const char *s, size_t n)
{
	if (t->len + n < t->cap)
		memcpy(t->p + t->len, s, n);
	t->len += n;
}
#define TEXT_PUT(t, lit) text_put(t, lit, sizeof(lit) - 1)
void text_int(struct text *t, int64_t v);
void text_int_or_null(struct text *t, int64_t v);          /* negative: null */
void text_ports(struct text *t, const uint16_t *v, int n); /* [a,b,…] */
void text_str(struct text *t, const char *s);              /* quoted, escaped */
/* Any value: its text (a value tagged proto_raw_tag: its string as is). */
void text_value(struct text *t, json_object *v);
extern char proto_raw_tag;
/* lease.c: proto_lease_write's text. */
void text_lease(struct text *t, const struct proto_lease *l);

#endif
