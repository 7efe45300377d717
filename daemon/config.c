/* portd configuration: defaults, one table of keys, and the config file. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "shared.h"

#define CONFIG_LINE_MAX 4096 /* bytes of a line, without its '\n' */

#define MS_SECOND PROTO_MS_SECOND
#define MS_HOUR   PROTO_MS_HOUR
#define MS_DAY    PROTO_MS_DAY

enum key_type {
	KEY_INT,      /* int, min..max */
	KEY_SECONDS,  /* int64_t seconds; bounds in ms */
	KEY_MSEC,     /* int milliseconds; bounds in ms */
	KEY_BYTES,    /* size_t bytes */
	KEY_POOL,     /* pool_lo, pool_hi */
	KEY_STRATEGY, /* strategy */
	KEY_MODE,     /* socket_mode */
	KEY_ADDRESS,  /* portserver */
	KEY_LOGLEVEL, /* log_level */
	KEY_METRICS,  /* metrics */
	KEY_BOOL,     /* bool */
};

struct key {
	const char *name;
	enum key_type type;
	size_t off; /* of the field, for the numeric types */
	int64_t min, max;
};

#define F(field) offsetof(struct config, field)

/* Every key of the config file, in the order config_write prints them. */
static const struct key keys[] = {
    {"pool", KEY_POOL, 0, 0, 0},
    {"strategy", KEY_STRATEGY, 0, 0, 0},
    {"quota", KEY_INT, F(quota), 1, 65536},
    /* A lease holds at least one port: more leases than ports can't be. */
    {"max-leases", KEY_INT, F(max_leases), 1, 65536},
    {"default-ttl", KEY_SECONDS, F(default_ttl), MS_SECOND, 366 * MS_DAY},
    {"max-ttl", KEY_SECONDS, F(max_ttl), MS_SECOND, 366 * MS_DAY},
    {"max-connections", KEY_INT, F(max_conns), 1, 65536},
    {"max-connections-per-uid", KEY_INT, F(max_conns_per_uid), 1, 65536},
    {"request-timeout", KEY_MSEC, F(request_timeout_ms), 100, MS_HOUR},
    /* At least one request line's worth (64 KiB); at most 1 GiB. */
    {"max-output", KEY_BYTES, F(max_output), 64 * 1024, 1024 * 1024 * 1024},
    /* Over all connections of one uid, and of everyone. */
    {"max-output-per-uid", KEY_BYTES, F(max_output_per_uid), 64 * 1024,
        INT64_C(16) * 1024 * 1024 * 1024},
    {"max-output-total", KEY_BYTES, F(max_output_total), 64 * 1024,
        INT64_C(16) * 1024 * 1024 * 1024},
    /* Unread fds count against the daemon's user: keep the cap small. */
    {"max-fd-replies", KEY_INT, F(max_fd_replies), 1, 64},
    {"socket-mode", KEY_MODE, 0, 0, 0},
    {"portserver-address", KEY_ADDRESS, 0, 0, 0},
    {"log-level", KEY_LOGLEVEL, 0, 0, 0},
    {"metrics-address", KEY_METRICS, 0, 0, 0},
    {"metrics-allow-remote", KEY_BOOL, F(metrics_remote), 0, 0},
    {"allow-ephemeral-pool", KEY_BOOL, F(allow_ephemeral_pool), 0, 0},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

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
	cfg->max_output_per_uid = 16 * 1024 * 1024;
	cfg->max_output_total = 64 * 1024 * 1024;
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
config_parse_bytes(const char *s, uint64_t *ret_bytes)
{
	const char *end;
	int64_t v, mul;

	if (proto_parse_digits(s, &v, &end) == -1)
		return -1;
	if (*end == '\0')
		mul = 1;
	else if (strcmp(end, "K") == 0)
		mul = 1024;
	else if (strcmp(end, "M") == 0)
		mul = 1024 * 1024;
	else
		return -1;
	if (v > INT64_MAX / mul)
		return -1;
	*ret_bytes = (uint64_t)(v * mul);
	return 0;
}

/* A byte count in its largest exact unit: "1M", "64K", "1000". */
static void
format_bytes(uint64_t n, char *buf, size_t len)
{
	if (n != 0 && n % (1024 * 1024) == 0)
		snprintf(buf, len, "%" PRIu64 "M", n / (1024 * 1024));
	else if (n != 0 && n % 1024 == 0)
		snprintf(buf, len, "%" PRIu64 "K", n / 1024);
	else
		snprintf(buf, len, "%" PRIu64, n);
}

static int
set_int(struct config *cfg, const struct key *k, const char *v, char *why,
    size_t len)
{
	const char *end;
	int64_t n;

	if (proto_parse_digits(v, &n, &end) == -1 || *end != '\0') {
		snprintf(why, len, "'%.64s' is not a whole number", v);
		return -1;
	}
	if (n < k->min || n > k->max) {
		snprintf(why, len,
		    "%" PRId64 " is out of range (%" PRId64 "..%" PRId64 ")", n,
		    k->min, k->max);
		return -1;
	}
	*(int *)(void *)((char *)cfg + k->off) = (int)n;
	return 0;
}

/* format_bytes for a key's bounds, which are int64_t. */
static void
format_size(int64_t n, char *buf, size_t len)
{
	format_bytes((uint64_t)n, buf, len);
}

/* v is outside k's bounds: say so with the bounds written as format
 * writes them. Returns -1. */
static int
out_of_range(const struct key *k, const char *v,
    void (*format)(int64_t, char *, size_t), char *why, size_t len)
{
	char lo[32], hi[32];

	format(k->min, lo, sizeof(lo));
	format(k->max, hi, sizeof(hi));
	snprintf(why, len, "'%.64s' is out of range (%s..%s)", v, lo, hi);
	return -1;
}

static int
set_duration(struct config *cfg, const struct key *k, const char *v, char *why,
    size_t len)
{
	int64_t ms;

	/* A bare number is seconds, as everywhere in portd's durations. */
	if (proto_duration_parse(v, MS_SECOND, &ms) == -1) {
		snprintf(why, len,
		    "'%.64s' is not a duration: " PROTO_DURATION_FORMS, v);
		return -1;
	}
	if (ms < k->min || ms > k->max)
		return out_of_range(k, v, proto_duration_format, why, len);
	if (k->type == KEY_MSEC) {
		*(int *)(void *)((char *)cfg + k->off) = (int)ms;
		return 0;
	}
	if (ms % MS_SECOND != 0) {
		snprintf(
		    why, len, "'%.64s' is not a whole number of seconds", v);
		return -1;
	}
	*(int64_t *)(void *)((char *)cfg + k->off) = ms / MS_SECOND;
	return 0;
}

static int
set_bytes(struct config *cfg, const struct key *k, const char *v, char *why,
    size_t len)
{
	uint64_t n;

	if (config_parse_bytes(v, &n) == -1) {
		snprintf(why, len,
		    "'%.64s' is not a size (like 65536, 64K or 1M)", v);
		return -1;
	}
	if (n < (uint64_t)k->min || n > (uint64_t)k->max)
		return out_of_range(k, v, format_size, why, len);
	*(size_t *)(void *)((char *)cfg + k->off) = (size_t)n;
	return 0;
}

static int
set_mode(struct config *cfg, const char *v, char *why, size_t len)
{
	unsigned long m = 0;
	size_t n = strlen(v);

	/* Octal as chmod(1) takes it: "666" or "0666"; no set-id bits. */
	if (n == 0 || n > 6 || strspn(v, "01234567") != n) {
		snprintf(
		    why, len, "'%.64s' is not an octal mode (like 0660)", v);
		return -1;
	}
	m = strtoul(v, NULL, 8);
	if (m > 0777) {
		snprintf(why, len, "%04lo has bits beyond 0777", m);
		return -1;
	}
	/* Connecting needs write permission; the daemon's own user must. */
	if ((m & 0600) != 0600) {
		snprintf(why, len,
		    "%04lo does not give the owner read and "
		    "write (0600)",
		    m);
		return -1;
	}
	cfg->socket_mode = (mode_t)m;
	return 0;
}

static int
set_address(struct config *cfg, const char *v, char *why, size_t len)
{
	size_t n = strlen(v);

	/* "" switches the portserver socket off (e.g. from the command line).
	 */
	if (n > 0 && v[0] != '/' && v[0] != '@') {
		snprintf(why, len,
		    "'%.64s' is neither an absolute path nor "
		    "@name",
		    v);
		return -1;
	}
	if (strcmp(v, "@") == 0) {
		snprintf(why, len, "the abstract name after '@' is empty");
		return -1;
	}
	if (n >= sizeof(cfg->portserver)) {
		snprintf(why, len, "longer than %zu bytes",
		    sizeof(cfg->portserver) - 1);
		return -1;
	}
	memcpy(cfg->portserver, v, n + 1);
	return 0;
}

int
config_parse_hostport(const char *s, char *ret_host, size_t hostlen,
    uint16_t *ret_port, bool *ret_loopback, char *why, size_t whylen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *port = s, *end;
	struct in6_addr a6;
	struct in_addr a4;
	size_t hlen = 0;
	int64_t n;

	snprintf(host, sizeof(host), "127.0.0.1");
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL || end[1] != ':') {
			snprintf(why, whylen,
			    "'%.64s' is not [IPv6]:PORT (like [::1]:9464)", s);
			return -1;
		}
		hlen = (size_t)(end - s - 1);
		port = end + 2;
		if (hlen >= sizeof(host))
			goto badhost;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1)
			goto badhost;
		*ret_loopback =
		    IN6_IS_ADDR_LOOPBACK(&a6) ||
		    (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	} else if ((colon = strrchr(s, ':')) != NULL) {
		hlen = (size_t)(colon - s);
		port = colon + 1;
		if (hlen >= sizeof(host) || memchr(s, ':', hlen) != NULL)
			goto badhost;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		/* No name lookups: a name could resolve elsewhere later. */
		if (strcmp(host, "localhost") == 0)
			snprintf(host, sizeof(host), "127.0.0.1");
		if (inet_pton(AF_INET, host, &a4) != 1)
			goto badhost;
		*ret_loopback = (ntohl(a4.s_addr) >> 24) == 127;
	} else
		*ret_loopback = true;
	if (proto_parse_digits(port, &n, &end) == -1 || *end != '\0' ||
	    n > 65535) {
		snprintf(why, whylen,
		    "'%.64s' has no port 0..65535 (like 9464, "
		    "127.0.0.1:9464 or [::1]:9464)",
		    s);
		return -1;
	}
	if (strlen(host) >= hostlen)
		goto badhost;
	strcpy(ret_host, host);
	*ret_port = (uint16_t)n;
	return 0;
