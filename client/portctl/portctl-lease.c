/* portctl lease, release, renew and claim. */
#include <stdio.h>

#include "portctl.h"

/* The lease options shared by lease and exec. 1 if opt was one. */
int
lease_option(
    int opt, const char *arg, struct portd_lease_request *req, int *ret_exit)
{
	int64_t ttl;
	long n;
	int i;

	switch (opt) {
	case 'n':
		if ((n = parse_int(arg, 1, PORTD_MAX_PORTS)) < 0)
			goto bad;
		req->count = (unsigned)n;
		return 1;
	case OPT_PROTO:
		if ((i = portd_proto_from_name(arg)) < 0)
			goto bad;
		req->proto = (enum portd_proto)i;
		return 1;
	case OPT_FAMILY:
		if ((i = portd_family_from_name(arg)) < 0)
			goto bad;
		req->family = (enum portd_family)i;
		return 1;
	case OPT_PORT:
		if ((n = parse_int(arg, 1, 65535)) < 0)
			goto bad;
		req->port = (uint16_t)n;
		return 1;
	case OPT_CONTIGUOUS:
		req->contiguous = true;
		return 1;
	case OPT_TTL:
		if ((ttl = parse_duration(arg, false)) <= 0)
			goto bad;
		req->ttl = ttl;
		return 1;
	case OPT_NAME:
		req->name = arg;
		return 1;
	case OPT_HOLD:
		if ((i = portd_hold_from_name(arg)) < 0)
			goto bad;
		req->hold = (enum portd_hold)i;
		return 1;
	case OPT_STRATEGY:
		if ((i = portd_strategy_from_name(arg)) < 0)
			goto bad;
		req->strategy = (enum portd_strategy)i;
		return 1;
	}
	return 0;
bad:
	*ret_exit = usage_error("bad value '%s'", arg);
	return -1;
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
	int opt, rc, ex = 0, i;

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
				return usage_error("bad --scope '%s'", optarg);
			req.scope = (enum portd_scope)i;
		}
	}
	if (optind != argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if ((ex = open_daemon(&h)) != 0)
		return ex;
	if ((rc = portd_lease(h, &req, &l)) < 0) {
		ex = report(h, rc, "lease");
		portd_close(h);
		return ex;
	}
	if (json)
		printf("%s\n", l->json);
	else
		print_ports(l);
	portd_lease_free(l);
	portd_close(h);
	return 0;
}

/* A lease id, or a port number when all digits. */
int
cmd_release(int argc, char **argv)
{
	static const struct option opts[] = {
	    GLOBAL_OPTIONS, {NULL, 0, NULL, 0}};
	struct portd *h;
	int opt, rc, ex = 0;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1)
		if (global_option(opt, optarg, &ex) < 0)
			return ex;
	if (optind == argc)
		return usage_error("which lease? give an ID or a PORT");
	for (int i = optind; i < argc; i++)
		if (argv[i][0] >= '0' && argv[i][0] <= '9' &&
		    parse_int(argv[i], 1, 65535) < 0)
			return usage_error("bad port '%s'", argv[i]);
	if ((ex = open_daemon(&h)) != 0)
		return ex;
	for (int i = optind; i < argc; i++) {
		long port = parse_int(argv[i], 1, 65535);

		rc = port > 0 ? portd_release_port(h, (uint16_t)port)
		              : portd_release(h, argv[i]);
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
		else if (opt == OPT_TTL &&
		         (ttl = parse_duration(optarg, false)) <= 0)
			return usage_error("bad --ttl '%s'", optarg);
	}
	if (argc - optind != 1)
		return usage_error("give exactly one lease ID");
	if ((ex = open_daemon(&h)) != 0)
		return ex;
	rc = renew ? portd_renew(h, argv[optind], ttl, &l)
	           : portd_claim(h, argv[optind], &l);
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
