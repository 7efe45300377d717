/* portd configuration: defaults, the config file, and what flags override. */
#ifndef PORTD_CONFIG_H
#define PORTD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/un.h>

#include "proto.h"

#define CONFIG_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path))
#define CONFIG_ADDR_MAX 64 /* "[IPv6]:port" and then some */

struct config {
	bool system;                       /* --system: /run/portd */
	char socket_path[CONFIG_PATH_MAX]; /* "" = the mode's default */
	char config_file[PATH_MAX];        /* "" = the mode's default */
	char portserver[CONFIG_PATH_MAX];  /* "" = off; "@name" abstract */
	char metrics[CONFIG_ADDR_MAX];     /* "" = off; HOST:PORT (HTTP) */
	bool metrics_remote;               /* a non-loopback metrics host */
	bool allow_ephemeral_pool;         /* --system: pool may overlap it */
	int log_level;                     /* LOG_ERR..LOG_DEBUG */

	uint16_t pool_lo, pool_hi;    /* inclusive */
	enum proto_strategy strategy; /* pool or ephemeral */
	int quota;                    /* ports per uid */
	int max_leases;               /* leases in all */
	int64_t default_ttl;          /* seconds */
	int64_t max_ttl;              /* seconds */
	int max_conns;                /* connections in all */
	int max_conns_per_uid;
	int request_timeout_ms;    /* first byte to '\n' */
	size_t max_output;         /* queued reply bytes a client */
	size_t max_output_per_uid; /* ... all connections of a uid */
	size_t max_output_total;   /* ... every connection */
	int max_fd_replies;        /* unread fd-carrying replies */
	mode_t socket_mode;        /* API socket permissions */

	bool default_ttl_set; /* default-ttl set explicitly */
};

/* Fill the built-in defaults (see docs/operations.md). */
void config_defaults(struct config *);

/*
 * Read a config file of `key = value` lines into cfg. Returns 0, or -1
 * with a message naming the file, line and key in err. A missing file is
 * not an error when optional is true. cfg is only changed on success;
 * config_check runs on the result (flags applied later need their own).
 */
int config_load(struct config *cfg, const char *path, bool optional, char *err,
    size_t errlen);

/* Parse "LO-HI" into a pool range; -1 on a bad or empty range. */
int config_parse_range(const char *s, uint16_t *ret_lo, uint16_t *ret_hi);

/*
 * Apply one setting, by its config file name ("max-ttl"), to cfg. The
 * config file and the command line share this. Returns 0, or -1 with
 * "key 'NAME': what is wrong" or "unknown key 'NAME'" in err; cfg is
 * untouched on failure. Checks between keys are left to config_check.
 */
int config_set(struct config *cfg, const char *key, const char *value,
    char *err, size_t errlen);

/*
 * Checks between keys, once every source has been applied: default-ttl
 * must not exceed max-ttl. A default-ttl that was never set explicitly
 * is lowered to max-ttl instead. Returns 0, or -1 with a message.
 */
int config_check(struct config *cfg, char *err, size_t errlen);

/*
 * The last check, on the whole configuration (file and flags): a
 * metrics-address beyond loopback needs metrics-allow-remote. Returns 0,
 * or -1 with a message naming the key.
 */
int config_check_metrics(const struct config *cfg, char *err, size_t errlen);

/*
 * Parse a metrics address: "PORT" (loopback), "HOST:PORT" or "[V6]:PORT",
 * HOST a numeric address or "localhost", PORT 0..65535 (0: any free one).
 * Stores the numeric host and the port; *ret_loopback tells whether the
 * host is a loopback address. -1 with the reason in why on bad syntax.
 */
int config_parse_hostport(const char *s, char *ret_host, size_t hostlen,
    uint16_t *ret_port, bool *ret_loopback, char *why, size_t whylen);

/*
 * The pool against the kernel's ephemeral range, as range_file
 * (/proc/sys/net/ipv4/ip_local_port_range) gives it: 0 when they do not
 * overlap (or the strategy is not pool, or the file is unreadable); 1
 * with a warning in err when they do; -1 with the refusal in err when
 * they do in system mode without allow-ephemeral-pool.
 */
#define CONFIG_EPHEMERAL_RANGE "/proc/sys/net/ipv4/ip_local_port_range"
int config_check_ephemeral(
    const struct config *cfg, const char *range_file, char *err, size_t errlen);

/* Parse a byte count: digits, then an optional K or M (1024-based). */
int config_parse_bytes(const char *s, uint64_t *ret_bytes);

/*
 * The config file a mode reads when none is named: /etc/portd/portd.conf
 * for the system, $XDG_CONFIG_HOME/portd/portd.conf (or
 * ~/.config/portd/portd.conf) per user. -1 if there is no home folder or
 * the path does not fit.
 */
int config_default_file(bool system, char *buf, size_t len);

/* Write cfg in config file syntax, every key (for --check-config). */
void config_write(const struct config *cfg, FILE *f);

#endif