badhost:
	snprintf(why, whylen,
	    "'%.64s' has no numeric IPv4 or [IPv6] address, nor localhost "
	    "(like 9464, 127.0.0.1:9464 or [::1]:9464)",
	    s);
	return -1;
}

static int
set_metrics(struct config *cfg, const char *v, char *why, size_t len)
{
	char host[INET6_ADDRSTRLEN + 1];
	uint16_t port;
	bool lo;

	/* "" switches the metrics endpoint off. */
	if (*v != '\0' && config_parse_hostport(v, host, sizeof(host), &port,
	                      &lo, why, len) == -1)
		return -1;
	if (strlen(v) >= sizeof(cfg->metrics)) {
		snprintf(why, len, "longer than %zu bytes",
		    sizeof(cfg->metrics) - 1);
		return -1;
	}
	strcpy(cfg->metrics, v);
	return 0;
}

static int
set_bool(struct config *cfg, const struct key *k, const char *v, char *why,
    size_t len)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	bool *b = (bool *)(void *)((char *)cfg + k->off);

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(v, yes[i]) == 0) {
			*b = true;
			return 0;
		}
		if (strcmp(v, no[i]) == 0) {
			*b = false;
			return 0;
		}
	}
	snprintf(why, len,
	    "'%.64s' is not one of yes, no (or true, false, "
	    "on, off, 1, 0)",
	    v);
	return -1;
}

