/*
 * portd under a service manager, played by the test: readiness after the
 * restore, the watchdog, status, the fd store, and a restart that gets the
 * stored sockets back while a prober tries to steal every leased port.
 * Also socket activation through systemd-socket-activate.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "svcmgr.h"

#define POOL "25500-25599"

static const char *const pool_args[] = {"--pool", POOL, NULL};

static char sockpath[128];

static const char *
sock_of(const char *dir)
{
	snprintf(sockpath, sizeof(sockpath), "%s/portd.sock", dir);
	return sockpath;
}

/* Start portd in dir under m (m may be NULL) and wait until it answers. */
static pid_t
start_in(const char *dir, struct svcmgr *m, const char *wd, const int *fds,
    const char *const *names, int nfds)
{
	struct spawn s = {.dir = dir,
	    .args = pool_args,
	    .notify = m ? m->path : NULL,
	    .watchdog_usec = wd,
	    .fds = fds,
	    .fdnames = names,
	    .nfds = nfds};
	pid_t pid = spawn_portd(&s);

	if (!harness_wait_ready(sock_of(dir), 5000))
		ck_abort_msg("portd did not start: %s", dir_log(dir));
	return pid;
}

/* A fresh folder made into dir, its service manager m, portd started there
 * under it (its pid in *ret_pid), and a connection to that portd. */
static int
start_connected(char *dir, struct svcmgr *m, pid_t *ret_pid)
{
	make_dir(dir);
	svcmgr_open(m, dir);
	*ret_pid = start_in(dir, m, NULL, NULL, NULL, 0);
	return harness_connect(sock_of(dir));
}

static void
stop_pid(pid_t pid, const char *dir)
{
	int status;

	kill(pid, SIGTERM);
	status = harness_wait_exit(pid, 5000);
	ck_assert_msg(
	    status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "portd did not exit cleanly (%#x): %s", status, dir_log(dir));
}

/* Lease with the given arguments; returns the reply (caller puts it). */
static json_object *
lease(int c, const char *args)
{
	json_object *r = harness_call(c, "{\"op\":\"lease\"%s}", args);

	ck_assert_msg(
	    reply_ok(r), "lease %s: %s", args, json_object_to_json_string(r));
	return r;
}

static json_object *
list(const char *dir)
{
	int c = harness_connect(sock_of(dir));
	json_object *r, *a;

	ck_assert_int_ne(c, -1);
	r = harness_call(c, "{\"op\":\"list\"}");
	close(c);
	ck_assert(reply_ok(r));
	a = json_object_get(reply_get(r, "leases"));
	json_object_put(r);
	return a;
}

/* From index from, the first notify message with line `what` (FDSTORE=1,
 * FDSTOREREMOVE=1) for lease id; -1 if none. */
static int
find_fd_msg(struct svcmgr *m, int from, const char *what, const char *id)
{
	char name[64];

	snprintf(name, sizeof(name), "FDNAME=%s", id);
	for (int i = from; i < m->nmsgs; i++)
		if (svc_msg_has(&m->msgs[i], what) &&
		    svc_msg_has(&m->msgs[i], name))
			return i;
	return -1;
}

static int
find_store(struct svcmgr *m, int from, const char *id)
{
	return find_fd_msg(m, from, "FDSTORE=1", id);
}

static int
find_remove(struct svcmgr *m, int from, const char *id)
{
	return find_fd_msg(m, from, "FDSTOREREMOVE=1", id);
}

/* The line status (a STATUS=) reaches the service manager within 3 s,
 * among its messages from index from on. */
static void
expect_status(struct svcmgr *m, int from, const char *status)
{
	ck_assert_int_ne(svcmgr_wait(m, from, status, 3000), -1);
}

/* op ("release", "claim") on lease id, answered ok. */
static void
lease_op_ok(int c, const char *op, const char *id)
{
	json_object *r =
	    harness_call(c, "{\"op\":\"%s\",\"lease\":\"%s\"}", op, id);

	ck_assert(reply_ok(r));
	json_object_put(r);
}

/* READY=1 comes after the journal's leases are back, and they are
 * listable at once. */
