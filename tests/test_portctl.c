/*
 * portctl end to end: every subcommand and exit code against a real portd
 * (pool 27000-27999), exec with real servers, and auto-start.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "portd.h"

static const char *const pool_args[] = {"--pool", "27000-27999", NULL};
static struct daemon_proc d;

struct run {
	int status; /* exit code, or 128+N when killed by signal N */
	char out[65536];
	char err[16384];
};

static void
read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = 0;

	buf[0] = '\0';
	if (fd == -1)
		return;
	n = read(fd, buf, size - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
}

/*
 * Start portctl with args; env entries are "NAME=VALUE" to set or "NAME"
 * to unset. stdout and stderr go to files in dir; cwd may be NULL.
 */
static pid_t
spawn_portctl(const char *dir, const char *cwd, const char *const *env,
    const char *const *args)
{
	const char *argv[64];
	char path[256];
	int n = 0;
	pid_t pid;

	argv[n++] = PORTCTL_BIN;
	for (int i = 0; args[i] != NULL && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid != 0)
		return pid;
	snprintf(path, sizeof(path), "%s/out.%d", dir, (int)getpid());
	freopen(path, "w", stdout);
	snprintf(path, sizeof(path), "%s/err.%d", dir, (int)getpid());
	freopen(path, "w", stderr);
	signal(SIGPIPE, SIG_DFL);
	for (int i = 0; env != NULL && env[i] != NULL; i++) {
		const char *eq = strchr(env[i], '=');
		if (eq == NULL)
			unsetenv(env[i]);
		else {
			char name[64];
			snprintf(name, sizeof(name), "%.*s", (int)(eq - env[i]),
			    env[i]);
			setenv(name, eq + 1, 1);
		}
	}
	if (cwd != NULL && chdir(cwd) == -1)
		_exit(126);
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

static void
reap(const char *dir, pid_t pid, struct run *r)
{
	char path[256];
	int status;

	while (waitpid(pid, &status, 0) == -1)
		ck_assert_int_eq(errno, EINTR);
	r->status =
	    WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
	snprintf(path, sizeof(path), "%s/out.%d", dir, (int)pid);
	read_file(path, r->out, sizeof(r->out));
	unlink(path);
	snprintf(path, sizeof(path), "%s/err.%d", dir, (int)pid);
	read_file(path, r->err, sizeof(r->err));
	unlink(path);
}

/* Run portctl to the end; returns its status. */
static int
run(struct run *r, const char *const *env, const char *const *args)
{
	reap(d.dir, spawn_portctl(d.dir, NULL, env, args), r);
	return r->status;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Lease id from `lease --json` output. */
static void
json_id(const char *json, char *buf, size_t size)
{
	const char *p = strstr(json, "\"id\":\"");

	ck_assert_msg(p != NULL, "no id in %s", json);
	p += 6;
	snprintf(buf, size, "%.*s", (int)strcspn(p, "\""), p);
}

static struct portd *
lib_connect(void)
{
	struct portd_options o = {.socket = d.sock};
	struct portd *h;

	ck_assert_int_eq(portd_connect(&o, &h), 0);
	return h;
}

static size_t
lease_count(void)
{
	struct portd *h = lib_connect();
	struct portd_lease *all;
	size_t n;

	ck_assert_int_eq(portd_list(h, false, &all, &n), 0);
	portd_lease_list_free(all, n);
	portd_close(h);
	return n;
}

/* Wait for a lease to appear; returns its first port (and held flag). */
static int
wait_for_lease(bool *ret_held)
{
	for (int i = 0; i < 1000; i++) {
		struct portd *h = lib_connect();
		struct portd_lease *all;
		size_t n;
		int port = 0;

		ck_assert_int_eq(portd_list(h, false, &all, &n), 0);
		if (n > 0) {
			port = all[0].ports[0];
			*ret_held = all[0].held;
		}
		portd_lease_list_free(all, n);
		portd_close(h);
		if (port > 0)
			return port;
		usleep(10000);
	}
	ck_abort_msg("no lease appeared");
	return -1;
}

static void
setup(void)
{
	harness_start(&d, pool_args);
	setenv("PORTD_SOCKET", d.sock, 1);
}

static void
teardown(void)
{
	harness_stop(&d);
}

START_TEST(usage_and_help)
{
	struct run r;

	ck_assert_int_eq(run(&r, NULL, ARGS("--help")), 0);
	ck_assert_ptr_nonnull(strstr(r.out, "usage: portctl"));
	ck_assert_ptr_nonnull(strstr(r.out, "exec"));
	ck_assert_int_eq(run(&r, NULL, ARGS("--version")), 0);
	ck_assert_ptr_nonnull(strstr(r.out, "portctl " PORTD_VERSION));
	ck_assert_int_eq(run(&r, NULL, ARGS("lease", "--help")), 0);
	ck_assert_ptr_nonnull(strstr(r.out, "usage: portctl lease"));
	ck_assert_int_eq(run(&r, NULL, ARGS("exec", "--help")), 0);
	ck_assert_ptr_nonnull(strstr(r.out, "LISTEN_FDS"));

	ck_assert_int_eq(run(&r, NULL, ARGS("--bogus")), 2);
	ck_assert_int_eq(run(&r, NULL, ARGS("frobnicate")), 2);
	ck_assert_ptr_nonnull(strstr(r.err, "unknown command"));
	ck_assert_int_eq(run(&r, NULL, ARGS("lease", "--ttl", "5x")), 2);
	ck_assert_int_eq(run(&r, NULL, ARGS("lease", "-n", "65")), 2);
	ck_assert_int_eq(run(&r, NULL, ARGS("lease", "--proto", "sctp")), 2);
	ck_assert_int_eq(run(&r, NULL, ARGS("lease", "extra")), 2);
	ck_assert_int_eq(run(&r, NULL, ARGS("release", "99999")), 2);
	ck_assert_int_eq(run(&r, NULL, ARGS("renew", "--ttl", "1h")), 2);
	ck_assert_int_eq(run(&r, NULL, ARGS("claim", "a", "b")), 2);
	ck_assert_int_eq(run(&r, NULL, ARGS("exec", "--")), 2);
	ck_assert_int_eq(
	    run(&r, NULL, ARGS("exec", "--", "echo", "{port1}")), 2);
	ck_assert_int_eq(
	    run(&r, NULL, ARGS("exec", "--env", "1X", "--", "true")), 2);
	ck_assert_int_eq(run(&r, NULL, ARGS("--timeout", "x", "status")), 2);
	/* Nothing was leased by any of that. */
	ck_assert_uint_eq(lease_count(), 0);
}
END_TEST

START_TEST(lease_list_renew_claim_release)
{
	struct run r;
	char id[80];
	int p1, p2;

	ck_assert_int_eq(run(&r, NULL,
	                     ARGS("lease", "-n", "2", "--contiguous", "--name",
	                         "web", "--ttl", "5m")),
	    0);
	ck_assert_int_eq(sscanf(r.out, "%d\n%d\n", &p1, &p2), 2);
	ck_assert_int_ge(p1, 27000);
	ck_assert_int_eq(p2, p1 + 1);

	ck_assert_int_eq(
	    run(&r, NULL, ARGS("lease", "--json", "--proto", "udp")), 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\"proto\":\"udp\""));
	ck_assert_ptr_nonnull(strstr(r.out, "\"hold\":\"exclusive\""));
	json_id(r.out, id, sizeof(id));

	ck_assert_int_eq(run(&r, NULL, ARGS("list")), 0);
	ck_assert_msg(strncmp(r.out, "ID ", 3) == 0, "%s", r.out);
	ck_assert_ptr_nonnull(strstr(r.out, "EXPIRES"));
	ck_assert_ptr_nonnull(strstr(r.out, id));
	ck_assert_ptr_nonnull(strstr(r.out, "web"));
	ck_assert_ptr_nonnull(strstr(r.out, "in 5m"));
	char range[32];
	snprintf(range, sizeof(range), "%d-%d", p1, p2);
	ck_assert_ptr_nonnull(strstr(r.out, range));
	ck_assert_int_eq(run(&r, NULL, ARGS("list", "--json")), 0);
	ck_assert_msg(
	    r.out[0] == '[' && strstr(r.out, id) != NULL, "%s", r.out);
	ck_assert_int_eq(run(&r, NULL, ARGS("list", "--all")), 0);

	ck_assert_int_eq(
	    run(&r, NULL, ARGS("renew", id, "--ttl", "2h", "--json")), 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\"ttl\":7200"));
	ck_assert_int_eq(run(&r, NULL, ARGS("renew", id)), 0);
	ck_assert_str_eq(r.out, "");
	ck_assert_int_eq(run(&r, NULL, ARGS("claim", id, "--json")), 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\"held\":false"));

	ck_assert_int_eq(run(&r, NULL, ARGS("release", id)), 0);
	ck_assert_int_eq(run(&r, NULL, ARGS("release", id)), 1);
	ck_assert_msg(strstr(r.err, "not_found") != NULL, "%s", r.err);
	ck_assert_int_eq(run(&r, NULL, ARGS("renew", id)), 1);
	ck_assert_int_eq(run(&r, NULL, ARGS("claim", id)), 1);
	snprintf(range, sizeof(range), "%d", p2);
	ck_assert_int_eq(run(&r, NULL, ARGS("release", range)), 0);
	ck_assert_uint_eq(lease_count(), 0);
	ck_assert_int_eq(run(&r, NULL, ARGS("list")), 0);
	ck_assert_str_eq(r.out, "");

	/* A refused lease: exit 1 and the daemon's code. */
	int fd = bind_listen("0.0.0.0", 27999, false);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(run(&r, NULL, ARGS("lease", "--port", "27999")), 1);
	ck_assert_msg(strstr(r.err, "port_unavailable") != NULL, "%s", r.err);
	close(fd);
}
END_TEST

