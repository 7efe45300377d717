/*
 * Life under a service manager: socket activation, readiness, status,
 * watchdog, and the file-descriptor store that keeps held sockets open
 * across a restart. Everything here is a no-op outside systemd.
 *
 * With libsystemd the messages go through sd_pid_notify_with_fds() and
 * sd_listen_fds_with_names(); without it, through the same few lines of
 * the documented protocol (sd_notify(3), sd_listen_fds(3)).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "daemon.h"

#define LISTEN_FDS_START 3
#define MAX_STORED       65536

struct stored {
	int fd;
	char name[PROTO_MAX_ID + 1];
};

static struct stored *stored;
static int nstored;
static int api_fd = -1;
static int portserver_fd = -1;
static bool have_notify;
static struct event *watchdog_ev, *status_ev;
static bool status_dirty;
/* The status line, from main.c, which sees every module. */
static void (*status_fn)(char *buf, size_t len, bool ready);

static int
notify_fds(const char *msg, const int *fds, int nfds)
{
#ifdef HAVE_LIBSYSTEMD
	int rc = sd_pid_notify_with_fds(0, 0, msg, fds, (unsigned)nfds);
	return rc < 0 ? -1 : 0;
#else
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = strlen(msg)};
	struct msghdr mh = {.msg_name = &sun, .msg_iov = &iov, .msg_iovlen = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int) * 253)];
		struct cmsghdr align;
	} cbuf;
	size_t n;
	int fd, rc;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    (n = strlen(path)) >= sizeof(sun.sun_path) || nfds > 253)
		return path == NULL ? 0 : -1;
	memcpy(sun.sun_path, path, n);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	mh.msg_namelen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	                             n + (path[0] == '@' ? 0 : 1));
	if (nfds > 0) {
		struct cmsghdr *cm;
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	rc = sendmsg(fd, &mh, MSG_NOSIGNAL) == -1 ? -1 : 0;
	close(fd);
	return rc;
#endif
}

static void
notify(const char *msg)
{
	if (have_notify && notify_fds(msg, NULL, 0) == -1)
		log_debug("notify %s: %s", msg, strerror(errno));
}

/* The descriptors systemd passed us, with their names. */
static int
listen_fds(char ***ret_names)
{
#ifdef HAVE_LIBSYSTEMD
	int n = sd_listen_fds_with_names(1, ret_names);
	return n < 0 ? 0 : n;
#else
	const char *e = getenv("LISTEN_PID"), *fdsenv = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	char **v;
	int n;

	*ret_names = NULL;
	if (e == NULL || fdsenv == NULL || atoi(e) != getpid() ||
	    (n = atoi(fdsenv)) <= 0)
		return 0;
	if ((v = calloc((size_t)n + 1, sizeof(*v))) == NULL)
		return 0;
	for (int i = 0; i < n; i++) {
		size_t len = names ? strcspn(names, ":") : 0;
		v[i] = names ? strndup(names, len) : strdup("unknown");
		if (names)
			names = names[len] == ':' ? names + len + 1 : NULL;
		fcntl(LISTEN_FDS_START + i, F_SETFD, FD_CLOEXEC);
	}
	*ret_names = v;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return n;
#endif
}

static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	notify("WATCHDOG=1");
}

static void
status_cb(evutil_socket_t fd, short what, void *arg)
{
	char msg[256];

	(void)fd;
	(void)what;
	(void)arg;
	if (!status_dirty)
		return;
	status_dirty = false;
	memcpy(msg, "STATUS=", 7);
	status_fn(msg + 7, sizeof(msg) - 7, false);
	notify(msg);
}

void
service_status_changed(void)
{
	status_dirty = true;
}

