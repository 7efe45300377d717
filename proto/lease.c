/*
 * portd wire protocol: the lease codec (see proto.h): the public view of a
 * lease and of a handed-over socket, both directions.
 */
#include <string.h>

#include <json-c/printbuf.h>

#include "internal.h"
#include "proto.h"

static void
put_name(struct text *t, const char *s)
{
	TEXT_PUT(t, "\"");
	text_put(t, s, strlen(s));
	TEXT_PUT(t, "\"");
}

size_t
proto_lease_write(const struct proto_lease *l, char *buf, size_t size)
{
	struct text t = {.p = buf, .cap = size};

	text_lease(&t, l);
	if (t.len < size)
		buf[t.len] = '\0';
	else if (size > 0)
		buf[0] = '\0';
	return t.len;
}

void
text_lease(struct text *t, const struct proto_lease *l)
{
	TEXT_PUT(t, "{\"id\":");
	text_str(t, l->id);
	TEXT_PUT(t, ",\"ports\":");
	text_ports(t, l->ports, l->nports);
	TEXT_PUT(t, ",\"proto\":");
	put_name(t, proto_proto_to_string(l->proto));
	TEXT_PUT(t, ",\"family\":");
	put_name(t, proto_family_to_string(l->family));
	if (l->ipv6)
		TEXT_PUT(t, ",\"ipv6\":true,\"scope\":");
	else
		TEXT_PUT(t, ",\"ipv6\":false,\"scope\":");
	put_name(t, proto_scope_to_string(l->scope));
	TEXT_PUT(t, ",\"hold\":");
	put_name(t, proto_hold_to_string(l->hold));
	TEXT_PUT(t, ",\"ttl\":");
	text_int_or_null(t, l->ttl);
	TEXT_PUT(t, ",\"expires\":");
	text_int_or_null(t, l->expires);
	TEXT_PUT(t, ",\"created\":");
	text_int_or_null(t, l->created);
	TEXT_PUT(t, ",\"name\":");
	text_str(t, l->name);
	TEXT_PUT(t, ",\"owner\":{\"uid\":");
	text_int(t, l->uid);
	TEXT_PUT(t, ",\"pid\":");
	text_int(t, l->pid);
	if (l->held)
		TEXT_PUT(t, "},\"held\":true,\"state\":");
	else
		TEXT_PUT(t, "},\"held\":false,\"state\":");
	put_name(t, proto_state_to_string(l->state));
	if (l->reason[0] != '\0') {
		TEXT_PUT(t, ",\"reason\":");
		text_str(t, l->reason);
	}
	TEXT_PUT(t, "}");
}

/* An object's text is its string value: write it as it is. */
static int
serialize_raw(struct json_object *o, struct printbuf *pb, int level, int flags)
{
	(void)level;
	(void)flags;
	return printbuf_memappend(
	    pb, json_object_get_string(o), json_object_get_string_len(o));
}

json_object *
proto_lease_encode(const struct proto_lease *l)
{
	char buf[PROTO_LEASE_TEXT_MAX];
	size_t n = proto_lease_write(l, buf, sizeof(buf));
	json_object *o;

	if (n >= sizeof(buf) ||
	    (o = json_object_new_string_len(buf, (int)n)) == NULL)
		return NULL;
	json_object_set_serializer(o, serialize_raw, &proto_raw_tag, NULL);
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
	/* Without a state (an older daemon or journal): from held. */
	l->state = l->held ? PROTO_STATE_HELD : PROTO_STATE_CLAIMED;
	if (json_object_object_get_ex(o, "state", NULL)) {
		if (decode_name(o, "state", &proto_names_state,
		        PROTO_STATE_HELD, PROTO_STATE_UNHELD, &e, err))
			return -1;
		l->state = e;
	}
	if (proto_get_string(
	        o, "reason", PROTO_MAX_ERRMSG - 1, l->reason, err) == -1)
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
