/*
 * The journal when its filesystem fails: a full disk (a small tmpfs in a
 * private mount namespace, filled for real), space coming back, and the
 * replies and restarts around them. Nothing acknowledged may be lost,
 * nothing refused may come back, and portd must survive every failure.
 *
 * Needs root (unshare and mount); skipped otherwise. CI runs as root.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "svcmgr.h"

#define POOL "30500-30599"

struct env {
	char dir[64];   /* the test's folder; portd.log lives here */
	char state[96]; /* the tmpfs: socket, journal, filler */
	char sock[128]; /* state/portd.sock */
	char journal[160];
	char ps[96]; /* portserver socket (outside the tmpfs) */
	char fill[128];
	char rules[128]; /* portd-faults' rules file */
	const char *bin; /* NULL: portd */
	const char *args[16];
	pid_t pid;
	bool mounted;
};

/* The test's folder, its state folder in it, and the paths of both. */
static void
env_layout(struct env *e)
{
	memset(e, 0, sizeof(*e));
	make_dir(e->dir);
	snprintf(e->state, sizeof(e->state), "%s/state", e->dir);
	snprintf(e->sock, sizeof(e->sock), "%s/portd.sock", e->state);
	snprintf(e->journal, sizeof(e->journal), "%s.journal", e->sock);
	snprintf(e->ps, sizeof(e->ps), "%s/ps.sock", e->dir);
	ck_assert_int_eq(mkdir(e->state, 0700), 0);
}

/* A private mount namespace with a tmpfs of size bytes at e->state.
 * False (after saying why) when this machine does not allow it. */
static void env_args(struct env *e);

static bool
env_init(struct env *e, const char *size)
{
	char opts[64];

	env_layout(e);
	snprintf(e->fill, sizeof(e->fill), "%s/fill", e->state);
	snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
	if (geteuid() != 0 || unshare(CLONE_NEWNS) == -1 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1 ||
	    mount("tmpfs", e->state, "tmpfs", 0, opts) == -1) {
		fprintf(stderr,
		    "skipped: needs root, unshare -m and tmpfs "
		    "(%s)\n",
		    strerror(errno));
		remove_dir(e->dir);
		return false;
	}
	e->mounted = true;
	env_args(e);
	return true;
}

static void
env_args(struct env *e)
{
	int n = 0;

	e->args[n++] = "--socket";
	e->args[n++] = e->sock;
	e->args[n++] = "--pool";
	e->args[n++] = POOL;
	e->args[n++] = "--portserver-address";
	e->args[n++] = e->ps;
	e->args[n] = NULL;
}

/* The same layout on the ordinary /tmp, for portd-faults: the failures
 * come from its rules file (daemon/fault.h), empty at first. */
static void
env_init_faults(struct env *e)
{
	env_layout(e);
	snprintf(e->rules, sizeof(e->rules), "%s/faults", e->dir);
	env_args(e);
	e->bin = harness_portd_faults_bin;
	setenv("PORTD_FAULTS_FILE", e->rules, 1);
	unsetenv("PORTD_FAULTS");
}

/* Replace the fault rules (a new file: portd sees the change at once). */
static void
set_faults(struct env *e, const char *rules)
{
	char tmp[192];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.new", e->rules);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(
	    write(fd, rules, strlen(rules)), (ssize_t)strlen(rules));
	close(fd);
	ck_assert_int_eq(rename(tmp, e->rules), 0);
}

static void
env_start(struct env *e)
{
	struct spawn s = {.dir = e->dir, .args = e->args, .bin = e->bin};

	e->pid = spawn_portd(&s);
	if (!harness_wait_ready(e->sock, 5000))
		ck_abort_msg("portd did not start: %s", dir_log(e->dir));
}

/* SIGKILL: the journal must already hold everything acknowledged. */
static void
env_kill(struct env *e)
{
	kill(e->pid, SIGKILL);
	ck_assert_int_ne(harness_wait_exit(e->pid, 5000), -1);
	e->pid = 0;
}

/* Kill portd and start it again on its journal. */
static void
env_restart(struct env *e)
{
	env_kill(e);
	env_start(e);
}

static void
env_done(struct env *e)
{
	if (e->pid > 0) {
		int status;
		kill(e->pid, SIGTERM);
		status = harness_wait_exit(e->pid, 5000);
		ck_assert_msg(status != -1 && WIFEXITED(status) &&
		                  WEXITSTATUS(status) == 0,
		    "portd did not exit cleanly (%#x): %s", status,
		    dir_log(e->dir));
		e->pid = 0;
	}
	if (e->mounted)
		umount2(e->state, MNT_DETACH);
	remove_dir(e->dir);
}

