/*
 * The API socket: created safely (lock file, a live daemon left alone, a
 * stale socket replaced, umask around bind), or adopted from systemd; the
 * accept loop with peer credentials and connection limits; a pause
 * instead of a spin when descriptors run out.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "fault.h"

static int listen_fd = -1;
static int lock_fd = -1;
static bool adopted;   /* systemd owns the socket file */
static dev_t sock_dev; /* our socket file, to unlink only it */
static ino_t sock_ino;
static char sock_path[CONFIG_PATH_MAX];
static char lock_path[CONFIG_PATH_MAX + 8];
static struct acceptor *api_acceptor;

const char *
listener_path(void)
{
	return sock_path;
}

/* Take <path>.lock; -1 if another portd holds it. */
static int
take_lock(const char *path)
{
	char buf[32];
	ssize_t n;

	snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
	lock_fd =
	    open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock_fd == -1) {
		log_warn("%s", lock_path);
		return -1;
	}
	if (flock(lock_fd, LOCK_EX | LOCK_NB) == -1) {
		n = pread(lock_fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		log_warnx("another portd (pid %s) is serving %s; leaving it "
		          "alone",
		    buf[0] ? buf : "?", path);
		close(lock_fd);
		lock_fd = -1;
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(lock_fd, 0) == -1 ||
	    pwrite(lock_fd, buf, (size_t)n, 0) != n)
		log_warn("%s", lock_path);
	return 0;
}

/* With the lock held: a socket at path is either live or stale. */
int
listener_clear_stale(const char *path, const struct sockaddr_un *sun)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? 0 : (log_warn("%s", path), -1);
	if (!S_ISSOCK(st.st_mode)) {
		log_warnx(
		    "%s exists and is not a socket; not touching it", path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0) {
		close(fd);
		log_warnx(
		    "a server already answers on %s; leaving it alone", path);
		return -1;
	}
	close(fd);
	if (errno != ECONNREFUSED) {
		log_warn("%s", path);
		return -1;
	}
	log_info("replacing the stale socket %s", path);
	if (unlink(path) == -1) {
		log_warn("unlink %s", path);
		return -1;
	}
	return 0;
}

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

/* The cookie of portd's own network namespace: 0 unknown, 1 none. */
static uint64_t own_netns;

/* Why a peer in another network namespace is refused (forbidden). */
static const char netns_why[] =
    "you are in another network namespace than this portd: its ports "
    "would be no use to you; run a portd in your namespace (see portd(8), "
    "\"Network namespaces\")";

static uint64_t
netns_cookie(int fd)
{
	uint64_t c = 0;
	socklen_t len = sizeof(c);

	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &c, &len) == -1)
		return 0;
	return c;
}

bool
listener_same_netns(int fd)
{
	uint64_t peer;

	if (own_netns == 0) {
		/* A socket of our own: the namespace we bind ports in. */
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		own_netns = s == -1 ? 0 : netns_cookie(s);
		if (s != -1)
			close(s);
		if (own_netns == 0)
			own_netns = 1; /* kernel older than 5.14: no check */
	}
	/* An accepted Unix connection belongs to the client's namespace. */
	return own_netns == 1 || (peer = netns_cookie(fd)) == 0 ||
	       peer == own_netns;
}

/* The API socket's refusal: one error line (resource_exhausted, or
 * forbidden for another network namespace), then close. */
static void
reject(int fd, const char *msg)
{
	struct proto_error err = {.code = msg == netns_why
	                                      ? PROTO_E_FORBIDDEN
	                                      : PROTO_E_RESOURCE_EXHAUSTED};
	json_object *r;
	char *line;
	size_t len;

	snprintf(err.message, sizeof(err.message), "%s", msg);
	if ((r = proto_reply_error(NULL, &err)) != NULL &&
	    (line = proto_serialize(r, &len)) != NULL) {
		if (send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT) == -1)
			log_debug("reject: %s", strerror(errno));
		free(line);
	}
	json_object_put(r);
	close(fd);
}

/*
 * Accepting, the same for every listening socket portd serves (the API
 * socket, the portserver endpoint): peer credentials, the connection caps
 * counted over both sockets together, and running out of descriptors.
 *
 * At EMFILE a listening socket stays readable, so accepting again at once
 * would spin. portd keeps one spare descriptor: it closes it, accepts the
 * waiting connection with the freed slot, refuses it (the endpoint says
 * how), and opens the spare again; then every acceptor pauses until a
 * connection closes or a second has passed.
 */
