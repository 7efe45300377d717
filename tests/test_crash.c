/*
 * SIGKILL during a lease storm: every lease the daemon acknowledged and
 * did not acknowledge releasing comes back after a restart on the same
 * socket, held; no acknowledged release comes back; and the new daemon
 * holds no descriptor beyond a fresh daemon's plus its held sockets.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "svcmgr.h"

#define POOL      "25800-25999" /* 25700-25799 is test_restart's */
#define NCLIENTS  4
#define MAXHELD   12
#define MAXLEASES 65536
#define HASHSIZE  131072

static const char *const pool_args[] = {"--pool", POOL, NULL};

/* What the clients saw acknowledged, from the records file. */
struct rec {
	char id[32];
	uint16_t ports[4];
	int nports, protos; /* bit 1 TCP, bit 2 UDP */
	bool acked, release_tried, released, present;
};

static struct rec recs[MAXLEASES];
static int nrecs;
static int slots[HASHSIZE]; /* index + 1 into recs, open addressing */

static struct rec *
rec_get(const char *id)
{
	unsigned h = 2166136261u;

	for (const char *p = id; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	for (h %= HASHSIZE; slots[h] != 0; h = (h + 1) % HASHSIZE)
		if (strcmp(recs[slots[h] - 1].id, id) == 0)
			return &recs[slots[h] - 1];
	ck_assert_int_lt(nrecs, MAXLEASES);
	memset(&recs[nrecs], 0, sizeof(recs[0]));
	snprintf(recs[nrecs].id, sizeof(recs[0].id), "%s", id);
	slots[h] = ++nrecs;
	return &recs[nrecs - 1];
}

static void
load_records(const char *path)
{
	FILE *f = fopen(path, "re");
	char line[256];

	nrecs = 0;
	memset(slots, 0, sizeof(slots));
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char kind, id[32];
		int protos, n, p[4] = {0};
		struct rec *r;

		if (sscanf(line, "%c %31s", &kind, id) != 2)
			continue;
		r = rec_get(id);
		switch (kind) {
		case 'A':
			n = sscanf(line, "A %*s %d %d %d %d %d", &protos, &p[0],
			    &p[1], &p[2], &p[3]);
			ck_assert_int_ge(n, 2);
			r->acked = true;
			r->protos = protos;
			r->nports = n - 1;
			for (int i = 0; i < r->nports; i++)
				r->ports[i] = (uint16_t)p[i];
			break;
		case 'T':
			r->release_tried = true;
			break;
		case 'R':
			r->released = true;
			break;
		}
	}
	fclose(f);
}