START_TEST(test_ready_after_restore)
{
	char dir[64], id1[32], id2[32];
	struct svcmgr m;
	json_object *r, *arr;
	int c, ready, s1, s2;
	pid_t pid;

	make_dir(dir);
	pid = start_in(dir, NULL, NULL, NULL, NULL, 0);
	c = harness_connect(sock_of(dir));
	r = lease(c, ",\"ttl\":600");
	snprintf(id1, sizeof(id1), "%s", lease_id(r));
	json_object_put(r);
	r = lease(c, ",\"ttl\":600,\"proto\":\"both\",\"count\":2");
	snprintf(id2, sizeof(id2), "%s", lease_id(r));
	json_object_put(r);
	close(c);
	stop_pid(pid, dir);

	svcmgr_open(&m, dir);
	{
		struct spawn s = {
		    .dir = dir, .args = pool_args, .notify = m.path};
		pid = spawn_portd(&s);
	}
	ready = svcmgr_wait(&m, 0, "READY=1", 5000);
	ck_assert_msg(ready != -1, "no READY=1: %s", dir_log(dir));
	/* Listable the moment READY arrives: no waiting for the socket. */
	arr = list(dir);
	ck_assert_int_eq(json_object_array_length(arr), 2);
	ck_assert_ptr_nonnull(find_lease(arr, id1));
	ck_assert_ptr_nonnull(find_lease(arr, id2));
	json_object_put(arr);
	/* The restored sockets were stored before READY, and READY says
	 * how many leases there are. */
	s1 = find_store(&m, 0, id1);
	s2 = find_store(&m, 0, id2);
	ck_assert_int_ne(s1, -1);
	ck_assert_int_ne(s2, -1);
	ck_assert_int_lt(s1, ready);
	ck_assert_int_lt(s2, ready);
	ck_assert_int_eq(m.msgs[s2].nfds, 4);
	ck_assert(svc_msg_has(&m.msgs[ready], "STATUS=2 lease(s), 3 port(s) "
	                                      "held"));
	ck_assert_int_eq(svcmgr_find(&m, ready + 1, "READY=1"), -1);
	stop_pid(pid, dir);
	svcmgr_close(&m);
	remove_dir(dir);
}
END_TEST

/* WATCHDOG_USEC=400000: a ping about every 200 ms. */
START_TEST(test_watchdog_cadence)
{
	char dir[64];
	struct svcmgr m;
	int64_t t0;
	int ready, pings = 0;
	pid_t pid;

	make_dir(dir);
	svcmgr_open(&m, dir);
	pid = start_in(dir, &m, "400000", NULL, NULL, 0);
	ready = svcmgr_wait(&m, 0, "READY=1", 5000);
	ck_assert_int_ne(ready, -1);
	t0 = now_ms();
	svcmgr_pump(&m, 2000);
	for (int i = ready; i < m.nmsgs; i++)
		if (svc_msg_has(&m.msgs[i], "WATCHDOG=1") && m.msgs[i].at >= t0)
			pings++;
	fprintf(stderr, "watchdog: %d pings in 2 s\n", pings);
	ck_assert_msg(pings >= 6 && pings <= 14, "%d pings in 2 s", pings);
	stop_pid(pid, dir);
	svcmgr_close(&m);
	remove_dir(dir);
}
END_TEST

/* No WATCHDOG_USEC: no pings at all. */
START_TEST(test_no_watchdog_without_usec)
{
	char dir[64];
	struct svcmgr m;
	pid_t pid;

	make_dir(dir);
	svcmgr_open(&m, dir);
	pid = start_in(dir, &m, NULL, NULL, NULL, 0);
	ck_assert_int_ne(svcmgr_wait(&m, 0, "READY=1", 5000), -1);
	svcmgr_pump(&m, 600);
	ck_assert_int_eq(svcmgr_find(&m, 0, "WATCHDOG=1"), -1);
	stop_pid(pid, dir);
	svcmgr_close(&m);
	remove_dir(dir);
}
END_TEST

/* FDSTORE per lease (named by id, FDPOLL=0, its sockets), removal on
 * release and claim, STATUS= updates, STOPPING=1 on SIGTERM. */
