/*
 * What the daemon and its clients share besides the wire format: where the
 * daemon's socket is by default (paths.c) and the duration grammar of the
 * config file and the command lines (duration.c). One definition each, so
 * the daemon, libportd and portctl cannot drift apart.
 */
#ifndef PORTD_PROTO_SHARED_H
#define PORTD_PROTO_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_SOCKET_NAME "portd.sock" /* in the socket folder */
#define PROTO_SYSTEM_DIR  "/run/portd" /* the system daemon's folder */

/*
 * The default socket folder: PROTO_SYSTEM_DIR for the system daemon, else
 * the per-user one, $XDG_RUNTIME_DIR/portd when XDG_RUNTIME_DIR is an
 * absolute path, or /tmp/portd-$EUID. Returns its length, or -1 when it
 * does not fit in size bytes.
 */
int proto_socket_dir(bool system, char *buf, size_t size);
/* The default socket path: the folder above and PROTO_SOCKET_NAME. */
int proto_socket_path(bool system, char *buf, size_t size);

/*
 * The one-host marker of a port (docs/architecture.md, "One host"): the
 * abstract Unix socket name, without its leading NUL, that every portd
 * of a network namespace binds for a port it leases:
 * "portd/port/<tcp|udp>/<port>/<three characters>", the characters the
 * port's bits six at a time, lowest first, in [0-9A-Za-z-_]. They spread
 * the names over the kernel's hash of abstract names, a checksum of
 * their bytes: decimal digits alone change it so little that 20,000
 * markers fell on 52 of its 256 chains, and every bind scanned one (16 us
 * a bind with 9,000 markers, 4 us with none). Into buf, NUL-terminated;
 * returns the length, or -1 when it does not fit.
 */
#define PROTO_MARKER_MAX 32 /* bytes a marker name needs, its NUL too */
int proto_marker_name(bool udp, unsigned port, char *buf, size_t size);

#define PROTO_MS_SECOND INT64_C(1000)
#define PROTO_MS_MINUTE (60 * PROTO_MS_SECOND)
#define PROTO_MS_HOUR   (60 * PROTO_MS_MINUTE)
#define PROTO_MS_DAY    (24 * PROTO_MS_HOUR)

/*
 * Leading decimal digits of s (at least one, no sign) into *ret; *ret_end
 * points past them. -1 on no digits or on a value above INT64_MAX.
 */
int proto_parse_digits(const char *s, int64_t *ret, const char **ret_end);

/*
 * Parse a duration in systemd's time span grammar (systemd.time(7)): one
 * or more NUMBER[UNIT], optionally separated by blanks ("1h30m", "1h 30m",
 * "1.5h", "2d", "500ms"); NUMBER is decimal with an optional fraction;
 * UNIT is usec, us, msec, ms, seconds, second, sec, s, minutes, minute,
 * min, m, hours, hour, hr, h, days, day, d, weeks, week, w, months, month,
 * M (30.44 days), years, year, y (365.25 days); a NUMBER without a UNIT
 * counts in unit_ms. The sum must be a whole number of milliseconds, at
 * most INT64_MAX microseconds. Stores milliseconds; -1 on bad syntax or
 * overflow.
 */
int proto_duration_parse(const char *s, int64_t unit_ms, int64_t *ret_ms);
/* A duration in its largest exact unit: "1d", "90s", "1500ms". */
void proto_duration_format(int64_t ms, char *buf, size_t size);

/* What an error about a bad duration shows as the accepted forms. */
#define PROTO_DURATION_FORMS                                                   \
	"a systemd time span like 90, 90s, 5m, 1h30m, 1.5h or 2d: numbers "    \
	"with units ms, s, m, h, d, w (or sec, min, hour, day, week...); "     \
	"a bare number is seconds"

#endif