START_TEST(status)
{
	struct run r;
	char want[64];

	ck_assert_int_eq(run(&r, NULL, ARGS("status")), 0);
	ck_assert_ptr_nonnull(strstr(r.out, "portd " PORTD_VERSION));
	ck_assert_ptr_nonnull(strstr(r.out, "27000-27999, 1000 of 1000 free"));
	snprintf(want, sizeof(want), "pid          %d\n", (int)d.pid);
	ck_assert_msg(strstr(r.out, want) != NULL, "%s", r.out);
	ck_assert_int_eq(run(&r, NULL, ARGS("status", "--json")), 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\"counters\":{"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"pool\":{"));
}
END_TEST

START_TEST(no_daemon)
{
	const char *const env[] = {
	    "PORTD_SOCKET=/nonexistent/portd.sock", NULL};
	struct run r;

	ck_assert_int_eq(run(&r, env, ARGS("lease")), 69);
	ck_assert_ptr_nonnull(strstr(r.err, "/nonexistent/portd.sock"));
	ck_assert_int_eq(run(&r, env, ARGS("status")), 69);
	ck_assert_int_eq(
	    run(&r, NULL, ARGS("--socket", "/nonexistent/x.sock", "list")), 69);
	ck_assert_int_eq(
	    run(&r, NULL, ARGS("list", "--socket", "/nonexistent/x.sock")), 69);
	ck_assert_int_eq(run(&r, env, ARGS("exec", "--", "true")), 69);
	/* The daemon dies: 69 too. */
	harness_kill(&d, SIGKILL);
	ck_assert_int_eq(run(&r, NULL, ARGS("list")), 69);
}
END_TEST