START_TEST(test_fdstore_messages)
{
	char dir[64], ida[32], idb[32], idc[32];
	struct svcmgr m;
	json_object *r;
	int c, i, pa, pb[2], pc, start, status;
	pid_t pid;

	make_dir(dir);
	svcmgr_open(&m, dir);
	pid = start_in(dir, &m, NULL, NULL, NULL, 0);
	ck_assert_int_ne(svcmgr_wait(&m, 0, "READY=1", 5000), -1);
	start = m.nmsgs;
	c = harness_connect(sock_of(dir));
	r = lease(c, "");
	snprintf(ida, sizeof(ida), "%s", lease_id(r));
	pa = lease_port(r, 0);
	json_object_put(r);
	r = lease(c, ",\"proto\":\"both\",\"count\":2");
	snprintf(idb, sizeof(idb), "%s", lease_id(r));
	pb[0] = lease_port(r, 0);
	pb[1] = lease_port(r, 1);
	json_object_put(r);
	r = lease(c, ",\"proto\":\"udp\"");
	snprintf(idc, sizeof(idc), "%s", lease_id(r));
	pc = lease_port(r, 0);
	json_object_put(r);
	svcmgr_pump(&m, 100);

	i = find_store(&m, start, ida);
	ck_assert_int_ne(i, -1);
	ck_assert(svc_msg_has(&m.msgs[i], "FDPOLL=0"));
	ck_assert_int_eq(m.msgs[i].nfds, 1);
	ck_assert_int_eq(m.msgs[i].port[0], pa);
	ck_assert_int_eq(m.msgs[i].type[0], SOCK_STREAM);

	i = find_store(&m, start, idb);
	ck_assert_int_ne(i, -1);
	ck_assert(svc_msg_has(&m.msgs[i], "FDPOLL=0"));
	ck_assert_int_eq(m.msgs[i].nfds, 4);
	for (int k = 0; k < 4; k++) {
		int n = 0;
		ck_assert(
		    m.msgs[i].port[k] == pb[0] || m.msgs[i].port[k] == pb[1]);
		for (int j = 0; j < 4; j++)
			n += m.msgs[i].port[j] == m.msgs[i].port[k] &&
			     m.msgs[i].type[j] != m.msgs[i].type[k];
		ck_assert_int_eq(n, 1); /* one TCP and one UDP a port */
	}

	i = find_store(&m, start, idc);
	ck_assert_int_ne(i, -1);
	ck_assert_int_eq(m.msgs[i].nfds, 1);
	ck_assert_int_eq(m.msgs[i].port[0], pc);
	ck_assert_int_eq(m.msgs[i].type[0], SOCK_DGRAM);
	ck_assert_int_eq(svcmgr_stored(&m, NULL, NULL, NULL, 64), 6);

	/* STATUS= follows the change within about a second. */
	expect_status(
	    &m, start, "STATUS=3 lease(s), 4 port(s), 1 connection(s)");

	start = m.nmsgs;
	lease_op_ok(c, "release", ida);
	lease_op_ok(c, "claim", idb);
	svcmgr_pump(&m, 100);
	ck_assert_int_ne(find_remove(&m, start, ida), -1);
	ck_assert_int_ne(find_remove(&m, start, idb), -1);
	ck_assert_int_eq(find_remove(&m, start, idc), -1);
	ck_assert_int_eq(svcmgr_stored(&m, NULL, NULL, NULL, 64), 1);
	ck_assert_int_eq(svcmgr_stored(&m, idc, NULL, NULL, 64), 1);
	expect_status(
	    &m, start, "STATUS=2 lease(s), 3 port(s), 1 connection(s)");
	close(c);

	/* Stopping says so, and takes nothing out of the store. */
	start = m.nmsgs;
	kill(pid, SIGTERM);
	status = harness_wait_exit(pid, 5000);
	ck_assert(
	    status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	svcmgr_pump(&m, 50);
	ck_assert_int_ne(svcmgr_find(&m, start, "STOPPING=1"), -1);
	for (int k = start; k < m.nmsgs; k++)
		ck_assert_msg(!strstr(m.msgs[k].text, "FDSTOREREMOVE"),
		    "stopping removed a stored socket: %s", m.msgs[k].text);
	ck_assert_int_eq(svcmgr_stored(&m, idc, NULL, NULL, 64), 1);
	/* The store's copy keeps the port held with portd gone. */
	ck_assert(!port_bindable((uint16_t)pc, 2));
	svcmgr_close(&m);
	ck_assert(port_bindable((uint16_t)pc, 2));
	remove_dir(dir);
}
END_TEST

/* A listening API socket at path, as a socket unit would make it. */
static int
make_api_socket(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ne(fd, -1);
	unlink(path);
	ck_assert_uint_lt(strlen(path), sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path) + 1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(fd, 16), 0);
	return fd;
}