static int
set_key(struct config *cfg, const struct key *k, const char *v, char *why,
    size_t len)
{
	int level, strategy;

	if (*v == '\0' && k->type != KEY_ADDRESS && k->type != KEY_METRICS) {
		snprintf(why, len, "empty value");
		return -1;
	}
	switch (k->type) {
	case KEY_INT:
		return set_int(cfg, k, v, why, len);
	case KEY_SECONDS:
	case KEY_MSEC:
		return set_duration(cfg, k, v, why, len);
	case KEY_BYTES:
		return set_bytes(cfg, k, v, why, len);
	case KEY_POOL:
		if (config_parse_range(v, &cfg->pool_lo, &cfg->pool_hi) == -1) {
			snprintf(why, len,
			    "'%.64s' is not a range LO-HI with "
			    "1 <= LO <= HI <= 65535",
			    v);
			return -1;
		}
		return 0;
	case KEY_STRATEGY:
		if ((strategy = proto_strategy_from_string(v)) < 0) {
			snprintf(why, len, "'%.64s' is neither %s nor %s", v,
			    proto_strategy_to_string(PROTO_STRATEGY_POOL),
			    proto_strategy_to_string(PROTO_STRATEGY_EPHEMERAL));
			return -1;
		}
		cfg->strategy = (enum proto_strategy)strategy;
		return 0;
	case KEY_MODE:
		return set_mode(cfg, v, why, len);
	case KEY_ADDRESS:
		return set_address(cfg, v, why, len);
	case KEY_METRICS:
		return set_metrics(cfg, v, why, len);
	case KEY_BOOL:
		return set_bool(cfg, k, v, why, len);
	case KEY_LOGLEVEL:
		level = log_level_parse(v);
		if (level < LOG_ERR || level > LOG_DEBUG) {
			snprintf(why, len,
			    "'%.64s' is not one of err, "
			    "warning, notice, info, debug (or 3..7)",
			    v);
			return -1;
		}
		cfg->log_level = level;
		return 0;
	}
	snprintf(why, len, "internal error: bad key type");
	return -1;
}

