/*
 * Fuzz target for the journal loader (daemon/jrecord.c): every input is a
 * journal file's bytes, read as portd reads one at start. Checked after
 * every input:
 *   - the loader never reads past the input, and the whole-line prefix it
 *     reports ends at a newline (appends go there);
 *   - a torn tail is reported exactly when the input does not end in one;
 *   - every live record decodes as a lease or is refused, never crashes;
 *   - a decoded lease written back as a record (with its checksum) loads
 *     again as the same lease, and the journal's text writer
 *     (jrecord_add_put) gives the same bytes as the json-c one, and the same
 * line with any one byte changed never loads as a different lease.
 *
 * The suite replays the seeds in tests/fuzz/journal/ through it
 * (fuzz_journal_seeds); tests/fuzz/README.md says how to fuzz for real.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void
count(void *arg, int line, enum jline what)
{
	int *n = arg;

	(void)line;
	(void)what;
	(*n)++;
}

/* CRC-32 a bit at a time, as its definition reads: what the journal's
 * table-driven one must give for every input. */
static uint32_t
crc32_by_bits(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	while (n-- > 0) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	return c ^ 0xffffffffu;
}

/* Load one line; the lease it holds into v, or -1. */
static int
load_line(const char *line, size_t len, struct proto_lease *v)
{
	struct jload j = {0};
	struct proto_error err;
	int n = 0, rc = -1;

	if (jrecord_load(line, len, &j) == -1)
		return -1;
	json_object_object_foreach(j.map, id, rec)
	{
		uint64_t start;

		(void)id;
		if (n++ == 0 && jrecord_decode(rec, v, &start, &err) == 0)
			rc = 0;
	}
	json_object_put(j.map);
	return n == 1 ? rc : -1;
}

static bool
plain(const char *t)
{
	for (; *t != '\0'; t++)
		if (*t < 0x20 || *t > 0x7e || *t == '"' || *t == '\\')
			return false;
	return true;
}

/* A record the fast reader took (the line itself, as a string): json-c
 * reads the same line as the same lease and start time. */
static void
same_as_json_c(json_object *rec)
{
	struct proto_lease fast, slow;
	struct proto_error err;
	uint64_t start;
	json_object *o, *put = NULL, *st = NULL;
	char a[PROTO_LEASE_TEXT_MAX], b[PROTO_LEASE_TEXT_MAX];

	CHECK(jrecord_decode(rec, &fast, &start, &err) == 0);
	o = proto_parse_object(json_object_get_string(rec),
	    (size_t)json_object_get_string_len(rec), &err);
	CHECK(o != NULL);
	CHECK(json_object_object_get_ex(o, "put", &put));
	CHECK(json_object_object_get_ex(o, "start", &st));
	CHECK(proto_lease_decode(put, &slow, &err) == 0);
	CHECK((uint64_t)json_object_get_int64(st) == start);
	proto_lease_write(&fast, a, sizeof(a));
	proto_lease_write(&slow, b, sizeof(b));
	CHECK(strcmp(a, b) == 0 && fast.ipv6 == slow.ipv6 &&
	      fast.held == slow.held && fast.state == slow.state);
	json_object_put(o);
}