/* One record line, appended in one write so clients never interleave. */
static void record(int fd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
record(int fd, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (write(fd, buf, (size_t)n) != n)
		_exit(3);
}

/* A request in a client: the reply, or NULL once the daemon is gone. */
static json_object *
client_call(int c, const char *req)
{
	char *line;
	json_object *o;

	if (send(c, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
		return NULL;
	if ((line = harness_recv_line(c, 5000, NULL, NULL)) == NULL)
		return NULL;
	o = json_tokener_parse(line);
	free(line);
	return o;
}

static void
client(const char *sock, const char *recfile, unsigned seed)
{
	static const char *protos[] = {"tcp", "udp", "both"};
	char held[MAXHELD][32], req[256];
	int nheld = 0, c, rfd;

	srandom(seed);
	rfd = open(recfile, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (rfd == -1 || (c = harness_connect(sock)) == -1)
		_exit(2);
	for (;;) {
		json_object *r;

		if (nheld < MAXHELD && (nheld == 0 || random() % 3 != 0)) {
			int k = (int)(random() % 3),
			    cnt = 1 + (int)(random() % 2);
			json_object *a;
			char line[128];
			int len;

			snprintf(req, sizeof(req),
			    "{\"op\":\"lease\",\"ttl\":600,\"proto\":\"%s\","
			    "\"count\":%d}\n",
			    protos[k], cnt);
			if ((r = client_call(c, req)) == NULL)
				break;
			if (!reply_ok(r)) {
				json_object_put(r);
				continue;
			}
			snprintf(held[nheld], sizeof(held[0]), "%s",
			    reply_str(r, "lease.id"));
			a = reply_get(r, "lease.ports");
			len = snprintf(
			    line, sizeof(line), "A %s %d", held[nheld], k + 1);
			for (size_t i = 0; i < json_object_array_length(a); i++)
				len += snprintf(line + len,
				    sizeof(line) - (size_t)len, " %d",
				    (int)json_object_get_int64(
				        json_object_array_get_idx(a, i)));
			record(rfd, "%s\n", line);
			nheld++;
			json_object_put(r);
		} else {
			int i = (int)(random() % nheld);

			record(rfd, "T %s\n", held[i]);
			snprintf(req, sizeof(req),
			    "{\"op\":\"release\",\"lease\":\"%s\"}\n", held[i]);
			if ((r = client_call(c, req)) == NULL)
				break;
			if (reply_ok(r))
				record(rfd, "R %s\n", held[i]);
			json_object_put(r);
			memcpy(held[i], held[--nheld], sizeof(held[0]));
		}
	}
	_exit(0);
}

static pid_t
start_in(const char *dir)
{
	struct spawn s = {.dir = dir, .args = pool_args};
	char sock[128];
	pid_t pid = spawn_portd(&s);

	snprintf(sock, sizeof(sock), "%s/portd.sock", dir);
	if (!harness_wait_ready(sock, 10000))
		ck_abort_msg("portd did not start: %s", dir_log(dir));
	return pid;
}

/* Descriptors of a fresh daemon with no lease and no client. */
static int
baseline_fds(void)
{
	char dir[64];
	int n, status;
	pid_t pid;

	make_dir(dir);
	pid = start_in(dir);
	usleep(50000);
	n = proc_fd_count(pid);
	kill(pid, SIGTERM);
	status = harness_wait_exit(pid, 5000);
	ck_assert(status != -1 && WIFEXITED(status));
	remove_dir(dir);
	return n;
}

/* After a restart: the acknowledged state is back, and nothing more. */
static void
check_restored(const char *dir, pid_t pid, int baseline, int round)
{
	char sock[128];
	json_object *r, *a;
	int c, required = 0, present = 0, sockets = 0, fds = -1;

	snprintf(sock, sizeof(sock), "%s/portd.sock", dir);
	c = harness_connect(sock);
	ck_assert_int_ne(c, -1);
	r = harness_call(c, "{\"op\":\"list\",\"all\":true}");
	ck_assert(reply_ok(r));
	a = reply_get(r, "leases");
	for (int i = 0; i < nrecs; i++)
		recs[i].present = false;
	for (size_t k = 0; k < json_object_array_length(a); k++)
		rec_get(reply_str(json_object_array_get_idx(a, k), "id"))
		    ->present = true;
	for (int i = 0; i < nrecs; i++) {
		struct rec *rc = &recs[i];
		bool found = rc->present;

		if (rc->released)
			ck_assert_msg(!found,
			    "round %d: released lease %s came back", round,
			    rc->id);
		if (!rc->acked || rc->release_tried)
			continue;
		required++;
		ck_assert_msg(found, "round %d: lease %s was lost: %s", round,
		    rc->id, dir_log(dir));
		for (int k = 0; k < rc->nports; k++)
			ck_assert_msg(!port_bindable(rc->ports[k], rc->protos),
			    "round %d: port %u of %s is not held", round,
			    rc->ports[k], rc->id);
	}
	for (size_t k = 0; k < json_object_array_length(a); k++) {
		json_object *l = json_object_array_get_idx(a, k);
		int n = (int)json_object_array_length(reply_get(l, "ports"));
		present++;
		sockets +=
		    strcmp(reply_str(l, "proto"), "both") == 0 ? 2 * n : n;
	}
	json_object_put(r);
	ck_assert_int_eq(status_int(c, "sockets"), sockets);
	close(c);

	/* Once our connection is gone: baseline + held sockets + one
	 * host-wide marker per port and protocol (as many here, since every
	 * lease is held and holds one socket per protocol). */
	for (int64_t end = now_ms() + 2000; now_ms() < end; usleep(10000))
		if ((fds = proc_fd_count(pid)) == baseline + 2 * sockets)
			break;
	fprintf(stderr,
	    "round %d: %d records, %d required, %d present, %d sockets, "
	    "%d fds (baseline %d)\n",
	    round, nrecs, required, present, sockets, fds, baseline);
	ck_assert_msg(fds == baseline + 2 * sockets,
	    "round %d: %d descriptors, expected %d + 2 * %d", round, fds,
	    baseline, sockets);
}

START_TEST(test_sigkill_during_storm)
{
	char dir[64], recfile[128];
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	int baseline = baseline_fds(), status;
	pid_t pid, clients[NCLIENTS];

	fprintf(stderr, "seed %u\n", seed);
	srandom(seed);
	make_dir(dir);
	snprintf(recfile, sizeof(recfile), "%s/records", dir);
	close(open(recfile, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	pid = start_in(dir);
	for (int round = 1; round <= 4; round++) {
		char sock[128];

		snprintf(sock, sizeof(sock), "%s/portd.sock", dir);
		for (int i = 0; i < NCLIENTS; i++) {
			unsigned s = (unsigned)random();
			clients[i] = fork();
			ck_assert_int_ne(clients[i], -1);
			if (clients[i] == 0)
				client(sock, recfile, s);
		}
		usleep(200000 + (useconds_t)(random() % 600000));
		kill(pid, SIGKILL);
		ck_assert_int_ne(harness_wait_exit(pid, 5000), -1);
		for (int i = 0; i < NCLIENTS; i++) {
			status = harness_wait_exit(clients[i], 5000);
			ck_assert_msg(status != -1 && WIFEXITED(status) &&
			                  WEXITSTATUS(status) == 0,
			    "client %d: %#x", i, status);
		}
		load_records(recfile);
		pid = start_in(dir);
		check_restored(dir, pid, baseline, round);
	}
	kill(pid, SIGTERM);
	status = harness_wait_exit(pid, 5000);
	ck_assert(
	    status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	remove_dir(dir);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("crash");

	tcase_set_timeout(tc, 45);
	tcase_add_test(tc, test_sigkill_during_storm);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
