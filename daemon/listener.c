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
static struct event *accept_ev, *pause_ev;
static bool paused;

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

static void
reject(int fd, const char *msg)
{
	struct proto_error err = {.code = PROTO_E_RESOURCE_EXHAUSTED};
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

static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct timeval one = {1, 0};

	(void)what;
	(void)arg;
	for (int i = 0; i < 64; i++) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		int fd;

		if (FAULT_FAIL(ACCEPT))
			fd = -1;
		else
			fd = accept4(
			    lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EAGAIN || errno == EINTR ||
			    errno == ECONNABORTED)
				return;
			/* EMFILE and friends: the socket stays readable, so
			 * stop watching it and look again in a second. */
			log_warn("accept (pausing for a second)");
			event_del(accept_ev);
			paused = true;
			evtimer_add(pause_ev, &one);
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ==
		    -1) {
			log_warn("SO_PEERCRED");
			close(fd);
			continue;
		}
		/* Limits before any state is allocated for the peer. */
		if (conn_count() >= portd_cfg.max_conns) {
			reject(fd, "too many connections");
			continue;
		}
		if (conn_count_uid(cred.uid) >= portd_cfg.max_conns_per_uid) {
			reject(fd, "too many connections for this uid");
			continue;
		}
		if (conn_new(fd, cred.uid, cred.pid) == NULL) {
			reject(fd, "out of memory");
			continue;
		}
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
	if (!paused || accept_ev == NULL)
		return;
	paused = false;
	evtimer_del(pause_ev);
	event_add(accept_ev, NULL);
}

static int
start_accepting(void)
{
	accept_ev = event_new(
	    portd_base, listen_fd, EV_READ | EV_PERSIST, accept_cb, NULL);
	pause_ev = evtimer_new(portd_base, pause_cb, NULL);
	if (accept_ev == NULL || pause_ev == NULL ||
	    event_add(accept_ev, NULL) == -1) {
		log_warnx("cannot watch the API socket");
		return -1;
	}
	return 0;
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

	if (accept_ev != NULL)
		event_free(accept_ev);
	if (pause_ev != NULL)
		event_free(pause_ev);
	accept_ev = pause_ev = NULL;
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
