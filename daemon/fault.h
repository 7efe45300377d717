/*
 * Fault injection for the tests: make chosen system calls fail the way a
 * full disk, a descriptor limit or a vanished process makes them fail.
 *
 * Compiled in only when PORTD_FAULT_INJECTION is defined, which the build
 * does for the test-only daemon `portd-faults` and never for `portd`: in
 * portd every FAULT() is the constant 0 and the compiler drops the branch.
 *
 * The rules come from the environment at start and from a file that is
 * read again whenever it changes, so a test can turn failures on and off
 * while the daemon runs:
 *
 *   PORTD_FAULTS=RULE[,RULE...]   at start
 *   PORTD_FAULTS_FILE=PATH        the same syntax, re-read on change
 *                                 (replaces the rules; counts start again)
 *
 *   RULE = POINT:ERROR[:COUNT[:AFTER]]
 *     POINT  journal_write, bind, accept, pidfd_open, sendmsg
 *     ERROR  an errno name (ENOSPC, EIO, EMFILE, ...) or "short": the
 *            call moves half of its bytes (at least one) and succeeds
 *     COUNT  how many calls fail (default 1; 0: every call from then on)
 *     AFTER  calls at that point let through first (default 0)
 *
 * Calls are counted per point from the start or from the last change of
 * the rules. The first rule of a point that matches the call wins.
 */
#ifndef PORTD_FAULT_H
#define PORTD_FAULT_H

#include <stdbool.h>

enum fault_point {
	FAULT_JOURNAL_WRITE, /* write() of journal records */
	FAULT_BIND,          /* bind() of a socket that holds a port */
	FAULT_ACCEPT,        /* accept4() on the API and portserver sockets */
	FAULT_PIDFD_OPEN,    /* pidfd_open() of an owner process */
	FAULT_SENDMSG,       /* sendmsg() of a reply */
	FAULT_NPOINTS
};

/* What fault_hit returns for a short transfer (not an errno). */
#define FAULT_SHORT (-1)

#ifdef PORTD_FAULT_INJECTION
/* Read PORTD_FAULTS (fatal on a malformed rule). */
void fault_init(void);
/* 0: make the call; an errno: fail it with that; FAULT_SHORT: move half. */
int fault_hit(enum fault_point);
/* Whether to fail the call (errno set to the injected error). */
bool fault_fail(enum fault_point);
#define FAULT(point)      fault_hit(FAULT_##point)
#define FAULT_FAIL(point) fault_fail(FAULT_##point)
#else
#define fault_init()      ((void)0)
#define FAULT(point)      0
#define FAULT_FAIL(point) false
#endif

#endif
