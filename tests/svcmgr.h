/*
 * Playing the service manager for restart tests: a notify socket that
 * records portd's sd_notify messages and keeps an fd store the way
 * systemd does, a spawner that passes descriptors in the socket-activation
 * convention, /proc inspection, and a prober that tries to steal ports.
 */
#ifndef PORTD_SVCMGR_H
#define PORTD_SVCMGR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SVC_MAX_MSGS  4096
#define SVC_MAX_STORE 256
#define SVC_MSG_FDS   16

/* One datagram from portd, with what its fds were at arrival. */
struct svc_msg {
	char text[512];
	int64_t at; /* now_ms() when received */
	int nfds;
	uint16_t port[SVC_MSG_FDS];
	int type[SVC_MSG_FDS]; /* SOCK_STREAM or SOCK_DGRAM */
	ino_t ino[SVC_MSG_FDS];
};

struct svc_stored {
	char name[64];
	int fd;
};

struct svcmgr {
	int sock;
	char path[108];
	struct svc_msg *msgs;
	int nmsgs;
	struct svc_stored store[SVC_MAX_STORE];
	int nstore;
};

/* Bind DIR/notify.sock; NOTIFY_SOCKET for the daemon is m->path. */
void svcmgr_open(struct svcmgr *m, const char *dir);
void svcmgr_close(struct svcmgr *m);
/* Receive for up to ms (0: what is queued now), applying FDSTORE and
 * FDSTOREREMOVE to the store. */
void svcmgr_pump(struct svcmgr *m, int ms);
/* Pump until a message from index `from` on has the line `line`; its
 * index, or -1 after ms. */
int svcmgr_wait(struct svcmgr *m, int from, const char *line, int ms);
/* Index of the first message from `from` with that line, or -1. */
int svcmgr_find(const struct svcmgr *m, int from, const char *line);
/* Whether message i has that exact line. */
bool svc_msg_has(const struct svc_msg *msg, const char *line);
/* Stored fds of one name (NULL: all), in store order. */
int svcmgr_stored(const struct svcmgr *m, const char *name, int *fds,
    const char **names, int max);

/* How to start portd: always --socket DIR/portd.sock, stderr to
 * DIR/portd.log, XDG_* inside DIR. */
struct spawn {
	const char *dir;
	const char *const *args;    /* extra arguments, NULL-terminated */
	const char *notify;         /* NOTIFY_SOCKET, or NULL */
	const char *watchdog_usec;  /* WATCHDOG_USEC, or NULL */
	const int *fds;             /* passed at 3.. with LISTEN_* */
	const char *const *fdnames; /* LISTEN_FDNAMES entries */
	int nfds;
	const char *bin;           /* argv[0]; NULL: portd */
	const char *const *prefix; /* argv before portd (a wrapper) */
};
pid_t spawn_portd(const struct spawn *s);
/* Read DIR/portd.log (static buffer). */
const char *dir_log(const char *dir);
/* Make a private /tmp/portd-test.XXXXXX folder into buf (64 bytes). */
void make_dir(char *buf);
void remove_dir(const char *dir);

/* Descriptors open in pid, and the inodes of its sockets. */
int proc_fd_count(pid_t pid);
int proc_socket_inodes(pid_t pid, ino_t *out, int max);
bool proc_has_inode(pid_t pid, ino_t ino);
/* Inode, port and type of a socket. */
ino_t fd_inode(int fd);
uint16_t fd_port(int fd);

/* A child that binds every port (bit 1: TCP, bit 2: UDP in protos[i]) on
 * 0.0.0.0 and [::] (V6ONLY on and off) without SO_REUSEADDR, over and
 * over until stopped. */
struct prober {
	pid_t pid;
	int pipe;
};
void prober_start(
    struct prober *p, const uint16_t *ports, const int *protos, int n);
/* Stop it; the number of binds that succeeded, attempts in *ret_tries. */
long prober_stop(struct prober *p, long *ret_tries);

/* Whether any plain bind of port (TCP or UDP, per proto bits) succeeds
 * on 0.0.0.0 or [::]. */
bool port_bindable(uint16_t port, int protos);

#endif