START_TEST(exec_exit_status)
{
	struct run r;

	ck_assert_int_eq(
	    run(&r, NULL, ARGS("exec", "--", "sh", "-c", "exit 7")), 7);
	ck_assert_int_eq(run(&r, NULL, ARGS("exec", "--", "true")), 0);
	ck_assert_int_eq(
	    run(&r, NULL, ARGS("exec", "--", "sh", "-c", "kill -TERM $$")),
	    128 + SIGTERM);
	ck_assert_int_eq(
	    run(&r, NULL, ARGS("exec", "--", "/nonexistent/cmd")), 127);
	ck_assert_ptr_nonnull(strstr(r.err, "/nonexistent/cmd"));
	/* Every lease ended with its command. */
	ck_assert_uint_eq(lease_count(), 0);
}
END_TEST

START_TEST(exec_environment_and_arguments)
{
	struct run r;
	int port, p0, p2, web, a0, a2, n;
	char ports[64];

	ck_assert_int_eq(
	    run(&r, NULL,
	        ARGS("exec", "-n", "3", "--env", "WEB", "--", "sh", "-c",
	            "echo \"$PORT|$PORTS|$PORT_0|$PORT_2|$WEB|"
	            "{port}|{port2}|$LISTEN_FDS\"")),
	    0);
	n = sscanf(r.out, "%d|%63[0-9 ]|%d|%d|%d|%d|%d|\n", &port, ports, &p0,
	    &p2, &web, &a0, &a2);
	ck_assert_msg(n == 7, "%s", r.out);
	ck_assert_int_eq(port, p0);
	ck_assert_int_eq(port, web);
	ck_assert_int_eq(port, a0);
	ck_assert_int_eq(p2, a2);
	ck_assert_int_ne(p0, p2);
	ck_assert_int_eq(strchr(ports, ' ') != NULL, 1);
	/* Command options after -- are the command's. */
	ck_assert_int_eq(
	    run(&r, NULL, ARGS("exec", "echo", "-n", "{port}x")), 0);
	ck_assert_msg(atoi(r.out) >= 27000 && strchr(r.out, 'x'), "%s", r.out);
}
END_TEST

/* A connection to 127.0.0.1:port once a server listens there (up to
 * 20 s), or -1. */
static int
connect_when_listening(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	for (int i = 0; i < 2000; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			return fd;
		close(fd);
		usleep(10000);
	}
	return -1;
}

/* A real HTTP GET to a server started by exec, while portd holds the port. */
START_TEST(exec_http_server)
{
	char www[256], path[300], resp[4096];
	const char *const args[] = {"exec", "--", "python3", "-m",
	    "http.server", "{port}", "--bind", "127.0.0.1", NULL};
	struct run r;
	bool held = false;
	int port, fd = -1, n = 0;
	FILE *f;
	pid_t pid;

	snprintf(www, sizeof(www), "%s/www", d.dir);
	ck_assert_int_eq(mkdir(www, 0755), 0);
	snprintf(path, sizeof(path), "%s/index.html", www);
	f = fopen(path, "w");
	fputs("hello from portd\n", f);
	fclose(f);

	pid = spawn_portctl(d.dir, www, NULL, args);
	port = wait_for_lease(&held);
	ck_assert(held);
	fd = connect_when_listening(port);
	ck_assert_msg(fd >= 0, "http.server never listened on %d", port);
	harness_send(fd, "GET / HTTP/1.0\r\n\r\n", 18);
	for (ssize_t k; (k = read(fd, resp + n, sizeof(resp) - 1 - n)) > 0;)
		n += (int)k;
	resp[n] = '\0';
	close(fd);
	ck_assert_msg(strncmp(resp, "HTTP/1.0 200", 12) == 0, "%s", resp);
	ck_assert_ptr_nonnull(strstr(resp, "hello from portd"));
	/* Still held by portd while the server runs (co-bind). */
	wait_for_lease(&held);
	ck_assert(held);

	kill(pid, SIGTERM);
	reap(d.dir, pid, &r);
	ck_assert_int_eq(r.status, 128 + SIGTERM);
	ck_assert_uint_eq(lease_count(), 0);
}
END_TEST

START_TEST(exec_forwards_signals)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
	struct run r;
	char ready[256], script[512];

	for (size_t i = 0; i < 3; i++) {
		snprintf(ready, sizeof(ready), "%s/ready", d.dir);
		unlink(ready);
		snprintf(script, sizeof(script),
		    "trap 'exit %d' %d; touch %s; "
		    "while :; do sleep 0.05; done",
		    40 + (int)i, sigs[i], ready);
		pid_t pid = spawn_portctl(
		    d.dir, NULL, NULL, ARGS("exec", "--", "sh", "-c", script));
		for (int k = 0; k < 1000 && access(ready, F_OK) != 0; k++)
			usleep(10000);
		ck_assert_int_eq(access(ready, F_OK), 0);
		kill(pid, sigs[i]);
		reap(d.dir, pid, &r);
		ck_assert_int_eq(r.status, 40 + (int)i);
	}
	ck_assert_uint_eq(lease_count(), 0);
}
END_TEST