static const struct key *
key_find(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

int
config_set(struct config *cfg, const char *key, const char *value, char *err,
    size_t errlen)
{
	const struct key *k;
	struct config tmp;
	char why[512];

	if ((k = key_find(key)) == NULL) {
		snprintf(err, errlen, "unknown key '%.64s'", key);
		return -1;
	}
	tmp = *cfg;
	if (set_key(&tmp, k, value, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "key '%s': %s", k->name, why);
		return -1;
	}
	if (k->off == F(default_ttl) && k->type == KEY_SECONDS)
		tmp.default_ttl_set = true;
	*cfg = tmp;
	return 0;
}

int
config_check_metrics(const struct config *cfg, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 1], why[256];
	uint16_t port;
	bool lo;

	if (cfg->metrics[0] != '\0') {
		if (config_parse_hostport(cfg->metrics, host, sizeof(host),
		        &port, &lo, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "key 'metrics-address': %s", why);
			return -1;
		}
		/* Metrics tell who leases what: not for the network unless
		 * the operator says so. */
		if (!lo && !cfg->metrics_remote) {
			snprintf(err, errlen,
			    "key 'metrics-address': %s is not a loopback "
			    "address; set metrics-allow-remote = yes "
			    "(--metrics-allow-remote) to serve metrics "
			    "beyond this host",
			    host);
			return -1;
		}
	}
	return 0;
}

