/* The service manager's side of sd_notify, LISTEN_FDS and the fd store. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
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

void
svcmgr_open(struct svcmgr *m, const char *dir)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int bufsz = 4 << 20;

	memset(m, 0, sizeof(*m));
	m->msgs = calloc(SVC_MAX_MSGS, sizeof(*m->msgs));
	ck_assert_ptr_nonnull(m->msgs);
	snprintf(m->path, sizeof(m->path), "%s/notify.sock", dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", m->path);
	unlink(m->path);
	m->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(m->sock, -1);
	setsockopt(m->sock, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	ck_assert_int_eq(
	    bind(m->sock, (struct sockaddr *)&sun, sizeof(sun)), 0);
}

void
svcmgr_close(struct svcmgr *m)
{
	for (int i = 0; i < m->nstore; i++)
		close(m->store[i].fd);
	m->nstore = 0;
	if (m->sock > 0)
		close(m->sock);
	m->sock = -1;
	free(m->msgs);
	m->msgs = NULL;
}

bool
svc_msg_has(const struct svc_msg *msg, const char *line)
{
	size_t n = strlen(line);
	const char *p = msg->text;

	while (p != NULL && *p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len == n && memcmp(p, line, n) == 0)
			return true;
		p = nl ? nl + 1 : NULL;
	}
	return false;
}

/* Value of KEY= in a message, copied into buf; false if absent. */
static bool
msg_value(const char *text, const char *key, char *buf, size_t len)
{
	size_t k = strlen(key);
	const char *p = text;

	while (p != NULL && *p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		if (l > k && memcmp(p, key, k) == 0 && p[k] == '=') {
			snprintf(buf, len, "%.*s", (int)(l - k - 1), p + k + 1);
			return true;
		}
		p = nl ? nl + 1 : NULL;
	}
	return false;
}

static void
store_remove(struct svcmgr *m, const char *name)
{
	int j = 0;

	for (int i = 0; i < m->nstore; i++) {
		if (strcmp(m->store[i].name, name) == 0)
			close(m->store[i].fd);
		else
			m->store[j++] = m->store[i];
	}
	m->nstore = j;
}

/* One datagram: record it, and act on it as systemd would. */
static void
receive_one(struct svcmgr *m)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 253) +
		         CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} cbuf;
	struct svc_msg *msg;
	struct iovec iov;
	struct msghdr mh = {0};
	struct cmsghdr *c;
	int fds[253], nfds = 0;
	char name[64];
	ssize_t n;

	ck_assert_int_lt(m->nmsgs, SVC_MAX_MSGS);
	msg = &m->msgs[m->nmsgs];
	memset(msg, 0, sizeof(*msg));
	iov.iov_base = msg->text;
	iov.iov_len = sizeof(msg->text) - 1;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = sizeof(cbuf.buf);
	n = recvmsg(m->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n == -1)
		return;
	ck_assert_msg(!(mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)),
	    "notify message truncated");
	msg->text[n] = '\0';
	msg->at = now_ms();
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		int k;
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++)
			memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int),
			    sizeof(int));
	}
	msg->nfds = nfds;
	for (int i = 0; i < nfds && i < SVC_MSG_FDS; i++) {
		socklen_t len = sizeof(int);
		getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &msg->type[i], &len);
		msg->port[i] = fd_port(fds[i]);
		msg->ino[i] = fd_inode(fds[i]);
	}
	m->nmsgs++;

	if (!msg_value(msg->text, "FDNAME", name, sizeof(name)))
		snprintf(name, sizeof(name), "stored");
	if (svc_msg_has(msg, "FDSTOREREMOVE=1"))
		store_remove(m, name);
	if (svc_msg_has(msg, "FDSTORE=1")) {
		for (int i = 0; i < nfds; i++) {
			ck_assert_int_lt(m->nstore, SVC_MAX_STORE);
			snprintf(m->store[m->nstore].name,
			    sizeof(m->store[0].name), "%s", name);
			m->store[m->nstore++].fd = fds[i];
		}
	} else {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
	}
}