/* Write v back as a version 2 put record and check it round-trips. */
static void
round_trip(const struct proto_lease *v, uint32_t seed)
{
	struct jbuf b = {0};
	struct proto_lease w;
	json_object *rec = json_object_new_object();

	json_object_object_add(rec, "put", proto_lease_encode(v));
	json_object_object_add(rec, "start", json_object_new_int64(0));
	if (jrecord_add(&b, rec) == -1) {
		jbuf_free(&b);
		return;
	}
	/* The journal's own writer, which builds no object, writes the
	 * same bytes. */
	{
		struct jbuf t = {0};

		CHECK(jrecord_add_put(&t, v, 0) == 0);
		CHECK(t.len == b.len && memcmp(t.p, b.p, b.len) == 0);
		jbuf_free(&t);
	}
	/* After a version 2 header the same line takes the fast reader,
	 * which must read what json-c reads. */
	{
		struct jbuf h = {0};
		json_object *hdr = json_object_new_object();
		struct jload j = {0};
		int n = 0;

		json_object_object_add(
		    hdr, "portd_journal", json_object_new_int(JOURNAL_VERSION));
		CHECK(jrecord_add(&h, hdr) == 0);
		CHECK(jrecord_add_put(&h, v, 0) == 0);
		CHECK(jrecord_load(h.p, h.len, &j) == 0);
		json_object_object_foreach(j.map, id, r)
		{
			(void)id;
			/* Only labels and reasons of plain ASCII (no quote, no
			 * backslash) take the fast way. */
			if (json_object_is_type(r, json_type_string))
				same_as_json_c(r);
			else
				CHECK(!plain(v->name) || !plain(v->reason));
			n++;
		}
		CHECK(n == 1);
		json_object_put(j.map);
		jbuf_free(&h);
	}
	if (load_line(b.p, b.len, &w) != 0)
		fprintf(stderr, "%.*s", (int)b.len, b.p);
	CHECK(load_line(b.p, b.len, &w) == 0);
	CHECK(strcmp(w.id, v->id) == 0 && w.nports == v->nports &&
	      w.expires == v->expires);
	/* One byte changed (not the newline): refused, or the same lease
	 * (a change inside the checksum's own hex digits is refused too). */
	if (b.len > 1) {
		size_t at = seed % (b.len - 1);
		char old = b.p[at];

		b.p[at] = (char)(old ^ (1 + (seed >> 8) % 255));
		if (b.p[at] != '\n' && load_line(b.p, b.len, &w) == 0)
			CHECK(strcmp(w.id, v->id) == 0 &&
			      w.nports == v->nports &&
			      memcmp(w.ports, v->ports,
			          sizeof(w.ports[0]) * (size_t)w.nports) == 0 &&
			      w.expires == v->expires && w.ttl == v->ttl &&
			      w.held == v->held && w.uid == v->uid);
		b.p[at] = old;
	}
	jbuf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jload j = {.report = count};
	const char *buf = (const char *)data;
	int reports = 0;
	uint32_t seed = size > 0 ? jrecord_crc32(data, size) : 0;

	/* Every length and alignment: the checksum is its definition's. */
	CHECK(jrecord_crc32(data, size) == crc32_by_bits(data, size));
	if (size > 1)
		CHECK(jrecord_crc32(data + 1, size - 1) ==
		      crc32_by_bits(data + 1, size - 1));

	j.arg = &reports;
	if (jrecord_load(buf, size, &j) == -1) {
		CHECK(j.map == NULL);
		return 0;
	}
	CHECK(j.complete <= size);
	CHECK(j.complete == 0 || buf[j.complete - 1] == '\n');
	CHECK(j.torn == (j.complete < size));
	json_object_object_foreach(j.map, id, rec)
	{
		struct proto_lease v;
		struct proto_error err;
		uint64_t start;

		CHECK(proto_lease_id_valid(id, strlen(id)));
		if (json_object_is_type(rec, json_type_string))
			same_as_json_c(rec);
		else
			CHECK(json_object_object_get_ex(rec, "put", NULL));
		if (jrecord_decode(rec, &v, &start, &err) == 0)
			round_trip(&v, seed++);
	}
	json_object_put(j.map);
	return 0;
}

/* Once, before any input: the checksum is zlib's CRC-32 (its check
 * value). libFuzzer calls this hook, and so does tests/fuzz/replay.c. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	CHECK(jrecord_crc32("123456789", 9) == 0xcbf43926u);
	CHECK(jrecord_crc32("The quick brown fox jumps over the lazy dog",
	          43) == 0x414fa339u);
	return 0;
}
