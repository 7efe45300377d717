/*
 * Malformed requests against a real portd (SPEC Guarantee 7): every case
 * of the golden tree tests/cases/invalid (tests/cases/README.md), then the
 * table below of those that need more than one line refused by the codec.
 * Each gets a fresh daemon holding two leases made by another connection;
 * the bad bytes go on their own connection, and afterwards the daemon must
 * still answer, the leases must be listed and their ports still held (a
 * plain bind fails), and the daemon must hold no more descriptors than
 * before. Pool ports: 30000-30499.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cases.h"
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

/*
 * The cases that are not one request line refused by the codec alone
 * (those are the golden tree's, tests/cases/README.md, run by
 * invalid_case below).
 */
static const struct bad table[] = {
    /* Past a limit: built from the limit's constant, or too big to keep. */
    {"oversize_name", NULL, 0, "bad_request", PLAIN, gen_long_name},
    {"id_too_long", NULL, 0, "bad_request", PLAIN, gen_long_id},
    {"lease_id_too_long", NULL, 0, "bad_request", PLAIN, gen_long_lease_id},
    {"many_unknown_fields", NULL, 0, "bad_request", PLAIN, gen_many_fields},
    {"deep_brackets", NULL, 0, "bad_request", PLAIN, gen_brackets},
    {"deep_field", NULL, 0, "bad_request", PLAIN, gen_braces_in_field},

    /* Refused by the daemon, not the codec: its max-ttl (86400). */
    {"ttl_past_max", S("{\"op\":\"lease\",\"ttl\":86401}\n"), "bad_request",
        PLAIN, NULL},

    /* Naming the daemon's own lease or port. */
    {"renew_ttl_zero", S("{\"op\":\"renew\",\"lease\":\"@ID@\",\"ttl\":0}\n"),
        "bad_request", PLAIN, NULL},
    {"release_both", S("{\"op\":\"release\",\"lease\":\"@ID@\",\"port\":1}\n"),
        "bad_request", PLAIN, NULL},
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
	harness_send_upto(
	    fd, p, len, how == SPLIT ? 1 : 0, how == SPLIT ? 200 : 0);
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

/* One exchange, tried against a fresh daemon by try_bad. */
struct attempt {
	const char *name;
	char *data; /* the bytes sent, @ID@ and @PORT@ replaced if ids */
	size_t len;
	bool ids;
	/* Reply codes in order, then "closed" if the daemon must hang up. */
	const char *expect;
	const char *msg; /* a part of the first reply's message, or NULL */
	enum how how;
};

/* A reply line is the code at i of exp, with msg in its message. */
static void
check_reply(const struct attempt *a, int i, const char *line, char exp[][32])
{
	ck_assert_msg(strcmp(line_code(line), exp[i]) == 0,
	    "%s: reply %d: want %s, got %s", a->name, i, exp[i], line);
	if (i == 0 && a->msg != NULL) {
		json_object *o = json_tokener_parse(line);
		const char *m =
		    json_object_get_string(reply_get(o, "error.message"));

		ck_assert_msg(m != NULL && strstr(m, a->msg) != NULL,
		    "%s: reply %s lacks \"%s\"", a->name, line, a->msg);
		json_object_put(o);
	}
}

/* Compare the replies with a->expect on a root connection. */
static void
check_as_root(const struct attempt *a, int fd, pid_t pid, int base_fds,
    int nexp, char exp[][32], bool closes)
{
	for (int i = 0; i < nexp; i++) {
		char *line = harness_recv_line(fd, 3000, NULL, NULL);
		ck_assert_msg(line != NULL, "%s: reply %d missing", a->name, i);
		check_reply(a, i, line, exp);
		free(line);
	}
	if (closes) {
		ck_assert_msg(wait_closed(fd, 3000), "%s: not closed", a->name);
		return;
	}
	/* Still open and serving this client; kept no fds of ours. */
	json_object *r = harness_call(fd, "{\"op\":\"hello\"}");
	ck_assert_msg(reply_ok(r), "%s: then hello: %s", a->name,
	    json_object_to_json_string(r));
	json_object_put(r);
	if (a->how == FDS)
		wait_fd_count(pid, base_fds + 1);
}

static void
try_bad(const struct attempt *a)
{
	struct daemon_proc d;
	json_object *ja, *jb, *r;
	char ida[80], idb[80], exp[8][32], *data, *tok, *save = NULL;
	char expect[128];
	size_t len;
	int owner, fd, base_fds, pa, pb, nexp = 0;
	bool closes = false;

	harness_start(&d, (const char *[]){"--pool", "30000-30499",
	                      "--socket-mode", "0666", NULL});
	open_dir(&d);
	owner = harness_connect(d.sock);
	ja = harness_call(owner, "{\"op\":\"lease\",\"name\":\"a\"}");
	jb = harness_call(owner, "{\"op\":\"lease\",\"proto\":\"udp\"}");
	snprintf(ida, sizeof(ida), "%s", lease_id(ja));
	snprintf(idb, sizeof(idb), "%s", lease_id(jb));
	pa = lease_port(ja, 0);
	pb = lease_port(jb, 0);
	json_object_put(ja);
	json_object_put(jb);
	base_fds = proc_fd_count(d.pid);

	snprintf(expect, sizeof(expect), "%s", a->expect);
	for (tok = strtok_r(expect, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		if (strcmp(tok, "closed") == 0)
			closes = true;
		else {
			ck_assert_int_lt(nexp, 8);
			snprintf(exp[nexp++], sizeof(exp[0]), "%s", tok);
		}
	}
	if (a->ids)
		data = expand(a->data, a->len, ida, pa, &len);
	else {
		len = a->len;
		ck_assert_ptr_nonnull(data = malloc(len));
		memcpy(data, a->data, len);
	}

	if (a->how == AS_NOBODY) {
		struct exchange x;
		exchange_as(NOBODY_UID, d.sock, data, len, nexp, 3000,
		    closes ? 3000 : 0, &x);
		ck_assert_msg(
		    x.n == nexp, "%s: %d replies, want %d", a->name, x.n, nexp);
		for (int i = 0; i < nexp; i++)
			check_reply(a, i, x.lines[i], exp);
		ck_assert(x.closed == closes);
		exchange_free(&x);
	} else {
		fd = harness_connect(d.sock);
		ck_assert_int_ge(fd, 0);
		if (a->how == FDS)
			send_with_fds(fd, data, len);
		else
			send_some(fd, data, len,
			    a->how == SPLIT && len < 4096 ? SPLIT : PLAIN);
		check_as_root(a, fd, d.pid, base_fds, nexp, exp, closes);
		close(fd);
	}
	free(data);

	/* The daemon serves a new client, and nothing else was touched. */
	fd = harness_connect(d.sock);
	ck_assert_int_ge(fd, 0);
	r = harness_call(fd, "{\"op\":\"hello\"}");
	ck_assert_msg(reply_ok(r), "%s: hello afterwards: %s", a->name,
	    json_object_to_json_string(r));
	json_object_put(r);
	close(fd);
	ck_assert_msg(list_has(owner, ida), "%s: lease a is gone", a->name);
	ck_assert_msg(list_has(owner, idb), "%s: lease b is gone", a->name);
	r = harness_call(owner, "{\"op\":\"list\"}");
	for (int i = 0; i < 2; i++) {
		json_object *l =
		    json_object_array_get_idx(reply_get(r, "leases"), i);
		ck_assert_msg(json_object_get_boolean(reply_get(l, "held")),
		    "%s: lease %d no longer held", a->name, i);
		ck_assert_int_eq(reply_int(l, "ttl"), 300);
	}
	json_object_put(r);
	assert_plain_blocked(pa, SOCK_STREAM);
	assert_plain_blocked(pb, SOCK_DGRAM);
	wait_fd_count(d.pid, base_fds);
	close(owner);
	harness_stop(&d);
}

START_TEST(malformed)
{
	const struct bad *e = &table[_i];
	struct attempt a = {
	    .name = e->name, .ids = true, .expect = e->expect, .how = e->how};

	if (e->gen != NULL)
		a.data = e->gen(&a.len);
	else if (e->data != NULL) {
		ck_assert_ptr_nonnull(a.data = malloc(e->len));
		memcpy(a.data, e->data, e->len);
		a.len = e->len;
	} else {
		/* 65537 bytes trickled in, then a '\n' and a valid request. */
		a.data = gen_fill(&a.len, "", ' ', PROTO_MAX_LINE + 1,
		    "\n{\"op\":\"hello\"}\n");
	}
	try_bad(&a);
	free(a.data);
}
END_TEST

/* The golden tree's cases (cases.h), read by main: each line sent as it
 * is, then its '\n'; one reply, the case's code and message part. */
static struct bad_case *bad_cases;
static size_t nbad_cases;

START_TEST(invalid_case)
{
	const struct bad_case *c = &bad_cases[_i];
	struct attempt a = {.name = c->name,
	    .len = c->len + 1,
	    .expect = c->code,
	    .msg = c->msg,
	    .how = PLAIN};

	ck_assert_ptr_nonnull(a.data = malloc(a.len));
	memcpy(a.data, c->input, c->len);
	a.data[c->len] = '\n';
	try_bad(&a);
	free(a.data);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("malformed");
	TCase *tc = tcase_create("malformed");

	nbad_cases = cases_load(PORTD_CASES_DIR, &bad_cases);
	tcase_set_timeout(tc, 20);
	tcase_add_loop_test(tc, invalid_case, 0, (int)nbad_cases);
	tcase_add_loop_test(
	    tc, malformed, 0, (int)(sizeof(table) / sizeof(table[0])));
	suite_add_tcase(s, tc);
	return harness_run(s);
}