void
svcmgr_pump(struct svcmgr *m, int ms)
{
	int64_t deadline = now_ms() + ms;

	for (;;) {
		struct pollfd pfd = {.fd = m->sock, .events = POLLIN};
		int64_t left = deadline - now_ms();

		if (poll(&pfd, 1, left > 0 ? (int)left : 0) <= 0)
			return;
		receive_one(m);
	}
}

int
svcmgr_find(const struct svcmgr *m, int from, const char *line)
{
	for (int i = from; i < m->nmsgs; i++)
		if (svc_msg_has(&m->msgs[i], line))
			return i;
	return -1;
}

int
svcmgr_wait(struct svcmgr *m, int from, const char *line, int ms)
{
	int64_t deadline = now_ms() + ms;
	int i;

	while ((i = svcmgr_find(m, from, line)) == -1 && now_ms() < deadline)
		svcmgr_pump(m, 10);
	return i;
}

int
svcmgr_stored(const struct svcmgr *m, const char *name, int *fds,
    const char **names, int max)
{
	int n = 0;

	for (int i = 0; i < m->nstore && n < max; i++) {
		if (name != NULL && strcmp(m->store[i].name, name) != 0)
			continue;
		if (fds != NULL)
			fds[n] = m->store[i].fd;
		if (names != NULL)
			names[n] = m->store[i].name;
		n++;
	}
	return n;
}

