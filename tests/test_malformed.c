/*
 * Malformed requests against a real portd (SPEC Guarantee 7). Each entry
 * of the table gets a fresh daemon holding two leases made by another
 * connection; the bad bytes go on their own connection, and afterwards
 * the daemon must still answer, the leases must be listed and their ports
 * still held (a plain bind fails), and the daemon must hold no more
 * descriptors than before. Pool ports: 30000-30499.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "integ.h"
#include "proto.h"

#define S(lit) lit, sizeof(lit) - 1

enum how {
	PLAIN,     /* one write */
	SPLIT,     /* one byte a write */
	FDS,       /* three descriptors attached with SCM_RIGHTS */
	AS_NOBODY, /* sent by uid 65534 */
};

struct bad {
	const char *name;
	const char *data; /* @ID@ and @PORT@: the first lease's id and port */
	size_t len;
	/* Reply codes in order, then "closed" if the daemon must hang up. */
	const char *expect;
	enum how how;
	char *(*gen)(size_t *ret_len);
};

static char *
gen_fill(
    size_t *ret_len, const char *head, char fill, size_t n, const char *tail)
{
	size_t hl = strlen(head), tl = strlen(tail);
	char *buf = malloc(hl + n + tl);

	ck_assert_ptr_nonnull(buf);
	memcpy(buf, head, hl);
	memset(buf + hl, fill, n);
	memcpy(buf + hl + n, tail, tl);
	*ret_len = hl + n + tl;
	return buf;
}

static char *
gen_brackets(size_t *ret_len)
{
	return gen_fill(ret_len, "", '[', 10000, "\n");
}

static char *
gen_braces_in_field(size_t *ret_len)
{
	return gen_fill(ret_len, "{\"op\":\"hello\",\"x\":", '[', 10000, "\n");
}

static char *
gen_mib_no_newline(size_t *ret_len)
{
	return gen_fill(
	    ret_len, "{\"op\":\"hello\",\"id\":\"", 'a', 1 << 20, "");
}

static char *
gen_mib_line(size_t *ret_len)
{
	return gen_fill(ret_len, "", ' ', 1 << 20, "\n");
}

static char *
gen_long_name(size_t *ret_len)
{
	return gen_fill(ret_len, "{\"op\":\"lease\",\"name\":\"", 'n',
	    PROTO_MAX_NAME + 1, "\"}\n");
}

static char *
gen_long_id(size_t *ret_len)
{
	return gen_fill(ret_len, "{\"op\":\"hello\",\"id\":\"", 'i',
	    PROTO_MAX_REQID + 1, "\"}\n");
}

static char *
gen_long_lease_id(size_t *ret_len)
{
	return gen_fill(ret_len, "{\"op\":\"claim\",\"lease\":\"", 'L',
	    PROTO_MAX_ID + 1, "\"}\n");
}

static char *
gen_many_fields(size_t *ret_len)
{
	char *buf = malloc(64 * 1024);
	size_t len = (size_t)sprintf(buf, "{\"op\":\"status\"");

	for (int i = 0; i < 3000; i++)
		len += (size_t)sprintf(buf + len, ",\"f%d\":%d", i, i);
	len += (size_t)sprintf(buf + len, "}\n");
	*ret_len = len;
	return buf;
}

