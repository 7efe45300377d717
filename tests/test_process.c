/*
 * Process scope (guarantee 4): a lease that lives as long as a process,
 * tracked with a pidfd. It ends within milliseconds of the exit, one
 * pidfd serves all leases of a process, a dead connector or another
 * user's pid cannot own a lease, a restart does not tie a lease to a
 * different process with the same pid, and portpicker's portserver
 * protocol gets the same leases.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

#include "handoff.h"
#include "integ.h"
#include "proto.h"

#define POOL    "25300-25399"
#define POOL_LO 25300
#define POOL_HI 25399
#define NOBODY  65534

static void
write_int(int fd, int v)
{
	ck_assert_int_eq(write(fd, &v, sizeof(v)), (ssize_t)sizeof(v));
}

static int
read_int(int fd)
{
	int v = 0;

	ck_assert_int_eq(read(fd, &v, sizeof(v)), (ssize_t)sizeof(v));
	return v;
}

/* A child that sleeps until killed; its pid. */
static pid_t
sleeper(void)
{
	pid_t pid = fork();

	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

static void
reap(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
}

static void
become_nobody(void)
{
	if (become_uid(NOBODY) == -1)
		_exit(100);
}

/* Start the daemon and open its socket and folder to every user. */
static void
start_open(struct daemon_proc *d, const char *const *extra)
{
	const char *args[16] = {"--pool", POOL, "--socket-mode", "0666"};
	int n = 4;

	for (int i = 0; extra != NULL && extra[i] != NULL; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	harness_start(d, args);
	open_dir(d);
}

/*
 * The owner exits: within 100 ms the port binds again and the lease is
 * no longer listed. The owner closed its connection long before, so it
 * is the process, not the session, that ends the lease.
 */
START_TEST(owner_exit_ends_lease)
{
	struct daemon_proc d;
	int up[2], conn, port, tries = 0;
	int64_t t0, took;
	pid_t child;

	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	ck_assert_int_eq(pipe(up), 0);
	child = fork();
	ck_assert_int_ne(child, -1);
	if (child == 0) {
		int c = harness_connect(d.sock);
		json_object *r = harness_call(c,
		    "{\"op\":\"lease\",\"scope\":\"process\",\"hold\":"
		    "\"exclusive\"}");
		close(c);
		write_int(up[1], reply_ok(r) ? lease_port(r, 0) : -1);
		for (;;)
			pause();
	}
	port = read_int(up[0]);
	ck_assert_int_gt(port, 0);
	conn = harness_connect(d.sock);
	ck_assert(hb_listed(conn, port));
	ck_assert_int_eq(
	    hb_bind("0.0.0.0", false, SOCK_STREAM, port, false), EADDRINUSE);

	kill(child, SIGKILL);
	t0 = now_ms();
	while (hb_bind("0.0.0.0", false, SOCK_STREAM, port, false) != 0 ||
	       hb_listed(conn, port)) {
		ck_assert_msg(now_ms() - t0 < 1000, "lease outlived its owner");
		usleep(5000);
		tries++;
	}
	took = now_ms() - t0;
	ck_assert_msg(
	    took < 100, "lease ended %lld ms after the exit", (long long)took);
	reap(child);
	close(conn);
	harness_stop(&d);
}
END_TEST

/* Many leases of one process share one pidfd in the daemon. */
START_TEST(one_pidfd_per_process)
{
	struct daemon_proc d;
	json_object *r;
	int conn, fds0, up[2], go[2];
	pid_t child;

	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	conn = harness_connect(d.sock);
	json_object_put(harness_call(conn, "{\"op\":\"hello\"}"));
	ck_assert_int_eq(hb_pidfd_count(d.pid), 0);
	fds0 = hb_fd_count(d.pid); /* accepted: conn counted */
	for (int i = 0; i < 5; i++) {
		r = harness_call(
		    conn, "{\"op\":\"lease\",\"scope\":\"process\"}");
		ck_assert_msg(reply_ok(r), "%s", json_object_to_json_string(r));
		json_object_put(r);
	}
	/* 5 held sockets, their 5 host-wide markers, and 1 pidfd, not 5. */
	ck_assert_int_eq(hb_pidfd_count(d.pid), 1);
	ck_assert_int_eq(hb_fd_count(d.pid), fds0 + 5 + 5 + 1);

	/* A second process: a second pidfd, gone when it exits. */
	ck_assert_int_eq(pipe(up), 0);
	ck_assert_int_eq(pipe(go), 0);
	child = fork();
	ck_assert_int_ne(child, -1);
	if (child == 0) {
		int c = harness_connect(d.sock), ok = 1;
		for (int i = 0; i < 3; i++) {
			json_object *x = harness_call(
			    c, "{\"op\":\"lease\",\"scope\":\"process\"}");
			ok &= reply_ok(x);
		}
		write_int(up[1], ok);
		read_int(go[0]);
		_exit(0);
	}
	ck_assert_int_eq(read_int(up[0]), 1);
	ck_assert_int_eq(hb_pidfd_count(d.pid), 2);
	write_int(go[1], 1);
	ck_assert_int_eq(waitpid(child, NULL, 0), child);
	ck_assert_int_eq(
	    hb_fd_count_wait(d.pid, fds0 + 10 + 1, 1000), fds0 + 10 + 1);
	ck_assert_int_eq(hb_pidfd_count(d.pid), 1);
	close(conn);
	harness_stop(&d);
}
END_TEST

/*
 * A client connects, forks, and the connecting parent exits (reaped, or
 * still a zombie): the child, using the inherited connection, asks for a
 * lease of "the peer's own process". SO_PEERCRED names the dead parent,
 * whose pid may by now belong to anyone, so the daemon must refuse. The
 * child can name itself with "pid" and that works.
 */
START_TEST(fork_then_exit)
{
	bool zombie = _i == 1;
	struct daemon_proc d;
	int ab[2], res[2], go[2], conn, port, code, pid;
	pid_t a, b;

	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	ck_assert_int_eq(pipe(ab), 0);
	ck_assert_int_eq(pipe(res), 0);
	ck_assert_int_eq(pipe(go), 0);
	a = fork();
	ck_assert_int_ne(a, -1);
	if (a == 0) {
		int c = harness_connect(d.sock);
		if (fork() == 0) {
			json_object *r;
			char line[64];

			/* Wait until the parent has gone (and maybe been
			 * reaped). */
			read_int(ab[0]);
			r = harness_call(
			    c, "{\"op\":\"lease\",\"scope\":\"process\"}");
			write_int(res[1], reply_ok(r)
			                      ? 0
			                      : (int)proto_errcode_from_string(
			                            reply_error(r)));
			json_object_put(r);
			snprintf(line, sizeof(line),
			    "{\"op\":\"lease\",\"scope\":\"process\","
			    "\"pid\":%d}",
			    (int)getpid());
			r = harness_call(c, "%s", line);
			write_int(res[1], reply_ok(r) ? lease_port(r, 0) : -1);
			write_int(res[1],
			    reply_ok(r) ? (int)reply_int(r, "lease.owner.pid")
			                : -1);
			close(c);
			read_int(go[0]);
			_exit(0);
		}
		_exit(0);
	}
	/* a is gone: a zombie until reaped. */
	for (;;) {
		char path[64];
		FILE *f;
		char state = 0;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)a);
		if ((f = fopen(path, "re")) != NULL) {
			if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
				state = 0;
			fclose(f);
		}
		if (state == 'Z')
			break;
		usleep(1000);
	}
	if (!zombie)
		ck_assert_int_eq(waitpid(a, NULL, 0), a);
	write_int(ab[1], 1);
	code = read_int(res[0]);
	ck_assert_msg(code != 0, "a lease was tied to the dead connector");
	ck_assert_str_eq(
	    proto_errcode_to_string((enum proto_errcode)code), "not_found");
	port = read_int(res[0]);
	pid = read_int(res[0]);
	ck_assert_int_gt(port, 0);
	/* b is our child now (subreaper): find it by the owner pid. */
	b = pid;
	ck_assert_int_ne(b, a);
	conn = harness_connect(d.sock);
	ck_assert(hb_listed(conn, port));
	write_int(go[1], 1);
	ck_assert_int_eq(waitpid(b, NULL, 0), b);
	if (zombie)
		ck_assert_int_eq(waitpid(a, NULL, 0), a);
	for (int64_t t0 = now_ms(); hb_listed(conn, port);) {
		ck_assert_msg(now_ms() - t0 < 1000, "lease outlived b");
		usleep(5000);
	}
	close(conn);
	harness_stop(&d);
}
END_TEST

