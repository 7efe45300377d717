/* portctl list: the caller's leases as a table or JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "portctl.h"

/* "15000-15003" for a run, else "15000,15007". */
static void
format_ports(const struct portd_lease *l, char *buf, size_t size)
{
	bool run = l->nports > 1;
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 1; i < l->nports; i++)
		if (l->ports[i] != l->ports[i - 1] + 1)
			run = false;
	if (run) {
		snprintf(
		    buf, size, "%u-%u", l->ports[0], l->ports[l->nports - 1]);
		return;
	}
	for (size_t i = 0; i < l->nports && off < size; i++) {
		int k = snprintf(
		    buf + off, size - off, "%s%u", i ? "," : "", l->ports[i]);
		if (k < 0)
			break;
		off += (size_t)k;
	}
}

static void
format_expiry(int64_t expires_ms, char *buf, size_t size)
{
	struct timespec ts;
	int64_t now, left;
	char span[32];

	if (expires_ms < 0) {
		snprintf(buf, size, "never");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	left = expires_ms - now;
	if (left <= 0) {
		snprintf(buf, size, "expired");
		return;
	}
	format_span((left + 999) / 1000, span, sizeof(span));
	snprintf(buf, size, "in %s", span);
}

/* The process name of pid from /proc/PID/comm, or "-". */
static void
process_name(pid_t pid, char *buf, size_t size)
{
	char path[64];
	FILE *f;

	snprintf(buf, size, "-");
	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return;
	if (fgets(buf, (int)size, f) == NULL)
		snprintf(buf, size, "-");
	buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

int
cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {GLOBAL_OPTIONS,
	    {"all", no_argument, NULL, OPT_ALL},
	    {"json", no_argument, NULL, OPT_JSON}, {NULL, 0, NULL, 0}};
	static const char *const head[] = {"ID", "PORTS", "PROTO", "HOLD",
	    "STATE", "SCOPE", "UID", "PID", "COMMAND", "NAME", "EXPIRES"};
	enum { NCOL = 11 };
	struct portd_lease *leases;
	struct portd *h;
	size_t n, width[NCOL];
	bool all = false, json = false;
	char *(*cells)[NCOL];
	int opt, rc, ex = 0;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (global_option(opt, optarg, &ex) < 0)
			return ex;
		if (opt == OPT_ALL)
			all = true;
		else if (opt == OPT_JSON)
			json = true;
	}
	if (optind != argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if ((ex = open_daemon(&h)) != 0)
		return ex;
	if ((rc = portd_list(h, all, &leases, &n)) < 0) {
		ex = report(h, rc, "list");
		portd_close(h);
		return ex;
	}
	portd_close(h);
	if (json) {
		printf("[");
		for (size_t i = 0; i < n; i++)
			printf("%s%s", i ? "," : "", leases[i].json);
		printf("]\n");
		portd_lease_list_free(leases, n);
		return 0;
	}
	if (n == 0) {
		portd_lease_list_free(leases, n);
		return 0;
	}
	if ((cells = calloc(n, sizeof(*cells))) == NULL) {
		portd_lease_list_free(leases, n);
		say("out of memory");
		return EXIT_OSERR;
	}
	for (int c = 0; c < NCOL; c++)
		width[c] = strlen(head[c]);
	for (size_t i = 0; i < n; i++) {
		const struct portd_lease *l = &leases[i];
		char ports[PORTD_MAX_PORTS * 6 + 1], comm[64], exp[64];
		char uid[16], pid[16];

		format_ports(l, ports, sizeof(ports));
		process_name(l->owner_pid, comm, sizeof(comm));
		format_expiry(l->expires, exp, sizeof(exp));
		snprintf(uid, sizeof(uid), "%u", (unsigned)l->owner_uid);
		snprintf(pid, sizeof(pid), "%d", (int)l->owner_pid);
		const char *row[NCOL] = {l->id, ports,
		    portd_proto_name(l->proto), portd_hold_name(l->hold),
		    l->state, portd_scope_name(l->scope), uid, pid, comm,
		    l->name[0] ? l->name : "-", exp};
		for (int c = 0; c < NCOL; c++) {
			if ((cells[i][c] = strdup(row[c])) == NULL) {
				say("out of memory");
				exit(EXIT_OSERR);
			}
			if (strlen(row[c]) > width[c])
				width[c] = strlen(row[c]);
		}
	}
	for (int c = 0; c < NCOL; c++)
		printf("%-*s%s", c < NCOL - 1 ? (int)width[c] : 0, head[c],
		    c < NCOL - 1 ? "  " : "\n");
	for (size_t i = 0; i < n; i++) {
		for (int c = 0; c < NCOL; c++) {
			printf("%-*s%s", c < NCOL - 1 ? (int)width[c] : 0,
			    cells[i][c], c < NCOL - 1 ? "  " : "\n");
			free(cells[i][c]);
		}
	}
	free(cells);
	portd_lease_list_free(leases, n);
	return 0;
}
