/* portd configuration: defaults and the config file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <syslog.h>

#include "config.h"
#include "log.h"

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
	if (optional && access(path, F_OK) == -1)
		return 0;
	snprintf(err, errlen, "%s: config files are not supported yet", path);
	return -1;
}

/* A number with an optional unit suffix; unit_ms scales a bare number. */
static int
parse_scaled(const char *s, int64_t bare, int64_t *ret)
{
	char *end;
	long long v;
	int64_t mult = bare;

	if (*s < '0' || *s > '9')
		return -1;
	v = strtoll(s, &end, 10);
	if (strcmp(end, "") == 0)
		mult = bare;
	else if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "s") == 0)
		mult = 1000;
	else if (strcmp(end, "m") == 0)
		mult = 60000;
	else if (strcmp(end, "h") == 0)
		mult = 3600000;
	else if (strcmp(end, "d") == 0)
		mult = 86400000;
	else
		return -1;
	if (v > INT64_MAX / mult)
		return -1;
	*ret = v * mult;
	return 0;
}

int
config_set(struct config *cfg, const char *key, const char *value, char *err,
    size_t errlen)
{
	int64_t v;

	if (strcmp(key, "pool") == 0) {
		if (config_parse_range(value, &cfg->pool_lo, &cfg->pool_hi) ==
		    0)
			return 0;
	} else if (strcmp(key, "strategy") == 0) {
		if (strcmp(value, "pool") == 0 ||
		    strcmp(value, "ephemeral") == 0) {
			cfg->strategy = value[0] == 'p'
			                    ? PROTO_STRATEGY_POOL
			                    : PROTO_STRATEGY_EPHEMERAL;
			return 0;
		}
	} else if (strcmp(key, "log-level") == 0) {
		if ((cfg->log_level = log_level_parse(value)) != -1)
			return 0;
	} else if (strcmp(key, "portserver-address") == 0) {
		if (strlen(value) < sizeof(cfg->portserver)) {
			strcpy(cfg->portserver, value);
			return 0;
		}
	} else if (strcmp(key, "socket-mode") == 0) {
		char *end;
		unsigned long m = strtoul(value, &end, 8);
		if (*value != '\0' && *end == '\0' && m <= 0777) {
			cfg->socket_mode = (mode_t)m;
			return 0;
		}
	} else if (strcmp(key, "quota") == 0) {
		if (parse_scaled(value, 1, &v) == 0 && v >= 1 && v <= 65536) {
			cfg->quota = (int)v;
			return 0;
		}
	} else if (strcmp(key, "max-leases") == 0) {
		if (parse_scaled(value, 1, &v) == 0 && v >= 1 && v <= 65536) {
			cfg->max_leases = (int)v;
			return 0;
		}
	} else if (strcmp(key, "max-connections") == 0) {
		if (parse_scaled(value, 1, &v) == 0 && v >= 1 && v <= 65536) {
			cfg->max_conns = (int)v;
			return 0;
		}
	} else if (strcmp(key, "max-connections-per-uid") == 0) {
		if (parse_scaled(value, 1, &v) == 0 && v >= 1 && v <= 65536) {
			cfg->max_conns_per_uid = (int)v;
			return 0;
		}
	} else if (strcmp(key, "max-fd-replies") == 0) {
		if (parse_scaled(value, 1, &v) == 0 && v >= 1 && v <= 1024) {
			cfg->max_fd_replies = (int)v;
			return 0;
		}
	} else if (strcmp(key, "max-output") == 0) {
		if (parse_scaled(value, 1, &v) == 0 && v >= 4096 &&
		    v <= 1 << 30) {
			cfg->max_output = (size_t)v;
			return 0;
		}
	} else if (strcmp(key, "default-ttl") == 0) {
		if (parse_scaled(value, 1000, &v) == 0 && v >= 1000 &&
		    v <= 366LL * 86400000) {
			cfg->default_ttl = v / 1000;
			return 0;
		}
	} else if (strcmp(key, "max-ttl") == 0) {
		if (parse_scaled(value, 1000, &v) == 0 && v >= 1000 &&
		    v <= 366LL * 86400000) {
			cfg->max_ttl = v / 1000;
			return 0;
		}
	} else if (strcmp(key, "request-timeout") == 0) {
		if (parse_scaled(value, 1000, &v) == 0 && v >= 100 &&
		    v <= 3600000) {
			cfg->request_timeout_ms = (int)v;
			return 0;
		}
	} else {
		snprintf(err, errlen, "unknown key '%s'", key);
		return -1;
	}
	snprintf(err, errlen, "key '%s': bad value '%s'", key, value);
	return -1;
}
