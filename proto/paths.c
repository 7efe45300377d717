/* Where the daemon's socket is by default (see shared.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
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
	struct text t = {.p = buf, .cap = size};
	char tail[] = {'/', spread[port & 63], spread[(port >> 6) & 63],
	    spread[(port >> 12) & 63], '\0'};

	if (port > 65535 || size < PROTO_MARKER_MAX)
		return -1;
	if (udp)
		TEXT_PUT(&t, "portd/port/udp/");
	else
		TEXT_PUT(&t, "portd/port/tcp/");
	text_int(&t, port);
	text_put(&t, tail, sizeof(tail));
	return (int)t.len - 1;
}
