/* portctl status: the daemon's status. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "portctl.h"

/* Why this daemon answered: the step of the discovery order. */
static const char *
via_text(const char *via)
{
	if (strcmp(via, "explicit") == 0)
		return "--socket (used alone)";
	if (strcmp(via, "PORTD_SOCKET") == 0)
		return "$PORTD_SOCKET (used alone)";
	if (strcmp(via, "system") == 0)
		return "the system socket: a daemon answers there";
	if (strcmp(via, "user") == 0)
		return "the per-user socket: no system daemon answered";
	return "?";
}

int
cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {GLOBAL_OPTIONS,
	    {"json", no_argument, NULL, OPT_JSON}, {NULL, 0, NULL, 0}};
	struct portd_status *s;
	struct portd *h;
	bool json = false;
	char span[32];
	int opt, rc, ex = 0;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (global_option(opt, optarg, &ex) < 0)
			return ex;
		if (opt == OPT_JSON)
			json = true;
	}
	if (optind != argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if ((ex = open_daemon(&h)) != 0)
		return ex;
	if ((rc = portd_status(h, &s)) < 0) {
		ex = report(h, rc, "status");
		portd_close(h);
		return ex;
	}
	if (json) {
		printf("%s\n", s->json);
	} else {
		format_span(s->uptime < 0 ? 0 : s->uptime, span, sizeof(span));
		printf("server       %s (protocol %" PRId64 ")\n", s->server,
		    s->version);
		printf("socket       %s\n", portd_socket_path(h));
		printf("found by     %s\n", via_text(portd_socket_via(h)));
		printf("pid          %d\n", (int)s->pid);
		printf("uptime       %s\n", span);
		printf("leases       %" PRId64 "\n", s->leases);
		printf("ports        %" PRId64 "\n", s->ports);
		printf("sockets      %" PRId64 "\n", s->sockets);
		printf("connections  %" PRId64 "\n", s->connections);
		printf("pool         %" PRId64 "-%" PRId64 ", %" PRId64
		       " of %" PRId64 " free\n",
		    s->pool_lo, s->pool_hi, s->pool_free, s->pool_size);
		for (size_t i = 0; i < s->ncounters; i++)
			printf("%-24s %" PRId64 "\n", s->counters[i].name,
			    s->counters[i].value);
		if (s->nsettings > 0)
			printf("configuration\n");
		for (size_t i = 0; i < s->nsettings; i++)
			printf("  %-24s %s\n", s->settings[i].name,
			    s->settings[i].value[0] ? s->settings[i].value
			                            : "-");
	}
	portd_status_free(s);
	portd_close(h);
	return 0;
}