int
config_check_ephemeral(
    const struct config *cfg, const char *range_file, char *err, size_t errlen)
{
	unsigned lo, hi;
	FILE *f;
	int n;

	if (cfg->strategy != PROTO_STRATEGY_POOL)
		return 0;
	if ((f = fopen(range_file, "re")) == NULL)
		return 0; /* no such knob: nothing to compare with */
	n = fscanf(f, "%u %u", &lo, &hi);
	fclose(f);
	if (n != 2 || lo > hi || cfg->pool_hi < lo || cfg->pool_lo > hi)
		return 0;
	/* The kernel hands these ports to any connect() and bind(0): a
	 * claimed or portserver lease (no socket held) can be taken. */
	snprintf(err, errlen,
	    "the pool %u-%u overlaps the kernel's ephemeral range %u-%u "
	    "(net.ipv4.ip_local_port_range): the kernel may give its ports "
	    "to any program, so claimed and portserver leases are not safe; "
	    "move the pool, or narrow the range",
	    cfg->pool_lo, cfg->pool_hi, lo, hi);
	if (cfg->system && !cfg->allow_ephemeral_pool) {
		size_t used = strlen(err);
		snprintf(err + used, errlen - used,
		    "; a system daemon refuses it unless "
		    "allow-ephemeral-pool = yes (--allow-ephemeral-pool)");
		return -1;
	}
	return 1;
}

int
config_check(struct config *cfg, char *err, size_t errlen)
{
	if (cfg->default_ttl <= cfg->max_ttl)
		return 0;
	if (!cfg->default_ttl_set) {
		cfg->default_ttl = cfg->max_ttl;
		return 0;
	}
	snprintf(err, errlen,
	    "key 'default-ttl': %" PRId64 "s exceeds max-ttl "
	    "%" PRId64 "s",
	    cfg->default_ttl, cfg->max_ttl);
	return -1;
}

/*
 * Read one line into buf (NUL-terminated, without '\n'). Returns 1, 0 at
 * the end of the file, -1 for a line over CONFIG_LINE_MAX bytes (the rest
 * of it is consumed), -2 for a NUL byte in the line, -3 on a read error.
 */
static int
read_line(FILE *f, char buf[CONFIG_LINE_MAX + 1])
{
	size_t n = 0;
	int c, ret = 1;

	while ((c = getc(f)) != EOF && c != '\n') {
		if (c == '\0' && ret == 1)
			ret = -2;
		if (n == CONFIG_LINE_MAX)
			ret = -1;
		else
			buf[n++] = (char)c;
	}
	buf[n] = '\0';
	if (ferror(f))
		return -3;
	if (c == EOF && n == 0 && ret == 1)
		return 0;
	return ret;
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	*e = '\0';
	return s;
}