/*
 * A restart with the stored sockets passed back. Variant 0: SIGTERM, the
 * new portd makes its own API socket. Variant 1: SIGKILL, the API socket
 * comes from the manager as "api". A prober binds every leased port all
 * along and must never succeed.
 */
START_TEST(test_restart_with_stored_fds)
{
	static const char *leases[] = {",\"ttl\":600,\"count\":2",
	    ",\"ttl\":600,\"proto\":\"udp\"",
	    ",\"ttl\":600,\"proto\":\"both\",\"count\":3",
	    ",\"ttl\":600,\"hold\":\"exclusive\"", ",\"ttl\":600"};
	enum { NL = sizeof(leases) / sizeof(leases[0]) };
	char dir[64], ids[NL][32];
	const char *names[128];
	uint16_t ports[64];
	int protos[64], nports = 0, fds[128], nfds = 0, c, status, start;
	int claimed = NL - 1;
	ino_t inos[128];
	int ninos;
	struct svcmgr m;
	struct prober pr;
	json_object *arr;
	long tries, stolen;
	pid_t pid;

	make_dir(dir);
	svcmgr_open(&m, dir);
	pid = start_in(dir, &m, NULL, NULL, NULL, 0);
	ck_assert_int_ne(svcmgr_wait(&m, 0, "READY=1", 5000), -1);
	c = harness_connect(sock_of(dir));
	for (int i = 0; i < NL; i++) {
		json_object *r = lease(c, leases[i]);
		json_object *a = reply_get(r, "lease.ports");
		const char *proto = reply_str(r, "lease.proto");

		snprintf(ids[i], sizeof(ids[i]), "%s", lease_id(r));
		for (size_t k = 0;
		     i != claimed && k < json_object_array_length(a); k++) {
			ports[nports] = (uint16_t)lease_port(r, (int)k);
			protos[nports++] = strcmp(proto, "tcp") == 0   ? 1
			                   : strcmp(proto, "udp") == 0 ? 2
			                                               : 3;
		}
		json_object_put(r);
	}
	json_object_put(harness_call(
	    c, "{\"op\":\"claim\",\"lease\":\"%s\"}", ids[claimed]));
	close(c);
	svcmgr_pump(&m, 100);
	/* 2 + 1 + 6 + 1 sockets, the claimed lease's gone again. */
	ninos = svcmgr_stored(&m, NULL, fds, NULL, 128);
	ck_assert_int_eq(ninos, 10);
	for (int i = 0; i < ninos; i++)
		inos[i] = fd_inode(fds[i]);

	prober_start(&pr, ports, protos, nports);
	usleep(100000);
	kill(pid, _i == 0 ? SIGTERM : SIGKILL);
	status = harness_wait_exit(pid, 5000);
	ck_assert_int_ne(status, -1);
	/* Only the manager holds the ports now. */
	usleep(100000);

	if (_i == 1) {
		fds[nfds] = make_api_socket(sock_of(dir));
		names[nfds++] = "api";
	}
	nfds += svcmgr_stored(&m, NULL, fds + nfds, names + nfds, 128 - nfds);
	start = m.nmsgs;
	pid = start_in(dir, &m, NULL, fds, names, nfds);
	if (_i == 1)
		close(fds[0]);
	ck_assert_int_ne(svcmgr_wait(&m, start, "READY=1", 5000), -1);
	usleep(200000);
	stolen = prober_stop(&pr, &tries);
	fprintf(stderr, "restart variant %d: %ld bind attempts, %ld stolen\n",
	    _i, tries, stolen);
	ck_assert_int_gt(tries, 0);
	ck_assert_int_eq(stolen, 0);

	arr = list(dir);
	ck_assert_int_eq(json_object_array_length(arr), NL);
	for (int i = 0; i < NL; i++) {
		json_object *l = find_lease(arr, ids[i]);
		ck_assert_ptr_nonnull(l);
		ck_assert_int_eq(json_object_get_boolean(reply_get(l, "held")),
		    i != claimed);
	}
	json_object_put(arr);
	for (int i = 0; i < nports; i++)
		ck_assert(!port_bindable(ports[i], protos[i]));
	/* The very same sockets: nothing was bound again. */
	for (int i = 0; i < ninos; i++)
		ck_assert_msg(proc_has_inode(pid, inos[i]),
		    "socket %d was not taken over", i);
	ck_assert(strstr(dir_log(dir), "10 socket(s) from the service "
	                               "manager's store") != NULL);
	/* And stored again under the same names. */
	svcmgr_pump(&m, 50);
	ck_assert_int_eq(svcmgr_stored(&m, NULL, fds, NULL, 128), ninos);
	for (int i = 0; i < ninos; i++) {
		bool found = false;
		for (int k = 0; k < ninos; k++)
			found |= fd_inode(fds[k]) == inos[i];
		ck_assert(found);
	}
	if (_i == 1) /* the adopted API socket is systemd's: kept */
		ck_assert(strstr(dir_log(dir), "listening on") != NULL &&
		          strstr(strstr(dir_log(dir), "listening on") + 1,
		              "listening on") == NULL);
	stop_pid(pid, dir);
	svcmgr_close(&m);
	remove_dir(dir);
}
END_TEST