/* Whether the daemon is still running (it has not crashed). */
static bool
alive(struct env *e)
{
	int status;

	return waitpid(e->pid, &status, WNOHANG) == 0;
}

static json_object *call(struct env *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One request on a fresh connection; NULL if portd closed it unanswered
 * (it crashed). */
static json_object *
call(struct env *e, const char *fmt, ...)
{
	char req[1024], *line;
	va_list ap;
	json_object *r;
	int c = harness_connect(e->sock);

	if (c == -1)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(req, sizeof(req), fmt, ap);
	va_end(ap);
	strcat(req, "\n");
	harness_send(c, req, strlen(req));
	line = harness_recv_line(c, 5000, NULL, NULL);
	close(c);
	if (line == NULL)
		return NULL;
	r = json_tokener_parse(line);
	free(line);
	ck_assert_ptr_nonnull(r);
	return r;
}

/* Fill the tmpfs to the last byte. */
static void
fill_disk(struct env *e)
{
	static char block[4096];
	int fd = open(e->fill, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	ssize_t n;

	ck_assert_int_ne(fd, -1);
	while ((n = write(fd, block, sizeof(block))) > 0)
		;
	ck_assert_int_eq(errno, ENOSPC);
	/* The last partial block. */
	while (write(fd, block, 1) == 1)
		;
	close(fd);
}

static void
free_disk(struct env *e)
{
	ck_assert_int_eq(unlink(e->fill), 0);
}

/* Ask the portserver endpoint for a port for our own pid: the number, or
 * -1 if the connection closed without an answer (a refusal). */
static int
portserver_ask(struct env *e)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char buf[32];
	int fd, n, got = 0;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", e->ps);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	ck_assert_int_eq(write(fd, buf, (size_t)n), n);
	while (
	    got < (int)sizeof(buf) - 1 &&
	    (n = (int)read(fd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	if (got == 0)
		return -1;
	buf[got] = '\0';
	return atoi(buf);
}

/*
 * A full disk, then a process-scoped lease: the failed journal write ended
 * the half-made lease, which dropped the process reference, and the caller
 * dropped it again (heap-use-after-free in proc_unref; SIGSEGV without
 * ASan). The portserver endpoint had the same pattern.
 */
START_TEST(regression_fulldisk_process_lease_uaf)
{
	struct env e;
	json_object *r;
	int refused = 0, port;

	if (!env_init(&e, "256k"))
		return;
	env_start(&e);
	fill_disk(&e);
	/* The journal's last page still takes a record or two. */
	for (int i = 0; i < 64 && refused == 0; i++) {
		r = call(&e, "{\"op\":\"lease\",\"scope\":\"process\"}");
		ck_assert_msg(r != NULL, "portd died: %s", dir_log(e.dir));
		if (!reply_ok(r)) {
			ck_assert_str_eq(reply_error(r), "internal");
			refused++;
		}
		json_object_put(r);
	}
	ck_assert_int_eq(refused, 1);
	ck_assert_msg(alive(&e), "portd died: %s", dir_log(e.dir));
	r = call(&e, "{\"op\":\"hello\"}");
	ck_assert_msg(r != NULL && reply_ok(r), "%s", dir_log(e.dir));
	json_object_put(r);

	/* The portserver endpoint: its lease is a process lease too. */
	port = portserver_ask(&e);
	ck_assert_msg(port == -1, "port %d: %s", port, dir_log(e.dir));
	ck_assert_msg(alive(&e), "portd died: %s", dir_log(e.dir));
	r = call(&e, "{\"op\":\"hello\"}");
	ck_assert_msg(r != NULL && reply_ok(r), "%s", dir_log(e.dir));
	json_object_put(r);

	/* Space again: both paths work. */
	free_disk(&e);
	port = portserver_ask(&e);
	ck_assert_msg(port > 0, "%s", dir_log(e.dir));
	r = call(&e, "{\"op\":\"lease\",\"scope\":\"process\"}");
	ck_assert_msg(r != NULL && reply_ok(r), "%s", dir_log(e.dir));
	json_object_put(r);
	env_done(&e);
}
END_TEST

/* Whether list shows the lease id. */
static bool
listed(struct env *e, const char *id)
{
	json_object *r = call(e, "{\"op\":\"list\"}");
	bool found;

	ck_assert_msg(r != NULL && reply_ok(r), "%s", dir_log(e->dir));
	found = find_lease(reply_get(r, "leases"), id) != NULL;
	json_object_put(r);
	return found;
}

static int
list_count(struct env *e)
{
	json_object *r = call(e, "{\"op\":\"list\"}");
	int n;

	ck_assert_msg(r != NULL && reply_ok(r), "%s", dir_log(e->dir));
	n = (int)json_object_array_length(reply_get(r, "leases"));
	json_object_put(r);
	return n;
}

/* A ttl lease that must succeed; its id into id. */
static void
lease_into(struct env *e, char *id)
{
	json_object *r = call(e, "{\"op\":\"lease\",\"ttl\":600}");

	ck_assert_msg(r != NULL && reply_ok(r), "%s",
	    r ? json_object_to_json_string(r) : dir_log(e->dir));
	snprintf(id, 32, "%s", lease_id(r));
	json_object_put(r);
}

/* A request that must fail with code; the daemon must live on. */
static void
expect_error(struct env *e, const char *code, const char *req)
{
	json_object *r = call(e, "%s", req);

	ck_assert_msg(r != NULL, "portd died: %s", dir_log(e->dir));
	ck_assert_msg(!reply_ok(r) && strcmp(reply_error(r), code) == 0,
	    "%s: want %s, got %s", req, code, json_object_to_json_string(r));
	json_object_put(r);
	ck_assert_msg(alive(e), "portd died: %s", dir_log(e->dir));
}

/* portd-faults started on a fresh env (no rules yet). */
static void
env_start_faults(struct env *e)
{
	env_init_faults(e);
	env_start(e);
}

/* portd-faults with one lease (its id into id), then the rules set. */
static void
start_one_then_faults(struct env *e, char *id, const char *rules)
{
	env_start_faults(e);
	lease_into(e, id);
	set_faults(e, rules);
}

/* portd's log must show text. */
static void
assert_logged(struct env *e, const char *text)
{
	ck_assert_msg(
	    strstr(dir_log(e->dir), text) != NULL, "%s", dir_log(e->dir));
}

/* A journal write that fails (EIO, no byte written) refuses the lease
 * and loses nothing else: the leases before and after it survive a
 * SIGKILL, the refused one does not come back. */
START_TEST(test_fault_journal_eio)
{
	struct env e;
	char a[32], c[32];

	start_one_then_faults(&e, a, "journal_write:EIO:1");
	expect_error(&e, "internal", "{\"op\":\"lease\",\"ttl\":600}");
	ck_assert_int_eq(list_count(&e), 1);
	lease_into(&e, c);
	env_kill(&e);
	set_faults(&e, "");
	env_start(&e);
	ck_assert(listed(&e, a));
	ck_assert(listed(&e, c));
	env_done(&e);
}
END_TEST

/* bind: EMFILE is resource_exhausted; a busy port is skipped; no port
 * that binds at all is no_ports. Each time the next lease works. */
START_TEST(test_fault_bind)
{
	struct env e;
	char id[32];
	json_object *r;

	env_start_faults(&e);
	set_faults(&e, "bind:EMFILE:1");
	expect_error(&e, "resource_exhausted", "{\"op\":\"lease\"}");
	lease_into(&e, id);
	set_faults(&e, "bind:EADDRINUSE:3");
	r = call(&e, "{\"op\":\"lease\"}");
	ck_assert_msg(r != NULL && reply_ok(r), "%s", dir_log(e.dir));
	json_object_put(r);
	set_faults(&e, "bind:EADDRINUSE:0");
	expect_error(&e, "no_ports", "{\"op\":\"lease\"}");
	set_faults(&e, "");
	lease_into(&e, id);
	env_done(&e);
}
END_TEST

/* pidfd_open for a named pid: EMFILE is resource_exhausted, ESRCH is
 * not_found; a process lease works again afterwards. */
START_TEST(test_fault_pidfd_open)
{
	struct env e;
	char req[128];
	json_object *r;

	env_start_faults(&e);
	snprintf(req, sizeof(req),
	    "{\"op\":\"lease\",\"scope\":\"process\",\"pid\":%d}",
	    (int)getpid());
	set_faults(&e, "pidfd_open:EMFILE:1");
	expect_error(&e, "resource_exhausted", req);
	set_faults(&e, "pidfd_open:ESRCH:1");
	expect_error(&e, "not_found", req);
	r = call(&e, "%s", req);
	ck_assert_msg(r != NULL && reply_ok(r), "%s", dir_log(e.dir));
	json_object_put(r);
	env_done(&e);
}
END_TEST

/* accept on the API socket fails with EMFILE: portd takes a waiting
 * client through its spare descriptor and refuses it with
 * resource_exhausted (or, when none waits, just goes on), and is not left
 * hanging: the client gets an answer and the next one is served. */
START_TEST(test_fault_accept_emfile)
{
	struct env e;
	json_object *r;

	env_start_faults(&e);
	set_faults(&e, "accept:EMFILE:1");
	r = call(&e, "{\"op\":\"hello\"}");
	ck_assert_msg(r != NULL, "no answer at EMFILE: %s", dir_log(e.dir));
	ck_assert_msg(
	    reply_ok(r) || strcmp(reply_error(r), "resource_exhausted") == 0,
	    "%s", json_object_to_json_string(r));
	json_object_put(r);
	r = call(&e, "{\"op\":\"hello\"}");
	ck_assert_msg(r != NULL && reply_ok(r), "%s", dir_log(e.dir));
	json_object_put(r);
	assert_logged(&e, "accept call 1 fails");
	env_done(&e);
}
END_TEST

/* sendmsg: a reply sent in two parts arrives whole, sockets and all; a
 * connection whose send fails is closed and harms no other client. */
START_TEST(test_fault_sendmsg)
{
	struct env e;
	json_object *r;
	char *line;
	int c, fds[8], nfds = 0;

	env_start_faults(&e);
	set_faults(&e, "sendmsg:short:1");
	c = harness_connect(e.sock);
	ck_assert_int_ne(c, -1);
	r = harness_call_fds(c, fds, &nfds, "{\"op\":\"lease\",\"fd\":true}");
	ck_assert_msg(reply_ok(r), "%s", json_object_to_json_string(r));
	ck_assert_int_eq(nfds, 1);
	ck_assert_int_eq(fd_port(fds[0]), lease_port(r, 0));
	close(fds[0]);
	json_object_put(r);
	close(c);

	set_faults(&e, "sendmsg:ECONNRESET:1");
	c = harness_connect(e.sock);
	ck_assert_int_ne(c, -1);
	harness_send(c, "{\"op\":\"hello\"}\n", 15);
	line = harness_recv_line(c, 2000, NULL, NULL);
	ck_assert_msg(line == NULL, "%s", line);
	close(c);
	r = call(&e, "{\"op\":\"hello\"}");
	ck_assert_msg(r != NULL && reply_ok(r), "%s", dir_log(e.dir));
	json_object_put(r);
	env_done(&e);
}
END_TEST

/* A malformed rule stops portd-faults at once, saying why. */
START_TEST(test_fault_bad_rule)
{
	struct env e;
	int status;

	env_init_faults(&e);
	setenv("PORTD_FAULTS", "journal_write:ENOSPACE", 1);
	e.pid = spawn_portd(
	    &(struct spawn){.dir = e.dir, .args = e.args, .bin = e.bin});
	status = harness_wait_exit(e.pid, 5000);
	ck_assert_msg(
	    status != -1 && WIFEXITED(status) && WEXITSTATUS(status) != 0,
	    "%#x", status);
	assert_logged(&e, "unknown error 'ENOSPACE'");
	e.pid = 0;
	unsetenv("PORTD_FAULTS");
	env_done(&e);
}
END_TEST

/* After fill_disk: lease until the journal refuses one (its last page
 * still takes a record or two). The acknowledged ids go to ids[*n..]. */
static void
fill_gap(struct env *e, char ids[][32], int *n)
{
	for (int i = 0; i < 64; i++) {
		json_object *r = call(e, "{\"op\":\"lease\",\"ttl\":600}");

		ck_assert_msg(r != NULL, "portd died: %s", dir_log(e->dir));
		if (!reply_ok(r)) {
			ck_assert_str_eq(reply_error(r), "internal");
			json_object_put(r);
			return;
		}
		snprintf(ids[(*n)++], 32, "%s", lease_id(r));
		json_object_put(r);
	}
	ck_abort_msg("the journal took 64 leases on a full disk");
}

/* A portd on a full disk, and the ids of the n leases it holds. */
struct full {
	struct env e;
	char ids[96][32];
	int n;
};

/* A 256k filesystem, portd on it with one lease in f->ids, then the disk
 * filled and its last gap leased into f->ids too; false (test skipped)
 * when no such filesystem can be made. */
static bool
start_one_then_full(struct full *f)
{
	f->n = 0;
	if (!env_init(&f->e, "256k"))
		return false;
	env_start(&f->e);
	lease_into(&f->e, f->ids[f->n++]);
	fill_disk(&f->e);
	fill_gap(&f->e, f->ids, &f->n);
	return true;
}

/* held of lease id in list, -1 if absent. */
static int
held_of(struct env *e, const char *id)
{
	json_object *r = call(e, "{\"op\":\"list\"}"), *l;
	int held;

	ck_assert_msg(r != NULL && reply_ok(r), "%s", dir_log(e->dir));
	l = find_lease(reply_get(r, "leases"), id);
	held = l ? json_object_get_boolean(reply_get(l, "held")) : -1;
	json_object_put(r);
	return held;
}

/*
 * A release on a full disk replied ok though its record was not written;
 * after a restart the lease was back. Now a release that cannot be
 * recorded is refused and the lease stays; every acknowledged release
 * stays released across SIGKILL and restart.
 */
START_TEST(regression_fulldisk_release_comes_back)
{
	struct env e;
	char ids[96][32];
	bool released[96] = {false};
	int n = 0, before, refused = -1;

	if (!env_init(&e, "256k"))
		return;
	env_start(&e);
	for (int i = 0; i < 40; i++)
		lease_into(&e, ids[n++]);
	before = n;
	fill_disk(&e);
	fill_gap(&e, ids, &n);
	/* Releases are shorter records: the gap takes a few, then none. */
	for (int i = 0; i < before && refused == -1; i++) {
		json_object *r =
		    call(&e, "{\"op\":\"release\",\"lease\":\"%s\"}", ids[i]);
		ck_assert_msg(r != NULL, "portd died: %s", dir_log(e.dir));
		if (reply_ok(r))
			released[i] = true;
		else {
			ck_assert_str_eq(reply_error(r), "internal");
			refused = i;
		}
		json_object_put(r);
	}
	ck_assert_msg(refused != -1, "every release acknowledged on a full "
	                             "disk");
	ck_assert_int_eq(held_of(&e, ids[refused]), 1);
	free_disk(&e);
	env_restart(&e);
	for (int i = 0; i < n; i++)
		ck_assert_msg(listed(&e, ids[i]) == !released[i],
		    "lease %d (%s): released %d", i, ids[i], released[i]);
	env_done(&e);
}
END_TEST

/*
 * A claim on a full disk replied ok (the sockets closed) though its record
 * was not written; after a restart the lease was restored as held. Now
 * the claim is refused and portd keeps holding; once space is back the
 * claim is recorded and survives a restart.
 */
START_TEST(regression_fulldisk_claim_restored_held)
{
	struct full f;
	json_object *r;

	if (!start_one_then_full(&f))
		return;
	r = call(&f.e, "{\"op\":\"claim\",\"lease\":\"%s\"}", f.ids[0]);
	ck_assert_msg(r != NULL, "portd died: %s", dir_log(f.e.dir));
	ck_assert_msg(!reply_ok(r) && strcmp(reply_error(r), "internal") == 0,
	    "claim on a full disk: %s", json_object_to_json_string(r));
	json_object_put(r);
	ck_assert_int_eq(held_of(&f.e, f.ids[0]), 1);
	env_restart(&f.e);
	ck_assert_int_eq(held_of(&f.e, f.ids[0]), 1);

	/* Space again: the claim is recorded and stays. */
	free_disk(&f.e);
	r = call(&f.e, "{\"op\":\"claim\",\"lease\":\"%s\"}", f.ids[0]);
	ck_assert_msg(r != NULL && reply_ok(r), "%s", dir_log(f.e.dir));
	json_object_put(r);
	env_restart(&f.e);
	ck_assert_int_eq(held_of(&f.e, f.ids[0]), 0);
	for (int i = 1; i < f.n; i++)
		ck_assert(listed(&f.e, f.ids[i]));
	env_done(&f.e);
}
END_TEST

/*
 * The write that failed on a full disk left half a record; the next
 * record, written once space was back, was appended onto it and lost at
 * the next start ("line N is corrupt; skipped"). Now the file is cut back
 * to its last whole record.
 */
START_TEST(regression_fulldisk_partial_line_loses_next)
{
	struct full f;

	if (!start_one_then_full(&f))
		return;
	free_disk(&f.e);
	lease_into(&f.e, f.ids[f.n++]);
	lease_into(&f.e, f.ids[f.n++]);
	env_restart(&f.e);
	for (int i = 0; i < f.n; i++)
		ck_assert_msg(listed(&f.e, f.ids[i]), "lease %d lost: %s", i,
		    dir_log(f.e.dir));
	ck_assert_msg(strstr(dir_log(f.e.dir), "corrupt") == NULL &&
	                  strstr(dir_log(f.e.dir), "checksum") == NULL,
	    "%s", dir_log(f.e.dir));
	env_done(&f.e);
}
END_TEST

/* The same break made by fault injection on any filesystem: half a
 * record written, then ENOSPC. */
START_TEST(test_fault_journal_short_write)
{
	struct env e;
	char a[32], c[32];

	start_one_then_faults(
	    &e, a, "journal_write:short:1,journal_write:ENOSPC:1:1");
	expect_error(&e, "internal", "{\"op\":\"lease\",\"ttl\":600}");
	set_faults(&e, "");
	lease_into(&e, c);
	env_restart(&e);
	ck_assert(listed(&e, a));
	ck_assert(listed(&e, c));
	ck_assert_msg(
	    strstr(dir_log(e.dir), "corrupt") == NULL, "%s", dir_log(e.dir));
	env_done(&e);
}
END_TEST

/* A release whose record cannot be written (EIO) is refused, the lease
 * and its port stay held; the next release is recorded. */
START_TEST(test_fault_release_refused)
{
	struct env e;
	char a[32];
	json_object *r;

	start_one_then_faults(&e, a, "journal_write:EIO:1");
	r = call(&e, "{\"op\":\"release\",\"lease\":\"%s\"}", a);
	ck_assert_msg(r != NULL && !reply_ok(r) &&
	                  strcmp(reply_error(r), "internal") == 0,
	    "%s", r ? json_object_to_json_string(r) : dir_log(e.dir));
	json_object_put(r);
	ck_assert_int_eq(held_of(&e, a), 1);
	env_restart(&e);
	ck_assert_int_eq(held_of(&e, a), 1);
	r = call(&e, "{\"op\":\"release\",\"lease\":\"%s\"}", a);
	ck_assert_msg(r != NULL && reply_ok(r), "%s", dir_log(e.dir));
	json_object_put(r);
	env_restart(&e);
	ck_assert(!listed(&e, a));
	env_done(&e);
}
END_TEST

/* Wait up to ms for text in the daemon's log. */
static bool
log_wait(struct env *e, const char *text, int ms)
{
	int64_t end = now_ms() + ms;

	do {
		if (strstr(dir_log(e->dir), text) != NULL)
			return true;
		usleep(20000);
	} while (now_ms() < end);
	return false;
}

/*
 * A session ended while the journal could not be written: the end was
 * lost, and after a restart the lease came back as a process lease of the
 * still-running client. Now the end is owed and written once the journal
 * takes writes again (retried each second).
 */
START_TEST(regression_unrecorded_end_comes_back)
{
	struct env e;
	char s[32];
	json_object *r;
	int c;

	env_start_faults(&e);
	c = harness_connect(e.sock);
	ck_assert_int_ne(c, -1);
	r = harness_call(c, "{\"op\":\"lease\",\"scope\":\"session\"}");
	ck_assert(reply_ok(r));
	snprintf(s, sizeof(s), "%s", lease_id(r));
	json_object_put(r);
	set_faults(&e, "journal_write:ENOSPC:0");
	close(c);
	ck_assert(log_wait(&e, "fails with", 3000));
	ck_assert_int_eq(list_count(&e), 0);
	set_faults(&e, "");
	/* The owed end is retried each second. */
	if (!log_wait(&e, "writes succeed again", 3000))
		fprintf(stderr, "no retry seen in the log\n");
	env_restart(&e);
	ck_assert_msg(!listed(&e, s), "%s", dir_log(e.dir));
	env_done(&e);
}
END_TEST

/* A renewal was never journaled: after a restart the lease expired at its
 * old time. */
START_TEST(regression_renew_lost_on_restart)
{
	struct env e;
	json_object *r;
	char a[32];

	env_init_faults(&e);
	e.bin = NULL;
	env_start(&e);
	r = call(&e, "{\"op\":\"lease\",\"ttl\":1}");
	ck_assert(r != NULL && reply_ok(r));
	snprintf(a, sizeof(a), "%s", lease_id(r));
	json_object_put(r);
	r = call(&e, "{\"op\":\"renew\",\"lease\":\"%s\",\"ttl\":600}", a);
	ck_assert(r != NULL && reply_ok(r));
	json_object_put(r);
	env_kill(&e);
	usleep(1300 * 1000);
	env_start(&e);
	ck_assert_msg(listed(&e, a), "%s", dir_log(e.dir));
	env_done(&e);
}
END_TEST

/* A renewal that cannot be recorded is refused and changes nothing. */
START_TEST(test_fault_renew_refused)
{
	struct env e;
	json_object *r;
	char a[32];
	int64_t exp;

	env_start_faults(&e);
	lease_into(&e, a);
	r = call(&e, "{\"op\":\"list\"}");
	exp = reply_int(
	    json_object_array_get_idx(reply_get(r, "leases"), 0), "expires");
	json_object_put(r);
	set_faults(&e, "journal_write:EIO:1");
	r = call(&e, "{\"op\":\"renew\",\"lease\":\"%s\",\"ttl\":3600}", a);
	ck_assert_msg(r != NULL && !reply_ok(r) &&
	                  strcmp(reply_error(r), "internal") == 0,
	    "%s", r ? json_object_to_json_string(r) : dir_log(e.dir));
	json_object_put(r);
	r = call(&e, "{\"op\":\"list\"}");
	ck_assert_int_eq(
	    reply_int(json_object_array_get_idx(reply_get(r, "leases"), 0),
	        "expires"),
	    exp);
	json_object_put(r);
	env_done(&e);
}
END_TEST

/* The whole journal file (static buffer). */
static const char *
journal_text(struct env *e)
{
	static char buf[65536];
	int fd = open(e->journal, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	ck_assert_int_ne(fd, -1);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void
journal_write_text(struct env *e, const char *text)
{
	int fd = open(e->journal, O_WRONLY | O_TRUNC | O_CLOEXEC);

	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/*
 * A record with one digit changed was restored with the changed value
 * (there was no checksum). Now it fails its checksum and is refused; the
 * other records are restored.
 */
START_TEST(regression_journal_changed_digit_restored)
{
	struct env e;
	char a[32], b[32], text[65536], *p;

	env_init_faults(&e);
	e.bin = NULL;
	env_start(&e);
	lease_into(&e, a);
	lease_into(&e, b);
	env_kill(&e);
	snprintf(text, sizeof(text), "%s", journal_text(&e));
	ck_assert_msg(strncmp(text, "{\"portd_journal\":2,\"crc\":\"", 26) == 0,
	    "%s", text);
	/* In a's record: its ttl 600 becomes 900. */
	p = strstr(text, a);
	ck_assert_ptr_nonnull(p);
	p = strstr(p, "\"ttl\":600");
	ck_assert_ptr_nonnull(p);
	p[6] = '9';
	journal_write_text(&e, text);
	env_start(&e);
	ck_assert(!listed(&e, a));
	ck_assert(listed(&e, b));
	assert_logged(&e, "fails its checksum");
	env_done(&e);
}
END_TEST

/* A version 1 journal (no checksums) is read as before and rewritten as
 * version 2. */
START_TEST(test_journal_v1_upgraded)
{
	struct env e;
	char a[32], text[65536], v1[65536], *p, *q;
	size_t n = 0;

	env_init_faults(&e);
	e.bin = NULL;
	env_start(&e);
	lease_into(&e, a);
	env_kill(&e);
	/* The same records as version 1 wrote them: no checksums. */
	snprintf(text, sizeof(text), "%s", journal_text(&e));
	n = (size_t)snprintf(v1, sizeof(v1), "{\"portd_journal\":1}\n");
	for (p = strchr(text, '\n') + 1; (q = strchr(p, '\n')) != NULL;
	     p = q + 1) {
		char *c = strstr(p, ",\"crc\":\"");
		ck_assert(c != NULL && c < q);
		n += (size_t)snprintf(
		    v1 + n, sizeof(v1) - n, "%.*s}\n", (int)(c - p), p);
	}
	journal_write_text(&e, v1);
	env_start(&e);
	ck_assert_msg(listed(&e, a), "%s", dir_log(e.dir));
	ck_assert(strncmp(journal_text(&e), "{\"portd_journal\":2,", 19) == 0);
	env_done(&e);
}
END_TEST

/*
 * The journal's rewrite target could not be created: portd logged
 * "running without a journal" while it went on appending to the old
 * file. Now it says what it does, and does it: the leases survive.
 */
START_TEST(regression_journal_rewrite_target_lie)
{
	struct env e;
	char a[32], dir[200];

	env_init_faults(&e);
	e.bin = NULL;
	snprintf(dir, sizeof(dir), "%s.new", e.journal);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	env_start(&e);
	lease_into(&e, a);
	ck_assert_msg(
	    strstr(dir_log(e.dir), "running without a journal") == NULL &&
	        strstr(dir_log(e.dir), "appending to it as it is"),
	    "%s", dir_log(e.dir));
	env_restart(&e);
	ck_assert(listed(&e, a));
	rmdir(dir);
	env_done(&e);
}
END_TEST

/*
 * A storm across full disks: leases and releases while the state tmpfs
 * fills and empties, SIGKILL, restart (on a full disk or not), five
 * times. Every acknowledged lease must be back, every acknowledged
 * release must stay released. The counts go to stderr for
 * docs/reliability.md.
 */
START_TEST(test_fulldisk_storm)
{
	static char alive[256][32];
	struct env e;
	int nalive = 0, leased = 0, released = 0, refused = 0, lost = 0,
	    back = 0;
	char gone[512][32];
	int ngone = 0;
	bool full = false;
	unsigned rnd = 12345;

	if (!env_init(&e, "256k"))
		return;
	for (int round = 0; round < 5; round++) {
		env_start(&e);
		for (int i = 0; i < 80; i++) {
			json_object *r;

			rnd = rnd * 1103515245u + 12345u;
			if (i % 20 == 0) {
				if (full)
					free_disk(&e);
				else
					fill_disk(&e);
				full = !full;
			}
			if (nalive < 40 || (nalive < 90 && (rnd >> 16) % 2)) {
				r = call(&e, "{\"op\":\"lease\",\"ttl\":600}");
				ck_assert_msg(r != NULL, "%s", dir_log(e.dir));
				if (reply_ok(r)) {
					snprintf(alive[nalive++], 32, "%s",
					    lease_id(r));
					leased++;
				} else {
					ck_assert_str_eq(
					    reply_error(r), "internal");
					refused++;
				}
			} else {
				int k = (int)((rnd >> 8) % (unsigned)nalive);
				r = call(&e,
				    "{\"op\":\"release\",\"lease\":\"%s\"}",
				    alive[k]);
				ck_assert_msg(r != NULL, "%s", dir_log(e.dir));
				if (reply_ok(r)) {
					if (ngone < 512)
						snprintf(gone[ngone++], 32,
						    "%s", alive[k]);
					memcpy(alive[k], alive[--nalive], 32);
					released++;
				} else {
					ck_assert_str_eq(
					    reply_error(r), "internal");
					refused++;
				}
			}
			json_object_put(r);
		}
		env_kill(&e);
		if (round % 2 == 1 && full) {
			free_disk(&e);
			full = false;
		}
		env_start(&e);
		for (int i = 0; i < nalive; i++)
			lost += !listed(&e, alive[i]);
		for (int i = 0; i < ngone; i++)
			back += listed(&e, gone[i]);
		env_kill(&e);
	}
	fprintf(stderr,
	    "full-disk storm: %d leases and %d releases acknowledged, %d "
	    "refused, 5 SIGKILLs: %d lost, %d released came back\n",
	    leased, released, refused, lost, back);
	ck_assert_int_eq(lost, 0);
	ck_assert_int_eq(back, 0);
	ck_assert_int_gt(refused, 0);
	env_done(&e);
}
END_TEST

/*
 * pidfd_open failing with EMFILE while a process lease was restored was
 * taken for "its owner is gone": the lease was dropped and the rewrite
 * after the restore lost it for good, though its process still ran. Now
 * portd stops before rewriting anything, and the next start restores it.
 */
START_TEST(regression_restore_pidfd_emfile_drops_lease)
{
	struct env e;
	char req[128], id[32];
	json_object *r;
	int status;

	env_start_faults(&e);
	snprintf(req, sizeof(req),
	    "{\"op\":\"lease\",\"scope\":\"process\",\"pid\":%d}",
	    (int)getpid());
	r = call(&e, "%s", req);
	ck_assert_msg(r != NULL && reply_ok(r), "%s", dir_log(e.dir));
	snprintf(id, sizeof(id), "%s", lease_id(r));
	json_object_put(r);
	env_kill(&e);

	setenv("PORTD_FAULTS", "pidfd_open:EMFILE:1", 1);
	e.pid = spawn_portd(
	    &(struct spawn){.dir = e.dir, .args = e.args, .bin = e.bin});
	unsetenv("PORTD_FAULTS");
	status = harness_wait_exit(e.pid, 3000);
	if (status == -1)
		env_kill(&e);
	else {
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1,
		    "%#x", status);
		e.pid = 0;
	}
	env_start(&e);
	ck_assert_msg(listed(&e, id), "%s", dir_log(e.dir));
	env_done(&e);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("journal");
	TCase *full = tcase_create("fulldisk");
	TCase *faults = tcase_create("faults");

	tcase_set_timeout(full, 30);
	tcase_add_test(full, regression_fulldisk_process_lease_uaf);
	tcase_add_test(full, regression_fulldisk_release_comes_back);
	tcase_add_test(full, regression_fulldisk_claim_restored_held);
	tcase_add_test(full, regression_fulldisk_partial_line_loses_next);
	tcase_add_test(full, test_fulldisk_storm);
	suite_add_tcase(s, full);
	tcase_set_timeout(faults, 30);
	tcase_add_test(faults, test_fault_journal_eio);
	tcase_add_test(faults, test_fault_bind);
	tcase_add_test(faults, test_fault_pidfd_open);
	tcase_add_test(faults, test_fault_accept_emfile);
	tcase_add_test(faults, test_fault_sendmsg);
	tcase_add_test(faults, test_fault_bad_rule);
	tcase_add_test(faults, test_fault_journal_short_write);
	tcase_add_test(faults, test_fault_release_refused);
	tcase_add_test(faults, test_fault_renew_refused);
	tcase_add_test(faults, regression_unrecorded_end_comes_back);
	tcase_add_test(faults, regression_renew_lost_on_restart);
	tcase_add_test(faults, regression_journal_changed_digit_restored);
	tcase_add_test(faults, test_journal_v1_upgraded);
	tcase_add_test(faults, regression_journal_rewrite_target_lie);
	tcase_add_test(faults, regression_restore_pidfd_emfile_drops_lease);
	suite_add_tcase(s, faults);
	return harness_run(s);
}
