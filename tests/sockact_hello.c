/*
 * A tiny socket-activated server for the tests: takes the socket at fd 3
 * the way systemd passes it (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES),
 * listens, answers one connection with "hello <name>\n", exits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int
main(void)
{
	const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	char buf[256];
	int c, type = 0, len;
	socklen_t tl = sizeof(type);

	if (pid == NULL || n == NULL || atoi(pid) != (int)getpid() ||
	    atoi(n) < 1) {
		fprintf(stderr, "sockact_hello: not socket-activated\n");
		return 2;
	}
	if (getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &tl) == -1 ||
	    type != SOCK_STREAM || listen(3, 16) == -1) {
		fprintf(stderr, "sockact_hello: fd 3 is no TCP socket\n");
		return 3;
	}
	if ((c = accept(3, NULL, NULL)) == -1)
		return 4;
	len = snprintf(buf, sizeof(buf), "hello %s\n", names ? names : "");
	if (write(c, buf, (size_t)len) != len)
		return 5;
	close(c);
	return 0;
}
