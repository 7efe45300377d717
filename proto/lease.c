/*
 * portd wire protocol: the lease codec (see proto.h): the public view of a
 * lease and of a handed-over socket, both directions.
 */
#include <string.h>

#include "internal.h"
#include "proto.h"

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
	json_object_object_add(o, "proto",
	    json_object_new_string(proto_proto_to_string(l->proto)));
	json_object_object_add(o, "family",
	    json_object_new_string(proto_family_to_string(l->family)));
	json_object_object_add(o, "ipv6", json_object_new_boolean(l->ipv6));
	json_object_object_add(o, "scope",
	    json_object_new_string(proto_scope_to_string(l->scope)));
	json_object_object_add(
	    o, "hold", json_object_new_string(proto_hold_to_string(l->hold)));
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

/* Decode a required enum value by its name table, within [first, last]. */
static int
decode_name(json_object *o, const char *key, const struct proto_names *t,
    int first, int last, int *ret, struct proto_error *err)
{
	json_object *v;
	int i;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return proto_error_set(
		    err, PROTO_E_INTERNAL, "'%s' missing in reply", key);
	i = proto_names_find(t, json_object_get_string(v));
	if (i < first || i > last)
		return proto_error_set(
		    err, PROTO_E_INTERNAL, "bad '%s' in reply", key);
	*ret = i;
	return 0;
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
	if (decode_name(
	        o, "proto", &proto_names_proto, PROTO_TCP, PROTO_BOTH, &e, err))
		return -1;
	l->proto = e;
	if (decode_name(o, "family", &proto_names_family, PROTO_FAM_DUAL,
	        PROTO_FAM_IPV6, &e, err))
		return -1;
	l->family = e;
	if (decode_name(o, "scope", &proto_names_scope, PROTO_SCOPE_TTL,
	        PROTO_SCOPE_PROCESS, &e, err))
		return -1;
	l->scope = e;
	if (decode_name(o, "hold", &proto_names_hold, PROTO_HOLD_SHARED,
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
	json_object_object_add(o, "proto",
	    json_object_new_string(proto_proto_to_string(s->proto)));
	json_object_object_add(o, "family",
	    json_object_new_string(proto_family_to_string(s->family)));
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
	if (decode_name(
	        o, "proto", &proto_names_proto, PROTO_TCP, PROTO_UDP, &e, err))
		return -1;
	s->proto = e;
	if (decode_name(o, "family", &proto_names_family, PROTO_FAM_DUAL,
	        PROTO_FAM_IPV6, &e, err))
		return -1;
	s->family = e;
	return 0;
}
