/*
 * seeport MODE COUNT ARGPORT OUTFILE: run by portd_add_test under
 * `portctl exec`. Checks that this test was given COUNT ports of its own
 * in PORT/PORTS/PORT_n and {port}, that portd lists them as one lease,
 * and that they are held as MODE says (tcp: held, a co-binding server may
 * listen; udp/both: claimed for us to bind; fd: passed at fd 3...), then
 * writes the ports to OUTFILE. Exit 0 only if all of that is true.
 */
#include <netinet/in.h>
#include <portd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int
fail(const char *what)
{
	fprintf(stderr, "seeport: %s\n", what);
	return 1;
}

/* Bind [::]:port (dual stack); reuse sets SO_REUSEADDR; 1 if it worked. */
static int
try_bind(int type, unsigned port, int reuse, int do_listen)
{
	struct sockaddr_in6 sa = {
	    .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
	int fd = socket(AF_INET6, type, 0), off = 0, ok;

	if (fd == -1)
		return 0;
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	if (reuse)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse));
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	     (!do_listen || listen(fd, 1) == 0);
	close(fd);
	return ok;
}

int
main(int argc, char **argv)
{
	const char *mode, *env;
	unsigned ports[64], n, i;
	struct portd_options opts = {.timeout_ms = 5000};
	struct portd_lease *leases, *mine = NULL;
	struct portd *h;
	size_t count;
	char name[32], *end;
	FILE *f;

	if (argc != 5)
		return fail("usage: seeport MODE COUNT ARGPORT OUTFILE");
	mode = argv[1];
	n = (unsigned)atoi(argv[2]);
	if ((env = getenv("PORT")) == NULL || strcmp(env, argv[3]) != 0)
		return fail("PORT is not the {port} of the arguments");
	if ((env = getenv("PORTS")) == NULL)
		return fail("no PORTS");
	for (i = 0; i < n; i++) {
		ports[i] = (unsigned)strtoul(env, &end, 10);
		env = end;
		snprintf(name, sizeof(name), "PORT_%u", i);
		if (ports[i] == 0 || getenv(name) == NULL ||
		    (unsigned)atoi(getenv(name)) != ports[i])
			return fail("PORTS and PORT_n disagree");
	}
	if (*env != '\0')
		return fail("more ports in PORTS than asked");

	if (portd_connect(&opts, &h) < 0)
		return fail("no portd");
	if (portd_list(h, false, &leases, &count) < 0)
		return fail("list failed");
	for (size_t k = 0; k < count; k++)
		if (leases[k].nports == n && leases[k].ports[0] == ports[0])
			mine = &leases[k];
	if (mine == NULL)
		return fail("portd lists no lease of these ports");
	for (i = 0; i < n; i++) {
		if (mine->ports[i] != ports[i])
			return fail("the lease has other ports");
		if (strcmp(mode, "tcp") == 0) {
			if (!mine->held ||
			    try_bind(SOCK_STREAM, ports[i], 0, 0))
				return fail("a tcp port is not held");
			if (!try_bind(SOCK_STREAM, ports[i], 1, 1))
				return fail("a server cannot co-bind");
		} else if (strcmp(mode, "fd") == 0) {
			struct sockaddr_in6 sa;
			socklen_t len = sizeof(sa);

			if ((env = getenv("LISTEN_FDS")) == NULL ||
			    atoi(env) != 1 ||
			    getsockname(3, (struct sockaddr *)&sa, &len) != 0 ||
			    ntohs(sa.sin6_port) != ports[i] ||
			    listen(3, 1) != 0)
				return fail("no bound socket at fd 3");
		} else {
			if (mine->held || !try_bind(SOCK_DGRAM, ports[i], 0, 0))
				return fail("a claimed udp port is not ours");
			if (strcmp(mode, "both") == 0 &&
			    !try_bind(SOCK_STREAM, ports[i], 0, 0))
				return fail("a claimed tcp port is not ours");
		}
	}
	portd_lease_list_free(leases, count);
	portd_close(h);
	if ((f = fopen(argv[4], "w")) == NULL)
		return fail("cannot write the result");
	for (i = 0; i < n; i++)
		fprintf(f, "%u\n", ports[i]);
	return fclose(f) == 0 ? 0 : fail("cannot write the result");
}
