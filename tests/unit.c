/* Support for unit tests that link portd_core (see unit.h). */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "harness.h"
#include "unit.h"

/* What main.c defines in the daemon. */
struct event_base *portd_base;
struct config portd_cfg;
int64_t portd_started_ms;

void
portd_shutdown(const char *reason)
{
	ck_abort_msg("portd_shutdown: %s", reason);
}

int
unit_bind(int family, int type, uint16_t port, bool reuseaddr, bool listen_)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, v6only = family == AF_INET6, e;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sin6->sin6_addr = in6addr_any;
		len = sizeof(*sin6);
	}
	fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if ((ss.ss_family == AF_INET6 &&
	        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
	            sizeof(v6only)) == -1) ||
	    (reuseaddr && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	                      sizeof(one)) == -1) ||
	    bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    (listen_ && type == SOCK_STREAM && listen(fd, 1) == -1)) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int
unit_try_bind(int family, int type, uint16_t port, bool reuseaddr, bool listen_)
{
	int fd = unit_bind(family, type, port, reuseaddr, listen_);

	if (fd < 0)
		return -fd;
	close(fd);
	return 0;
}

void
unit_config(uint16_t lo, uint16_t hi)
{
	config_defaults(&portd_cfg);
	portd_cfg.pool_lo = lo;
	portd_cfg.pool_hi = hi;
}

int
unit_run(Suite *s)
{
	return harness_run(s);
}