struct acceptor {
	int fd;
	const char *what;
	const struct acceptor_ops *ops;
	struct event *ev;
};

static struct acceptor *acceptors[4];
static struct event *pause_ev;
static bool paused;
static int spare_fd = -1;
static uint64_t refused_emfile;

static void
spare_open(void)
{
	if (spare_fd == -1)
		spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/*
 * Out of descriptors: take the connection waiting on a through the spare
 * slot and refuse it. 1 if one was refused, 0 if none was waiting, -1 if
 * the slot did not help (the spare is gone, or accept still fails).
 */
static int
refuse_with_spare(struct acceptor *a)
{
	int fd, e;

	if (spare_fd == -1)
		return -1;
	close(spare_fd);
	spare_fd = -1;
	fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	e = errno;
	if (fd != -1) {
		struct peer unknown = {.fd = fd, .uid = (uid_t)-1, .pid = -1};

		a->ops->refuse(&unknown, "portd is out of descriptors");
		refused_emfile++;
	}
	spare_open();
	if (fd != -1)
		return 1;
	return e == EAGAIN || e == ECONNABORTED ? 0 : -1;
}

/* One line at most every ten seconds, however many are refused. */
static void
log_emfile(struct acceptor *a, int e)
{
	static int64_t last_ms;
	int64_t now = portd_clock_real();

	if (last_ms != 0 && now - last_ms < 10000)
		return;
	log_warnx("%s: accept: %s; refusing connections (%llu so far)", a->what,
	    strerror(e), (unsigned long long)refused_emfile);
	last_ms = now;
}

static void
pause_all(void)
{
	struct timeval one = {1, 0};

	for (size_t i = 0; i < nitems(acceptors); i++)
		if (acceptors[i] != NULL)
			event_del(acceptors[i]->ev);
	paused = true;
	evtimer_add(pause_ev, &one);
}

static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct acceptor *a = arg;

	(void)what;
	for (int i = 0; i < 64; i++) {
		struct ucred cred;
		struct peer peer;
		socklen_t len = sizeof(cred);
		int fd, e, r;

		if (FAULT_FAIL(ACCEPT))
			fd = -1;
		else
			fd = accept4(
			    lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EAGAIN || errno == EINTR ||
			    errno == ECONNABORTED)
				return;
			e = errno;
			/* Refuse one, then see whether the shortage lasts. */
			if ((e == EMFILE || e == ENFILE) &&
			    (r = refuse_with_spare(a)) >= 0 && spare_fd != -1) {
				log_emfile(a, e);
				if (r == 0)
					return;
				continue;
			}
			log_warnx("%s: accept: %s; pausing for a second",
			    a->what, strerror(e));
			pause_all();
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ==
		    -1) {
			log_warn("SO_PEERCRED");
			close(fd);
			continue;
		}
		peer = (struct peer){.fd = fd,
		    .uid = cred.uid,
		    .pid = cred.pid,
		    .accepted = proc_now_ticks()};
		/* Ports belong to a network namespace: a port of ours is no
		 * use to a client in another one (a container given the
		 * socket by a bind mount), and would be given silently. */
		if (!listener_same_netns(fd)) {
			log_info("%s: refused uid %u pid %d: another network "
			         "namespace",
			    a->what, (unsigned)cred.uid, (int)cred.pid);
			a->ops->refuse(&peer, netns_why);
			continue;
		}
		/* Limits before any state is allocated for the peer. */
		if (listener_conns(false, 0) >= portd_cfg.max_conns) {
			a->ops->refuse(&peer, "too many connections");
			continue;
		}
		if (listener_conns(true, cred.uid) >=
		    portd_cfg.max_conns_per_uid) {
			a->ops->refuse(
			    &peer, "too many connections for this uid");
			continue;
		}
		a->ops->take(&peer, NULL);
	}
}

static void
pause_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	listener_resume();
}

void
listener_resume(void)
{
	if (!paused)
		return;
	paused = false;
	evtimer_del(pause_ev);
	for (size_t i = 0; i < nitems(acceptors); i++)
		if (acceptors[i] != NULL)
			event_add(acceptors[i]->ev, NULL);
}

int
listener_conns(bool of_uid, uid_t uid)
{
	int n = 0;

	for (size_t i = 0; i < nitems(acceptors); i++)
		if (acceptors[i] != NULL)
			n += of_uid ? acceptors[i]->ops->count_uid(uid)
			            : acceptors[i]->ops->count();
	return n;
}

