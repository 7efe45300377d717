/* portd configuration: defaults and the config file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "config.h"

void
config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->log_level = LOG_INFO;
	cfg->pool_lo = 15000;
	cfg->pool_hi = 24999;
	cfg->strategy = PROTO_STRATEGY_POOL;
	cfg->quota = 1024;
	cfg->max_leases = 16384;
	cfg->default_ttl = 300;
	cfg->max_ttl = 86400;
	cfg->max_conns = 1024;
	cfg->max_conns_per_uid = 256;
	cfg->request_timeout_ms = 10000;
	cfg->max_output = 1024 * 1024;
	cfg->max_fd_replies = 16;
	cfg->socket_mode = 0600;
}

int
config_parse_range(const char *s, uint16_t *ret_lo, uint16_t *ret_hi)
{
	char *end;
	unsigned long lo, hi;

	if (*s < '0' || *s > '9')
		return -1;
	lo = strtoul(s, &end, 10);
	if (*end != '-' || end[1] < '0' || end[1] > '9')
		return -1;
	hi = strtoul(end + 1, &end, 10);
	if (*end != '\0' || lo < 1 || hi > 65535 || lo > hi)
		return -1;
	*ret_lo = (uint16_t)lo;
	*ret_hi = (uint16_t)hi;
	return 0;
}

int
config_load(struct config *cfg, const char *path, bool optional, char *err,
    size_t errlen)
{
	/* The file format arrives with the host-service work. */
	(void)cfg;
	(void)optional;
	snprintf(err, errlen, "%s: config files are not supported yet", path);
	return -1;
}
