/*
 * An in-process portd for the fuzz targets that drive the daemon itself
 * (fuzz_conn, fuzz_dispatch): the real modules of portd_core around one
 * event base, with clients on socketpairs whose far ends go to conn_new
 * as accepted connections do. No journal, no listening socket.
 *
 * Ports are real: when the process may, inproc_init moves it into a
 * network namespace of its own first, so nothing the fuzzer binds can
 * meet another program's port.
 */
#ifndef PORTD_FUZZ_INPROC_H
#define PORTD_FUZZ_INPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#define INPROC_CLIENTS 4

#include "check.h"

/* Once per process (LLVMFuzzerInitialize, defined in inproc.c for every
 * target that links it): namespace, configuration, pool, lease table. */
void inproc_init(void);
/* Start one input: no client connected yet; records the descriptors
 * open now, which inproc_end checks it gets back to. */
void inproc_begin(void);
/* Connect client i as uid (a socketpair; the daemon's end to conn_new),
 * closing what was left of it. */
void inproc_connect(int i, uid_t uid);
/* Whether client i is connected and portd has not closed its end. */
bool inproc_connected(int i);
/* Send bytes from client i; with an fd attached (SCM_RIGHTS) when
 * with_fd, the read end of a pipe whose write end inproc_end checks was
 * let go. */
void inproc_send(int i, const void *p, size_t n, bool with_fd);
/* Half-close (SHUT_WR) or close client i. */
void inproc_shutdown(int i);
void inproc_close(int i);
/* Run the loop and read every client until nothing moves; replies are
 * counted and their fds closed. With read_replies false the clients'
 * sockets are left unread (a pipeliner that never reads). */
void inproc_pump(bool read_replies);
/* Complete reply lines client i has read since it connected. */
int inproc_replies(int i);
/* The invariants that hold between any two requests: the lease table and
 * the pool agree, every quota count is the sum of its leases and within
 * the quota, and the process has exactly the descriptors the daemon's
 * state accounts for. Call after inproc_pump(true). */
void inproc_check(void);
/* End the input: close every client, release every lease, and check that
 * nothing is left (connections, leases, ports, watchers, descriptors). */
void inproc_end(void);

#endif
