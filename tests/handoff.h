/*
 * Helpers shared by the handoff tests (hold matrix, steals, real servers,
 * passed sockets, process scope): binds that report errno, a reply reader
 * that keeps every descriptor that arrives, and a look at the daemon's
 * descriptor table. Failures abort the calling Check test.
 */
#ifndef PORTD_TESTS_HANDOFF_H
#define PORTD_TESTS_HANDOFF_H

#include <stdbool.h>
#include <sys/types.h>

#include "harness.h"

/*
 * Bind a socket of type on addr:port ("0.0.0.0", "::", "127.0.0.1", "::1";
 * v6only applies to IPv6 addresses) and listen when it is TCP. Returns 0
 * or the errno of the failing call; the socket is closed either way.
 */
int hb_bind(const char *addr, bool v6only, int type, int port, bool reuse);
/* The same, keeping the socket: fd, or -errno. */
int hb_bind_keep(const char *addr, bool v6only, int type, int port, bool reuse);

/* Local port and address family of a socket; -1 on error. */
int hb_sock_port(int fd);
int hb_sock_family(int fd);
int hb_sock_int(int fd, int level, int opt);

/* Close fd with an RST, so no TIME_WAIT keeps its port. */
void hb_close_rst(int fd);

/*
 * A reply reader that takes any number of descriptors (up to 253 per
 * message, as the kernel allows) and queues them in arrival order.
 */
struct hb_reader {
	int fd;
	char buf[256 * 1024];
	size_t len;
	int fds[1024];
	int nfds;
};

void hb_reader_init(struct hb_reader *r, int fd);
/* Next reply line (malloc'd, no '\n') within timeout_ms, or NULL. */
char *hb_read_line(struct hb_reader *r, int timeout_ms);
/* Send a request line and parse the reply; the fds that came with it are
 * moved to fds (at most max; *nfds set). */
json_object *hb_call(struct hb_reader *r, int *fds, int max, int *nfds,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Descriptors open in process pid, and how many of them are pidfds. */
int hb_fd_count(pid_t pid);
int hb_pidfd_count(pid_t pid);
/* Wait up to ms for hb_fd_count(pid) to equal want; returns the last
 * count seen. */
int hb_fd_count_wait(pid_t pid, int want, int ms);

/* Whether some lease of the connection's uid holds port (list). */
bool hb_listed(int conn, int port);
/* The lease of a list reply (its "leases") that has port, or NULL. */
json_object *hb_lease_on_port(json_object *list, int port);

#endif
