/* Where the daemon's socket is by default (see shared.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared.h"

int
proto_socket_dir(bool system, char *buf, size_t size)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (system)
		n = snprintf(buf, size, "%s", PROTO_SYSTEM_DIR);
	else if (xdg != NULL && xdg[0] == '/')
		n = snprintf(buf, size, "%s/portd", xdg);
	else
		n = snprintf(buf, size, "/tmp/portd-%u", (unsigned)geteuid());
	if (n < 0 || (size_t)n >= size)
		return -1;
	return n;
}

int
proto_socket_path(bool system, char *buf, size_t size)
{
	int n = proto_socket_dir(system, buf, size), k;

	if (n < 0)
		return -1;
	k = snprintf(buf + n, size - (size_t)n, "/%s", PROTO_SOCKET_NAME);
	if (k < 0 || (size_t)k >= size - (size_t)n)
		return -1;
	return n + k;
}

int
proto_marker_name(bool udp, unsigned port, char *buf, size_t size)
{
	static const char spread[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                             "abcdefghijklmnopqrstuvwxyz-_";
	char digits[5], *d = digits + sizeof(digits);
	size_t n;

	if (port > 65535 || size < PROTO_MARKER_MAX)
		return -1;
	for (unsigned p = port; d == digits + sizeof(digits) || p != 0; p /= 10)
		*--d = (char)('0' + p % 10);
	memcpy(buf, udp ? "portd/port/udp/" : "portd/port/tcp/", 15);
	n = 15 + (size_t)(digits + sizeof(digits) - d);
	memcpy(buf + 15, d, n - 15);
	buf[n++] = '/';
	buf[n++] = spread[port & 63];
	buf[n++] = spread[(port >> 6) & 63];
	buf[n++] = spread[port >> 12];
	buf[n] = '\0';
	return (int)n;
}
