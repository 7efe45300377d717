/*
 * The daemon's identity (hello, status) and its status reply, both
 * directions: the daemon encodes them from a plain struct, clients decode
 * them into the same struct, so each field's name and shape exist once.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "proto.h"

/* The field names of the counters object, in the reply's order. */
static const char *const counter_names[PROTO_COUNTER__MAX] = {
    [PROTO_COUNTER_REQUESTS] = "requests",
    [PROTO_COUNTER_ERRORS] = "errors",
    [PROTO_COUNTER_LEASES_CREATED] = "leases_created",
    [PROTO_COUNTER_LEASES_RELEASED] = "leases_released",
    [PROTO_COUNTER_LEASES_EXPIRED] = "leases_expired",
    [PROTO_COUNTER_LEASES_SESSION_ENDED] = "leases_session_ended",
    [PROTO_COUNTER_LEASES_PROCESS_ENDED] = "leases_process_ended",
    [PROTO_COUNTER_CLAIMS] = "claims",
    [PROTO_COUNTER_RENEWALS] = "renewals",
};

const char *
proto_counter_name(enum proto_counter c)
{
	return c < PROTO_COUNTER__MAX ? counter_names[c] : "?";
}

/* Add key: value to o; false (value dropped) when either is missing. */
static bool
put(json_object *o, const char *key, json_object *value)
{
	if (o == NULL || value == NULL ||
	    json_object_object_add(o, key, value) != 0) {
		json_object_put(value);
		return false;
	}
	return true;
}

int
proto_identity_encode(json_object *reply, const struct proto_identity *id)
{
	json_object *srv = json_object_new_object();
	bool ok = true;

	ok &= put(srv, "name", json_object_new_string(id->name));
	ok &= put(srv, "version", json_object_new_string(id->release));
	ok &= put(reply, "version", json_object_new_int64(id->version));
	ok &= put(reply, "server", srv);
	ok &= put(reply, "pid", json_object_new_int64(id->pid));
	return ok ? 0 : -1;
}

int64_t
proto_reply_int(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return -1;
	return json_object_get_int64(v);
}

static void
get_text(json_object *o, const char *key, char *buf, size_t size)
{
	json_object *v;

	buf[0] = '\0';
	if (o != NULL && json_object_object_get_ex(o, key, &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(buf, size, "%s", json_object_get_string(v));
}

void
proto_identity_decode(json_object *reply, struct proto_identity *ret)
{
	json_object *srv = NULL;

	memset(ret, 0, sizeof(*ret));
	ret->version = proto_reply_int(reply, "version");
	ret->pid = proto_reply_int(reply, "pid");
	if (!json_object_object_get_ex(reply, "server", &srv))
		return;
	if (json_object_is_type(srv, json_type_object)) {
		get_text(srv, "name", ret->name, sizeof(ret->name));
		get_text(srv, "version", ret->release, sizeof(ret->release));
	} else
		/* Early daemons sent one string, "portd 0.1.0". */
		get_text(reply, "server", ret->name, sizeof(ret->name));
}

int
proto_status_encode(
    json_object *reply, const struct proto_status *s, json_object *config)
{
	json_object *pool = json_object_new_object();
	json_object *cnt = json_object_new_object();
	bool ok = proto_identity_encode(reply, &s->identity) == 0;

	ok &= put(reply, "uptime", json_object_new_int64(s->uptime));
	ok &= put(reply, "leases", json_object_new_int64(s->leases));
	ok &= put(reply, "ports", json_object_new_int64(s->ports));
	ok &= put(reply, "sockets", json_object_new_int64(s->sockets));
	ok &= put(reply, "unheld", json_object_new_int64(s->unheld));
	ok &= put(reply, "connections", json_object_new_int64(s->connections));
	ok &= put(
	    reply, "queued-output", json_object_new_int64(s->queued_output));
	ok &= put(
	    reply, "output-stalls", json_object_new_int64(s->output_stalls));
	ok &= put(pool, "lo", json_object_new_int64(s->pool_lo));
	ok &= put(pool, "hi", json_object_new_int64(s->pool_hi));
	ok &= put(pool, "size", json_object_new_int64(s->pool_size));
	ok &= put(pool, "free", json_object_new_int64(s->pool_free));
	ok &= put(pool, "strategy",
	    json_object_new_string(proto_strategy_to_string(s->pool_strategy)));
	ok &= put(reply, "pool", pool);
	ok &= put(reply, "ipv6", json_object_new_boolean(s->ipv6 == 1));
	for (int i = 0; i < PROTO_COUNTER__MAX; i++)
		ok &= put(cnt, counter_names[i],
		    json_object_new_int64(s->counters[i]));
	ok &= put(reply, "counters", cnt);
	if (config != NULL)
		ok &= put(reply, "config", config);
	return ok ? 0 : -1;
}

void
proto_status_decode(json_object *reply, struct proto_status *ret)
{
	json_object *pool = NULL, *cnt = NULL, *v;
	char strategy[32];

	memset(ret, 0, sizeof(*ret));
	proto_identity_decode(reply, &ret->identity);
	ret->uptime = proto_reply_int(reply, "uptime");
	ret->leases = proto_reply_int(reply, "leases");
	ret->ports = proto_reply_int(reply, "ports");
	ret->sockets = proto_reply_int(reply, "sockets");
	ret->unheld = proto_reply_int(reply, "unheld");
	ret->connections = proto_reply_int(reply, "connections");
	ret->queued_output = proto_reply_int(reply, "queued-output");
	ret->output_stalls = proto_reply_int(reply, "output-stalls");
	json_object_object_get_ex(reply, "pool", &pool);
	if (pool != NULL && !json_object_is_type(pool, json_type_object))
		pool = NULL;
	ret->pool_lo = proto_reply_int(pool, "lo");
	ret->pool_hi = proto_reply_int(pool, "hi");
	ret->pool_size = proto_reply_int(pool, "size");
	ret->pool_free = proto_reply_int(pool, "free");
	get_text(pool, "strategy", strategy, sizeof(strategy));
	ret->pool_strategy = proto_strategy_from_string(strategy);
	ret->ipv6 = -1;
	if (json_object_object_get_ex(reply, "ipv6", &v) &&
	    json_object_is_type(v, json_type_boolean))
		ret->ipv6 = json_object_get_boolean(v);
	json_object_object_get_ex(reply, "counters", &cnt);
	if (cnt != NULL && !json_object_is_type(cnt, json_type_object))
		cnt = NULL;
	for (int i = 0; i < PROTO_COUNTER__MAX; i++)
		ret->counters[i] = proto_reply_int(cnt, counter_names[i]);
}
