/*
 * Real servers on leased ports (guarantee 3): Python's http.server and a
 * Node server co-bind a shared lease while portd holds it; a server
 * without SO_REUSEADDR cannot bind until the lease is claimed; a
 * socket-activated server runs on the socket passed with "fd": true.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "handoff.h"

#define POOL "25200-25299"

/* Start argv with stdout and stderr to the daemon's folder. */
static pid_t
spawn(struct daemon_proc *d, const char *const *argv)
{
	pid_t pid = fork();

	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		char log[192];
		int fd;

		snprintf(log, sizeof(log), "%s/server.log", d->dir);
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static const char *
server_log(struct daemon_proc *d)
{
	static char buf[4096];
	char path[192];
	FILE *f;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/server.log", d->dir);
	if ((f = fopen(path, "re")) != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static void
stop(pid_t pid)
{
	kill(pid, SIGTERM);
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
}

/* Connect to 127.0.0.1:port, retrying for up to ms while refused. */
static int
connect_wait(int port, int ms)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int64_t deadline = now_ms() + ms;
	struct timeval tv = {5, 0};

	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(fd, 0);
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
			setsockopt(
			    fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			return fd;
		}
		close(fd);
		if (now_ms() > deadline)
			return -1;
		usleep(10000);
	}
}

/* Send req (may be NULL) and read until EOF; malloc'd text. */
static char *
exchange(int fd, const char *req)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	ssize_t n;

	if (req != NULL)
		harness_send(fd, req, strlen(req));
	while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
	return buf;
}

/* GET path from 127.0.0.1:port over HTTP/1.0; the whole response. */
static char *
http_get(int port, const char *path)
{
	char req[256];
	int fd = connect_wait(port, 10000);

	ck_assert_msg(fd >= 0, "nothing listens on %d", port);
	snprintf(req, sizeof(req),
	    "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n\r\n", path, port);
	return exchange(fd, req);
}

/* Lease one shared TCP port; its number and id (static). */
static int
lease_shared(int conn, const char **ret_id)
{
	static char id[80];
	json_object *r = harness_call(conn, "{\"op\":\"lease\"}");
	int port = lease_port(r, 0);

	ck_assert_str_eq(reply_str(r, "lease.hold"), "shared");
	snprintf(id, sizeof(id), "%s", lease_id(r));
	json_object_put(r);
	*ret_id = id;
	return port;
}

/* Whether the lease of port is still held by portd (not claimed). */
static bool
still_held(int conn, int port)
{
	json_object *r = harness_call(conn, "{\"op\":\"list\"}");
	json_object *arr = reply_get(r, "leases");
	bool held = false;

	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *l = json_object_array_get_idx(arr, i);
		if (json_object_get_int(json_object_array_get_idx(
		        reply_get(l, "ports"), 0)) == port)
			held = json_object_get_boolean(reply_get(l, "held"));
	}
	json_object_put(r);
	return held;
}

START_TEST(python_http_server_cobinds)
{
	struct daemon_proc d;
	const char *id;
	char portstr[16], file[192], *resp;
	int conn, port;
	FILE *f;
	pid_t srv;

	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	conn = harness_connect(d.sock);
	port = lease_shared(conn, &id);
	snprintf(file, sizeof(file), "%s/greeting.txt", d.dir);
	f = fopen(file, "we");
	fputs("served from a leased port\n", f);
	fclose(f);
	snprintf(portstr, sizeof(portstr), "%d", port);
	srv = spawn(&d,
	    (const char *[]){"/usr/bin/python3", "-m", "http.server", portstr,
	        "--bind", "127.0.0.1", "--directory", d.dir, NULL});
	resp = http_get(port, "/greeting.txt");
	ck_assert_msg(strstr(resp, "200") != NULL &&
	                  strstr(resp, "served from a leased port") != NULL,
	    "response: %s\nserver: %s", resp, server_log(&d));
	free(resp);
	/* Co-bind: portd never let go of the port. */
	ck_assert(still_held(conn, port));
	stop(srv);
	/* After the server, the port is still held: no one else binds. */
	ck_assert_int_eq(
	    hb_bind("0.0.0.0", false, SOCK_STREAM, port, false), EADDRINUSE);
	close(conn);
	harness_stop(&d);
}
END_TEST

START_TEST(node_server_cobinds)
{
	static const char js[] =
	    "require('http').createServer((q, s) => s.end('node says hi'))"
	    ".listen(+process.argv[1], '127.0.0.1')";
	struct daemon_proc d;
	const char *id;
	char portstr[16], *resp;
	int conn, port;
	pid_t srv;

	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	conn = harness_connect(d.sock);
	port = lease_shared(conn, &id);
	snprintf(portstr, sizeof(portstr), "%d", port);
	srv = spawn(
	    &d, (const char *[]){"/usr/bin/node", "-e", js, portstr, NULL});
	resp = http_get(port, "/");
	ck_assert_msg(strstr(resp, "node says hi") != NULL,
	    "response: %s\nserver: %s", resp, server_log(&d));
	free(resp);
	ck_assert(still_held(conn, port));
	stop(srv);
	close(conn);
	harness_stop(&d);
}
END_TEST

/* A server that binds without SO_REUSEADDR, answers once. */
static const char plain_py[] =
    "import socket, sys\n"
    "s = socket.socket()\n"
    "try:\n"
    "    s.bind(('127.0.0.1', int(sys.argv[1])))\n"
    "except OSError as e:\n"
    "    print('bind:', e, flush=True); sys.exit(3)\n"
    "s.listen()\n"
    "c, _ = s.accept()\n"
    "c.sendall(b'plain server\\n'); c.close()\n";

