/*
 * Processes that own leases (scope process). One pidfd per process,
 * watched by the event loop: it becomes readable when the process exits.
 * Never polled, and safe against pid reuse: a pid is only trusted while
 * its pidfd says the process is alive, and its start time is recorded so
 * a restart can tell the same process from a new one with the same pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "fault.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* What a pidfd tells of its process (Linux 6.13+, <linux/pidfd.h>; the
 * kernel takes this first, 64-byte version of the struct). */
struct pidfd_info_v0 {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid,
	    fsgid;
	int32_t exit_code;
};
#define PIDFD_INFO_CREDS_ (1u << 1)
#define PIDFD_GET_INFO_V0 _IOWR(0xFF, 11, struct pidfd_info_v0)

struct proc {
	pid_t pid;
	int pidfd;
	uint64_t start; /* field 22 of /proc/PID/stat, ticks since boot */
	uid_t uid;
	int refs;
	struct event *ev;
	struct proc *next;
};

static struct proc *procs;
static int nprocs;
static struct proc_stats stats;

/* Ending a process's leases is a few syscalls a port: from 50 us up. */
const double proc_reclaim_bounds[PROC_RECLAIM_BUCKETS] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25};

const struct proc_stats *
proc_stats(void)
{
	return &stats;
}

double
proc_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
proc_count(void)
{
	return nprocs;
}

pid_t
proc_pid(const struct proc *p)
{
	return p->pid;
}

uint64_t
proc_start(const struct proc *p)
{
	return p->start;
}