int
config_load(struct config *cfg, const char *path, bool optional, char *err,
    size_t errlen)
{
	char buf[CONFIG_LINE_MAX + 1];
	unsigned seen[NKEYS] = {0}; /* line each key was set on, 0 = not */
	struct config tmp = *cfg;
	const struct key *k;
	char msg[1024], *key, *value, *eq;
	unsigned line = 0, dt_line = 0;
	FILE *f;
	int r;

	if ((f = fopen(path, "re")) == NULL) {
		if (optional && (errno == ENOENT || errno == ENOTDIR))
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* Checks between keys must not consider an earlier default-ttl. */
	tmp.default_ttl_set = false;
	while ((r = read_line(f, buf)) != 0) {
		line++;
		if (r == -1) {
			snprintf(err, errlen,
			    "%s:%u: line longer than %d bytes", path, line,
			    CONFIG_LINE_MAX);
			goto fail;
		}
		if (r == -2) {
			snprintf(
			    err, errlen, "%s:%u: NUL byte in line", path, line);
			goto fail;
		}
		if (r == -3) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		key = trim(buf);
		if (*key == '\0' || *key == '#')
			continue;
		if ((eq = strchr(key, '=')) == NULL) {
			snprintf(err, errlen, "%s:%u: expected 'key = value'",
			    path, line);
			goto fail;
		}
		*eq = '\0';
		key = trim(key);
		value = trim(eq + 1);
		if (*key == '\0') {
			snprintf(err, errlen, "%s:%u: no key before '='", path,
			    line);
			goto fail;
		}
		if ((k = key_find(key)) != NULL && seen[k - keys] != 0) {
			snprintf(err, errlen,
			    "%s:%u: key '%s': duplicate, "
			    "first set on line %u",
			    path, line, k->name, seen[k - keys]);
			goto fail;
		}
		if (config_set(&tmp, key, value, msg, sizeof(msg)) == -1) {
			snprintf(err, errlen, "%s:%u: %s", path, line, msg);
			goto fail;
		}
		seen[k - keys] = line;
		if (k->off == F(default_ttl) && k->type == KEY_SECONDS)
			dt_line = line;
	}
	fclose(f);
	if (config_check(&tmp, msg, sizeof(msg)) == -1) {
		snprintf(err, errlen, "%s:%u: %s", path, dt_line, msg);
		return -1;
	}
	/* An explicit default-ttl from before this file still counts. */
	tmp.default_ttl_set = tmp.default_ttl_set || cfg->default_ttl_set;
	*cfg = tmp;
	return 0;
fail:
	fclose(f);
	return -1;
}

int
config_default_file(bool system, char *buf, size_t len)
{
	const char *xdg, *home;
	struct passwd *pw;
	int n;

	if (system)
		n = snprintf(buf, len, "/etc/portd/portd.conf");
	else if ((xdg = getenv("XDG_CONFIG_HOME")) != NULL && xdg[0] == '/')
		n = snprintf(buf, len, "%s/portd/portd.conf", xdg);
	else {
		if ((home = getenv("HOME")) == NULL || home[0] != '/') {
			if ((pw = getpwuid(getuid())) == NULL)
				return -1;
			home = pw->pw_dir;
		}
		if (home == NULL || home[0] != '/')
			return -1;
		n = snprintf(buf, len, "%s/.config/portd/portd.conf", home);
	}
	if (n < 0 || (size_t)n >= len)
		return -1;
	return 0;
}

void
config_write(const struct config *cfg, FILE *f)
{
	static const char *const levels[] = {"emerg", "alert", "crit", "err",
	    "warning", "notice", "info", "debug"};
	char v[64];

	fprintf(f, "pool = %u-%u\n", cfg->pool_lo, cfg->pool_hi);
	fprintf(f, "strategy = %s\n", proto_strategy_to_string(cfg->strategy));
	fprintf(f, "quota = %d\n", cfg->quota);
	fprintf(f, "max-leases = %d\n", cfg->max_leases);
	proto_duration_format(cfg->default_ttl * MS_SECOND, v, sizeof(v));
	fprintf(f, "default-ttl = %s\n", v);
	proto_duration_format(cfg->max_ttl * MS_SECOND, v, sizeof(v));
	fprintf(f, "max-ttl = %s\n", v);
	fprintf(f, "max-connections = %d\n", cfg->max_conns);
	fprintf(f, "max-connections-per-uid = %d\n", cfg->max_conns_per_uid);
	proto_duration_format(cfg->request_timeout_ms, v, sizeof(v));
	fprintf(f, "request-timeout = %s\n", v);
	format_bytes(cfg->max_output, v, sizeof(v));
	fprintf(f, "max-output = %s\n", v);
	format_bytes(cfg->max_output_per_uid, v, sizeof(v));
	fprintf(f, "max-output-per-uid = %s\n", v);
	format_bytes(cfg->max_output_total, v, sizeof(v));
	fprintf(f, "max-output-total = %s\n", v);
	fprintf(f, "max-fd-replies = %d\n", cfg->max_fd_replies);
	fprintf(f, "socket-mode = %04o\n", (unsigned)cfg->socket_mode);
	fprintf(f, "portserver-address = %s\n", cfg->portserver);
	fprintf(f, "log-level = %s\n",
	    cfg->log_level >= 0 && cfg->log_level <= 7 ? levels[cfg->log_level]
	                                               : "info");
	fprintf(f, "metrics-address = %s\n", cfg->metrics);
	fprintf(f, "metrics-allow-remote = %s\n",
	    cfg->metrics_remote ? "yes" : "no");
	fprintf(f, "allow-ephemeral-pool = %s\n",
	    cfg->allow_ephemeral_pool ? "yes" : "no");
}