START_TEST(plain_server_needs_claim)
{
	struct daemon_proc d;
	const char *id;
	char portstr[16], *resp;
	json_object *r;
	int conn, port, st;
	pid_t srv;

	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	conn = harness_connect(d.sock);
	port = lease_shared(conn, &id);
	snprintf(portstr, sizeof(portstr), "%d", port);

	/* Held: the bind fails. */
	srv = spawn(&d, (const char *[]){
	                    "/usr/bin/python3", "-c", plain_py, portstr, NULL});
	ck_assert_int_eq(waitpid(srv, &st, 0), srv);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 3, "status %#x: %s",
	    st, server_log(&d));
	ck_assert_ptr_nonnull(strstr(server_log(&d), "Address already in use"));

	/* Claimed: it starts, and the lease stays recorded. */
	r = harness_call(conn, "{\"op\":\"claim\",\"lease\":\"%s\"}", id);
	ck_assert(reply_ok(r));
	json_object_put(r);
	srv = spawn(&d, (const char *[]){
	                    "/usr/bin/python3", "-c", plain_py, portstr, NULL});
	resp = exchange(connect_wait(port, 10000), NULL);
	ck_assert_msg(strcmp(resp, "plain server\n") == 0, "got '%s': %s", resp,
	    server_log(&d));
	free(resp);
	ck_assert_int_eq(waitpid(srv, &st, 0), srv);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert(hb_listed(conn, port) && !still_held(conn, port));
	close(conn);
	harness_stop(&d);
}
END_TEST

/*
 * What `portctl exec --fd` does: the socket from an fd lease at fd 3 of
 * a child with LISTEN_FDS=1, LISTEN_PID=<child>, LISTEN_FDNAMES.
 */
START_TEST(socket_activated_server)
{
	struct daemon_proc d;
	struct hb_reader rd;
	char bin[PATH_MAX], *resp;
	json_object *r;
	int conn, fds[4], nfds, port, st, c;
	pid_t srv;

	snprintf(bin, sizeof(bin), "%s", SOCKACT_HELLO);
	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	conn = harness_connect(d.sock);
	hb_reader_init(&rd, conn);
	r = hb_call(&rd, fds, 4, &nfds,
	    "{\"op\":\"lease\",\"fd\":true,\"scope\":\"session\","
	    "\"name\":\"web\"}");
	ck_assert_int_eq(nfds, 1);
	port = lease_port(r, 0);
	json_object_put(r);

	srv = fork();
	ck_assert_int_ne(srv, -1);
	if (srv == 0) {
		char pid[16];

		if (dup2(fds[0], 3) != 3) /* dup2 clears FD_CLOEXEC */
			_exit(126);
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		setenv("LISTEN_FDS", "1", 1);
		setenv("LISTEN_PID", pid, 1);
		setenv("LISTEN_FDNAMES", "web", 1);
		execl(bin, bin, (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	resp = exchange(connect_wait(port, 10000), NULL);
	ck_assert_str_eq(resp, "hello web\n");
	free(resp);
	ck_assert_int_eq(waitpid(srv, &st, 0), srv);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);

	/*
	 * The passed socket is the one portd holds: it still listens after
	 * the server exits (a connect is queued, nobody accepts) until the
	 * lease ends. Ending the session ends the lease, and then another
	 * server can listen there. (A plain bind may still meet the
	 * server's TIME_WAIT connection, so bind with SO_REUSEADDR.)
	 */
	c = connect_wait(port, 0);
	ck_assert_msg(c >= 0, "the held socket stopped listening");
	close(c);
	close(conn);
	for (int64_t t0 = now_ms();
	     hb_bind("::", false, SOCK_STREAM, port, true) != 0;) {
		ck_assert_msg(now_ms() - t0 < 1000, "port %d still held", port);
		usleep(5000);
	}
	conn = harness_connect(d.sock);
	ck_assert(!hb_listed(conn, port));
	close(conn);
	harness_stop(&d);
}
END_TEST

/* The same through portctl itself: `portctl exec --fd -- server`. */
START_TEST(socket_activated_server_via_portctl)
{
	struct daemon_proc d;
	char *resp;
	json_object *r, *a;
	int conn, port = 0, st;
	pid_t ctl;

	harness_start(&d, (const char *[]){"--pool", POOL, NULL});
	ctl = spawn(&d,
	    (const char *[]){PORTCTL_BIN, "--socket", d.sock, "--no-autostart",
	        "exec", "--fd", "--name", "web", "--", SOCKACT_HELLO, NULL});
	/* The lease shows who holds which port. */
	conn = harness_connect(d.sock);
	for (int64_t t0 = now_ms(); port == 0; usleep(5000)) {
		ck_assert_msg(
		    now_ms() - t0 < 5000, "no lease: %s", server_log(&d));
		r = harness_call(conn, "{\"op\":\"list\"}");
		a = reply_get(r, "leases");
		if (json_object_array_length(a) == 1)
			port = (int)json_object_get_int64(
			    json_object_array_get_idx(
			        reply_get(
			            json_object_array_get_idx(a, 0), "ports"),
			        0));
		json_object_put(r);
	}
	resp = exchange(connect_wait(port, 10000), NULL);
	ck_assert_str_eq(resp, "hello web\n");
	free(resp);
	ck_assert_int_eq(waitpid(ctl, &st, 0), ctl);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x: %s",
	    st, server_log(&d));
	/* portctl released the lease when the server exited. */
	ck_assert(!hb_listed(conn, port));
	close(conn);
	harness_stop(&d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("servers");
	TCase *tc = tcase_create("servers");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, python_http_server_cobinds);
	tcase_add_test(tc, node_server_cobinds);
	tcase_add_test(tc, plain_server_needs_claim);
	tcase_add_test(tc, socket_activated_server);
	tcase_add_test(tc, socket_activated_server_via_portctl);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