static const char listen_check[] =
    "import os, socket, sys\n"
    "assert os.environ['LISTEN_PID'] == str(os.getpid())\n"
    "n = int(os.environ['LISTEN_FDS'])\n"
    "names = os.environ['LISTEN_FDNAMES'].split(':')\n"
    "assert n == 2 and len(names) == 2, (n, names)\n"
    "want = sys.argv[1]\n"
    "ports = []\n"
    "for i in range(n):\n"
    "    s = socket.socket(fileno=3 + i)\n"
    "    ports.append(s.getsockname()[1])\n"
    "    exp = want if want != '-' else 'tcp-%d' % ports[-1]\n"
    "    assert names[i] == exp, (names[i], exp)\n"
    "    s.listen()\n"
    "    s.detach()\n"
    "assert sorted(ports) == sorted(int(p) for p in "
    "os.environ['PORTS'].split()), ports\n";

START_TEST(exec_fd_socket_activation)
{
	struct run r;

	ck_assert_int_eq(run(&r, NULL,
	                     ARGS("exec", "--fd", "-n", "2", "--name", "api",
	                         "--", "python3", "-c", listen_check, "api")),
	    0);
	ck_assert_int_eq(run(&r, NULL,
	                     ARGS("exec", "--fd", "-n", "2", "--", "python3",
	                         "-c", listen_check, "-")),
	    0);
	ck_assert_msg(r.status == 0, "%s", r.err);
	ck_assert_uint_eq(lease_count(), 0);
}
END_TEST

static const char bind_check[] =
    "import os, socket, sys\n"
    "t = socket.SOCK_DGRAM if sys.argv[1] == 'udp' else "
    "socket.SOCK_STREAM\n"
    "s = socket.socket(socket.AF_INET, t)\n"
    "s.bind(('0.0.0.0', int(os.environ['PORT'])))\n";

START_TEST(exec_claims_exclusive_and_udp)
{
	struct run r;

	ck_assert_msg(run(&r, NULL,
	                  ARGS("exec", "--proto", "udp", "--", "python3", "-c",
	                      bind_check, "udp")) == 0,
	    "%s", r.err);
	ck_assert_msg(run(&r, NULL,
	                  ARGS("exec", "--hold", "exclusive", "--", "python3",
	                      "-c", bind_check, "tcp")) == 0,
	    "%s", r.err);
	/* A shared TCP lease is not claimed: a plain bind fails. */
	ck_assert_int_ne(
	    run(&r, NULL,
	        ARGS("exec", "--", "python3", "-c", bind_check, "tcp")),
	    0);
	ck_assert_ptr_nonnull(strstr(r.err, "Address already in use"));
	ck_assert_uint_eq(lease_count(), 0);
}
END_TEST

/* socketserver.TCPServer: allow_reuse_address is False, so no
 * SO_REUSEADDR. Serves "hi" to each connection on argv[1]. */
static const char tcpserver[] =
    "import socketserver, sys\n"
    "class H(socketserver.BaseRequestHandler):\n"
    "    def handle(self):\n"
    "        self.request.sendall(b'hi')\n"
    "socketserver.TCPServer(('127.0.0.1', int(sys.argv[1])), H)"
    ".serve_forever()\n";

/*
 * exec with a server that does not set SO_REUSEADDR: the default shared
 * hold makes it fail, and portctl says what to run instead; with --hold
 * exclusive it serves on {port}. It used to fail with nothing but the
 * server's "Address already in use".
 */
START_TEST(regression_exec_no_reuseaddr_unexplained)
{
	const char *const args[] = {"exec", "--hold", "exclusive", "--",
	    "python3", "-c", tcpserver, "{port}", NULL};
	struct run r;
	char buf[8] = "";
	bool held = true;
	int port, fd = -1;
	pid_t pid;

	ck_assert_int_ne(
	    run(&r, NULL,
	        ARGS("exec", "--", "python3", "-c", tcpserver, "{port}")),
	    0);
	ck_assert_msg(
	    strstr(r.err, "Address already in use") != NULL, "%s", r.err);
	ck_assert_msg(strstr(r.err, "binds without SO_REUSEADDR") != NULL &&
	                  strstr(r.err, "--hold exclusive") != NULL,
	    "%s", r.err);
	/* An ordinary failure of a command on an exclusive lease: no hint. */
	ck_assert_int_eq(run(&r, NULL,
	                     ARGS("exec", "--hold", "exclusive", "--", "sh",
	                         "-c", "exit 3")),
	    3);
	ck_assert_ptr_null(strstr(r.err, "SO_REUSEADDR"));

	pid = spawn_portctl(d.dir, NULL, NULL, args);
	port = wait_for_lease(&held);
	fd = connect_when_listening(port);
	ck_assert_msg(fd >= 0, "TCPServer never listened on %d", port);
	ck_assert_int_eq(read(fd, buf, 2), 2);
	ck_assert_str_eq(buf, "hi");
	close(fd);
	/* Claimed: portd let go of the port for the server. */
	wait_for_lease(&held);
	ck_assert(!held);
	kill(pid, SIGTERM);
	reap(d.dir, pid, &r);
	ck_assert_int_eq(r.status, 128 + SIGTERM);
	ck_assert_uint_eq(lease_count(), 0);
}
END_TEST

/* ---- auto-start: a private XDG_RUNTIME_DIR, no harness daemon ---- */

