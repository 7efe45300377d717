/*
 * Support for unit tests that link portd_core: the globals main.c defines
 * in the daemon, a Check runner, and real bind() probes.

 */
#ifndef PORTD_UNIT_H
#define PORTD_UNIT_H

#include <stdbool.h>
#include <stdint.h>

#include <check.h>

/*
 * Bind a socket of type (SOCK_STREAM, SOCK_DGRAM) to a wildcard address:
 * family AF_INET is 0.0.0.0, AF_INET6 is [::] with V6ONLY on, AF_UNSPEC is
 * [::] with V6ONLY off (both families, as portd holds "dual"). With
 * reuseaddr, SO_REUSEADDR is set before the bind; with listen, a TCP
 * socket also listens. Returns the fd, or -errno.
 */
int unit_bind(int family, int type, uint16_t port, bool reuseaddr, bool listen);
/* Like unit_bind, closing the socket again: 0 or the errno. */
int unit_try_bind(
    int family, int type, uint16_t port, bool reuseaddr, bool listen);

/* Reset portd_cfg to the defaults with the pool lo-hi. */
void unit_config(uint16_t lo, uint16_t hi);

/* Run a Check suite (fork mode); returns the process exit status. */
int unit_run(Suite *s);

#endif