/*
 * Another user may name only its own processes: root's pid is forbidden,
 * pid 0 and 1 are never owners, its own pid is fine.
 */
START_TEST(other_uid_pid_refused)
{
	static const struct {
		const char *pid; /* "root": a root process; "self" */
		const char *want;
	} cases[] = {
	    {"root", "forbidden"},
	    {"1", "bad_request"},
	    {"0", "bad_request"},
	    {"-5", "bad_request"},
	    {"self", NULL},
	};
	struct daemon_proc d;
	pid_t root_pid, child;
	int st;

	start_open(&d, NULL);
	root_pid = sleeper();
	child = fork();
	ck_assert_int_ne(child, -1);
	if (child == 0) {
		int c;

		become_nobody();
		c = harness_connect(d.sock);
		if (c == -1)
			_exit(101);
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			char pid[32];
			json_object *r;

			if (strcmp(cases[i].pid, "root") == 0)
				snprintf(pid, sizeof(pid), "%d", (int)root_pid);
			else if (strcmp(cases[i].pid, "self") == 0)
				snprintf(pid, sizeof(pid), "%d", (int)getpid());
			else
				snprintf(pid, sizeof(pid), "%s", cases[i].pid);
			r = harness_call(c,
			    "{\"op\":\"lease\",\"scope\":\"process\",\"pid\":%"
			    "s}",
			    pid);
			if (cases[i].want == NULL
			        ? !reply_ok(r) ||
			              reply_int(r, "lease.owner.uid") != NOBODY
			        : reply_error(r) == NULL ||
			              strcmp(reply_error(r), cases[i].want) !=
			                  0) {
				fprintf(stderr, "pid %s: %s\n", pid,
				    json_object_to_json_string(r));
				_exit(1 + (int)i);
			}
			json_object_put(r);
		}
		_exit(0);
	}
	ck_assert_int_eq(waitpid(child, &st, 0), child);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "case %d failed (status %#x)", WEXITSTATUS(st) - 1, st);
	reap(root_pid);
	harness_stop(&d);
}
END_TEST