uint64_t
listener_refused_emfile(void)
{
	return refused_emfile;
}

struct acceptor *
acceptor_new(int fd, const char *what, const struct acceptor_ops *ops)
{
	struct acceptor *a;
	size_t i;

	for (i = 0; i < nitems(acceptors) && acceptors[i] != NULL; i++)
		;
	if (i == nitems(acceptors) || (a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->fd = fd;
	a->what = what;
	a->ops = ops;
	if (pause_ev == NULL)
		pause_ev = evtimer_new(portd_base, pause_cb, NULL);
	spare_open();
	a->ev = event_new(portd_base, fd, EV_READ | EV_PERSIST, accept_cb, a);
	if (pause_ev == NULL || a->ev == NULL ||
	    (!paused && event_add(a->ev, NULL) == -1)) {
		if (a->ev != NULL)
			event_free(a->ev);
		free(a);
		log_warnx("cannot watch %s", what);
		return NULL;
	}
	acceptors[i] = a;
	return a;
}

void
acceptor_free(struct acceptor *a)
{
	bool any = false;

	if (a == NULL)
		return;
	for (size_t i = 0; i < nitems(acceptors); i++) {
		if (acceptors[i] == a)
			acceptors[i] = NULL;
		any |= acceptors[i] != NULL;
	}
	event_free(a->ev);
	free(a);
	if (!any) {
		if (pause_ev != NULL)
			event_free(pause_ev);
		pause_ev = NULL;
		paused = false;
		if (spare_fd != -1)
			close(spare_fd);
		spare_fd = -1;
	}
}

static void
api_take(const struct peer *peer, const char *why)
{
	(void)why;
	if (conn_new(peer) == NULL)
		reject(peer->fd, "out of memory");
}

static void
api_refuse(const struct peer *peer, const char *why)
{
	reject(peer->fd, why);
}

static const struct acceptor_ops api_ops = {
    .take = api_take,
    .refuse = api_refuse,
    .count = conn_count,
    .count_uid = conn_count_uid,
};

static int
start_accepting(void)
{
	/* A closed connection may end the EMFILE pause. */
	conn_on_free(listener_resume);
	api_acceptor = acceptor_new(listen_fd, "the API socket", &api_ops);
	return api_acceptor == NULL ? -1 : 0;
}

int
listener_adopt(int fd, const char *path)
{
	int fl = fcntl(fd, F_GETFL);

	if (take_lock(path) == -1)
		return -1;
	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
		log_warn("adopting the API socket");
		return -1;
	}
	listen_fd = fd;
	adopted = true;
	snprintf(sock_path, sizeof(sock_path), "%s", path);
	return start_accepting();
}

int
listener_open(const char *path, mode_t mode)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("socket path too long (%zu bytes, at most %zu): %s",
		    strlen(path), sizeof(sun.sun_path) - 1, path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	snprintf(sock_path, sizeof(sock_path), "%s", path);
	if (take_lock(path) == -1 || listener_clear_stale(path, &sun) == -1)
		return -1;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1) {
		log_warn("socket");
		return -1;
	}
	/* No window in which the socket has looser permissions. */
	old = umask(0777 & ~mode);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		log_warn("bind %s", path);
		close(fd);
		return -1;
	}
	umask(old);
	if (chmod(path, mode) == -1 || lstat(path, &st) == -1 ||
	    listen(fd, 128) == -1) {
		log_warn("%s", path);
		close(fd);
		unlink(path);
		return -1;
	}
	sock_dev = st.st_dev;
	sock_ino = st.st_ino;
	listen_fd = fd;
	if (start_accepting() == -1)
		return -1;
	log_info("listening on %s", path);
	return 0;
}

void
listener_close(void)
{
	struct stat st;

	acceptor_free(api_acceptor);
	api_acceptor = NULL;
	if (listen_fd != -1)
		close(listen_fd);
	listen_fd = -1;
	/* Unlink only the socket we made, and only if it is still ours. */
	if (!adopted && sock_ino != 0 && lstat(sock_path, &st) == 0 &&
	    st.st_dev == sock_dev && st.st_ino == sock_ino)
		unlink(sock_path);
	sock_ino = 0;
	if (lock_fd != -1) {
		close(lock_fd);
		lock_fd = -1;
	}
}