static const struct bad table[] = {
    /* Not JSON, or not an object. */
    {"binary", S("\x01\x02\x7f\xff\xfe\x80\n"), "bad_request", PLAIN, NULL},
    {"lone_newline", S("\n"), "bad_request", PLAIN, NULL},
    {"spaces_only", S("   \t \n"), "bad_request", PLAIN, NULL},
    {"empty_object", S("{}\n"), "bad_request", PLAIN, NULL},
    {"array", S("[]\n"), "bad_request", PLAIN, NULL},
    {"array_of_request", S("[{\"op\":\"hello\"}]\n"), "bad_request", PLAIN,
        NULL},
    {"string", S("\"hello\"\n"), "bad_request", PLAIN, NULL},
    {"number", S("42\n"), "bad_request", PLAIN, NULL},
    {"null", S("null\n"), "bad_request", PLAIN, NULL},
    {"true", S("true\n"), "bad_request", PLAIN, NULL},
    {"unterminated_object", S("{\"op\":\"hello\"\n"), "bad_request", PLAIN,
        NULL},
    {"unterminated_string", S("{\"op\":\"hel\n"), "bad_request", PLAIN, NULL},
    {"single_quotes", S("{'op':'hello'}\n"), "bad_request", PLAIN, NULL},
    {"comment", S("{\"op\":\"hello\"/* x */}\n"), "bad_request", PLAIN, NULL},
    {"trailing_data", S("{\"op\":\"hello\"}x\n"), "bad_request", PLAIN, NULL},
    {"two_objects_one_line", S("{\"op\":\"hello\"}{\"op\":\"hello\"}\n"),
        "bad_request", PLAIN, NULL},
    {"utf8_bom", S("\xef\xbb\xbf{\"op\":\"hello\"}\n"), "bad_request", PLAIN,
        NULL},
    {"invalid_utf8_op", S("{\"op\":\"hel\xc3\x28lo\"}\n"), "bad_request", PLAIN,
        NULL},
    {"overlong_utf8_name", S("{\"op\":\"lease\",\"name\":\"a\xc0\xaf\"}\n"),
        "bad_request", PLAIN, NULL},
    {"nul_byte_in_line", S("{\"op\":\"hello\"}\0\n"), "bad_request", PLAIN,
        NULL},
    {"nul_byte_in_string", S("{\"op\":\"hel\0lo\"}\n"), "bad_request", PLAIN,
        NULL},
    {"escaped_nul_in_name", S("{\"op\":\"lease\",\"name\":\"a\\u0000b\"}\n"),
        "bad_request", PLAIN, NULL},
    {"raw_tab_in_name", S("{\"op\":\"lease\",\"name\":\"a\tb\"}\n"),
        "bad_request", PLAIN, NULL},
    {"newline_escape_in_name", S("{\"op\":\"lease\",\"name\":\"a\\nb\"}\n"),
        "bad_request", PLAIN, NULL},
    {"non_ascii_name", S("{\"op\":\"lease\",\"name\":\"caf\xc3\xa9\"}\n"),
        "bad_request", PLAIN, NULL},
    {"lone_surrogate_name", S("{\"op\":\"lease\",\"name\":\"\\ud800\"}\n"),
        "bad_request", PLAIN, NULL},
    {"oversize_name", NULL, 0, "bad_request", PLAIN, gen_long_name},
    {"name_not_string", S("{\"op\":\"lease\",\"name\":123}\n"), "bad_request",
        PLAIN, NULL},
    {"name_object", S("{\"op\":\"lease\",\"name\":{\"a\":{\"b\":1}}}\n"),
        "bad_request", PLAIN, NULL},

    /* op */
    {"no_op", S("{\"id\":1}\n"), "bad_request", PLAIN, NULL},
    {"op_number", S("{\"op\":5}\n"), "bad_request", PLAIN, NULL},
    {"op_null", S("{\"op\":null}\n"), "bad_request", PLAIN, NULL},
    {"op_array", S("{\"op\":[\"hello\"]}\n"), "bad_request", PLAIN, NULL},
    {"op_unknown", S("{\"op\":\"frobnicate\"}\n"), "unknown_op", PLAIN, NULL},
    {"op_upper_case", S("{\"op\":\"HELLO\"}\n"), "unknown_op", PLAIN, NULL},
    {"op_empty", S("{\"op\":\"\"}\n"), "unknown_op", PLAIN, NULL},
    {"op_trailing_space", S("{\"op\":\"hello \"}\n"), "unknown_op", PLAIN,
        NULL},
    {"unknown_field", S("{\"op\":\"status\",\"x\":1}\n"), "bad_request", PLAIN,
        NULL},
    {"field_of_other_op", S("{\"op\":\"hello\",\"lease\":\"L1\"}\n"),
        "bad_request", PLAIN, NULL},
    {"many_unknown_fields", NULL, 0, "bad_request", PLAIN, gen_many_fields},

    /* id */
    {"id_object", S("{\"op\":\"hello\",\"id\":{}}\n"), "bad_request", PLAIN,
        NULL},
    {"id_array", S("{\"op\":\"hello\",\"id\":[1]}\n"), "bad_request", PLAIN,
        NULL},
    {"id_nan", S("{\"op\":\"hello\",\"id\":NaN}\n"), "bad_request", PLAIN,
        NULL},
    {"id_infinity", S("{\"op\":\"hello\",\"id\":-Infinity}\n"), "bad_request",
        PLAIN, NULL},
    {"id_too_long", NULL, 0, "bad_request", PLAIN, gen_long_id},
    {"id_control_char", S("{\"op\":\"hello\",\"id\":\"a\\u0001\"}\n"),
        "bad_request", PLAIN, NULL},

    /* Integers: every int field out of range, overflowing, mistyped. */
    {"count_zero", S("{\"op\":\"lease\",\"count\":0}\n"), "bad_request", PLAIN,
        NULL},
    {"count_negative", S("{\"op\":\"lease\",\"count\":-1}\n"), "bad_request",
        PLAIN, NULL},
    {"count_65", S("{\"op\":\"lease\",\"count\":65}\n"), "bad_request", PLAIN,
        NULL},
    {"count_wraps_to_1", S("{\"op\":\"lease\",\"count\":4294967297}\n"),
        "bad_request", PLAIN, NULL},
    {"count_huge", S("{\"op\":\"lease\",\"count\":99999999999999999999}\n"),
        "bad_request", PLAIN, NULL},
    {"count_float", S("{\"op\":\"lease\",\"count\":1.5}\n"), "bad_request",
        PLAIN, NULL},
    {"count_exponent", S("{\"op\":\"lease\",\"count\":1e1}\n"), "bad_request",
        PLAIN, NULL},
    {"count_nan", S("{\"op\":\"lease\",\"count\":NaN}\n"), "bad_request", PLAIN,
        NULL},
    {"count_string", S("{\"op\":\"lease\",\"count\":\"1\"}\n"), "bad_request",
        PLAIN, NULL},
    {"count_leading_zero", S("{\"op\":\"lease\",\"count\":01}\n"),
        "bad_request", PLAIN, NULL},
    {"count_hex", S("{\"op\":\"lease\",\"count\":0x10}\n"), "bad_request",
        PLAIN, NULL},
    {"count_null", S("{\"op\":\"lease\",\"count\":null}\n"), "bad_request",
        PLAIN, NULL},
    {"port_zero", S("{\"op\":\"lease\",\"port\":0}\n"), "bad_request", PLAIN,
        NULL},
    {"port_negative", S("{\"op\":\"lease\",\"port\":-80}\n"), "bad_request",
        PLAIN, NULL},
    {"port_65536", S("{\"op\":\"lease\",\"port\":65536}\n"), "bad_request",
        PLAIN, NULL},
    {"port_wraps_to_8080", S("{\"op\":\"lease\",\"port\":4294975376}\n"),
        "bad_request", PLAIN, NULL},
    {"port_float", S("{\"op\":\"lease\",\"port\":8080.9}\n"), "bad_request",
        PLAIN, NULL},
    {"port_string", S("{\"op\":\"lease\",\"port\":\"80abc\"}\n"), "bad_request",
        PLAIN, NULL},
    {"port_past_65535", S("{\"op\":\"lease\",\"port\":65535,\"count\":2}\n"),
        "bad_request", PLAIN, NULL},
    {"ttl_zero", S("{\"op\":\"lease\",\"ttl\":0}\n"), "bad_request", PLAIN,
        NULL},
    {"ttl_negative", S("{\"op\":\"lease\",\"ttl\":-5}\n"), "bad_request", PLAIN,
        NULL},
    {"ttl_overflow", S("{\"op\":\"lease\",\"ttl\":9223372036854775808}\n"),
        "bad_request", PLAIN, NULL},
    {"ttl_past_max", S("{\"op\":\"lease\",\"ttl\":86401}\n"), "bad_request",
        PLAIN, NULL},
    {"ttl_float", S("{\"op\":\"lease\",\"ttl\":1.0}\n"), "bad_request", PLAIN,
        NULL},
    {"pid_zero", S("{\"op\":\"lease\",\"scope\":\"process\",\"pid\":0}\n"),
        "bad_request", PLAIN, NULL},
    {"pid_one", S("{\"op\":\"lease\",\"scope\":\"process\",\"pid\":1}\n"),
        "bad_request", PLAIN, NULL},
    {"pid_negative", S("{\"op\":\"lease\",\"scope\":\"process\",\"pid\":-1}\n"),
        "bad_request", PLAIN, NULL},
    {"pid_overflow",
        S("{\"op\":\"lease\",\"scope\":\"process\",\"pid\":2147483648}\n"),
        "bad_request", PLAIN, NULL},
    {"pid_without_process_scope", S("{\"op\":\"lease\",\"pid\":1234}\n"),
        "bad_request", PLAIN, NULL},
    {"version_2", S("{\"op\":\"hello\",\"version\":2}\n"), "bad_request", PLAIN,
        NULL},
    {"version_zero", S("{\"op\":\"hello\",\"version\":0}\n"), "bad_request",
        PLAIN, NULL},
    {"version_string", S("{\"op\":\"hello\",\"version\":\"1\"}\n"),
        "bad_request", PLAIN, NULL},
    {"renew_ttl_zero", S("{\"op\":\"renew\",\"lease\":\"@ID@\",\"ttl\":0}\n"),
        "bad_request", PLAIN, NULL},

    /* Other fields of the wrong type or value. */
    {"proto_unknown", S("{\"op\":\"lease\",\"proto\":\"sctp\"}\n"),
        "bad_request", PLAIN, NULL},
    {"proto_number", S("{\"op\":\"lease\",\"proto\":6}\n"), "bad_request",
        PLAIN, NULL},
    {"family_unknown", S("{\"op\":\"lease\",\"family\":\"ipv5\"}\n"),
        "bad_request", PLAIN, NULL},
    {"family_array", S("{\"op\":\"lease\",\"family\":[]}\n"), "bad_request",
        PLAIN, NULL},
    {"hold_unknown", S("{\"op\":\"lease\",\"hold\":\"maybe\"}\n"),
        "bad_request", PLAIN, NULL},
    {"hold_shared_udp",
        S("{\"op\":\"lease\",\"proto\":\"udp\",\"hold\":\"shared\"}\n"),
        "bad_request", PLAIN, NULL},
    {"scope_unknown", S("{\"op\":\"lease\",\"scope\":\"forever\"}\n"),
        "bad_request", PLAIN, NULL},
    {"strategy_unknown", S("{\"op\":\"lease\",\"strategy\":\"random\"}\n"),
        "bad_request", PLAIN, NULL},
    {"contiguous_string", S("{\"op\":\"lease\",\"contiguous\":\"yes\"}\n"),
        "bad_request", PLAIN, NULL},
    {"fd_number", S("{\"op\":\"lease\",\"fd\":1}\n"), "bad_request", PLAIN,
        NULL},
    {"all_string", S("{\"op\":\"list\",\"all\":\"yes\"}\n"), "bad_request",
        PLAIN, NULL},
    {"lease_id_number", S("{\"op\":\"renew\",\"lease\":123}\n"), "bad_request",
        PLAIN, NULL},
    {"lease_id_path", S("{\"op\":\"claim\",\"lease\":\"../etc\"}\n"),
        "bad_request", PLAIN, NULL},
    {"lease_id_empty", S("{\"op\":\"claim\",\"lease\":\"\"}\n"), "bad_request",
        PLAIN, NULL},
    {"lease_id_too_long", NULL, 0, "bad_request", PLAIN, gen_long_lease_id},
    {"renew_without_lease", S("{\"op\":\"renew\"}\n"), "bad_request", PLAIN,
        NULL},
    {"release_both", S("{\"op\":\"release\",\"lease\":\"@ID@\",\"port\":1}\n"),
        "bad_request", PLAIN, NULL},
    {"release_neither", S("{\"op\":\"release\"}\n"), "bad_request", PLAIN,
        NULL},
    {"lease_held_port", S("{\"op\":\"lease\",\"port\":@PORT@}\n"),
        "port_unavailable", PLAIN, NULL},

    /* Framing. */
    {"crlf_is_valid", S("{\"op\":\"hello\"}\r\n"), "ok", PLAIN, NULL},
    {"bad_in_the_middle",
        S("{\"op\":\"hello\",\"id\":1}\n{\"op\":\n{\"op\":\"status\",\"id\":3}"
          "\n"
          "{\"op\":\"list\",\"id\":4}\n"),
        "ok bad_request ok ok", PLAIN, NULL},
    {"split_into_bytes",
        S("{\"op\":\"lease\",\"scope\":\"session\",\"id\":\"split\"}\n"
          "{\"op\":\"status\"}\n"),
        "ok ok", SPLIT, NULL},
    {"deep_brackets", NULL, 0, "bad_request", PLAIN, gen_brackets},
    {"deep_field", NULL, 0, "bad_request", PLAIN, gen_braces_in_field},
    {"mib_without_newline", NULL, 0, "request_too_large closed", PLAIN,
        gen_mib_no_newline},
    {"mib_line", NULL, 0, "request_too_large closed", PLAIN, gen_mib_line},
    {"too_large_then_valid", NULL, 0, "request_too_large closed", SPLIT, NULL},

    /* Descriptors sent to the daemon are not kept. */
    {"fds_with_request", S("{\"op\":\"hello\"}\n"), "ok", FDS, NULL},
    {"fds_with_bad_request", S("{\"op\":\n"), "bad_request", FDS, NULL},

    /* Another user's lease. */
    {"renew_other_users_lease",
        S("{\"op\":\"renew\",\"lease\":\"@ID@\",\"ttl\":1}\n"), "forbidden",
        AS_NOBODY, NULL},
    {"claim_other_users_lease", S("{\"op\":\"claim\",\"lease\":\"@ID@\"}\n"),
        "forbidden", AS_NOBODY, NULL},
    {"release_other_users_lease",
        S("{\"op\":\"release\",\"lease\":\"@ID@\"}\n"), "forbidden", AS_NOBODY,
        NULL},
    {"release_other_users_port", S("{\"op\":\"release\",\"port\":@PORT@}\n"),
        "forbidden", AS_NOBODY, NULL},
    {"list_all_as_user", S("{\"op\":\"list\",\"all\":true}\n"), "forbidden",
        AS_NOBODY, NULL},
};