/* The first line of stderr must be want exactly. */
static void
first_line_is(const struct run *r, const char *want)
{
	size_t n = strcspn(r->err, "\n");

	ck_assert_msg(strlen(want) == n && strncmp(r->err, want, n) == 0,
	    "want '%s', got '%s'", want, r->err);
}

static void
lease_named(const char *name, int count, char *id, size_t size)
{
	char n[8];
	struct run r;

	snprintf(n, sizeof(n), "%d", count);
	ck_assert_int_eq(
	    run(&r, NULL, ARGS("lease", "--json", "-n", n, "--name", name)), 0);
	json_id(r.out, id, size);
}

/* renew, claim and release take a lease by ID, port, name or a unique
 * ID prefix; ambiguity and absence are said exactly. */
START_TEST(lease_references)
{
	char web[64], db1[64], db2[64], other[64], want[256], prefix[64];
	char port[16];
	struct run r;
	size_t k;

	lease_named("web", 2, web, sizeof(web));
	lease_named("db", 1, db1, sizeof(db1));
	lease_named("db", 1, db2, sizeof(db2));
	ck_assert_int_eq(run(&r, NULL, ARGS("lease", "--json")), 0);
	json_id(r.out, other, sizeof(other));

	/* By name. */
	ck_assert_int_eq(
	    run(&r, NULL, ARGS("renew", "web", "--ttl", "600", "--json")), 0);
	ck_assert_ptr_nonnull(strstr(r.out, web));
	ck_assert_ptr_nonnull(strstr(r.out, "\"ttl\":600"));
	/* By its second port. */
	snprintf(port, sizeof(port), "%d", 27000 + 1);
	ck_assert_int_eq(run(&r, NULL, ARGS("claim", port, "--json")), 0);
	ck_assert_ptr_nonnull(strstr(r.out, web));
	ck_assert_ptr_nonnull(strstr(r.out, "\"held\":false"));
	/* By the shortest prefix of other's id that no other lease has. */
	for (k = 2; k < strlen(other); k++)
		if (strncmp(other, web, k) != 0 &&
		    strncmp(other, db1, k) != 0 && strncmp(other, db2, k) != 0)
			break;
	snprintf(prefix, sizeof(prefix), "%.*s", (int)k, other);
	ck_assert_int_eq(run(&r, NULL, ARGS("renew", prefix, "--json")), 0);
	ck_assert_ptr_nonnull(strstr(r.out, other));

	/* Two leases are named db; every id starts with L. */
	ck_assert_int_eq(run(&r, NULL, ARGS("release", "db")), 2);
	snprintf(want, sizeof(want),
	    "portctl: 'db' names 2 leases: %s %s; give one of their IDs", db1,
	    db2);
	first_line_is(&r, want);
	ck_assert_int_eq(run(&r, NULL, ARGS("claim", "L")), 2);
	ck_assert_ptr_nonnull(strstr(r.err, "'L' names 4 leases: "));
	ck_assert_int_eq(run(&r, NULL, ARGS("renew", "nope")), 1);
	first_line_is(&r, "portctl: nope: not_found: no lease of yours has "
	                  "that ID, name or ID prefix (see 'portctl list')");
	ck_assert_int_eq(run(&r, NULL, ARGS("claim", "27999")), 1);
	first_line_is(&r,
	    "portctl: 27999: not_found: no lease of yours holds port 27999");
	ck_assert_int_eq(lease_count(), 4);

	/* release by name, by id and by port in one go. */
	ck_assert_int_eq(
	    run(&r, NULL, ARGS("release", "web", db1, "27003")), 0);
	ck_assert_int_eq(lease_count(), 1);
	/* db is now unique. */
	ck_assert_int_eq(run(&r, NULL, ARGS("release", prefix)), 0);
	ck_assert_int_eq(lease_count(), 0);
}
END_TEST

/* --ttl and --timeout take systemd's time spans. */
START_TEST(systemd_time_spans)
{
	static const struct {
		const char *ttl;
		const char *want;
	} spans[] = {
	    {"1h30m", "\"ttl\":5400,"},
	    {"1h 30m", "\"ttl\":5400,"},
	    {"1.5h", "\"ttl\":5400,"},
	    {"90min", "\"ttl\":5400,"},
	    {"90", "\"ttl\":90,"},
	    {"1d", "\"ttl\":86400,"},
	    {"2 hours 1 sec", "\"ttl\":7201,"},
	};
	char id[64];
	struct run r;

	for (size_t i = 0; i < sizeof(spans) / sizeof(spans[0]); i++) {
		ck_assert_int_eq(
		    run(&r, NULL,
		        ARGS("lease", "--ttl", spans[i].ttl, "--json")),
		    0);
		ck_assert_msg(strstr(r.out, spans[i].want) != NULL, "%s: %s",
		    spans[i].ttl, r.out);
	}
	json_id(r.out, id, sizeof(id));
	ck_assert_int_eq(
	    run(&r, NULL, ARGS("renew", id, "--ttl", "5m30s", "--json")), 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\"ttl\":330,"));
	ck_assert_int_eq(
	    run(&r, NULL, ARGS("--timeout", "2.5s", "status", "--json")), 0);
	/* Beyond the daemon's max-ttl (1d): its refusal, exit 1. */
	ck_assert_int_eq(run(&r, NULL, ARGS("lease", "--ttl", "2d")), 1);
	ck_assert_ptr_nonnull(strstr(r.err, "bad_request"));
}
END_TEST

