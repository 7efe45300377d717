/* The in-process portd of the daemon fuzz targets (inproc.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon.h"
#include "inproc.h"

/* What main.c defines in the daemon. */
struct event_base *portd_base;
struct config portd_cfg;
int64_t portd_started_ms;

/* A root client may ask portd to stop: the loop is ours, so it goes on. */
void
portd_shutdown(const char *reason)
{
	(void)reason;
}

/* A small pool and small limits, so that inputs reach every boundary. */
#define POOL_LO 20000
#define POOL_HI 20047

struct client {
	int fd; /* our end, -1 when closed */
	bool eof;
	int replies;
};

static struct client clients[INPROC_CLIENTS];
static int pipes[64]; /* write ends of pipes whose read ends were sent */
static int npipes;
static int base_fds;

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	CHECK(d != NULL);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own */
}

/* A network namespace of our own, with lo up, when we may make one. */
static void
own_netns(void)
{
	struct ifreq ifr;
	int s;

	if (unshare(CLONE_NEWNET) == -1) {
		fprintf(stderr,
		    "inproc: no network namespace of our own (%s): ports "
		    "%d-%d and those inputs name are bound on this host\n",
		    strerror(errno), POOL_LO, POOL_HI);
		return;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(s != -1);
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	CHECK(ioctl(s, SIOCGIFFLAGS, &ifr) == 0);
	ifr.ifr_flags |= IFF_UP;
	CHECK(ioctl(s, SIOCSIFFLAGS, &ifr) == 0);
	close(s);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

/* libFuzzer's hook, and tests/fuzz/replay.c's: the daemon targets all
 * start the same way. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	inproc_init();
	return 0;
}

void
inproc_init(void)
{
	signal(SIGPIPE, SIG_IGN);
	own_netns();
	log_init(getenv("INPROC_DEBUG") != NULL ? LOG_DEBUG : LOG_EMERG);
	config_defaults(&portd_cfg);
	portd_cfg.pool_lo = POOL_LO;
	portd_cfg.pool_hi = POOL_HI;
	portd_cfg.quota = 20;
	portd_cfg.max_leases = 24;
	portd_cfg.max_fd_replies = 4;
	portd_cfg.max_output = 16384;
	CHECK((portd_base = event_base_new()) != NULL);
	portd_started_ms = portd_clock_real();
	CHECK(alloc_init(POOL_LO, POOL_HI) == 0);
	CHECK(lease_init() == 0);
	for (int i = 0; i < INPROC_CLIENTS; i++)
		clients[i].fd = -1;
}

void
inproc_begin(void)
{
	base_fds = count_fds();
}

bool
inproc_connected(int i)
{
	return clients[i].fd != -1 && !clients[i].eof;
}

void
inproc_connect(int i, uid_t uid)
{
	int sv[2];

	inproc_close(i); /* one that portd closed */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	          sv) == 0);
	clients[i] = (struct client){.fd = sv[0]};
	/* As listener.c does after accept: the peer is this process. */
	struct peer peer = {.fd = sv[1],
	    .uid = uid,
	    .pid = getpid(),
	    .accepted = proc_now_ticks()};

	if (conn_new(&peer) == NULL)
		close(sv[1]);
}

void
inproc_send(int i, const void *p, size_t n, bool with_fd)
{
	struct client *c = &clients[i];
	const char *s = p;
	ssize_t w;

	if (c->fd == -1 || n == 0)
		return;
	if (with_fd && npipes < (int)(sizeof(pipes) / sizeof(pipes[0]))) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int))];
		} u;
		struct iovec v = {.iov_base = (void *)s, .iov_len = n};
		struct msghdr m = {.msg_iov = &v,
		    .msg_iovlen = 1,
		    .msg_control = u.buf,
		    .msg_controllen = sizeof(u.buf)};
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		int pfd[2];

		CHECK(pipe2(pfd, O_CLOEXEC | O_NONBLOCK) == 0);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pfd[0], sizeof(int));
		w = sendmsg(c->fd, &m, MSG_DONTWAIT);
		close(pfd[0]);
		pipes[npipes++] = pfd[1];
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
	/* What the socket does not take now is dropped (inputs are far
	 * smaller than a socket buffer). */
	while (n > 0 && (w = send(c->fd, s, n, MSG_DONTWAIT)) > 0) {
		s += w;
		n -= (size_t)w;
	}
}

void
inproc_shutdown(int i)
{
	if (clients[i].fd != -1)
		shutdown(clients[i].fd, SHUT_WR);
}

void
inproc_close(int i)
{
	if (clients[i].fd != -1)
		close(clients[i].fd);
	clients[i].fd = -1;
}

int
inproc_replies(int i)
{
	return clients[i].replies;
}

