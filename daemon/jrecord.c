/*
 * The journal's lines: records with a checksum, and reading a file's worth
 * of them into the set of live records. No I/O and no daemon state, so
 * the loader's fuzz target runs it as the daemon does.
 *
 * Version 2 ends every record with its checksum as the last key:
 *
 *   {"put":{...},"start":0,"crc":"89abcdef"}
 *
 * the CRC-32 (zlib's crc32) of the line's bytes before `,"crc":`, as
 * eight lower-case hex digits. A version 2 line without it, or whose
 * checksum does not match, is refused. Version 1 files (no checksums) are
 * read as before; a line that carries a checksum is checked in either.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

#define CRC_HEAD     ",\"crc\":\""
#define CRC_HEAD_LEN (sizeof(CRC_HEAD) - 1)
#define CRC_TAIL_LEN (CRC_HEAD_LEN + 8 + 2) /* ,"crc":"XXXXXXXX"} */

/* zlib's CRC-32, eight bytes a step ("slicing by eight"): t[0] is the
 * byte-wise table, t[k] a byte followed by k zero bytes. */
uint32_t
jrecord_crc32(const void *data, size_t len)
{
	static uint32_t t[8][256];
	const unsigned char *p = data;
	uint32_t c = 0xffffffffu;

	if (t[0][1] == 0) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t k = i;
			for (int j = 0; j < 8; j++)
				k = k & 1 ? 0xedb88320u ^ (k >> 1) : k >> 1;
			t[0][i] = k;
		}
		for (int k = 1; k < 8; k++)
			for (int i = 0; i < 256; i++)
				t[k][i] = t[0][t[k - 1][i] & 0xff] ^
				          (t[k - 1][i] >> 8);
	}
	for (; len >= 8; p += 8, len -= 8) {
		uint32_t lo =
		    c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
		            (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 |
		              (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;

		c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^
		    t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^ t[3][hi & 0xff] ^
		    t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^
		    t[0][hi >> 24];
	}
	while (len-- > 0)
		c = t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

/* n as decimal digits at p; returns the count written. */
static size_t
put_u64(char *p, uint64_t n)
{
	char d[20];
	size_t k = 0;

	do
		d[k++] = (char)('0' + n % 10);
	while ((n /= 10) != 0);
	for (size_t i = 0; i < k; i++)
		p[i] = d[k - 1 - i];
	return k;
}

int
jrecord_add_text(struct jbuf *b, const char *text, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t body, need;
	uint32_t crc;
	char *q;

	if (len < 2 || text[0] != '{' || text[len - 1] != '}')
		return -1;
	body = len - 1; /* the checksum goes inside the object */
	need = body + CRC_TAIL_LEN + 1;
	if (b->len + need + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 512;
		char *p;
		while (cap < b->len + need + 1)
			cap *= 2;
		if ((p = realloc(b->p, cap)) == NULL)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, text, body);
	crc = jrecord_crc32(text, body);
	q = b->p + b->len + body;
	memcpy(q, CRC_HEAD, CRC_HEAD_LEN);
	q += CRC_HEAD_LEN;
	for (int i = 7; i >= 0; i--)
		*q++ = hex[(crc >> (4 * i)) & 15];
	memcpy(q, "\"}\n", 4); /* and the NUL after the line */
	b->len += need;
	b->nrecords++;
	return 0;
}

int
jrecord_add(struct jbuf *b, json_object *rec)
{
	char *line;
	size_t len;
	int rc;

	line = proto_serialize(rec, &len);
	json_object_put(rec);
	if (line == NULL)
		return -1;
	/* proto_serialize ends the object with its newline. */
	rc = jrecord_add_text(b, line, len - 1);
	free(line);
	return rc;
}

int
jrecord_add_put(struct jbuf *b, const struct proto_lease *v, uint64_t start)
{
	char text[PROTO_LEASE_TEXT_MAX + 64];
	size_t n = sizeof("{\"put\":") - 1, w;

	memcpy(text, "{\"put\":", n);
	w = proto_lease_write(v, text + n, sizeof(text) - n);
	if (w >= sizeof(text) - n)
		return -1;
	n += w;
	/* PROTO_LEASE_TEXT_MAX leaves room for the 30 bytes of the rest. */
	memcpy(text + n, ",\"start\":", 9);
	n += 9;
	n += put_u64(text + n, start);
	text[n++] = '}';
	return jrecord_add_text(b, text, n);
}

int
jrecord_add_del(struct jbuf *b, const char *id)
{
	char text[PROTO_MAX_ID + 16];
	size_t n = strlen(id);

	/* Lease ids need no escaping (proto_lease_id_valid). */
	if (n > PROTO_MAX_ID || !proto_lease_id_valid(id, n))
		return -1;
	memcpy(text, "{\"del\":\"", 8);
	memcpy(text + 8, id, n);
	memcpy(text + 8 + n, "\"}", 2);
	return jrecord_add_text(b, text, n + 10);
}

void
jbuf_free(struct jbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* 1: the line's checksum matches; 0: it has none; -1: it does not match. */
static int
check_crc(const char *line, size_t len)
{
	const char *t;
	char hex[9], *end;
	unsigned long want;

	if (len < CRC_TAIL_LEN + 1)
		return 0;
	t = line + len - CRC_TAIL_LEN;
	if (memcmp(t, CRC_HEAD, CRC_HEAD_LEN) != 0 ||
	    memcmp(t + CRC_HEAD_LEN + 8, "\"}", 2) != 0)
		return 0;
	memcpy(hex, t + CRC_HEAD_LEN, 8);
	hex[8] = '\0';
	for (int i = 0; i < 8; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') ||
		        (hex[i] >= 'a' && hex[i] <= 'f')))
			return -1;
	want = strtoul(hex, &end, 16);
	return jrecord_crc32(line, (size_t)(t - line)) == want ? 1 : -1;
}

/*
 * The fast way in, for the lines portd itself writes. A put record as
 * jrecord_add_put writes it is read by a scanner that takes only that
 * shape (fields in the writer's order, strings of printable ASCII without
 * quotes or backslashes, plain decimal numbers); the lease it reads is
 * written again with proto_lease_write and must give the same bytes, so
 * the scanner accepts nothing the writer would not have written. Every
 * other line goes through json-c as before. json-c's parse was two
 * thirds of a restore (docs/benchmarks.md).
 */
struct scan {
	const char *p, *end;
	bool ok;
};

static void
lit(struct scan *s, const char *l)
{
	size_t n = strlen(l);

	if (s->ok && (size_t)(s->end - s->p) >= n && memcmp(s->p, l, n) == 0)
		s->p += n;
	else
		s->ok = false;
}

static void
str(struct scan *s, char *out, size_t max)
{
	size_t n = 0;

	lit(s, "\"");
	while (s->ok && s->p < s->end && *s->p != '"') {
		unsigned char c = (unsigned char)*s->p++;

		if (c < 0x20 || c > 0x7e || c == '\\' || n == max)
			s->ok = false;
		else
			out[n++] = (char)c;
	}
	out[n] = '\0';
	lit(s, "\"");
}

/* A non-negative integer up to max, or null (-1) when nullable. */
static int64_t
num(struct scan *s, int64_t max, bool nullable)
{
	uint64_t n = 0;
	int digits = 0;

	if (nullable && s->ok && s->end - s->p >= 4 &&
	    memcmp(s->p, "null", 4) == 0) {
		s->p += 4;
		return -1;
	}
	while (s->ok && s->p < s->end && *s->p >= '0' && *s->p <= '9' &&
	       digits < 19) {
		n = n * 10 + (uint64_t)(*s->p++ - '0');
		digits++;
	}
	/* JSON has no leading zeros ("007"): json-c's reader refuses them. */
	if (digits == 0 || n > (uint64_t)max ||
	    (digits > 1 && s->p[-digits] == '0'))
		s->ok = false;
	return (int64_t)n;
}

static bool
boolean(struct scan *s)
{
	if (s->ok && s->end - s->p >= 4 && memcmp(s->p, "true", 4) == 0) {
		s->p += 4;
		return true;
	}
	lit(s, "false");
	return false;
}

/* An enum by its wire name, within [lo, hi]. */
static int
name(struct scan *s, int (*from)(const char *), int lo, int hi)
{
	char buf[32];
	int v;

	str(s, buf, sizeof(buf) - 1);
	v = s->ok ? from(buf) : -1;
	if (v < lo || v > hi)
		s->ok = false;
	return v;
}

/* line (without its newline, its checksum checked) as jrecord_add_put
 * writes it: the lease into v and the owner's start time. */
static bool
scan_put(const char *line, size_t len, struct proto_lease *v, uint64_t *start)
{
	char text[PROTO_LEASE_TEXT_MAX];
	struct scan s = {.p = line, .end = line + len, .ok = true};
	const char *lease;
	size_t n;

	if (len < CRC_TAIL_LEN)
		return false;
	s.end = line + len - CRC_TAIL_LEN; /* the checksum: checked */
	memset(v, 0, sizeof(*v));
	lit(&s, "{\"put\":");
	lease = s.p;
	lit(&s, "{\"id\":");
	str(&s, v->id, PROTO_MAX_ID);
	lit(&s, ",\"ports\":[");
	while (s.ok && s.p < s.end && *s.p != ']') {
		if (v->nports > 0)
			lit(&s, ",");
		if (v->nports == PROTO_MAX_COUNT)
			s.ok = false;
		if (s.ok)
			v->ports[v->nports++] = (uint16_t)num(&s, 65535, false);
		if (s.ok && v->ports[v->nports - 1] == 0)
			s.ok = false;
	}
	lit(&s, "],\"proto\":");
	v->proto = name(&s, proto_proto_from_string, PROTO_TCP, PROTO_BOTH);
	lit(&s, ",\"family\":");
	v->family =
	    name(&s, proto_family_from_string, PROTO_FAM_DUAL, PROTO_FAM_IPV6);
	lit(&s, ",\"ipv6\":");
	v->ipv6 = boolean(&s);
	lit(&s, ",\"scope\":");
	v->scope = name(
	    &s, proto_scope_from_string, PROTO_SCOPE_TTL, PROTO_SCOPE_PROCESS);
	lit(&s, ",\"hold\":");
	v->hold = name(&s, proto_hold_from_string, PROTO_HOLD_SHARED,
	    PROTO_HOLD_EXCLUSIVE);
	lit(&s, ",\"ttl\":");
	v->ttl = num(&s, INT64_MAX, true);
	lit(&s, ",\"expires\":");
	v->expires = num(&s, INT64_MAX, true);
	lit(&s, ",\"created\":");
	v->created = num(&s, INT64_MAX, true);
	lit(&s, ",\"name\":");
	str(&s, v->name, PROTO_MAX_NAME);
	lit(&s, ",\"owner\":{\"uid\":");
	v->uid = (uint32_t)num(&s, UINT32_MAX, false);
	lit(&s, ",\"pid\":");
	v->pid = (int32_t)num(&s, INT32_MAX, false);
	lit(&s, "},\"held\":");
	v->held = boolean(&s);
	lit(&s, ",\"state\":");
	v->state = name(
	    &s, proto_state_from_string, PROTO_STATE_HELD, PROTO_STATE_UNHELD);
	if (s.ok && s.p < s.end && *s.p == ',' && s.end - s.p > 10 &&
	    memcmp(s.p, ",\"reason\":", 10) == 0) {
		lit(&s, ",\"reason\":");
		str(&s, v->reason, PROTO_MAX_ERRMSG - 1);
	}
	lit(&s, "}");
	if (!s.ok || v->id[0] == '\0' ||
	    !proto_lease_id_valid(v->id, strlen(v->id)))
		return false;
	/* Exactly what the writer makes of this lease, nothing else. */
	n = proto_lease_write(v, text, sizeof(text));
	if (n >= sizeof(text) || n != (size_t)(s.p - lease) ||
	    memcmp(text, lease, n) != 0)
		return false;
	lit(&s, ",\"start\":");
	*start = (uint64_t)num(&s, INT64_MAX, false);
	return s.ok && s.p == s.end;
}

/* The tag of map values that are put lines read the fast way. */
static char fast_tag;

int
jrecord_decode(json_object *rec, struct proto_lease *v, uint64_t *start,
    struct proto_error *err)
{
	json_object *put = NULL, *st = NULL;

	if (json_object_get_userdata(rec) == &fast_tag) {
		/* Scanned once already; the same bytes scan the same way. */
		if (!scan_put(json_object_get_string(rec),
		        (size_t)json_object_get_string_len(rec), v, start))
			return proto_error_set(
			    err, PROTO_E_INTERNAL, "record changed");
		return 0;
	}
	json_object_object_get_ex(rec, "put", &put);
	json_object_object_get_ex(rec, "start", &st);
	*start = st != NULL && json_object_is_type(st, json_type_int)
	             ? (uint64_t)json_object_get_int64(st)
	             : 0;
	return proto_lease_decode(put, v, err);
}

/* Apply one line to the map of live records. */
static enum jline
apply(struct jload *j, const char *line, size_t len)
{
	struct proto_error err;
	json_object *o, *v, *id;
	int crc = check_crc(line, len);

	if (crc == -1)
		return JLINE_CHECKSUM;
	if (crc == 1 && j->version >= 2 && len > 8 &&
	    memcmp(line, "{\"put\":", 7) == 0) {
		struct proto_lease fv;
		uint64_t start;

		if (scan_put(line, len, &fv, &start)) {
			json_object *rec =
			    json_object_new_string_len(line, (int)len);

			if (rec == NULL)
				return JLINE_CORRUPT;
			json_object_set_userdata(rec, &fast_tag, NULL);
			json_object_object_add(j->map, fv.id, rec);
			return JLINE_OK;
		}
	}
	if ((o = proto_parse_object(line, len, &err)) == NULL)
		return JLINE_CORRUPT;
	if (json_object_object_get_ex(o, "portd_journal", &v)) {
		int64_t ver = json_object_is_type(v, json_type_int)
		                  ? json_object_get_int64(v)
		                  : -1;
		json_object_put(o);
		if (ver != 1 && ver != JOURNAL_VERSION) {
			j->other_version = ver;
			return JLINE_OTHER_VERSION;
		}
		j->version = (int)ver;
		return JLINE_HEADER;
	}
	if (crc == 0 && j->version >= 2) {
		json_object_put(o);
		return JLINE_CHECKSUM;
	}
	if (json_object_object_get_ex(o, "del", &v) &&
	    json_object_is_type(v, json_type_string)) {
		json_object_object_del(j->map, json_object_get_string(v));
		json_object_put(o);
		return JLINE_OK;
	}
	if (json_object_object_get_ex(o, "put", &v) &&
	    json_object_object_get_ex(v, "id", &id) &&
	    json_object_is_type(id, json_type_string) &&
	    proto_lease_id_valid(json_object_get_string(id),
	        (size_t)json_object_get_string_len(id))) {
		json_object_object_add(
		    j->map, json_object_get_string(id), json_object_get(o));
		json_object_put(o);
		return JLINE_OK;
	}
	json_object_put(o);
	return JLINE_CORRUPT;
}

int
jrecord_load(const char *buf, size_t len, struct jload *j)
{
	const char *p, *end;
	int line = 0;

	j->map = json_object_new_object();
	j->version = 1; /* a file without a header: as version 1 did */
	j->complete = 0;
	j->torn = false;
	j->other_version = 0;
	if (j->map == NULL)
		return -1;
	for (p = buf; p < buf + len; p = end + 1) {
		enum jline what;

		line++;
		if ((end = memchr(p, '\n', (size_t)(buf + len - p))) == NULL) {
			j->torn = true;
			if (j->report != NULL)
				j->report(j->arg, line, JLINE_TORN);
			break;
		}
		what = apply(j, p, (size_t)(end - p));
		j->complete = (size_t)(end + 1 - buf);
		if (what == JLINE_OTHER_VERSION) {
			if (j->report != NULL)
				j->report(j->arg, line, what);
			json_object_put(j->map);
			j->map = NULL;
			return -1;
		}
		if (what != JLINE_OK && what != JLINE_HEADER &&
		    j->report != NULL)
			j->report(j->arg, line, what);
	}
	return 0;
}