/* Each bad value names the option, the value and what is allowed. */
static const struct {
	const char *args[6];
	const char *want;
} usage_cases[] = {
    {{"lease", "-n", "65"},
        "portctl: -n/--count: '65' is out of range (1..64)"},
    {{"lease", "--count", "0"},
        "portctl: -n/--count: '0' is out of range (1..64)"},
    {{"lease", "-n", "two"},
        "portctl: -n/--count: 'two' is not a whole number (1..64)"},
    {{"lease", "-n", "-1"},
        "portctl: -n/--count: '-1' is not a whole number (1..64)"},
    {{"lease", "--proto", "sctp"},
        "portctl: --proto: 'sctp' is not one of tcp, udp, both"},
    {{"lease", "--family", "ipv5"},
        "portctl: --family: 'ipv5' is not one of dual, ipv4, ipv6"},
    {{"lease", "--hold", "tight"},
        "portctl: --hold: 'tight' is not one of shared, exclusive"},
    {{"lease", "--strategy", "random"},
        "portctl: --strategy: 'random' is not one of pool, ephemeral"},
    {{"lease", "--scope", "process"},
        "portctl: --scope: 'process' is not one of ttl, session (process "
        "would end with portctl)"},
    {{"lease", "--port", "0"},
        "portctl: --port: '0' is out of range (1..65535)"},
    {{"lease", "--port", "70000"},
        "portctl: --port: '70000' is out of range (1..65535)"},
    {{"exec", "-n", "99", "--", "true"},
        "portctl: -n/--count: '99' is out of range (1..64)"},
    {{"release", "70000"}, "portctl: '70000' is not a port (1..65535)"},
    {{"release"},
        "portctl: which lease? give an ID, an ID prefix, a name or a PORT"},
    {{"renew"},
        "portctl: give exactly one lease: an ID, an ID prefix, a name or a "
        "PORT"},
    {{"claim", "a", "b"},
        "portctl: give exactly one lease: an ID, an ID prefix, a name or a "
        "PORT"},
    {{"lease", "--ttl", "1h30x"},
        "portctl: --ttl: '1h30x' is not a duration from 1s to 366d in whole "
        "seconds; use a systemd time span like 90, 90s, 5m, 1h30m, 1.5h or "
        "2d: numbers with units ms, s, m, h, d, w (or sec, min, hour, day, "
        "week...); a bare number is seconds"},
    {{"lease", "--ttl", "0"},
        "portctl: --ttl: '0' is not a duration from 1s to 366d in whole "
        "seconds; use a systemd time span like 90, 90s, 5m, 1h30m, 1.5h or "
        "2d: numbers with units ms, s, m, h, d, w (or sec, min, hour, day, "
        "week...); a bare number is seconds"},
    {{"lease", "--ttl", "367d"},
        "portctl: --ttl: '367d' is not a duration from 1s to 366d in whole "
        "seconds; use a systemd time span like 90, 90s, 5m, 1h30m, 1.5h or "
        "2d: numbers with units ms, s, m, h, d, w (or sec, min, hour, day, "
        "week...); a bare number is seconds"},
    {{"renew", "L1", "--ttl", "1500ms"},
        "portctl: --ttl: '1500ms' is not a duration from 1s to 366d in "
        "whole seconds; use a systemd time span like 90, 90s, 5m, 1h30m, "
        "1.5h or 2d: numbers with units ms, s, m, h, d, w (or sec, min, "
        "hour, day, week...); a bare number is seconds"},
    {{"status", "--timeout", "soon"},
        "portctl: --timeout: 'soon' is not a duration from 0 (no limit) to "
        "24d; use a systemd time span like 90, 90s, 5m, 1h30m, 1.5h or 2d: "
        "numbers with units ms, s, m, h, d, w (or sec, min, hour, day, "
        "week...); a bare number is seconds"},
    {{"stop", "now"}, "portctl: unexpected argument 'now'"},
    {{"metrics", "extra"}, "portctl: unexpected argument 'extra'"},
};

START_TEST(usage_errors_name_option_value_range)
{
	const char *args[8] = {0};
	struct run r;
	int n = 0;

	for (; n < 6 && usage_cases[_i].args[n] != NULL; n++)
		args[n] = usage_cases[_i].args[n];
	ck_assert_int_eq(run(&r, NULL, args), 2);
	first_line_is(&r, usage_cases[_i].want);
	/* And the command's usage line follows. */
	ck_assert_ptr_nonnull(strstr(r.err, "\nusage: portctl "));
	ck_assert_int_eq(lease_count(), 0);
}
END_TEST

