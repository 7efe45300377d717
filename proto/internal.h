/*
 * proto internals, shared by its files and used nowhere else: the string
 * tables behind the typed *_to_string and *_from_string lookups of proto.h
 * (for loops over every name, as in an error message listing them), and
 * the string checks of the strict reader.
 */
#ifndef PORTD_PROTO_INTERNAL_H
#define PORTD_PROTO_INTERNAL_H

#include <stddef.h>

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

/* json.c: validate a JSON string value (length, NUL, UTF-8, control
 * characters); s, or "(unprintable)", when safe to quote in a message. */
int proto_string_check(
    json_object *v, const char *key, size_t max, struct proto_error *err);
const char *proto_printable(const char *s, size_t len);

#endif