/* Move the recorded start time of lease id's owner in the journal: what
 * a record looks like when its pid now belongs to another process. */
static void
journal_shift_start(const char *path, const char *id)
{
	char *buf, *out, *line, *save = NULL;
	size_t olen = 0;
	FILE *f = fopen(path, "re");
	long size;
	int hits = 0;

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)size + 1);
	out = calloc(1, (size_t)size * 2 + 64);
	ck_assert_int_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		json_object *o = json_tokener_parse(line);
		json_object *put = reply_get(o, "put");
		const char *s = line;

		if (put != NULL && strcmp(reply_str(put, "id"), id) == 0) {
			int64_t start = reply_int(o, "start");
			json_object_object_add(
			    o, "start", json_object_new_int64(start + 100));
			s = json_object_to_json_string_ext(
			    o, JSON_C_TO_STRING_PLAIN);
			hits++;
		}
		olen += (size_t)sprintf(out + olen, "%s\n", s);
		json_object_put(o);
	}
	ck_assert_int_gt(hits, 0);
	f = fopen(path, "we");
	ck_assert_int_eq(fwrite(out, 1, olen, f), olen);
	fclose(f);
	free(buf);
	free(out);
}

/*
 * Three process leases, portd SIGKILLed: owner 1 exits while portd is
 * down, owner 2 lives but its journal record carries another start time
 * (its pid reused, as far as portd can tell), owner 3 lives. Only owner
 * 3's lease comes back, holds its port, and ends with owner 3.
 */
