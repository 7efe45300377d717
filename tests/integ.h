/*
 * Helpers shared by the integration tests (test_daemon, test_limits,
 * test_malformed): another user's client, raw daemon spawns on a given
 * socket path, /proc probes of the daemon, and the Guarantee 2 bind checks.
 */
#ifndef PORTD_INTEG_H
#define PORTD_INTEG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "harness.h"

#define NOBODY_UID 65534

/* What a client run as another user saw. */
struct exchange {
	int connect_errno; /* 0 if the connection was made */
	int n;             /* reply lines read */
	char *lines[64];
	bool closed; /* the daemon closed the connection afterwards */
};

/*
 * Fork, become uid/gid `uid`, connect to sock, send len bytes of data,
 * read up to nreplies lines (timeout_ms each), then, if wait_close_ms > 0,
 * wait that long for the daemon to close the connection.
 */
void exchange_as(uid_t uid, const char *sock, const char *data, size_t len,
    int nreplies, int timeout_ms, int wait_close_ms, struct exchange *ret);
/* Parse line i of an exchange (aborts the test if missing or not JSON). */
json_object *exchange_reply(const struct exchange *x, int i);
void exchange_free(struct exchange *x);

/*
 * Fork a child that takes commands from its parent and reports back, each
 * over a pipe (O_CLOEXEC). Each side gets its own end of both: *cmd is the
 * child's to read and the parent's to write, *rep the child's to write and
 * the parent's to read. Returns what fork returned.
 */
pid_t fork_duplex(int *cmd, int *rep);

/* In a child: drop every group and become uid (and gid uid); 0 or -1. */
int become_uid(uid_t uid);

/* Let other users reach the daemon's socket (its folder 0755; start the
 * daemon with --socket-mode 0666). */
void open_dir(struct daemon_proc *d);

/* The whole file at path, NUL-terminated, in a static buffer. */
const char *read_text(const char *path);

/* True if the daemon closes fd within ms (any data before is dropped). */
bool wait_closed(int fd, int ms);
/* Reply code of a line: "ok", an error code, or "?" */
const char *line_code(const char *line);

/* The code (line_code) of the next reply line on fd within ms, in a
 * static buffer; NULL on EOF or timeout. */
const char *recv_code(int fd, int ms);
/*
 * The whole lines at the start of buf (len bytes read so far) as replies:
 * each must be JSON (with want_ok, an ok reply) whose id is *got, which
 * then counts it. The partial line left is moved to the start of buf;
 * returns its length.
 */
size_t take_replies(char *buf, size_t len, int *got, bool want_ok);
/* A hello on fd must be answered ok. */
void hello_ok(int fd);
/* Send req on fd; its reply must be the error code. */
void expect_error(int fd, const char *code, const char *req);

/* /proc probes of a process. */
int proc_fd_count(pid_t pid);
long proc_rss_kb(pid_t pid);
long proc_cpu_ticks(pid_t pid); /* utime + stime */

/* Guarantee 2, with real binds. */
void assert_plain_blocked(int port, int type);
void assert_reuse_blocked(int port, int type);
void assert_port_free(int port, int type);
/* A SO_REUSEADDR server binds and listens and takes a connection. */
void assert_cobind(int port);

/* Whether `list` on fd shows the lease id. */
bool list_has(int fd, const char *id);

#endif