/* A stored socket whose lease is not in the journal is closed and taken
 * out of the store. */
START_TEST(test_stray_stored_fd)
{
	static const char stray[] = "L00000000deadbeef";
	char dir[64], id[32];
	const char *names[16];
	int fds[16], nfds, c, sfd, start;
	uint16_t sport = 25590;
	struct sockaddr_in sin = {
	    .sin_family = AF_INET, .sin_port = htons(sport)};
	struct svcmgr m;
	json_object *r, *arr;
	ino_t sino;
	pid_t pid;

	c = start_connected(dir, &m, &pid);
	r = lease(c, ",\"ttl\":600");
	snprintf(id, sizeof(id), "%s", lease_id(r));
	json_object_put(r);
	close(c);
	svcmgr_pump(&m, 100);
	stop_pid(pid, dir);

	sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(sfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	sino = fd_inode(sfd);
	nfds = svcmgr_stored(&m, NULL, fds, names, 15);
	ck_assert_int_eq(nfds, 1);
	fds[nfds] = sfd;
	names[nfds++] = stray;
	/* The manager keeps its copy in the store. */
	m.store[m.nstore].fd = sfd;
	snprintf(
	    m.store[m.nstore++].name, sizeof(m.store[0].name), "%s", stray);

	start = m.nmsgs;
	pid = start_in(dir, &m, NULL, fds, names, nfds);
	ck_assert_int_ne(svcmgr_wait(&m, start, "READY=1", 5000), -1);
	ck_assert_int_ne(find_remove(&m, start, stray), -1);
	ck_assert_int_lt(
	    find_remove(&m, start, stray), svcmgr_find(&m, start, "READY=1"));
	ck_assert(!proc_has_inode(pid, sino));
	ck_assert_int_eq(svcmgr_stored(&m, stray, NULL, NULL, 4), 0);
	ck_assert(try_bind(AF_INET, SOCK_STREAM, sport, false) == 0);
	arr = list(dir);
	ck_assert_int_eq(json_object_array_length(arr), 1);
	ck_assert_ptr_nonnull(find_lease(arr, id));
	json_object_put(arr);
	stop_pid(pid, dir);
	svcmgr_close(&m);
	remove_dir(dir);
}
END_TEST

/*
 * portd that could not read its journal let go of every socket the store
 * passed back (none matched a lease), freeing their ports. It now refuses
 * to start, so the manager keeps them.
 */
START_TEST(regression_unreadable_journal_keeps_stored_fds)
{
	char dir[64], journal[160];
	const char *names[16];
	int fds[16], nfds, c, port, status;
	struct svcmgr m;
	json_object *r;
	pid_t pid;

	c = start_connected(dir, &m, &pid);
	r = lease(c, ",\"ttl\":600");
	port = lease_port(r, 0);
	json_object_put(r);
	close(c);
	svcmgr_pump(&m, 100);
	stop_pid(pid, dir);

	/* The journal becomes a directory: unreadable as a journal. */
	snprintf(journal, sizeof(journal), "%s.journal", sock_of(dir));
	ck_assert_int_eq(unlink(journal), 0);
	ck_assert_int_eq(mkdir(journal, 0700), 0);
	nfds = svcmgr_stored(&m, NULL, fds, names, 16);
	ck_assert_int_eq(nfds, 1);
	{
		struct spawn s = {.dir = dir,
		    .args = pool_args,
		    .notify = m.path,
		    .fds = fds,
		    .fdnames = names,
		    .nfds = nfds};
		pid = spawn_portd(&s);
	}
	status = harness_wait_exit(pid, 5000);
	ck_assert_msg(
	    status != -1 && WIFEXITED(status) && WEXITSTATUS(status) != 0,
	    "portd started without its journal: %s", dir_log(dir));
	ck_assert_msg(strstr(dir_log(dir), "refusing to start") != NULL, "%s",
	    dir_log(dir));
	/* The store still holds the port. */
	ck_assert_int_eq(svcmgr_stored(&m, NULL, NULL, NULL, 16), 1);
	ck_assert_int_eq(
	    try_bind(AF_INET, SOCK_STREAM, port, false), EADDRINUSE);
	svcmgr_close(&m);
	remove_dir(dir);
}
END_TEST

/* Socket inode of the listening Unix socket at path (/proc/net/unix). */
static int
unix_listeners(const char *path, ino_t *out, int max)
{
	FILE *f = fopen("/proc/net/unix", "re");
	char line[512];
	int n = 0;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL && n < max) {
		unsigned long long ino;
		char p[256] = "";
		unsigned st;

		if (sscanf(line, "%*s %*s %*s %*s %*s %x %llu %255s", &st, &ino,
		        p) == 3 &&
		    strcmp(p, path) == 0 && st == 1 /* SS_UNCONNECTED */)
			out[n++] = (ino_t)ino;
	}
	fclose(f);
	return n;
}