/* data with @ID@ and @PORT@ replaced; NUL bytes kept. */
static char *
expand(const char *data, size_t len, const char *id, int port, size_t *ret_len)
{
	char *out = malloc(len + 128), portbuf[16];
	size_t o = 0;

	ck_assert_ptr_nonnull(out);
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	for (size_t i = 0; i < len;) {
		if (len - i >= 4 && memcmp(data + i, "@ID@", 4) == 0) {
			memcpy(out + o, id, strlen(id));
			o += strlen(id);
			i += 4;
		} else if (len - i >= 6 && memcmp(data + i, "@PORT@", 6) == 0) {
			memcpy(out + o, portbuf, strlen(portbuf));
			o += strlen(portbuf);
			i += 6;
		} else
			out[o++] = data[i++];
	}
	*ret_len = o;
	return out;
}

/* Send, tolerating a daemon that hangs up on us part way. */
static void
send_some(int fd, const char *p, size_t len, enum how how)
{
	while (len > 0) {
		size_t chunk = how == SPLIT ? 1 : len;
		ssize_t n = send(fd, p, chunk, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
		if (how == SPLIT)
			usleep(200);
	}
}

static void
send_with_fds(int fd, const char *p, size_t len)
{
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = cbuf.buf,
	    .msg_controllen = sizeof(cbuf.buf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	int fds[3];

	for (int i = 0; i < 3; i++)
		ck_assert_int_ge(fds[i] = open("/dev/null", O_RDONLY), 0);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(3 * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	ck_assert_int_eq(sendmsg(fd, &msg, MSG_NOSIGNAL), (ssize_t)len);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
}

static void
wait_fd_count(pid_t pid, int want)
{
	int64_t deadline = now_ms() + 2000;
	int n;

	while ((n = proc_fd_count(pid)) != want && now_ms() < deadline)
		usleep(5000);
	ck_assert_msg(
	    n == want, "portd holds %d descriptors, want %d", n, want);
}

/* Compare the replies with e->expect on a root connection. */
static void
check_as_root(const struct bad *e, int fd, pid_t pid, int base_fds, int nexp,
    char exp[][32], bool closes)
{
	for (int i = 0; i < nexp; i++) {
		char *line = harness_recv_line(fd, 3000, NULL, NULL);
		ck_assert_msg(line != NULL, "%s: reply %d missing", e->name, i);
		ck_assert_msg(strcmp(line_code(line), exp[i]) == 0,
		    "%s: reply %d: want %s, got %s", e->name, i, exp[i], line);
		free(line);
	}
	if (closes) {
		ck_assert_msg(wait_closed(fd, 3000), "%s: not closed", e->name);
		return;
	}
	/* Still open and serving this client; kept no fds of ours. */
	json_object *r = harness_call(fd, "{\"op\":\"hello\"}");
	ck_assert_msg(reply_ok(r), "%s: then hello: %s", e->name,
	    json_object_to_json_string(r));
	json_object_put(r);
	if (e->how == FDS)
		wait_fd_count(pid, base_fds + 1);
}

START_TEST(malformed)
{
	const struct bad *e = &table[_i];
	struct daemon_proc d;
	json_object *a, *b, *r;
	char ida[80], idb[80], exp[8][32], *data, *tok, *save = NULL;
	char expect[128];
	size_t len;
	int owner, fd, base_fds, pa, pb, nexp = 0;
	bool closes = false;

	harness_start(&d, (const char *[]){"--pool", "30000-30499",
	                      "--socket-mode", "0666", NULL});
	open_dir(&d);
	owner = harness_connect(d.sock);
	a = harness_call(owner, "{\"op\":\"lease\",\"name\":\"a\"}");
	b = harness_call(owner, "{\"op\":\"lease\",\"proto\":\"udp\"}");
	snprintf(ida, sizeof(ida), "%s", lease_id(a));
	snprintf(idb, sizeof(idb), "%s", lease_id(b));
	pa = lease_port(a, 0);
	pb = lease_port(b, 0);
	json_object_put(a);
	json_object_put(b);
	base_fds = proc_fd_count(d.pid);

	snprintf(expect, sizeof(expect), "%s", e->expect);
	for (tok = strtok_r(expect, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		if (strcmp(tok, "closed") == 0)
			closes = true;
		else
			snprintf(exp[nexp++], sizeof(exp[0]), "%s", tok);
	}
	if (e->gen != NULL) {
		char *raw = e->gen(&len);
		data = expand(raw, len, ida, pa, &len);
		free(raw);
	} else if (e->data != NULL)
		data = expand(e->data, e->len, ida, pa, &len);
	else {
		/* 65537 bytes trickled in, then a '\n' and a valid request. */
		char *raw;
		size_t n;
		raw = gen_fill(
		    &n, "", ' ', PROTO_MAX_LINE + 1, "\n{\"op\":\"hello\"}\n");
		data = raw;
		len = n;
	}

	if (e->how == AS_NOBODY) {
		struct exchange x;
		exchange_as(NOBODY_UID, d.sock, data, len, nexp, 3000,
		    closes ? 3000 : 0, &x);
		ck_assert_msg(
		    x.n == nexp, "%s: %d replies, want %d", e->name, x.n, nexp);
		for (int i = 0; i < nexp; i++)
			ck_assert_msg(
			    strcmp(line_code(x.lines[i]), exp[i]) == 0,
			    "%s: want %s, got %s", e->name, exp[i], x.lines[i]);
		ck_assert(x.closed == closes);
		exchange_free(&x);
	} else {
		fd = harness_connect(d.sock);
		ck_assert_int_ge(fd, 0);
		if (e->how == FDS)
			send_with_fds(fd, data, len);
		else
			send_some(fd, data, len,
			    e->how == SPLIT && len < 4096 ? SPLIT : PLAIN);
		check_as_root(e, fd, d.pid, base_fds, nexp, exp, closes);
		close(fd);
	}
	free(data);

	/* The daemon serves a new client, and nothing else was touched. */
	fd = harness_connect(d.sock);
	ck_assert_int_ge(fd, 0);
	r = harness_call(fd, "{\"op\":\"hello\"}");
	ck_assert_msg(reply_ok(r), "%s: hello afterwards: %s", e->name,
	    json_object_to_json_string(r));
	json_object_put(r);
	close(fd);
	ck_assert_msg(list_has(owner, ida), "%s: lease a is gone", e->name);
	ck_assert_msg(list_has(owner, idb), "%s: lease b is gone", e->name);
	r = harness_call(owner, "{\"op\":\"list\"}");
	for (int i = 0; i < 2; i++) {
		json_object *l =
		    json_object_array_get_idx(reply_get(r, "leases"), i);
		ck_assert_msg(json_object_get_boolean(reply_get(l, "held")),
		    "%s: lease %d no longer held", e->name, i);
		ck_assert_int_eq(reply_int(l, "ttl"), 300);
	}
	json_object_put(r);
	assert_plain_blocked(pa, SOCK_STREAM);
	assert_plain_blocked(pb, SOCK_DGRAM);
	wait_fd_count(d.pid, base_fds);
	close(owner);
	harness_stop(&d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("malformed");
	TCase *tc = tcase_create("malformed");

	tcase_set_timeout(tc, 20);
	tcase_add_loop_test(
	    tc, malformed, 0, (int)(sizeof(table) / sizeof(table[0])));
	suite_add_tcase(s, tc);
	return harness_run(s);
}