/* When nothing answers, the error says what to run next. */
START_TEST(no_daemon_says_what_next)
{
	const char *const env_sock[] = {
	    "PORTD_SOCKET=/nonexistent/portd.sock", NULL};
	char xdgdir[] = "/tmp/portd-next.XXXXXX", xdgvar[64];
	const char *env_off[] = {
	    xdgvar, "PORTD_SOCKET", "PORTD_NO_AUTOSTART=1", NULL};
	struct run r;

	ck_assert_int_eq(
	    run(&r, NULL, ARGS("--socket", "/nonexistent/x.sock", "status")),
	    69);
	ck_assert_str_eq(r.err,
	    "portctl: no daemon at /nonexistent/x.sock: No such file or "
	    "directory\n"
	    "portctl: start one there with 'portd --socket /nonexistent/x.sock "
	    "&', or leave out --socket to use your own (started when "
	    "needed)\n");
	ck_assert_int_eq(run(&r, env_sock, ARGS("list")), 69);
	ck_assert_ptr_nonnull(
	    strstr(r.err, "portctl: start one there with 'portd --socket "
	                  "/nonexistent/portd.sock &', or unset PORTD_SOCKET "
	                  "to use your own (started when needed)\n"));
	ck_assert_ptr_nonnull(mkdtemp(xdgdir));
	snprintf(xdgvar, sizeof(xdgvar), "XDG_RUNTIME_DIR=%s", xdgdir);
	ck_assert_int_eq(run(&r, env_off, ARGS("lease")), 69);
	ck_assert_ptr_nonnull(
	    strstr(r.err, "portctl: start one with 'portd &' or 'systemctl "
	                  "--user start portd.socket', or let portctl start it "
	                  "(leave out --no-autostart and PORTD_NO_AUTOSTART=1)"
	                  "\n"));
	/* stop never starts a daemon: with none there is nothing to stop. */
	ck_assert_int_eq(run(&r, env_sock, ARGS("stop")), 69);
	ck_assert_ptr_nonnull(strstr(r.err, "portctl: nothing to stop\n"));
	rmdir(xdgdir);
}
END_TEST

/* portctl stop: the daemon's answer, a clean exit, the leases kept. */
START_TEST(stop_command)
{
	char want[128];
	struct run r;
	int st;

	ck_assert_int_eq(run(&r, NULL, ARGS("lease", "--ttl", "600")), 0);
	ck_assert_int_eq(run(&r, NULL, ARGS("stop")), 0);
	snprintf(want, sizeof(want),
	    "stopped portd (pid %d); 1 lease(s) kept for its next start\n",
	    (int)d.pid);
	ck_assert_str_eq(r.out, want);
	ck_assert_str_eq(r.err, "");
	/* It has exited (portctl waited for that), with status 0. */
	st = harness_wait_exit(d.pid, 100);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	harness_restart(&d, pool_args);
	ck_assert_int_eq(lease_count(), 1);
}
END_TEST

