/* portctl lease, release, renew and claim. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "portctl.h"

/* The lease options shared by lease and exec. 1 if opt was one. */
/* "OPTION: 'VALUE' is not one of A, B" as a usage error; -1. */
static int
bad(int *ret_exit, const char *opt, const char *arg, const char *allowed)
{
	*ret_exit = usage_error("%s: '%s' is not one of %s", opt, arg, allowed);
	return -1;
}

int
lease_option(
    int opt, const char *arg, struct portd_lease_request *req, int *ret_exit)
{
	int64_t ttl;
	long n;
	int i;

	switch (opt) {
	case 'n':
		if ((n = parse_int(arg, 1, PORTD_MAX_PORTS)) < 0) {
			*ret_exit =
			    int_error("-n/--count", arg, 1, PORTD_MAX_PORTS);
			return -1;
		}
		req->count = (unsigned)n;
		return 1;
	case OPT_PROTO:
		if ((i = portd_proto_from_name(arg)) < 0)
			return bad(ret_exit, "--proto", arg, "tcp, udp, both");
		req->proto = (enum portd_proto)i;
		return 1;
	case OPT_FAMILY:
		if ((i = portd_family_from_name(arg)) < 0)
			return bad(
			    ret_exit, "--family", arg, "dual, ipv4, ipv6");
		req->family = (enum portd_family)i;
		return 1;
	case OPT_PORT:
		if ((n = parse_int(arg, 1, 65535)) < 0) {
			*ret_exit = int_error("--port", arg, 1, 65535);
			return -1;
		}
		req->port = (uint16_t)n;
		return 1;
	case OPT_CONTIGUOUS:
		req->contiguous = true;
		return 1;
	case OPT_TTL:
		if ((ttl = ttl_option(arg, ret_exit)) < 0)
			return -1;
		req->ttl = ttl;
		return 1;
	case OPT_NAME:
		req->name = arg;
		return 1;
	case OPT_HOLD:
		if ((i = portd_hold_from_name(arg)) < 0)
			return bad(
			    ret_exit, "--hold", arg, "shared, exclusive");
		req->hold = (enum portd_hold)i;
		return 1;
	case OPT_STRATEGY:
		if ((i = portd_strategy_from_name(arg)) < 0)
			return bad(
			    ret_exit, "--strategy", arg, "pool, ephemeral");
		req->strategy = (enum portd_strategy)i;
		return 1;
	}
	return 0;
}

static void
print_ports(const struct portd_lease *l)
{
	for (size_t i = 0; i < l->nports; i++)
		printf("%u\n", l->ports[i]);
}