int
service_init(void (*status)(char *buf, size_t len, bool ready))
{
	char **names = NULL;
	const char *wd;
	int n;

	status_fn = status;
	have_notify = getenv("NOTIFY_SOCKET") != NULL;
	n = listen_fds(&names);
	if (n > 0 && (stored = calloc((size_t)n, sizeof(*stored))) == NULL)
		fatalx("out of memory");
	for (int i = 0; i < n; i++) {
		int fd = LISTEN_FDS_START + i;
		const char *name = names[i] != NULL ? names[i] : "";

		/* Lease sockets carry their lease's id; the API socket is
		 * named "api" (or "unknown"/anything from an unnamed unit). */
		if (name[0] == 'L' &&
		    proto_lease_id_valid(name, strlen(name))) {
			stored[nstored].fd = fd;
			snprintf(stored[nstored].name,
			    sizeof(stored[nstored].name), "%s", name);
			nstored++;
		} else if (strcmp(name, "portserver") == 0 &&
		           portserver_fd == -1) {
			/* portd-portserver.socket: portpicker's endpoint,
			 * served from boot, before any API call. */
			portserver_fd = fd;
		} else if (api_fd == -1 && strcmp(name, "portserver") != 0) {
			api_fd = fd;
		} else {
			log_warnx("closing an unexpected passed descriptor "
			          "'%s'",
			    name);
			close(fd);
		}
		free(names[i]);
	}
	free(names);
	if (nstored > 0)
		log_info(
		    "%d socket(s) from the service manager's store", nstored);

	wd = getenv("WATCHDOG_USEC");
	if (have_notify && wd != NULL) {
		const char *wp = getenv("WATCHDOG_PID");
		long long usec = atoll(wd);
		if (usec > 0 && (wp == NULL || atoi(wp) == getpid())) {
			struct timeval tv = {.tv_sec = usec / 2000000,
			    .tv_usec = (usec / 2) % 1000000};
			watchdog_ev = event_new(
			    portd_base, -1, EV_PERSIST, watchdog_cb, NULL);
			if (watchdog_ev == NULL ||
			    event_add(watchdog_ev, &tv) == -1)
				fatalx("cannot arm the watchdog timer");
		}
	}
	if (have_notify) {
		struct timeval one = {1, 0};
		status_ev =
		    event_new(portd_base, -1, EV_PERSIST, status_cb, NULL);
		if (status_ev == NULL || event_add(status_ev, &one) == -1)
			fatalx("cannot arm the status timer");
	}
	return 0;
}

int
service_stored_count(void)
{
	return nstored;
}

int
service_api_fd(void)
{
	return api_fd;
}

int
service_portserver_fd(void)
{
	return portserver_fd;
}

/* What a stored socket holds: port, proto and family. */
static int
describe(
    int fd, uint16_t *port, enum proto_proto *proto, enum proto_family *family)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int type, v6only = 0;
	socklen_t ilen = sizeof(type);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ilen) == -1)
		return -1;
	*proto = type == SOCK_STREAM ? PROTO_TCP : PROTO_UDP;
	if (ss.ss_family == AF_INET) {
		*port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		*family = PROTO_FAM_IPV4;
	} else if (ss.ss_family == AF_INET6) {
		*port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		ilen = sizeof(v6only);
		getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &ilen);
		*family = v6only ? PROTO_FAM_IPV6 : PROTO_FAM_DUAL;
	} else
		return -1;
	return 0;
}

int
service_take_stored(const char *id, uint16_t port, enum proto_proto proto,
    enum proto_family family)
{
	for (int i = 0; i < nstored; i++) {
		uint16_t p;
		enum proto_proto pr;
		enum proto_family fa;

		if (stored[i].fd == -1 || strcmp(stored[i].name, id) != 0 ||
		    describe(stored[i].fd, &p, &pr, &fa) == -1)
			continue;
		if (p == port && pr == proto && fa == family) {
			int fd = stored[i].fd;
			stored[i].fd = -1;
			/* Held sockets are blocking (see alloc.c). */
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
			return fd;
		}
	}
	return -1;
}

void
service_drop_strays(void)
{
	for (int i = 0; i < nstored; i++) {
		char msg[128];

		if (stored[i].fd == -1)
			continue;
		log_info(
		    "closing stored socket of ended lease %s", stored[i].name);
		close(stored[i].fd);
		stored[i].fd = -1;
		snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s",
		    stored[i].name);
		notify(msg);
	}
	free(stored);
	stored = NULL;
	nstored = 0;
}

void
service_store(const char *id, const struct held_socket *socks, int n)
{
	char msg[128];
	int fds[PROTO_MAX_SOCKETS];

	if (!have_notify || n == 0)
		return;
	for (int i = 0; i < n; i++)
		fds[i] = socks[i].fd;
	/* FDPOLL=0: a bound, non-listening socket polls POLLHUP, and the
	 * manager would drop it from the store at once. */
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s\nFDPOLL=0", id);
	if (notify_fds(msg, fds, n) == -1)
		log_warn("storing the sockets of lease %s", id);
}

void
service_unstore(const char *id)
{
	char msg[128];

	if (!have_notify)
		return;
	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", id);
	notify(msg);
}

void
service_ready(void)
{
	char msg[256];

	memcpy(msg, "READY=1\nSTATUS=", 15);
	status_fn(msg + 15, sizeof(msg) - 15, true);
	notify(msg);
}

void
service_reloading(bool done)
{
	notify(done ? "READY=1" : "RELOADING=1");
}

void
service_stopping(void)
{
	notify("STOPPING=1");
	if (watchdog_ev != NULL)
		event_free(watchdog_ev);
	if (status_ev != NULL)
		event_free(status_ev);
	watchdog_ev = status_ev = NULL;
}