START_TEST(restart_does_not_adopt_reused_pid)
{
	const char *args[] = {"--pool", POOL, NULL};
	struct daemon_proc d;
	pid_t own[3];
	int port[3], conn;
	char id[3][PROTO_MAX_ID + 1], journal[256];
	json_object *r;

	harness_start(&d, args);
	conn = harness_connect(d.sock);
	for (int i = 0; i < 3; i++) {
		own[i] = sleeper();
		r = harness_call(conn,
		    "{\"op\":\"lease\",\"scope\":\"process\",\"pid\":%d,"
		    "\"hold\":\"exclusive\"}",
		    (int)own[i]);
		port[i] = lease_port(r, 0);
		snprintf(id[i], sizeof(id[i]), "%s", lease_id(r));
		json_object_put(r);
	}
	close(conn);
	harness_kill(&d, SIGKILL);
	reap(own[0]);
	snprintf(journal, sizeof(journal), "%s.journal", d.sock);
	journal_shift_start(journal, id[1]);

	harness_restart(&d, args);
	conn = harness_connect(d.sock);
	ck_assert_msg(!hb_listed(conn, port[0]), "dead owner's lease restored");
	ck_assert_msg(!hb_listed(conn, port[1]),
	    "lease re-attached to a process with another start time");
	ck_assert_msg(hb_listed(conn, port[2]), "live owner's lease lost: %s",
	    harness_log(&d));
	ck_assert_int_eq(
	    hb_bind("0.0.0.0", false, SOCK_STREAM, port[0], false), 0);
	ck_assert_int_eq(
	    hb_bind("0.0.0.0", false, SOCK_STREAM, port[1], false), 0);
	ck_assert_int_eq(
	    hb_bind("0.0.0.0", false, SOCK_STREAM, port[2], false), EADDRINUSE);
	reap(own[1]);
	reap(own[2]);
	for (int64_t t0 = now_ms(); hb_listed(conn, port[2]);) {
		ck_assert_msg(now_ms() - t0 < 1000, "restored lease outlived "
		                                    "its owner");
		usleep(5000);
	}
	close(conn);
	harness_stop(&d);
}
END_TEST

static void
portserver_addr(char *buf, size_t len)
{
	snprintf(buf, len, "@portd-test-%d", (int)getpid());
}

static const char picker_py[] =
    "import os, socket, sys, portpicker\n"
    "p = portpicker.pick_unused_port()\n"
    "t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)\n"
    "t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n"
    "t.bind(('::', p)); t.listen()\n"
    "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "u.bind(('0.0.0.0', p))\n"
    "print(p, os.getpid(), flush=True)\n"
    "sys.stdin.read()\n";

/*
 * portpicker with PORTSERVER_ADDRESS: a pool port, bound by the python
 * process itself without SO_REUSEADDR (the lease is claimed), listed as
 * a process lease of that process until it exits.
 */