/* systemd-socket-activate -l DIR/portd.sock --fdname=api portd ...: the
 * daemon serves the socket it was given and leaves the file alone. */
START_TEST(test_socket_activate)
{
	static const char ssa[] = "/usr/bin/systemd-socket-activate";
	char dir[64], larg[160];
	const char *prefix[5];
	struct stat before, after;
	ino_t inos[8];
	json_object *r;
	int c, n, status;
	pid_t pid;

	if (access(ssa, X_OK) != 0) {
		fprintf(stderr, "skipped: no %s\n", ssa);
		return;
	}
	make_dir(dir);
	snprintf(larg, sizeof(larg), "--listen=%s", sock_of(dir));
	prefix[0] = ssa;
	prefix[1] = larg;
	prefix[2] = "--fdname=api";
	prefix[3] = NULL;
	{
		struct spawn s = {
		    .dir = dir, .args = pool_args, .prefix = prefix};
		pid = spawn_portd(&s);
	}
	ck_assert_msg(
	    harness_wait_ready(sock_of(dir), 5000), "%s", dir_log(dir));
	ck_assert_int_eq(lstat(sock_of(dir), &before), 0);
	c = harness_connect(sock_of(dir));
	r = harness_call(c, "{\"op\":\"hello\",\"version\":1}");
	ck_assert(reply_ok(r));
	ck_assert_int_eq(reply_int(r, "pid"), pid);
	json_object_put(r);
	close(c);
	/* One listener at the path, and portd holds it: not bound again. */
	n = unix_listeners(sock_of(dir), inos, 8);
	ck_assert_int_eq(n, 1);
	ck_assert(proc_has_inode(pid, inos[0]));
	ck_assert(strstr(dir_log(dir), "listening on") == NULL);

	kill(pid, SIGTERM);
	status = harness_wait_exit(pid, 5000);
	ck_assert(
	    status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* systemd owns the file: still there, the same one. */
	ck_assert_int_eq(lstat(sock_of(dir), &after), 0);
	ck_assert(S_ISSOCK(after.st_mode));
	ck_assert_int_eq(after.st_ino, before.st_ino);
	remove_dir(dir);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("service");
	TCase *tc = tcase_create("service");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_ready_after_restore);
	tcase_add_test(tc, test_watchdog_cadence);
	tcase_add_test(tc, test_no_watchdog_without_usec);
	tcase_add_test(tc, test_fdstore_messages);
	tcase_add_loop_test(tc, test_restart_with_stored_fds, 0, 2);
	tcase_add_test(tc, test_stray_stored_fd);
	tcase_add_test(tc, regression_unreadable_journal_keeps_stored_fds);
	tcase_add_test(tc, test_socket_activate);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