pid_t
spawn_portd(const struct spawn *s)
{
	char sock[128], log[128], names[4096] = "", num[32];
	const char *argv[64];
	int n = 0, fd;
	pid_t pid;

	snprintf(sock, sizeof(sock), "%s/portd.sock", s->dir);
	snprintf(log, sizeof(log), "%s/portd.log", s->dir);
	for (int i = 0; s->prefix != NULL && s->prefix[i] != NULL; i++)
		argv[n++] = s->prefix[i];
	argv[n++] = s->bin ? s->bin : harness_portd_bin;
	argv[n++] = "--socket";
	argv[n++] = sock;
	for (int i = 0; s->args != NULL && s->args[i] != NULL && n < 62; i++)
		argv[n++] = s->args[i];
	argv[n] = NULL;
	for (int i = 0; i < s->nfds; i++) {
		if (i > 0)
			strcat(names, ":");
		strncat(
		    names, s->fdnames[i], sizeof(names) - strlen(names) - 2);
	}

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid != 0)
		return pid;
	/* The child: only async-signal-safe-ish work, then exec. */
	if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) != -1) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	setenv("XDG_CONFIG_HOME", s->dir, 1);
	setenv("XDG_RUNTIME_DIR", s->dir, 1);
	unsetenv("PORTD_SOCKET");
	unsetenv("WATCHDOG_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	if (s->notify)
		setenv("NOTIFY_SOCKET", s->notify, 1);
	else
		unsetenv("NOTIFY_SOCKET");
	if (s->watchdog_usec)
		setenv("WATCHDOG_USEC", s->watchdog_usec, 1);
	else
		unsetenv("WATCHDOG_USEC");
	if (s->nfds > 0) {
		int tmp[256];
		/* Move them out of the way first: 3.. may be taken. */
		for (int i = 0; i < s->nfds; i++)
			tmp[i] = fcntl(s->fds[i], F_DUPFD, 512);
		for (int i = 0; i < s->nfds; i++)
			dup2(tmp[i], 3 + i); /* dup2 clears FD_CLOEXEC */
		snprintf(num, sizeof(num), "%d", s->nfds);
		setenv("LISTEN_FDS", num, 1);
		setenv("LISTEN_FDNAMES", names, 1);
		snprintf(num, sizeof(num), "%d", (int)getpid());
		setenv("LISTEN_PID", num, 1);
	}
	/* Nothing else of ours leaks into the daemon. */
	closefrom(3 + s->nfds);
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

const char *
dir_log(const char *dir)
{
	static char buf[65536];
	char path[128];
	ssize_t n = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/portd.log", dir);
	buf[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

void
make_dir(char *buf)
{
	snprintf(buf, 64, "/tmp/portd-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(buf));
}

void
remove_dir(const char *dir)
{
	char cmd[256];

	if (strncmp(dir, "/tmp/portd-test.", 16) != 0)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

int
proc_fd_count(pid_t pid)
{
	return harness_proc_fds(pid, NULL, NULL);
}

struct inodes {
	ino_t *out;
	int max;
};

static int
take_socket_inode(const char *target, void *arg)
{
	struct inodes *in = arg;
	unsigned long long ino;

	if (in->max <= 0)
		return -1;
	if (sscanf(target, "socket:[%llu]", &ino) != 1)
		return 0;
	*in->out++ = (ino_t)ino;
	in->max--;
	return 1;
}

int
proc_socket_inodes(pid_t pid, ino_t *out, int max)
{
	struct inodes in = {.out = out, .max = max};

	return harness_proc_fds(pid, take_socket_inode, &in);
}

bool
proc_has_inode(pid_t pid, ino_t ino)
{
	ino_t inos[1024];
	int n = proc_socket_inodes(pid, inos, 1024);

	for (int i = 0; i < n; i++)
		if (inos[i] == ino)
			return true;
	return false;
}

ino_t
fd_inode(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

uint16_t
fd_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

/* One plain bind; true if it succeeded (the socket is closed again). */
static bool
plain_bind(int af, int type, int v6only, uint16_t port)
{
	struct sockaddr_in sin = {
	    .sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6,
	    .sin6_port = htons(port),
	    .sin6_addr = in6addr_any};
	int fd = socket(af, type | SOCK_CLOEXEC, 0), rc;

	if (fd == -1)
		return false;
	if (af == AF_INET6)
		setsockopt(
		    fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
	rc = af == AF_INET ? bind(fd, (struct sockaddr *)&sin, sizeof(sin))
	                   : bind(fd, (struct sockaddr *)&sin6, sizeof(sin6));
	close(fd);
	return rc == 0;
}

bool
port_bindable(uint16_t port, int protos)
{
	static const int types[] = {SOCK_STREAM, SOCK_DGRAM};

	for (int t = 0; t < 2; t++) {
		if (!(protos & (1 << t)))
			continue;
		if (plain_bind(AF_INET, types[t], 0, port) ||
		    plain_bind(AF_INET6, types[t], 1, port) ||
		    plain_bind(AF_INET6, types[t], 0, port))
			return true;
	}
	return false;
}

static volatile sig_atomic_t prober_done;

static void
prober_sig(int sig)
{
	(void)sig;
	prober_done = 1;
}

void
prober_start(struct prober *p, const uint16_t *ports, const int *protos, int n)
{
	int fds[2];

	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	p->pid = fork();
	ck_assert_int_ne(p->pid, -1);
	if (p->pid == 0) {
		long res[3] = {0, 0, 0};

		/* Hold nothing of the parent's (the stored sockets!). */
		if (dup2(fds[1], 3) == -1)
			_exit(1);
		closefrom(4);
		fds[1] = 3;
		signal(SIGTERM, prober_sig);
		while (!prober_done) {
			for (int i = 0; i < n; i++) {
				res[0]++;
				if (port_bindable(ports[i], protos[i])) {
					res[1]++;
					res[2] = ports[i];
				}
			}
		}
		if (write(fds[1], res, sizeof(res)) != sizeof(res))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	p->pipe = fds[0];
}

long
prober_stop(struct prober *p, long *ret_tries)
{
	long res[3] = {0, -1, 0};

	kill(p->pid, SIGTERM);
	ck_assert_int_ne(harness_wait_exit(p->pid, 5000), -1);
	ck_assert_int_eq(read(p->pipe, res, sizeof(res)), sizeof(res));
	close(p->pipe);
	if (res[1] > 0)
		fprintf(stderr, "prober: port %ld was bindable\n", res[2]);
	if (ret_tries != NULL)
		*ret_tries = res[0];
	return res[1];
}