START_TEST(portpicker_gets_process_lease)
{
	struct daemon_proc d;
	char addr[64], line[128] = {0}, *p = line;
	int in[2], out[2], conn, port = 0, pypid = 0;
	json_object *r, *l;
	pid_t py;
	FILE *f;

	portserver_addr(addr, sizeof(addr));
	harness_start(&d, (const char *[]){"--pool", POOL,
	                      "--portserver-address", addr, NULL});
	ck_assert_int_eq(pipe(in), 0);
	ck_assert_int_eq(pipe(out), 0);
	py = fork();
	ck_assert_int_ne(py, -1);
	if (py == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		setenv("PORTSERVER_ADDRESS", addr, 1);
		execl("/usr/bin/python3", "python3", "-c", picker_py,
		    (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	f = fdopen(out[0], "r");
	ck_assert_msg(fgets(line, sizeof(line), f) != NULL,
	    "python printed nothing (it could not bind?)");
	ck_assert_int_eq(sscanf(p, "%d %d", &port, &pypid), 2);
	ck_assert_int_eq(pypid, py);
	ck_assert_msg(port >= POOL_LO && port <= POOL_HI,
	    "port %d not from portd's pool", port);

	conn = harness_connect(d.sock);
	r = harness_call(conn, "{\"op\":\"list\"}");
	l = hb_lease_on_port(r, port);
	ck_assert_msg(l != NULL, "no lease for %d", port);
	ck_assert_str_eq(reply_str(l, "scope"), "process");
	ck_assert_str_eq(reply_str(l, "proto"), "both");
	ck_assert_int_eq(reply_int(l, "owner.pid"), py);
	ck_assert(!json_object_get_boolean(reply_get(l, "held")));
	json_object_put(r);

	close(in[1]); /* python reads EOF and exits */
	ck_assert_int_eq(waitpid(py, NULL, 0), py);
	for (int64_t t0 = now_ms(); hb_listed(conn, port);) {
		ck_assert_msg(now_ms() - t0 < 1000, "lease outlived python");
		usleep(5000);
	}
	fclose(f);
	close(conn);
	harness_stop(&d);
}
END_TEST

/* Ask the portserver at addr for a port for pid: the line written at
 * once, or, with pause_ms, after a pause and in two pieces a pause apart
 * (a slow client). The port, or -1 for a connection closed unanswered. */
static int
portserver_ask_slowly(const char *addr, pid_t pid, int pause_ms)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	size_t n = strlen(addr);
	char buf[32];
	ssize_t k, half;
	int fd;

	memcpy(sun.sun_path, addr, n);
	sun.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 ||
	    connect(fd, (struct sockaddr *)&sun,
	        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) == -1)
		return -1;
	k = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	half = pause_ms > 0 ? k / 2 : k;
	usleep((useconds_t)pause_ms * 1000);
	if (write(fd, buf, (size_t)half) != half)
		return -1;
	usleep((useconds_t)pause_ms * 1000);
	if (half < k && write(fd, buf + half, (size_t)(k - half)) != k - half)
		return -1;
	k = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (k <= 0 || buf[k - 1] != '\n')
		return -1;
	buf[k] = '\0';
	return atoi(buf);
}

static int
portserver_ask(const char *addr, pid_t pid)
{
	return portserver_ask_slowly(addr, pid, 0);
}

/*
 * A line that is there when portd accepts is answered at once, without
 * the connection entering the event loop; one that comes later, or in
 * pieces, through the loop; a connection that sends nothing is closed
 * unanswered at the request deadline. All three, on one daemon.
 */
START_TEST(portserver_line_now_later_or_never)
{
	struct daemon_proc d;
	char addr[64];
	int fd, p1, p2;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int64_t t;

	portserver_addr(addr, sizeof(addr));
	start_open(&d, (const char *[]){"--portserver-address", addr,
	                   "--request-timeout", "1s", NULL});
	p1 = portserver_ask(addr, getpid());
	ck_assert_msg(p1 > 0, "a line at once: %d", p1);
	p2 = portserver_ask_slowly(addr, getpid(), 150);
	ck_assert_msg(p2 > 0 && p2 != p1, "a line in two pieces: %d", p2);

	memcpy(sun.sun_path, addr, strlen(addr));
	sun.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(
	    connect(fd, (struct sockaddr *)&sun,
	        (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	                    strlen(addr))),
	    0);
	t = now_ms();
	{
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		char c;
		ck_assert_msg(poll(&pfd, 1, 5000) == 1 && read(fd, &c, 1) == 0,
		    "a silent client was not closed unanswered");
	}
	ck_assert_msg(now_ms() - t >= 800,
	    "closed after %lld ms, before its "
	    "deadline",
	    (long long)(now_ms() - t));
	close(fd);
	harness_stop(&d);
}
END_TEST

/* The journal lines of d that hold needle. */
static int
journal_lines_with(struct daemon_proc *d, const char *needle)
{
	char path[192], line[1024];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s.journal", d->sock);
	ck_assert_msg(
	    (f = fopen(path, "r")) != NULL, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/*
 * A portserver lease is claimed as it is made: one journal record, which
 * says so (not a held put and then the claim's), written before the
 * answer. A restart after SIGKILL restores it claimed: listed, not held,
 * and its port free for the owner to bind.
 */
START_TEST(portserver_lease_recorded_once_claimed)
{
	const char *args[] = {"--pool", POOL, "--socket-mode", "0666",
	    "--portserver-address", NULL, NULL};
	struct daemon_proc d;
	char addr[64], put[64];
	json_object *r, *l;
	int p, conn;

	portserver_addr(addr, sizeof(addr));
	args[5] = addr;
	start_open(&d, args + 4);
	p = portserver_ask(addr, getpid());
	ck_assert_msg(p > 0, "no port: %s", harness_log(&d));
	snprintf(put, sizeof(put), "\"ports\":[%d],", p);
	ck_assert_int_eq(journal_lines_with(&d, put), 1);
	ck_assert_int_eq(journal_lines_with(&d, "\"state\":\"claimed\""), 1);
	ck_assert_int_eq(journal_lines_with(&d, "\"held\":true"), 0);

	harness_kill(&d, SIGKILL);
	harness_restart(&d, args);
	conn = harness_connect(d.sock);
	r = harness_call(conn, "{\"op\":\"list\"}");
	l = hb_lease_on_port(r, p);
	ck_assert_msg(l != NULL, "lease on %d not restored: %s", p,
	    json_object_to_json_string(r));
	ck_assert_str_eq(reply_str(l, "state"), "claimed");
	ck_assert(!json_object_get_boolean(reply_get(l, "held")));
	ck_assert_int_eq(hb_bind("0.0.0.0", false, SOCK_STREAM, p, false), 0);
	ck_assert_int_eq(hb_bind("0.0.0.0", false, SOCK_DGRAM, p, false), 0);
	json_object_put(r);
	close(conn);
	harness_stop(&d);
}
END_TEST

/* Through the portserver, another uid's pid gets the connection closed
 * with nothing written (-1 here), as Google's portserver answers a
 * refusal; one's own pid a port. */
START_TEST(portserver_other_uid_gets_nothing)
{
	struct daemon_proc d;
	char addr[64];
	pid_t root_pid, child;
	int st;

	portserver_addr(addr, sizeof(addr));
	start_open(&d, (const char *[]){"--portserver-address", addr, NULL});
	root_pid = sleeper();
	child = fork();
	ck_assert_int_ne(child, -1);
	if (child == 0) {
		int p;

		become_nobody();
		if ((p = portserver_ask(addr, root_pid)) != -1) {
			fprintf(stderr, "root's pid: %d\n", p);
			_exit(1);
		}
		if ((p = portserver_ask(addr, 1)) != -1)
			_exit(2);
		p = portserver_ask(addr, getpid());
		if (p < POOL_LO || p > POOL_HI) {
			fprintf(stderr, "own pid: %d\n", p);
			_exit(3);
		}
		_exit(0);
	}
	ck_assert_int_eq(waitpid(child, &st, 0), child);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
	reap(root_pid);
	harness_stop(&d);
}
END_TEST

/* portserver_ask as uid 65534, from a child. */
static int
portserver_ask_as_nobody(const char *addr, pid_t pid)
{
	int out[2], p = 0, st;
	pid_t child;

	ck_assert_int_eq(pipe(out), 0);
	child = fork();
	ck_assert_int_ne(child, -1);
	if (child == 0) {
		close(out[0]);
		become_nobody();
		p = portserver_ask(addr, pid);
		_exit(write(out[1], &p, sizeof(p)) == sizeof(p) ? 0 : 1);
	}
	close(out[1]);
	p = read_int(out[0]);
	close(out[0]);
	ck_assert_int_eq(waitpid(child, &st, 0), child);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
	return p;
}

/*
 * A pid portd already watches has its uid asked again at every request,
 * since a process may change it: root's process, watched for root's
 * lease, is refused to uid 65534; once that process has become 65534,
 * the same client gets a port for it.
 */
START_TEST(portserver_watched_pid_uid_asked_again)
{
	struct daemon_proc d;
	char addr[64];
	int go, done, p;
	pid_t c;

	portserver_addr(addr, sizeof(addr));
	start_open(&d, (const char *[]){"--portserver-address", addr, NULL});
	if ((c = fork_duplex(&go, &done)) == 0) {
		int v;

		if (read(go, &v, sizeof(v)) != sizeof(v))
			_exit(1);
		become_nobody();
		write_int(done, 1);
		for (;;)
			pause();
	}
	p = portserver_ask(addr, c);
	ck_assert_msg(p >= POOL_LO && p <= POOL_HI, "root for root's: %d", p);
	p = portserver_ask_as_nobody(addr, c);
	ck_assert_msg(p == -1, "65534 got root's pid: %d", p);
	write_int(go, 1);
	ck_assert_int_eq(read_int(done), 1);
	p = portserver_ask_as_nobody(addr, c);
	ck_assert_msg(p >= POOL_LO && p <= POOL_HI,
	    "65534 for its own pid: %d: %s", p, harness_log(&d));
	reap(c);
	close(go);
	close(done);
	harness_stop(&d);
}
END_TEST

static void
no_pidfd_info(void)
{
	setenv("PORTD_NO_PIDFD_INFO", "1", 1);
}

/*
 * The portserver answers as soon as the API socket does. It used to be
 * opened after the journal was restored, so a client that waited for
 * the API socket (the harness, portctl's autostart) and then asked the
 * portserver could be refused: portpicker then silently picks a port
 * itself, without a lease. A journal of 1000 leases widens the window.
 */
START_TEST(regression_portserver_ready_with_api)
{
	struct daemon_proc d;
	char addr[64];
	int conn;

	portserver_addr(addr, sizeof(addr));
	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	conn = harness_connect(d.sock);
	for (int i = 0; i < 1000; i++) {
		json_object *r = harness_call(
		    conn, "{\"op\":\"lease\",\"strategy\":\"ephemeral\"}");
		ck_assert(reply_ok(r));
		json_object_put(r);
	}
	close(conn);
	harness_kill(&d, SIGKILL);
	harness_restart(&d, (const char *[]){"--pool", POOL,
	                        "--portserver-address", addr, NULL});
	/* harness_wait_ready saw the API socket: ask at once. */
	ck_assert_msg(portserver_ask(addr, getpid()) > 0,
	    "the portserver was not ready with the API socket");
	harness_stop(&d);
}
END_TEST

static void
no_peerpidfd(void)
{
	setenv("PORTD_NO_PEERPIDFD", "1", 1);
}

int
main(void)
{
	Suite *s = suite_create("process");
	TCase *tc = tcase_create("process");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, owner_exit_ends_lease);
	tcase_add_test(tc, one_pidfd_per_process);
	tcase_add_loop_test(tc, fork_then_exit, 0, 2);
	tcase_add_test(tc, other_uid_pid_refused);
	tcase_add_test(tc, restart_does_not_adopt_reused_pid);
	tcase_add_test(tc, portpicker_gets_process_lease);
	tcase_add_test(tc, portserver_other_uid_gets_nothing);
	tcase_add_test(tc, regression_portserver_ready_with_api);
	tcase_add_test(tc, portserver_line_now_later_or_never);
	tcase_add_test(tc, portserver_lease_recorded_once_claimed);
	tcase_add_test(tc, portserver_watched_pid_uid_asked_again);
	suite_add_tcase(s, tc);

	/* Kernels before 6.13 cannot ask a pidfd for its uid: /proc. */
	tc = tcase_create("without_pidfd_info");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, no_pidfd_info, NULL);
	tcase_add_test(tc, portserver_watched_pid_uid_asked_again);
	tcase_add_test(tc, portserver_other_uid_gets_nothing);
	suite_add_tcase(s, tc);

	/* Kernels before 6.5 have no SO_PEERPIDFD: the same guarantees
	 * through pidfd_open and the start-time check. */
	tc = tcase_create("without_peerpidfd");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, no_peerpidfd, NULL);
	tcase_add_test(tc, owner_exit_ends_lease);
	tcase_add_test(tc, one_pidfd_per_process);
	tcase_add_loop_test(tc, fork_then_exit, 0, 2);
	tcase_add_test(tc, other_uid_pid_refused);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
