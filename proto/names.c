/*
 * portd wire protocol: the name of every enumerated value on the wire, one
 * string table per enum (in the manner of systemd's string tables). These
 * tables are the only place a wire name is spelled; everything else, the
 * daemon, the library and portctl, looks names up here.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "proto.h"

static const char *const errcode_table[PROTO_E__MAX] = {
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

static const char *const op_table[PROTO_OP__MAX] = {
    [PROTO_OP_HELLO] = "hello",
    [PROTO_OP_LEASE] = "lease",
    [PROTO_OP_RENEW] = "renew",
    [PROTO_OP_CLAIM] = "claim",
    [PROTO_OP_RELEASE] = "release",
    [PROTO_OP_LIST] = "list",
    [PROTO_OP_STATUS] = "status",
    [PROTO_OP_METRICS] = "metrics",
    [PROTO_OP_STOP] = "stop",
    [PROTO_OP_WHO] = "who",
};

static const char *const proto_table[] = {
    [PROTO_TCP] = "tcp",
    [PROTO_UDP] = "udp",
    [PROTO_BOTH] = "both",
};

static const char *const family_table[] = {
    [PROTO_FAM_DUAL] = "dual",
    [PROTO_FAM_IPV4] = "ipv4",
    [PROTO_FAM_IPV6] = "ipv6",
};

static const char *const hold_table[] = {
    [PROTO_HOLD_SHARED] = "shared",
    [PROTO_HOLD_EXCLUSIVE] = "exclusive",
};

static const char *const scope_table[] = {
    [PROTO_SCOPE_TTL] = "ttl",
    [PROTO_SCOPE_SESSION] = "session",
    [PROTO_SCOPE_PROCESS] = "process",
};

static const char *const state_table[] = {
    [PROTO_STATE_HELD] = "held",
    [PROTO_STATE_CLAIMED] = "claimed",
    [PROTO_STATE_UNHELD] = "unheld",
};

/* PROTO_STRATEGY_DEFAULT has no name: it is the absence of the field. */
static const char *const strategy_table[] = {
    [PROTO_STRATEGY_POOL] = "pool",
    [PROTO_STRATEGY_EPHEMERAL] = "ephemeral",
};

#define TABLE(t)                                                               \
	{                                                                      \
		t, (int)(sizeof(t) / sizeof((t)[0]))                           \
	}

const struct proto_names proto_names_errcode = TABLE(errcode_table);
const struct proto_names proto_names_op = TABLE(op_table);
const struct proto_names proto_names_proto = TABLE(proto_table);
const struct proto_names proto_names_family = TABLE(family_table);
const struct proto_names proto_names_hold = TABLE(hold_table);
const struct proto_names proto_names_scope = TABLE(scope_table);
const struct proto_names proto_names_state = TABLE(state_table);
const struct proto_names proto_names_strategy = TABLE(strategy_table);

const char *
proto_names_get(const struct proto_names *t, int v)
{
	if (v < 0 || v >= t->n)
		return NULL;
	return t->names[v];
}

int
proto_names_find(const struct proto_names *t, const char *s)
{
	if (s == NULL)
		return -1;
	for (int i = 0; i < t->n; i++)
		if (t->names[i] != NULL && strcmp(s, t->names[i]) == 0)
			return i;
	return -1;
}

size_t
proto_names_join(const struct proto_names *t, char *buf, size_t size)
{
	size_t off = 0;

	if (size == 0)
		return 0;
	buf[0] = '\0';
	for (int i = 0; i < t->n; i++) {
		int k;

		if (t->names[i] == NULL)
			continue;
		k = snprintf(buf + off, size - off, "%s%s", off > 0 ? ", " : "",
		    t->names[i]);
		if (k < 0 || (size_t)k >= size - off) {
			buf[off] = '\0';
			break;
		}
		off += (size_t)k;
	}
	return off;
}

/* The typed lookups: a name for each value, a value for each name. */
#define NAME_LOOKUP(name, type, unknown)                                       \
	const char *proto_##name##_to_string(type v)                           \
	{                                                                      \
		const char *s = proto_names_get(&proto_names_##name, (int)v);  \
		return s != NULL ? s : unknown;                                \
	}                                                                      \
	int proto_##name##_from_string(const char *s)                          \
	{                                                                      \
		return proto_names_find(&proto_names_##name, s);               \
	}

NAME_LOOKUP(op, enum proto_op, "?")
NAME_LOOKUP(proto, enum proto_proto, "?")
NAME_LOOKUP(family, enum proto_family, "?")
NAME_LOOKUP(hold, enum proto_hold, "?")
NAME_LOOKUP(scope, enum proto_scope, "?")
NAME_LOOKUP(state, enum proto_state, "?")
NAME_LOOKUP(strategy, enum proto_strategy, "?")

/* An unknown code, or "none" (no error is no code to send), reads as
 * internal: whatever went wrong, the peer did not say what. */
const char *
proto_errcode_to_string(enum proto_errcode c)
{
	const char *s = proto_names_get(&proto_names_errcode, (int)c);

	return s != NULL ? s : errcode_table[PROTO_E_INTERNAL];
}

enum proto_errcode
proto_errcode_from_string(const char *s)
{
	int c = proto_names_find(&proto_names_errcode, s);

	return c > PROTO_E_NONE ? (enum proto_errcode)c : PROTO_E_INTERNAL;
}