int
cmd_lease(int argc, char **argv)
{
	static const struct option opts[] = {GLOBAL_OPTIONS, LEASE_OPTIONS,
	    {"scope", required_argument, NULL, OPT_SCOPE},
	    {"json", no_argument, NULL, OPT_JSON}, {NULL, 0, NULL, 0}};
	struct portd_lease_request req = {0};
	struct portd_lease *l;
	struct portd *h;
	bool json = false;
	int opt, ex = 0, i;

	while ((opt = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
		if (global_option(opt, optarg, &ex) < 0 ||
		    lease_option(opt, optarg, &req, &ex) < 0)
			return ex;
		if (opt == OPT_JSON)
			json = true;
		else if (opt == OPT_SCOPE) {
			/* process scope needs a pid to watch: not ours, as
			 * the lease would end when portctl exits. */
			if ((i = portd_scope_from_name(optarg)) < 0 ||
			    i == PORTD_SCOPE_PROCESS)
				return usage_error(
				    "--scope: '%s' is not one of "
				    "ttl, session (process would "
				    "end with portctl)",
				    optarg);
			req.scope = (enum portd_scope)i;
		}
	}
	if (optind != argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if ((ex = open_and_lease(&req, &h, &l)) != 0)
		return ex;
	if (json)
		printf("%s\n", l->json);
	else
		print_ports(l);
	portd_lease_free(l);
	portd_close(h);
	return 0;
}

static bool
all_digits(const char *s)
{
	return *s != '\0' && strspn(s, "0123456789") == strlen(s);
}

/*
 * The lease REF names, among the caller's (every user's for root): a lease
 * id, a port of the lease, a name (--name) or a unique prefix of an id, in
 * that order. 0 with the id in ret_id, or an exit code after saying why.
 */
int
lease_resolve(struct portd *h, const char *ref, char *ret_id)
{
	struct portd_lease *ls, *hit = NULL;
	size_t n, nhit = 0, plen = strlen(ref);
	long port = all_digits(ref) ? parse_int(ref, 1, 65535) : 0;
	int rc;

	if (port < 0)
		return usage_error(
		    "'%s' is neither a lease ID, a name nor a port (1..65535)",
		    ref);
	if ((rc = portd_list(h, geteuid() == 0, &ls, &n)) < 0)
		return report(h, rc, ref);
	/* Exact id, then port, then name: at most one lease each but
	 * names, which may repeat. */
	for (size_t i = 0; i < n && hit == NULL; i++) {
		if (strcmp(ls[i].id, ref) == 0)
			hit = &ls[i];
		for (size_t j = 0; port > 0 && j < ls[i].nports; j++)
			if (ls[i].ports[j] == port)
				hit = &ls[i];
	}
	if (hit != NULL)
		nhit = 1;
	for (int pass = 0; pass < 2 && nhit == 0; pass++)
		for (size_t i = 0; i < n && port == 0; i++)
			if (pass == 0 ? strcmp(ls[i].name, ref) == 0
			              : strncmp(ls[i].id, ref, plen) == 0) {
				if (nhit++ == 0)
					hit = &ls[i];
			}
	if (nhit == 1) {
		memcpy(ret_id, hit->id, PORTD_MAX_ID + 1);
		portd_lease_list_free(ls, n);
		return 0;
	}
	if (nhit == 0) {
		if (port > 0)
			fprintf(stderr,
			    "portctl: %s: not_found: no lease of yours holds "
			    "port %ld\n",
			    ref, port);
		else
			fprintf(stderr,
			    "portctl: %s: not_found: no lease of yours has "
			    "that ID, name or ID prefix (see 'portctl list')\n",
			    ref);
		portd_lease_list_free(ls, n);
		return EXIT_REFUSED;
	}
	fprintf(stderr, "portctl: '%s' names %zu leases:", ref, nhit);
	for (int pass = 0, shown = 0; pass < 2 && shown == 0; pass++)
		for (size_t i = 0; i < n; i++)
			if (pass == 0 ? strcmp(ls[i].name, ref) == 0
			              : strncmp(ls[i].id, ref, plen) == 0) {
				fprintf(stderr, " %s", ls[i].id);
				shown++;
			}
	fprintf(stderr, "; give one of their IDs\n");
	portd_lease_list_free(ls, n);
	return EXIT_USAGE;
}

int
cmd_release(int argc, char **argv)
{
	static const struct option opts[] = {
	    GLOBAL_OPTIONS, {NULL, 0, NULL, 0}};
	char id[PORTD_MAX_ID + 1];
	struct portd *h;
	int opt, rc, ex = 0;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1)
		if (global_option(opt, optarg, &ex) < 0)
			return ex;
	if (optind == argc)
		return usage_error(
		    "which lease? give an ID, an ID prefix, a name or a PORT");
	for (int i = optind; i < argc; i++)
		if (all_digits(argv[i]) && parse_int(argv[i], 1, 65535) < 0)
			return usage_error(
			    "'%s' is not a port (1..65535)", argv[i]);
	if ((ex = open_daemon(&h)) != 0)
		return ex;
	for (int i = optind; i < argc; i++) {
		long port =
		    all_digits(argv[i]) ? parse_int(argv[i], 1, 65535) : 0;

		/* A port goes to the daemon as it is: it says whose. */
		if (port > 0)
			rc = portd_release_port(h, (uint16_t)port);
		else if ((rc = lease_resolve(h, argv[i], id)) != 0) {
			ex = rc;
			if (rc != EXIT_REFUSED && rc != EXIT_USAGE)
				break; /* the connection is gone */
			continue;
		} else
			rc = portd_release(h, id);
		if (rc >= 0)
			continue;
		rc = report(h, rc, argv[i]);
		if (rc != EXIT_REFUSED) {
			ex = rc;
			break; /* the connection is gone */
		}
		ex = EXIT_REFUSED;
	}
	portd_close(h);
	return ex;
}

/* renew and claim: one lease id, the updated lease printed with --json. */
static int
lease_id_command(int argc, char **argv, bool renew)
{
	static const struct option renew_opts[] = {GLOBAL_OPTIONS,
	    {"ttl", required_argument, NULL, OPT_TTL},
	    {"json", no_argument, NULL, OPT_JSON}, {NULL, 0, NULL, 0}};
	static const struct option claim_opts[] = {GLOBAL_OPTIONS,
	    {"json", no_argument, NULL, OPT_JSON}, {NULL, 0, NULL, 0}};
	char id[PORTD_MAX_ID + 1];
	struct portd_lease *l;
	struct portd *h;
	int64_t ttl = 0;
	bool json = false;
	int opt, rc, ex = 0;

	while ((opt = getopt_long(argc, argv, "",
	            renew ? renew_opts : claim_opts, NULL)) != -1) {
		if (global_option(opt, optarg, &ex) < 0)
			return ex;
		if (opt == OPT_JSON)
			json = true;
		else if (opt == OPT_TTL && (ttl = ttl_option(optarg, &ex)) < 0)
			return ex;
	}
	if (argc - optind != 1)
		return usage_error("give exactly one lease: an ID, an ID "
		                   "prefix, a name or a PORT");
	if ((ex = open_daemon(&h)) != 0)
		return ex;
	if ((ex = lease_resolve(h, argv[optind], id)) != 0) {
		portd_close(h);
		return ex;
	}
	rc = renew ? portd_renew(h, id, ttl, &l) : portd_claim(h, id, &l);
	if (rc < 0) {
		ex = report(h, rc, argv[optind]);
		portd_close(h);
		return ex;
	}
	if (json)
		printf("%s\n", l->json);
	portd_lease_free(l);
	portd_close(h);
	return 0;
}

int
cmd_renew(int argc, char **argv)
{
	return lease_id_command(argc, argv, true);
}

int
cmd_claim(int argc, char **argv)
{
	return lease_id_command(argc, argv, false);
}
