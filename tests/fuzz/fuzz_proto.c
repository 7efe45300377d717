/*
 * Fuzz target for the wire codec: every input goes through the request
 * parser, the reply encoders and the lease decoder, as the daemon and the
 * client library use them; every object the reader takes and every reply
 * is serialized by portd's writer and by json-c, and the bytes must agree;
 * the reply writer gives the bytes of the same reply built as a tree.
 *
 * Built by the test suite as a replay program that runs the files named on
 * its command line (the seeds here) through the target; with clang it is
 * also a libFuzzer target: tests/fuzz/README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* portd's own writer (proto_serialize) gives json-c's bytes for anything
 * the reader takes and every reply. */
static void
same_as_json_c(json_object *o)
{
	size_t n, jn;
	const char *js = json_object_to_json_string_length(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &jn);
	char *s = proto_serialize(o, &n);

	if (s == NULL || js == NULL)
		abort();
	if (jn + 1 != n || memcmp(js, s, jn) != 0) {
		fprintf(stderr, "json-c: %s\nportd:  %s", js, s);
		abort();
	}
	free(s);
}

/* The fast reader, where it takes a line, gives what json-c's gives:
 * the same result, error and request. */
static void
same_either_way(const char *line, size_t len)
{
	struct proto_request f, j;
	struct proto_error fe, je;
	int frc = proto_request_parse_fast(line, len, &f, &fe);
	int jrc = proto_request_parse_json(line, len, &j, &je);

	if (frc != 1 &&
	    (frc != jrc || fe.code != je.code ||
	        strcmp(fe.message, je.message) != 0 || f.op != j.op ||
	        f.version != j.version || f.count != j.count ||
	        f.proto != j.proto || f.family != j.family ||
	        f.port != j.port || f.contiguous != j.contiguous ||
	        f.has_hold != j.has_hold || f.hold != j.hold ||
	        f.has_ttl != j.has_ttl || f.ttl != j.ttl ||
	        f.scope != j.scope || f.pid != j.pid ||
	        strcmp(f.name, j.name) != 0 || f.fd != j.fd ||
	        f.strategy != j.strategy || strcmp(f.lease, j.lease) != 0 ||
	        f.all != j.all || !json_object_equal(f.id, j.id))) {
		fprintf(stderr, "readers differ on %.*s: %d '%s' / %d '%s'\n",
		    (int)len, line, frc, fe.message, jrc, je.message);
		abort();
	}
	proto_request_clear(&f);
	proto_request_clear(&j);
}

/* The reply writer gives the bytes of the same reply built as a json-c
 * tree: an id, every member of o, and for a lease l also the lease, its
 * ports and its id, as the daemon writes them. */
static void
writer_same(json_object *id, json_object *o, const struct proto_lease *l)
{
	struct proto_writer w;
	json_object *tree = proto_reply_ok(id), *ports;
	char *a, *b;
	size_t an, bn;

	proto_writer_reply(&w, id);
	json_object_object_foreach(o, key, val)
	{
		if (json_object_object_get_ex(tree, key, NULL))
			continue; /* a reply has each key once */
		proto_writer_value(&w, key, val);
		json_object_object_add(tree, key, json_object_get(val));
	}
	if (l != NULL && !json_object_object_get_ex(tree, "lease", NULL) &&
	    !json_object_object_get_ex(tree, "released", NULL) &&
	    !json_object_object_get_ex(tree, "name", NULL)) {
		proto_writer_lease(&w, "lease", l);
		json_object_object_add(tree, "lease", proto_lease_encode(l));
		ports = json_object_new_array();
		for (int i = 0; i < l->nports; i++)
			json_object_array_add(
			    ports, json_object_new_int(l->ports[i]));
		proto_writer_ints(&w, "released", l->ports, l->nports);
		json_object_object_add(tree, "released", ports);
		proto_writer_str(&w, "name", l->id);
		json_object_object_add(
		    tree, "name", json_object_new_string(l->id));
	}
	a = proto_writer_end(&w, &an);
	b = proto_serialize(tree, &bn);
	if (a == NULL || b == NULL || an != bn || memcmp(a, b, an) != 0) {
		fprintf(stderr, "writer: %.*s\ntree:   %s", (int)an, a, b);
		abort();
	}
	free(a);
	free(b);
	json_object_put(tree);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_request r;
	struct proto_error err;
	struct proto_lease l;
	json_object *o, *rep, *v;
	char *s;
	size_t n;

	same_either_way((const char *)data, size);
	if (proto_request_parse((const char *)data, size, &r, &err) == 0)
		rep = proto_reply_ok(r.id);
	else
		rep = proto_reply_error(r.id, &err);
	same_as_json_c(rep);
	if ((s = proto_serialize(rep, &n)) != NULL) {
		/* One line, ending in its only newline. */
		if (n == 0 || s[n - 1] != '\n' || memchr(s, '\n', n - 1))
			abort();
		free(s);
	}
	json_object_put(rep);

	if ((o = proto_parse_object((const char *)data, size, &err)) != NULL) {
		same_as_json_c(o);
		if (proto_lease_decode(o, &l, &err) == 0) {
			rep = proto_lease_encode(&l);
			json_object_put(rep);
			writer_same(r.id, o, &l);
		} else
			writer_same(r.id, o, NULL);
		if (json_object_object_get_ex(o, "lease", &v))
			(void)proto_lease_decode(v, &l, &err);
		json_object_put(o);
	}
	proto_request_clear(&r);
	return 0;
}