static int
pidfd_open_(pid_t pid)
{
	if (FAULT_FAIL(PIDFD_OPEN))
		return -1;
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Whether the process behind pidfd has exited (readable pidfd). */
static bool
exited(int pidfd)
{
	struct pollfd pfd = {.fd = pidfd, .events = POLLIN};

	return poll(&pfd, 1, 0) != 0;
}

/* The start of /proc/PID/NAME, NUL-terminated, with open and one read
 * (stdio would add an fstat and a second read); -1 if pid is gone. */
static int
read_proc(pid_t pid, const char *name, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* The real uid of pid, from /proc/PID/status; -1 if gone. */
static int
proc_uid(pid_t pid, uid_t *ret_uid)
{
	char buf[4096], *p;
	unsigned uid;

	if (read_proc(pid, "status", buf, sizeof(buf)) == -1 ||
	    (p = strstr(buf, "\nUid:")) == NULL ||
	    sscanf(p + 1, "Uid: %u", &uid) != 1)
		return -1;
	*ret_uid = uid;
	return 0;
}

static bool no_pidfd_info(void);

/*
 * The real uid of the process behind pidfd, which is pid: asked of the
 * pidfd itself (one ioctl, and no pid reuse to fear), or, on kernels
 * before 6.13, read from /proc and the pidfd asked once more, so that the
 * read was of the same process. -1 if it is gone.
 */
static int
pidfd_uid(int pidfd, pid_t pid, uid_t *ret_uid)
{
	static bool unsupported;
	struct pidfd_info_v0 info = {.mask = PIDFD_INFO_CREDS_};

	if (!unsupported && !no_pidfd_info()) {
		if (ioctl(pidfd, PIDFD_GET_INFO_V0, &info) == 0 &&
		    (info.mask & PIDFD_INFO_CREDS_)) {
			*ret_uid = info.ruid;
			return 0;
		}
		if (errno == ESRCH)
			return -1;
		unsupported = errno == ENOTTY || errno == EINVAL;
		if (!unsupported)
			log_debug("PIDFD_GET_INFO: %s", strerror(errno));
	}
	if (proc_uid(pid, ret_uid) == -1 || exited(pidfd))
		return -1;
	return 0;
}

/* Read start time and real uid of pid from /proc; -1 if gone. */
int
proc_identity(pid_t pid, uint64_t *ret_start, uid_t *ret_uid)
{
	char buf[1024], *p;
	unsigned long long start = 0;
	int field;

	if (read_proc(pid, "stat", buf, sizeof(buf)) == -1)
		return -1;
	/* The command name may hold spaces and parentheses: skip past the
	 * last ')' and count fields from there (state is field 3). */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	for (field = 2; *p != '\0' && field < 22; p++)
		if (*p == ' ')
			field++;
	if (field != 22 || sscanf(p, "%llu", &start) != 1)
		return -1;
	if (proc_uid(pid, ret_uid) == -1)
		return -1;
	*ret_start = start;
	return 0;
}

static void proc_exit_cb(evutil_socket_t, short, void *);
static int (*on_exit_fn)(struct proc *);

void
proc_on_exit(int (*fn)(struct proc *))
{
	on_exit_fn = fn;
}

/* Take a reference on the watch of pid, made from pidfd (consumed). */
static struct proc *
proc_get(
    pid_t pid, int pidfd, uint64_t start, uid_t uid, struct proto_error *err)
{
	struct proc *p;

	for (p = procs; p != NULL; p = p->next) {
		if (p->pid == pid && p->start == start) {
			close(pidfd);
			p->refs++;
			return p;
		}
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		close(pidfd);
		proto_error_set(
		    err, PROTO_E_RESOURCE_EXHAUSTED, "out of memory");
		return NULL;
	}
	p->pid = pid;
	p->pidfd = pidfd;
	p->start = start;
	p->uid = uid;
	p->refs = 1;
	p->ev = event_new(portd_base, pidfd, EV_READ, proc_exit_cb, p);
	if (p->ev == NULL || event_add(p->ev, NULL) == -1) {
		if (p->ev != NULL)
			event_free(p->ev);
		close(pidfd);
		free(p);
		proto_error_set(
		    err, PROTO_E_INTERNAL, "cannot watch process %d", (int)pid);
		return NULL;
	}
	p->next = procs;
	procs = p;
	nprocs++;
	return p;
}

void
proc_unref(struct proc *p)
{
	struct proc **pp;

	if (p == NULL || --p->refs > 0)
		return;
	for (pp = &procs; *pp != p; pp = &(*pp)->next)
		;
	*pp = p->next;
	nprocs--;
	event_free(p->ev);
	close(p->pidfd);
	free(p);
}

static void
proc_exit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proc *p = arg;
	double t0 = proc_monotonic(), took;
	int i, ended = 0;

	(void)fd;
	(void)what;
	log_debug("process %d exited", (int)p->pid);
	p->refs++; /* keep p while its leases end */
	if (on_exit_fn != NULL)
		ended = on_exit_fn(p);
	proc_unref(p);
	/* From seeing the exit to its ports being free again. */
	if (ended == 0)
		return;
	took = proc_monotonic() - t0;
	stats.reclaims++;
	stats.sum += took;
	for (i = 0; i < PROC_RECLAIM_BUCKETS; i++)
		if (took <= proc_reclaim_bounds[i])
			break;
	if (i < PROC_RECLAIM_BUCKETS)
		stats.count[i]++;
	else
		stats.over++;
}

/* Verify the pidfd's process is pid, alive, and whose; then watch it. */
static struct proc *
watch_checked(pid_t pid, int pidfd, uid_t peer_uid, uint64_t not_after,
    uint64_t want_start, struct proto_error *err)
{
	uint64_t start;
	uid_t uid;

	/* /proc is read while the pidfd says the process is alive, so the
	 * pid was not reused between pidfd_open and the read. */
	if (proc_identity(pid, &start, &uid) == -1 || exited(pidfd) ||
	    (not_after != 0 && start > not_after) ||
	    (want_start != 0 && start != want_start)) {
		close(pidfd);
		proto_error_set(err, PROTO_E_NOT_FOUND,
		    "process %d does not exist or has exited", (int)pid);
		return NULL;
	}
	if (peer_uid != 0 && uid != peer_uid) {
		close(pidfd);
		proto_error_set(err, PROTO_E_FORBIDDEN,
		    "process %d belongs to another user", (int)pid);
		return NULL;
	}
	return proc_get(pid, pidfd, start, uid, err);
}

/* pidfd_open, then watch_checked; peer: pid is the connecting process. */
static struct proc *
open_checked(pid_t pid, bool peer, uid_t peer_uid, uint64_t not_after,
    uint64_t want_start, struct proto_error *err)
{
	int pidfd = pidfd_open_(pid);

	if (pidfd == -1) {
		if (errno == EMFILE || errno == ENFILE)
			proto_error_set(err, PROTO_E_RESOURCE_EXHAUSTED,
			    "out of descriptors");
		else if (peer)
			proto_error_set(err, PROTO_E_NOT_FOUND,
			    "the connecting process %d has exited", (int)pid);
		else
			proto_error_set(err, PROTO_E_NOT_FOUND,
			    "process %d does not exist", (int)pid);
		return NULL;
	}
	return watch_checked(pid, pidfd, peer_uid, not_after, want_start, err);
}

/* Whether the environment sets name to 1, read once into *cache (-1
 * until then): the switches that make portd take an older kernel's path,
 * to test it. */
static bool
env_on(const char *name, int *cache)
{
	if (*cache == -1) {
		const char *e = getenv(name);
		*cache = e != NULL && strcmp(e, "1") == 0;
	}
	return *cache;
}

/* PORTD_NO_PIDFD_INFO=1: the path of kernels before 6.13. */
static bool
no_pidfd_info(void)
{
	static int off = -1;

	return env_on("PORTD_NO_PIDFD_INFO", &off);
}

/* PORTD_NO_PEERPIDFD=1: the path of kernels before 6.5. */
static bool
no_peerpidfd(void)
{
	static int off = -1;

	return env_on("PORTD_NO_PEERPIDFD", &off);
}

struct proc *
proc_watch_peer(const struct peer *peer, struct proto_error *err)
{
	socklen_t len = sizeof(int);
	pid_t pid = peer->pid;
	int pidfd = -1;

	if (pid <= 1) {
		proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "the peer's pid (%d) cannot own a lease; name one with "
		    "'pid'",
		    (int)pid);
		return NULL;
	}
	/* SO_PEERPIDFD pins the very process that connected (Linux 6.5+).
	 * PORTD_NO_PEERPIDFD=1 takes the older kernels' path, to test it. */
	if (!no_peerpidfd() &&
	    getsockopt(peer->fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0) {
		if (fcntl(pidfd, F_SETFD, FD_CLOEXEC) == -1)
			log_warn("pidfd");
		return watch_checked(pid, pidfd, peer->uid, 0, 0, err);
	}
	if (errno == EMFILE || errno == ENFILE) {
		proto_error_set(
		    err, PROTO_E_RESOURCE_EXHAUSTED, "out of descriptors");
		return NULL;
	}
	if (errno != ENOPROTOOPT && errno != EINVAL)
		log_debug("SO_PEERPIDFD: %s", strerror(errno));
	/* Older kernels: the pid from SO_PEERCRED, and a process that
	 * started after the connection was accepted is not our peer. */
	return open_checked(pid, true, peer->uid, peer->accepted, 0, err);
}

struct proc *
proc_watch_pid(
    pid_t pid, uid_t peer_uid, uint64_t want_start, struct proto_error *err)
{
	struct proc *p;
	uid_t uid;

	if (pid <= 1) {
		proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "pid %d cannot own a lease", (int)pid);
		return NULL;
	}
	/*
	 * A pid we already watch: while its pidfd says the process is alive,
	 * the pid is that process (its number is not free to reuse), so its
	 * start time is known and no new pidfd is needed. Only the uid is
	 * asked again: a process may change it.
	 */
	for (p = procs; p != NULL; p = p->next) {
		if (p->pid != pid || exited(p->pidfd) ||
		    (want_start != 0 && p->start != want_start))
			continue;
		if (pidfd_uid(p->pidfd, pid, &uid) == -1)
			break; /* gone meanwhile: the full path says so */
		if (peer_uid != 0 && uid != peer_uid) {
			proto_error_set(err, PROTO_E_FORBIDDEN,
			    "process %d belongs to another user", (int)pid);
			return NULL;
		}
		p->refs++;
		return p;
	}
	return open_checked(pid, false, peer_uid, 0, want_start, err);
}

uint64_t
proc_now_ticks(void)
{
	struct timespec ts;
	long hz = sysconf(_SC_CLK_TCK);

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * (uint64_t)hz +
	       (uint64_t)ts.tv_nsec * (uint64_t)hz / 1000000000u;
}
