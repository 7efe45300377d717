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
	const char *args[16];
	pid_t pid;
	bool mounted;
};

/* A private mount namespace with a tmpfs of size bytes at e->state.
 * False (after saying why) when this machine does not allow it. */
static bool
env_init(struct env *e, const char *size)
{
	char opts[64];
	int n = 0;

	memset(e, 0, sizeof(*e));
	make_dir(e->dir);
	snprintf(e->state, sizeof(e->state), "%s/state", e->dir);
	snprintf(e->sock, sizeof(e->sock), "%s/portd.sock", e->state);
	snprintf(e->journal, sizeof(e->journal), "%s.journal", e->sock);
	snprintf(e->ps, sizeof(e->ps), "%s/ps.sock", e->dir);
	snprintf(e->fill, sizeof(e->fill), "%s/fill", e->state);
	ck_assert_int_eq(mkdir(e->state, 0700), 0);
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
	e->args[n++] = "--socket";
	e->args[n++] = e->sock;
	e->args[n++] = "--pool";
	e->args[n++] = POOL;
	e->args[n++] = "--portserver-address";
	e->args[n++] = e->ps;
	e->args[n] = NULL;
	return true;
}

static void
env_start(struct env *e)
{
	struct spawn s = {.dir = e->dir, .args = e->args};

	e->pid = spawn_portd(&s);
	if (!harness_wait_ready(e->sock, 5000))
		ck_abort_msg("portd did not start: %s", dir_log(e->dir));
}

/* SIGKILL: the journal must already hold everything acknowledged. */
static void __attribute__((unused)) env_kill(struct env *e)
{
	kill(e->pid, SIGKILL);
	ck_assert_int_ne(harness_wait_exit(e->pid, 5000), -1);
	e->pid = 0;
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

/* Ask the portserver endpoint for a port for our own pid: the number, or 0
 * (refused), or -1 if the connection closed without an answer. */
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
	ck_assert_msg(port == 0, "port %d: %s", port, dir_log(e.dir));
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

int
main(void)
{
	Suite *s = suite_create("journal");
	TCase *full = tcase_create("fulldisk");

	tcase_set_timeout(full, 30);
	tcase_add_test(full, regression_fulldisk_process_lease_uaf);
	suite_add_tcase(s, full);
	return harness_run(s);
}