/* Read what client i has; true if anything came. Fds are closed. */
static bool
drain(struct client *c)
{
	char buf[65536];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * PROTO_MAX_SOCKETS)];
	} u;
	bool moved = false;

	while (c->fd != -1 && !c->eof) {
		struct iovec v = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr m = {.msg_iov = &v,
		    .msg_iovlen = 1,
		    .msg_control = u.buf,
		    .msg_controllen = sizeof(u.buf)};
		ssize_t n = recvmsg(c->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n == -1) {
			CHECK(errno == EAGAIN || errno == ECONNRESET);
			if (errno == ECONNRESET)
				c->eof = true;
			break;
		}
		/* portd never sends more descriptors than a reply says. */
		CHECK(!(m.msg_flags & MSG_CTRUNC));
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm != NULL;
		     cm = CMSG_NXTHDR(&m, cm)) {
			size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int fd;

			CHECK(cm->cmsg_type == SCM_RIGHTS);
			for (size_t k = 0; k < nfd; k++) {
				memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int),
				    sizeof(int));
				close(fd);
			}
		}
		if (n == 0) {
			c->eof = true;
			moved = true;
			break;
		}
		for (ssize_t k = 0; k < n; k++)
			c->replies += buf[k] == '\n';
		moved = true;
	}
	return moved;
}

void
inproc_pump(bool read_replies)
{
	/* Quiet twice in a row: the loop has no ready event left and no
	 * client got a byte. Timers (deadlines, TTLs) are not waited for. */
	for (int quiet = 0; quiet < 2;) {
		bool moved = false;

		event_base_loop(portd_base, EVLOOP_NONBLOCK);
		for (int i = 0; read_replies && i < INPROC_CLIENTS; i++)
			moved |= drain(&clients[i]);
		quiet = moved ? 0 : quiet + 1;
	}
}

struct tally {
	int leases, ports, sockets, markers;
	int uid_ports[4]; /* for the uids of uid_of */
	uid_t uids[4];
};

static void
tally_one(struct lease *l, void *arg)
{
	struct tally *t = arg;
	struct proto_lease v;
	int n;

	lease_view(l, &v);
	CHECK(lease_find(v.id) == l);
	CHECK(v.nports >= 1 && v.nports <= PROTO_MAX_COUNT);
	for (int i = 0; i < v.nports; i++) {
		CHECK(alloc_owner(v.ports[i]) == l);
		/* Both protocols' markers, as the lease's protocol asks. */
		for (int k = 0; k < 2; k++) {
			enum proto_proto p = k == 0 ? PROTO_TCP : PROTO_UDP;
			bool want = (v.proto & p) != 0;

			CHECK(alloc_marked(v.ports[i], p) == want);
			t->markers += want;
		}
	}
	lease_sockets(l, &n);
	CHECK(n >= 0 && n <= PROTO_MAX_SOCKETS);
	CHECK(lease_held(l) == (n > 0));
	CHECK(v.held == lease_held(l));
	t->sockets += n;
	t->ports += v.nports;
	t->leases++;
	for (int k = 0; k < 4; k++)
		if (t->uids[k] == v.uid)
			t->uid_ports[k] += v.nports;
}

void
inproc_check(void)
{
	struct tally t = {.uids = {0, 1000, 1001, 65534}};
	int owned = 0, clients_open = 0;

	lease_foreach(true, 0, tally_one, &t);
	CHECK(t.leases == lease_count());
	CHECK(t.leases <= portd_cfg.max_leases);
	CHECK(t.ports == lease_ports_held());
	CHECK(t.sockets == lease_sockets_held());
	for (int k = 0; k < 4; k++) {
		CHECK(lease_uid_ports(t.uids[k]) == t.uid_ports[k]);
		CHECK(t.uid_ports[k] >= 0 && t.uid_ports[k] <= portd_cfg.quota);
	}
	/* The pool: every port is free or owned by the lease that has it. */
	for (int p = POOL_LO; p <= POOL_HI; p++)
		owned += alloc_owner((uint16_t)p) != NULL;
	CHECK(alloc_pool_free() + owned == alloc_pool_size());
	for (int i = 0; i < INPROC_CLIENTS; i++)
		clients_open += clients[i].fd != -1;
	/* Every descriptor is accounted for: ours, the connections', the
	 * held sockets, the markers and the process watchers. */
	CHECK(count_fds() == base_fds + npipes + clients_open + conn_count() +
	                         t.sockets + t.markers + proc_count());
	CHECK(conn_queued_output() <= portd_cfg.max_output_total);
}

static void
collect(struct lease *l, void *arg)
{
	struct lease **all = arg;

	for (int i = 0;; i++)
		if (all[i] == NULL) {
			all[i] = l;
			break;
		}
}

void
inproc_end(void)
{
	struct lease *all[256] = {0};
	struct proto_error err;

	for (int i = 0; i < INPROC_CLIENTS; i++)
		inproc_close(i);
	inproc_pump(true);
	/* Each connection goes when its client does. */
	CHECK(conn_count() == 0);
	CHECK(conn_queued_output() == 0);
	CHECK(lease_count() < (int)(sizeof(all) / sizeof(all[0])));
	lease_foreach(true, 0, collect, all);
	for (int i = 0; all[i] != NULL; i++)
		CHECK(lease_release(all[i], &err) == 0);
	inproc_pump(true);
	CHECK(lease_count() == 0 && lease_ports_held() == 0);
	CHECK(lease_sockets_held() == 0 && proc_count() == 0);
	CHECK(alloc_owner(POOL_LO) == NULL);
	/* The read ends sent with requests were let go by portd. */
	for (int i = 0; i < npipes; i++) {
		CHECK(write(pipes[i], "x", 1) == -1 && errno == EPIPE);
		close(pipes[i]);
	}
	npipes = 0;
	for (int i = 0; i < INPROC_CLIENTS; i++)
		clients[i] = (struct client){.fd = -1};
	CHECK(count_fds() == base_fds);
}