/* portctl status: the effective configuration after the counters. */
START_TEST(status_shows_configuration)
{
	char want[256];
	struct run r;

	ck_assert_int_eq(run(&r, NULL, ARGS("status")), 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\nconfiguration\n"));
	ck_assert_ptr_nonnull(
	    strstr(r.out, "\n  pool                     27000-27999\n"));
	ck_assert_ptr_nonnull(
	    strstr(r.out, "\n  quota                    1024\n"));
	ck_assert_ptr_nonnull(
	    strstr(r.out, "\n  max-ttl                  86400\n"));
	ck_assert_ptr_nonnull(
	    strstr(r.out, "\n  metrics-address          -\n"));
	snprintf(
	    want, sizeof(want), "\n  socket                   %s\n", d.sock);
	ck_assert_ptr_nonnull(strstr(r.out, want));
}
END_TEST

/* portctl metrics: the Prometheus text, valid for promtool. */
START_TEST(metrics_command)
{
	char path[300], cmd[400];
	struct run r;
	FILE *f;

	ck_assert_int_eq(run(&r, NULL, ARGS("lease", "-n", "3")), 0);
	ck_assert_int_eq(run(&r, NULL, ARGS("metrics")), 0);
	ck_assert_ptr_nonnull(strstr(
	    r.out, "\nportd_leased_ports{scope=\"ttl\",proto=\"tcp\"} 3\n"));
	snprintf(path, sizeof(path), "%s/portd.prom", d.dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(r.out, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
	ck_assert_int_eq(system(cmd), 0);
	unlink(path);
}
END_TEST

static char xdg[64];

static void
xdg_setup(void)
{
	snprintf(xdg, sizeof(xdg), "/tmp/portd-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(xdg));
}

/* pids of running (not zombie) portd processes serving sock. */
static int
find_daemons(const char *sock, pid_t *pids, int max)
{
	DIR *proc = opendir("/proc");
	struct dirent *e;
	int n = 0;

	while (proc != NULL && (e = readdir(proc)) != NULL) {
		char path[300], buf[4096], stat[512];
		int fd;
		ssize_t len;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		read_file(path, stat, sizeof(stat));
		char *rp = strrchr(stat, ')');
		if (rp == NULL || rp[2] == 'Z')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		if ((fd = open(path, O_RDONLY)) == -1)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		if (strstr(buf, "portd") == NULL)
			continue;
		for (char *p = buf; p < buf + len; p += strlen(p) + 1)
			if (strcmp(p, sock) == 0 && n < max)
				pids[n++] = atoi(e->d_name);
	}
	if (proc != NULL)
		closedir(proc);
	return n;
}

/* Kill whatever daemon the tests started under xdg (parent side). */
static void
xdg_teardown(void)
{
	char sock[128], cmd[160];
	pid_t pids[16];
	int n;

	snprintf(sock, sizeof(sock), "%s/portd/portd.sock", xdg);
	n = find_daemons(sock, pids, 16);
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGTERM);
	for (int k = 0; k < 300 && find_daemons(sock, pids, 16) > 0; k++)
		usleep(10000);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", xdg);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", xdg);
}

static char path_env[4096];

static const char *const *
xdg_env(void)
{
	static char xdg_var[128];
	static const char *env[5];

	snprintf(xdg_var, sizeof(xdg_var), "XDG_RUNTIME_DIR=%s", xdg);
	snprintf(path_env, sizeof(path_env), "PATH=%s:%s", harness_bin_dir,
	    getenv("PATH"));
	env[0] = xdg_var;
	env[1] = path_env;
	env[2] = "PORTD_SOCKET";
	env[3] = "PORTD_NO_AUTOSTART";
	env[4] = NULL;
	return env;
}

START_TEST(autostart_off)
{
	const char *const *env = xdg_env();
	const char *env_off[] = {
	    env[0], env[1], env[2], "PORTD_NO_AUTOSTART=1", NULL};
	char sock[128];
	struct run r;
	pid_t pids[4];

	snprintf(sock, sizeof(sock), "%s/portd/portd.sock", xdg);
	reap(xdg, spawn_portctl(xdg, NULL, env, ARGS("--no-autostart", "list")),
	    &r);
	ck_assert_int_eq(r.status, 69);
	ck_assert_msg(strstr(r.err, sock) != NULL, "%s", r.err);
	reap(xdg, spawn_portctl(xdg, NULL, env_off, ARGS("list")), &r);
	ck_assert_int_eq(r.status, 69);
	/* An explicit socket is never auto-started. */
	reap(xdg, spawn_portctl(xdg, NULL, env, ARGS("--socket", sock, "list")),
	    &r);
	ck_assert_int_eq(r.status, 69);
	ck_assert_int_eq(find_daemons(sock, pids, 4), 0);
}
END_TEST

/* portctl run from a build tree found no portd: it looked beside itself and
 * in ../sbin, while the build puts portd in ../daemon. */
START_TEST(regression_autostart_from_build_tree)
{
	const char *const *env = xdg_env();
	const char *env_nopath[] = {
	    env[0], "PATH=/usr/bin:/bin", env[2], env[3], NULL};
	char sock[128];
	struct run r;
	pid_t pids[4];

	snprintf(sock, sizeof(sock), "%s/portd/portd.sock", xdg);
	reap(xdg,
	    spawn_portctl(xdg, NULL, env_nopath, ARGS("lease", "--ttl", "60")),
	    &r);
	ck_assert_msg(r.status == 0, "portctl: %d: %s", r.status, r.err);
	ck_assert_int_gt(atoi(r.out), 0);
	ck_assert_int_eq(find_daemons(sock, pids, 4), 1);
}
END_TEST

START_TEST(autostart_race)
{
	enum { N = 10 };
	const char *const *env = xdg_env();
	char sock[128], lock[160], lockpid[32];
	pid_t kids[N], pids[N];
	struct run r[N];
	int ports[N], n = 0;

	snprintf(sock, sizeof(sock), "%s/portd/portd.sock", xdg);
	for (int i = 0; i < N; i++)
		kids[i] =
		    spawn_portctl(xdg, NULL, env, ARGS("lease", "--ttl", "60"));
	for (int i = 0; i < N; i++) {
		reap(xdg, kids[i], &r[i]);
		ck_assert_msg(r[i].status == 0, "portctl %d: %d: %s", i,
		    r[i].status, r[i].err);
		ports[i] = atoi(r[i].out);
		ck_assert_int_gt(ports[i], 0);
		for (int j = 0; j < i; j++)
			ck_assert_int_ne(ports[i], ports[j]);
	}
	/* The losers exit on the lock; one daemon stays. */
	for (int k = 0; k < 500; k++) {
		if ((n = find_daemons(sock, pids, N)) == 1)
			break;
		usleep(10000);
	}
	ck_assert_int_eq(n, 1);
	snprintf(lock, sizeof(lock), "%s.lock", sock);
	read_file(lock, lockpid, sizeof(lockpid));
	ck_assert_int_eq(atoi(lockpid), pids[0]);

	/* Later calls use it, and start nothing new. */
	reap(xdg, spawn_portctl(xdg, NULL, env, ARGS("list", "--json")), &r[0]);
	ck_assert_int_eq(r[0].status, 0);
	ck_assert_int_eq(find_daemons(sock, pids, N), 1);
	kill(pids[0], SIGTERM);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("portctl");
	TCase *tc = tcase_create("cli");
	TCase *ex = tcase_create("exec");
	TCase *as = tcase_create("autostart");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, usage_and_help);
	tcase_add_test(tc, lease_list_renew_claim_release);
	tcase_add_test(tc, status);
	tcase_add_test(tc, no_daemon);
	tcase_add_test(tc, lease_references);
	tcase_add_test(tc, systemd_time_spans);
	tcase_add_loop_test(tc, usage_errors_name_option_value_range, 0,
	    sizeof(usage_cases) / sizeof(usage_cases[0]));
	tcase_add_test(tc, no_daemon_says_what_next);
	tcase_add_test(tc, stop_command);
	tcase_add_test(tc, metrics_command);
	tcase_add_test(tc, status_shows_configuration);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(ex, setup, teardown);
	tcase_set_timeout(ex, 60);
	tcase_add_test(ex, exec_exit_status);
	tcase_add_test(ex, exec_environment_and_arguments);
	tcase_add_test(ex, exec_http_server);
	tcase_add_test(ex, exec_forwards_signals);
	tcase_add_test(ex, exec_fd_socket_activation);
	tcase_add_test(ex, exec_claims_exclusive_and_udp);
	tcase_add_test(ex, regression_exec_no_reuseaddr_unexplained);
	suite_add_tcase(s, ex);

	/* Unchecked: the parent kills auto-started daemons even on failure. */
	tcase_add_unchecked_fixture(as, xdg_setup, xdg_teardown);
	tcase_set_timeout(as, 60);
	tcase_add_test(as, autostart_off);
	tcase_add_test(as, autostart_race);
	tcase_add_test(as, regression_autostart_from_build_tree);
	suite_add_tcase(s, as);
	return harness_run(s);
}
