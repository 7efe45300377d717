/* portd configuration: defaults, the config file, and what flags override. */
#ifndef PORTD_CONFIG_H
#define PORTD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "proto.h"

#define CONFIG_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path))

struct config {
	bool system;                       /* --system: /run/portd */
	char socket_path[CONFIG_PATH_MAX]; /* "" = the mode's default */
	char config_file[PATH_MAX];        /* "" = the mode's default */
	char portserver[CONFIG_PATH_MAX];  /* "" = off; "@name" abstract */
	int log_level;                     /* LOG_ERR..LOG_DEBUG */

	uint16_t pool_lo, pool_hi;    /* inclusive */
	enum proto_strategy strategy; /* pool or ephemeral */
	int quota;                    /* ports per uid */
	int max_leases;               /* leases in all */
	int64_t default_ttl;          /* seconds */
	int64_t max_ttl;              /* seconds */
	int max_conns;                /* connections in all */
	int max_conns_per_uid;
	int request_timeout_ms; /* first byte to '\n' */
	size_t max_output;      /* queued reply bytes a client */
	int max_fd_replies;     /* unread fd-carrying replies */
	mode_t socket_mode;     /* API socket permissions */
};

/* Fill the built-in defaults (see docs/operations.md). */
void config_defaults(struct config *);

/*
 * Read a config file of `key = value` lines into cfg. Returns 0, or -1
 * with a message naming the file, line and key in err. A missing file is
 * not an error when optional is true.
 */
int config_load(struct config *cfg, const char *path, bool optional, char *err,
    size_t errlen);

/* Apply one `key = value` setting (config file key names; the command
 * line uses them too). Returns 0, or -1 with a message in err. */
int config_set(struct config *cfg, const char *key, const char *value,
    char *err, size_t errlen);

/* Parse "LO-HI" into a pool range; -1 on a bad or empty range. */
int config_parse_range(const char *s, uint16_t *ret_lo, uint16_t *ret_hi);

#endif
