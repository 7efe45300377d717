/* The config file parser: every key, its bounds, the file syntax, errors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "harness.h"
#include "shared.h"

static char tmpdir[64];
static char conf[128]; /* tmpdir/portd.conf */

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/portd-config-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(conf, sizeof(conf), "%s/portd.conf", tmpdir);
}

static void
teardown(void)
{
	unlink(conf);
	rmdir(tmpdir);
}

/* Field by field: struct padding makes memcmp unreliable. */
static void
assert_same(const struct config *a, const struct config *b)
{
	ck_assert_int_eq(a->system, b->system);
	ck_assert_str_eq(a->socket_path, b->socket_path);
	ck_assert_str_eq(a->config_file, b->config_file);
	ck_assert_str_eq(a->portserver, b->portserver);
	ck_assert_str_eq(a->metrics, b->metrics);
	ck_assert_int_eq(a->metrics_remote, b->metrics_remote);
	ck_assert_int_eq(a->allow_ephemeral_pool, b->allow_ephemeral_pool);
	ck_assert_int_eq(a->log_level, b->log_level);
	ck_assert_uint_eq(a->pool_lo, b->pool_lo);
	ck_assert_uint_eq(a->pool_hi, b->pool_hi);
	ck_assert_int_eq(a->strategy, b->strategy);
	ck_assert_int_eq(a->quota, b->quota);
	ck_assert_int_eq(a->max_leases, b->max_leases);
	ck_assert_int_eq(a->default_ttl, b->default_ttl);
	ck_assert_int_eq(a->max_ttl, b->max_ttl);
	ck_assert_int_eq(a->max_conns, b->max_conns);
	ck_assert_int_eq(a->max_conns_per_uid, b->max_conns_per_uid);
	ck_assert_int_eq(a->request_timeout_ms, b->request_timeout_ms);
	ck_assert_uint_eq(a->max_output, b->max_output);
	ck_assert_uint_eq(a->max_output_per_uid, b->max_output_per_uid);
	ck_assert_uint_eq(a->max_output_total, b->max_output_total);
	ck_assert_int_eq(a->max_fd_replies, b->max_fd_replies);
	ck_assert_uint_eq(a->socket_mode, b->socket_mode);
	ck_assert_int_eq(a->default_ttl_set, b->default_ttl_set);
}

/* Write len bytes of text (strlen when len is 0) as the config file. */
static void
write_conf(const char *text, size_t len)
{
	FILE *f = fopen(conf, "w");

	ck_assert_ptr_nonnull(f);
	if (len == 0)
		len = strlen(text);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* Load text into *cfg (from defaults); returns config_load's result. */
static int
load(const char *text, struct config *cfg, char *err, size_t errlen)
{
	config_defaults(cfg);
	write_conf(text, 0);
	err[0] = '\0';
	return config_load(cfg, conf, false, err, errlen);
}

/* Expect load to fail with exactly "conf:msg", and cfg to stay default. */
static void
expect_error(const char *text, const char *msg)
{
	struct config cfg, def;
	char err[1024], want[1024];

	ck_assert_int_eq(load(text, &cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:%s", conf, msg);
	ck_assert_str_eq(err, want);
	config_defaults(&def);
	assert_same(&cfg, &def);
}

/* The setting of key in cfg as one number, for the tables. */
static int64_t
field(const struct config *cfg, const char *key)
{
	if (strcmp(key, "pool") == 0)
		return (int64_t)cfg->pool_lo * 100000 + cfg->pool_hi;
	if (strcmp(key, "strategy") == 0)
		return cfg->strategy;
	if (strcmp(key, "quota") == 0)
		return cfg->quota;
	if (strcmp(key, "max-leases") == 0)
		return cfg->max_leases;
	if (strcmp(key, "default-ttl") == 0)
		return cfg->default_ttl;
	if (strcmp(key, "max-ttl") == 0)
		return cfg->max_ttl;
	if (strcmp(key, "max-connections") == 0)
		return cfg->max_conns;
	if (strcmp(key, "max-connections-per-uid") == 0)
		return cfg->max_conns_per_uid;
	if (strcmp(key, "request-timeout") == 0)
		return cfg->request_timeout_ms;
	if (strcmp(key, "max-output") == 0)
		return (int64_t)cfg->max_output;
	if (strcmp(key, "max-output-per-uid") == 0)
		return (int64_t)cfg->max_output_per_uid;
	if (strcmp(key, "max-output-total") == 0)
		return (int64_t)cfg->max_output_total;
	if (strcmp(key, "max-fd-replies") == 0)
		return cfg->max_fd_replies;
	if (strcmp(key, "socket-mode") == 0)
		return cfg->socket_mode;
	if (strcmp(key, "log-level") == 0)
		return cfg->log_level;
	if (strcmp(key, "metrics-allow-remote") == 0)
		return cfg->metrics_remote;
	if (strcmp(key, "allow-ephemeral-pool") == 0)
		return cfg->allow_ephemeral_pool;
	ck_abort_msg("no field for key %s", key);
	return -1;
}

#define DAY INT64_C(86400)

static const struct valid {
	const char *key, *value;
	int64_t want;
} valid[] = {
    {"pool", "1-1", 100001},
    {"pool", "65535-65535", 6553565535},
    {"pool", "1-65535", 165535},
    {"pool", "15000-24999", 1500024999},
    {"pool", "20000-20009", 2000020009},
    {"strategy", "pool", PROTO_STRATEGY_POOL},
    {"strategy", "ephemeral", PROTO_STRATEGY_EPHEMERAL},
    {"quota", "1", 1},
    {"quota", "65536", 65536},
    {"quota", "100", 100},
    {"max-leases", "1", 1},
    {"max-leases", "65536", 65536},
    {"default-ttl", "1", 1},
    {"default-ttl", "1s", 1},
    {"default-ttl", "1000ms", 1},
    {"default-ttl", "90", 90},
    {"default-ttl", "5m", 300},
    {"default-ttl", "2h", 7200},
    {"default-ttl", "1d", DAY},
    /* systemd's time spans. */
    {"default-ttl", "1h30m", 5400},
    {"default-ttl", "1h 30m", 5400},
    {"default-ttl", "1.5h", 5400},
    {"default-ttl", "90min", 5400},
    {"default-ttl", "1 hour 30 minutes", 5400},
    {"default-ttl", "1h30", 3630},
    {"max-ttl", "2 weeks", 14 * DAY},
    {"max-ttl", "1w2d", 9 * DAY},
    {"max-ttl", "1M", 2629800},
    {"max-ttl", "1y", 31557600},
    {"default-ttl", "500ms500ms", 1},
    {"max-ttl", "366 days", 366 * DAY},
    {"request-timeout", "1s500ms", 1500},
    {"request-timeout", "1.5", 1500},
    {"request-timeout", "10 s", 10000},
    {"request-timeout", "100000us", 100},
    {"max-ttl", "1", 1},
    {"max-ttl", "366d", 366 * DAY},
    {"max-ttl", "31622400", 366 * DAY},
    {"max-ttl", "8784h", 366 * DAY},
    {"max-ttl", "527040m", 366 * DAY},
    {"max-connections", "1", 1},
    {"max-connections", "65536", 65536},
    {"max-connections-per-uid", "1", 1},
    {"max-connections-per-uid", "65536", 65536},
    {"request-timeout", "100ms", 100},
    {"request-timeout", "1", 1000},
    {"request-timeout", "1h", 3600000},
    {"request-timeout", "3600", 3600000},
    {"request-timeout", "3600000ms", 3600000},
    {"request-timeout", "60m", 3600000},
    {"max-output", "65536", 65536},
    {"max-output", "64K", 65536},
    {"max-output", "1024M", 1073741824},
    {"max-output", "1073741824", 1073741824},
    {"max-output", "1M", 1048576},
    {"max-output-per-uid", "64K", 65536},
    {"max-output-per-uid", "16384M", INT64_C(17179869184)},
    {"max-output-total", "64K", 65536},
    {"max-output-total", "16384M", INT64_C(17179869184)},
    {"max-output-total", "64M", 67108864},
    {"max-fd-replies", "1", 1},
    {"max-fd-replies", "64", 64},
    {"socket-mode", "0600", 0600},
    {"socket-mode", "600", 0600},
    {"socket-mode", "0666", 0666},
    {"socket-mode", "0777", 0777},
    {"socket-mode", "0660", 0660},
    {"socket-mode", "00600", 0600},
    {"log-level", "err", LOG_ERR},
    {"log-level", "error", LOG_ERR},
    {"log-level", "warning", LOG_WARNING},
    {"log-level", "notice", LOG_NOTICE},
    {"log-level", "info", LOG_INFO},
    {"log-level", "debug", LOG_DEBUG},
    {"log-level", "3", LOG_ERR},
    {"log-level", "7", LOG_DEBUG},
    {"metrics-allow-remote", "yes", 1},
    {"metrics-allow-remote", "on", 1},
    {"metrics-allow-remote", "true", 1},
    {"metrics-allow-remote", "1", 1},
    {"metrics-allow-remote", "no", 0},
    {"metrics-allow-remote", "off", 0},
    {"metrics-allow-remote", "false", 0},
    {"metrics-allow-remote", "0", 0},
    {"allow-ephemeral-pool", "yes", 1},
    {"allow-ephemeral-pool", "no", 0},
};

START_TEST(valid_value)
{
	const struct valid *v = &valid[_i];
	struct config cfg;
	char text[256], err[1024];

	snprintf(text, sizeof(text), "%s = %s\n", v->key, v->value);
	ck_assert_msg(
	    load(text, &cfg, err, sizeof(err)) == 0, "%s: %s", text, err);
	ck_assert_int_eq(field(&cfg, v->key), v->want);

	/* The command line path: config_set alone. */
	config_defaults(&cfg);
	ck_assert_int_eq(
	    config_set(&cfg, v->key, v->value, err, sizeof(err)), 0);
	ck_assert_int_eq(field(&cfg, v->key), v->want);
}
END_TEST

static const struct invalid {
	const char *key, *value, *why; /* why: after "key 'KEY': " */
} invalid[] = {
    {"pool", "0-10",
        "'0-10' is not a range LO-HI with 1 <= LO <= HI <= "
        "65535"},
    {"pool", "1-65536", NULL},
    {"pool", "10-9", NULL},
    {"pool", "15000", NULL},
    {"pool", "15000-", NULL},
    {"pool", "-5", NULL},
    {"pool", "a-b", NULL},
    {"pool", "1 - 2", NULL},
    {"pool", "99999999999999999999-1", NULL},
    {"strategy", "Pool", "'Pool' is neither pool nor ephemeral"},
    {"strategy", "random", NULL},
    {"quota", "0", "0 is out of range (1..65536)"},
    {"quota", "65537", "65537 is out of range (1..65536)"},
    {"quota", "-1", "'-1' is not a whole number"},
    {"quota", "+5", "'+5' is not a whole number"},
    {"quota", "1e3", NULL},
    {"quota", "0x10", NULL},
    {"quota", "5 5", NULL},
    {"quota", "12k", NULL},
    {"quota", "99999999999999999999999", NULL},
    {"max-leases", "0", "0 is out of range (1..65536)"},
    {"max-leases", "65537", "65537 is out of range (1..65536)"},
    {"default-ttl", "0", "'0' is out of range (1s..366d)"},
    {"default-ttl", "999ms", "'999ms' is out of range (1s..366d)"},
    {"default-ttl", "1500ms", "'1500ms' is not a whole number of seconds"},
    {"default-ttl", "367d", "'367d' is out of range (1s..366d)"},
    {"default-ttl", "31622401", "'31622401' is out of range (1s..366d)"},
    {"default-ttl", "5x", "'5x' is not a duration: " PROTO_DURATION_FORMS},
    {"default-ttl", "1h30x", NULL},
    {"default-ttl", "h", NULL},
    {"default-ttl", "1.5.5h", NULL},
    {"default-ttl", "1h,30m", NULL},
    {"default-ttl", "1.0005s",
        "'1.0005s' is not a duration: " PROTO_DURATION_FORMS},
    {"default-ttl", "53w", "'53w' is out of range (1s..366d)"},
    {"default-ttl", "-1", NULL},
    {"default-ttl", "s", NULL},
    {"default-ttl", "9223372036854775807d", NULL},
    {"max-ttl", "0", "'0' is out of range (1s..366d)"},
    {"max-ttl", "31622401", NULL},
    {"max-ttl", "367d", NULL},
    {"max-ttl", "8785h", NULL},
    {"max-connections", "0", "0 is out of range (1..65536)"},
    {"max-connections", "65537", NULL},
    {"max-connections-per-uid", "0", "0 is out of range (1..65536)"},
    {"max-connections-per-uid", "65537", NULL},
    {"request-timeout", "99ms", "'99ms' is out of range (100ms..1h)"},
    {"request-timeout", "0", NULL},
    {"request-timeout", "3601", "'3601' is out of range (100ms..1h)"},
    {"request-timeout", "3600001ms", NULL},
    {"request-timeout", "2h", NULL},
    {"request-timeout", "10 x",
        "'10 x' is not a duration: " PROTO_DURATION_FORMS},
    {"request-timeout", "10S", NULL},
    {"request-timeout", "1500us", NULL},
    {"max-output", "65535", "'65535' is out of range (64K..1024M)"},
    {"max-output", "63K", NULL},
    {"max-output", "1073741825", NULL},
    {"max-output", "1025M", NULL},
    {"max-output-per-uid", "63K", "'63K' is out of range (64K..16384M)"},
    {"max-output-per-uid", "16385M", NULL},
    {"max-output-total", "65535", NULL},
    {"max-output-total", "17179869185", NULL},
    {"max-output", "1G", "'1G' is not a size (like 65536, 64K or 1M)"},
    {"max-output", "64k", NULL},
    {"max-output", "9223372036854775807M", NULL},
    {"max-fd-replies", "0", "0 is out of range (1..64)"},
    {"max-fd-replies", "65", "65 is out of range (1..64)"},
    {"socket-mode", "0400",
        "0400 does not give the owner read and write "
        "(0600)"},
    {"socket-mode", "0", NULL},
    {"socket-mode", "0800", "'0800' is not an octal mode (like 0660)"},
    {"socket-mode", "01777", "1777 has bits beyond 0777"},
    {"socket-mode", "4666", NULL},
    {"socket-mode", "0000600", "'0000600' is not an octal mode (like 0660)"},
    {"socket-mode", "rw", NULL},
    {"socket-mode", "-600", NULL},
    {"portserver-address", "relative/sock",
        "'relative/sock' is neither an "
        "absolute path nor @name"},
    {"portserver-address", "@", "the abstract name after '@' is empty"},
    {"log-level", "emerg",
        "'emerg' is not one of err, warning, notice, "
        "info, debug (or 3..7)"},
    {"log-level", "2", NULL},
    {"log-level", "8", NULL},
    {"log-level", "loud", NULL},
    {"metrics-address", "9464x",
        "'9464x' has no port 0..65535 (like 9464, 127.0.0.1:9464 or "
        "[::1]:9464)"},
    {"metrics-address", "65536", NULL},
    {"metrics-address", "127.0.0.1:", NULL},
    {"metrics-address", "127.0.0.1:-1", NULL},
    {"metrics-address", "example.com:9464",
        "'example.com:9464' has no numeric IPv4 or [IPv6] address, nor "
        "localhost (like 9464, 127.0.0.1:9464 or [::1]:9464)"},
    {"metrics-address", "::1:9464", NULL},
    {"metrics-address", "[::1]",
        "'[::1]' is not [IPv6]:PORT (like "
        "[::1]:9464)"},
    {"metrics-address", "[::1]9464", NULL},
    {"metrics-address", "[127.0.0.1]:9464", NULL},
    {"metrics-address", "1.2.3.4.5:80", NULL},
    {"metrics-allow-remote", "maybe",
        "'maybe' is not one of yes, no (or true, false, on, off, 1, 0)"},
    {"metrics-allow-remote", "YES", NULL},
};

START_TEST(invalid_value)
{
	const struct invalid *v = &invalid[_i];
	struct config cfg, def;
	char text[256], err[1024], want[1024];
	size_t n;

	snprintf(text, sizeof(text), "%s = %s\n", v->key, v->value);
	if (v->why != NULL) {
		snprintf(want, sizeof(want), "1: key '%s': %s", v->key, v->why);
		expect_error(text, want);
	} else {
		ck_assert_int_eq(load(text, &cfg, err, sizeof(err)), -1);
		snprintf(want, sizeof(want), "%s:1: key '%s': ", conf, v->key);
		n = strlen(want);
		ck_assert_msg(strncmp(err, want, n) == 0 && err[n] != '\0',
		    "%s: %s", text, err);
		config_defaults(&def);
		assert_same(&cfg, &def);
	}

	/* config_set says the same without the file and line, and keeps
	 * cfg as it was. */
	config_defaults(&cfg);
	ck_assert_int_eq(
	    config_set(&cfg, v->key, v->value, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "key '%s': ", v->key);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
	config_defaults(&def);
	assert_same(&cfg, &def);
}
END_TEST

/* Malformed files: text, then the message after "PATH:". */
static const struct bad_file {
	const char *text, *msg;
} bad_files[] = {
    {"quota\n", "1: expected 'key = value'"},
    {"# ok\n\nquota 5\n", "3: expected 'key = value'"},
    {"= 5\n", "1: no key before '='"},
    {"quota =\n", "1: key 'quota': empty value"},
    {"quota =   \t\n", "1: key 'quota': empty value"},
    {"bogus = 1\n", "1: unknown key 'bogus'"},
    {"quota = 1\nQuota = 2\n", "2: unknown key 'Quota'"},
    {"max_leases = 5\n", "1: unknown key 'max_leases'"},
    {"quota = 1 # inline comments are values\n",
        "1: key 'quota': '1 # inline comments are values' is not a whole "
        "number"},
    {"\n\n# c\n\n  max-ttl = 1x\n", "5: key 'max-ttl': '1x' is not a "
                                    "duration: " PROTO_DURATION_FORMS},
    {"quota = 5\nmax-leases = 9\nquota = 5\n",
        "3: key 'quota': duplicate, first set on line 1"},
    {"portserver-address = @a\n# x\nportserver-address = @a\n",
        "3: key 'portserver-address': duplicate, first set on line 1"},
    /* A duplicate is refused even when its value is bad. */
    {"quota = 5\nquota = x\n", "2: key 'quota': duplicate, first set on "
                               "line 1"},
    {"default-ttl = 2h\nmax-ttl = 1h\n", "1: key 'default-ttl': 7200s "
                                         "exceeds max-ttl 3600s"},
    {"max-ttl = 1h\n\ndefault-ttl = 3601\n",
        "3: key 'default-ttl': 3601s exceeds max-ttl 3600s"},
    /* The first error wins, and nothing before it is kept. */
    {"quota = 7\npool = 1-2\nquota = 0\nbogus = 1\n",
        "3: key 'quota': duplicate, first set on line 1"},
    {"quota = 7\npool = 2-1\nbogus = 1\n",
        "2: key 'pool': '2-1' is not a range LO-HI with 1 <= LO <= HI <= "
        "65535"},
};

START_TEST(bad_file)
{
	expect_error(bad_files[_i].text, bad_files[_i].msg);
}
END_TEST

START_TEST(every_key)
{
	struct config cfg;
	char err[1024];
	const char *text = "pool = 30000-30999\n"
	                   "strategy = ephemeral\n"
	                   "quota = 12\n"
	                   "max-leases = 34\n"
	                   "default-ttl = 2m\n"
	                   "max-ttl = 2h\n"
	                   "max-connections = 56\n"
	                   "max-connections-per-uid = 7\n"
	                   "request-timeout = 250ms\n"
	                   "max-output = 128K\n"
	                   "max-fd-replies = 8\n"
	                   "socket-mode = 0666\n"
	                   "portserver-address = @portserver\n"
	                   "log-level = debug\n"
	                   "metrics-address = [::1]:9464\n"
	                   "metrics-allow-remote = yes\n"
	                   "allow-ephemeral-pool = yes\n";

	ck_assert_msg(load(text, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(cfg.pool_lo, 30000);
	ck_assert_uint_eq(cfg.pool_hi, 30999);
	ck_assert_int_eq(cfg.strategy, PROTO_STRATEGY_EPHEMERAL);
	ck_assert_int_eq(cfg.quota, 12);
	ck_assert_int_eq(cfg.max_leases, 34);
	ck_assert_int_eq(cfg.default_ttl, 120);
	ck_assert_int_eq(cfg.max_ttl, 7200);
	ck_assert_int_eq(cfg.max_conns, 56);
	ck_assert_int_eq(cfg.max_conns_per_uid, 7);
	ck_assert_int_eq(cfg.request_timeout_ms, 250);
	ck_assert_uint_eq(cfg.max_output, 128 * 1024);
	ck_assert_int_eq(cfg.max_fd_replies, 8);
	ck_assert_uint_eq(cfg.socket_mode, 0666);
	ck_assert_str_eq(cfg.portserver, "@portserver");
	ck_assert_int_eq(cfg.log_level, LOG_DEBUG);
	ck_assert_str_eq(cfg.metrics, "[::1]:9464");
	ck_assert(cfg.metrics_remote);
	ck_assert(cfg.allow_ephemeral_pool);
	ck_assert(cfg.default_ttl_set);
	/* What the file does not name keeps its value. */
	ck_assert(!cfg.system);
	ck_assert_str_eq(cfg.socket_path, "");
}
END_TEST

START_TEST(defaults)
{
	struct config cfg;

	config_defaults(&cfg);
	ck_assert_uint_eq(cfg.pool_lo, 15000);
	ck_assert_uint_eq(cfg.pool_hi, 24999);
	ck_assert_int_eq(cfg.strategy, PROTO_STRATEGY_POOL);
	ck_assert_int_eq(cfg.quota, 1024);
	ck_assert_int_eq(cfg.max_leases, 16384);
	ck_assert_int_eq(cfg.default_ttl, 300);
	ck_assert_int_eq(cfg.max_ttl, 86400);
	ck_assert_int_eq(cfg.max_conns, 1024);
	ck_assert_int_eq(cfg.max_conns_per_uid, 256);
	ck_assert_int_eq(cfg.request_timeout_ms, 10000);
	ck_assert_uint_eq(cfg.max_output, 1024 * 1024);
	ck_assert_int_eq(cfg.max_fd_replies, 16);
	ck_assert_uint_eq(cfg.socket_mode, 0600);
	ck_assert_str_eq(cfg.portserver, "");
	ck_assert_int_eq(cfg.log_level, LOG_INFO);
	ck_assert(!cfg.default_ttl_set);
}
END_TEST

START_TEST(comments_and_whitespace)
{
	struct config cfg;
	char err[1024];
	const char *text = "# portd.conf\n"
	                   "\n"
	                   "   # indented comment = with an equals sign\n"
	                   "\t\n"
	                   "  quota\t=\t7  \n"
	                   "max-leases=8\n"
	                   "\t max-ttl =   1h\t\r\n"
	                   "portserver-address = /run/port server.sock \n"
	                   "#quota = 9\n"
	                   "log-level = notice"; /* no final newline */

	ck_assert_msg(load(text, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(cfg.quota, 7);
	ck_assert_int_eq(cfg.max_leases, 8);
	ck_assert_int_eq(cfg.max_ttl, 3600);
	ck_assert_str_eq(cfg.portserver, "/run/port server.sock");
	ck_assert_int_eq(cfg.log_level, LOG_NOTICE);
}
END_TEST

START_TEST(empty_file)
{
	struct config cfg, def;
	char err[1024];

	ck_assert_int_eq(load("", &cfg, err, sizeof(err)), 0);
	config_defaults(&def);
	assert_same(&cfg, &def);
	ck_assert_int_eq(
	    load("\n# only comments\n\n", &cfg, err, sizeof(err)), 0);
	assert_same(&cfg, &def);
}
END_TEST

START_TEST(line_length)
{
	struct config cfg;
	char err[1024], want[1024];
	char *text = malloc(3 * 4200);
	size_t n;

	ck_assert_ptr_nonnull(text);

	/* A line of exactly 4096 bytes is fine, even the last one without
	 * its newline. */
	memset(text, 'x', 4096);
	text[0] = '#';
	memcpy(text + 4096, "\nquota = 3\n", 12);
	ck_assert_msg(load(text, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(cfg.quota, 3);
	text[4096] = '\0';
	ck_assert_msg(load(text, &cfg, err, sizeof(err)) == 0, "%s", err);

	/* A value padded to 4096 bytes still counts as its trimmed self. */
	n = (size_t)snprintf(text, 4200, "quota = 5");
	memset(text + n, ' ', 4096 - n);
	memcpy(text + 4096, "\n", 2);
	ck_assert_msg(load(text, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(cfg.quota, 5);

	/* 4097 bytes: refused, with the right line, in any position. */
	n = (size_t)snprintf(text, 4200, "quota = 5\n\n");
	memset(text + n, '#', 4097);
	memcpy(text + n + 4097, "\nmax-leases = 1\n", 17);
	snprintf(want, sizeof(want), "3: line longer than 4096 bytes");
	expect_error(text, want);
	text[n + 4097] = '\0'; /* last line, no newline */
	expect_error(text, want);

	/* A much longer line is read through, not kept. */
	memset(text, 'a', 3 * 4200 - 1);
	text[3 * 4200 - 1] = '\0';
	expect_error(text, "1: line longer than 4096 bytes");
	free(text);
}
END_TEST

START_TEST(nul_byte)
{
	struct config cfg, def;
	char err[1024], want[1024];

	config_defaults(&cfg);
	write_conf("quota = 5\nquota\0 = 6\n", 21);
	ck_assert_int_eq(config_load(&cfg, conf, false, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: NUL byte in line", conf);
	ck_assert_str_eq(err, want);
	config_defaults(&def);
	assert_same(&cfg, &def);
}
END_TEST

START_TEST(missing_file)
{
	struct config cfg, def;
	char err[1024], want[1024], path[256];

	config_defaults(&def);
	config_defaults(&cfg);
	snprintf(path, sizeof(path), "%s/nonexistent.conf", tmpdir);
	strcpy(err, "untouched");
	ck_assert_int_eq(config_load(&cfg, path, true, err, sizeof(err)), 0);
	ck_assert_str_eq(err, "untouched");
	assert_same(&cfg, &def);

	ck_assert_int_eq(config_load(&cfg, path, false, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
	ck_assert_str_eq(err, want);
	assert_same(&cfg, &def);

	/* A folder missing on the way is a missing file too. */
	snprintf(path, sizeof(path), "%s/nonexistent/portd.conf", tmpdir);
	ck_assert_int_eq(config_load(&cfg, path, true, err, sizeof(err)), 0);
	ck_assert_int_eq(config_load(&cfg, path, false, err, sizeof(err)), -1);
}
END_TEST

START_TEST(unreadable_file)
{
	struct config cfg, def;
	char err[1024], want[1024];

	/* A folder where the file should be is an error even if optional. */
	config_defaults(&def);
	config_defaults(&cfg);
	ck_assert_int_eq(config_load(&cfg, tmpdir, true, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: %s", tmpdir, strerror(EISDIR));
	ck_assert_str_eq(err, want);
	assert_same(&cfg, &def);
}
END_TEST

START_TEST(no_partial_update)
{
	struct config cfg, before;
	char err[1024];

	/* Start from non-default values: a failed load leaves them all. */
	config_defaults(&cfg);
	cfg.quota = 99;
	cfg.system = true;
	strcpy(cfg.socket_path, "/tmp/x.sock");
	before = cfg;
	write_conf("quota = 5\nmax-leases = 6\nlog-level = debug\n"
	           "max-ttl = forever\n",
	    0);
	ck_assert_int_eq(config_load(&cfg, conf, false, err, sizeof(err)), -1);
	assert_same(&cfg, &before);

	/* The check after the whole file is all or nothing too. */
	write_conf("quota = 5\ndefault-ttl = 2d\nmax-ttl = 1d\n", 0);
	ck_assert_int_eq(config_load(&cfg, conf, false, err, sizeof(err)), -1);
	assert_same(&cfg, &before);
}
END_TEST

START_TEST(ttl_check)
{
	struct config cfg;
	char err[1024];

	/* Equal is fine. */
	ck_assert_int_eq(
	    load("default-ttl = 1h\nmax-ttl = 3600\n", &cfg, err, sizeof(err)),
	    0);
	ck_assert_int_eq(cfg.default_ttl, 3600);

	/* A max-ttl under the built-in default-ttl lowers the default. */
	ck_assert_int_eq(load("max-ttl = 1m\n", &cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.max_ttl, 60);
	ck_assert_int_eq(cfg.default_ttl, 60);
	ck_assert(!cfg.default_ttl_set);

	/* Flags after the file: config_check decides. */
	ck_assert_int_eq(
	    load("default-ttl = 10m\n", &cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(
	    config_set(&cfg, "max-ttl", "5m", err, sizeof(err)), 0);
	ck_assert_int_eq(config_check(&cfg, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "key 'default-ttl': 600s exceeds max-ttl 300s");
	config_defaults(&cfg);
	ck_assert_int_eq(
	    config_set(&cfg, "max-ttl", "5s", err, sizeof(err)), 0);
	ck_assert_int_eq(config_check(&cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.default_ttl, 5);
}
END_TEST

START_TEST(set_unknown)
{
	struct config cfg, def;
	char err[1024];

	config_defaults(&cfg);
	config_defaults(&def);
	ck_assert_int_eq(config_set(&cfg, "bogus", "1", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "unknown key 'bogus'");
	ck_assert_int_eq(config_set(&cfg, "", "1", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "unknown key ''");
	assert_same(&cfg, &def);

	/* An empty portserver-address switches it off. */
	ck_assert_int_eq(
	    config_set(&cfg, "portserver-address", "@p", err, sizeof(err)), 0);
	ck_assert_int_eq(
	    config_set(&cfg, "portserver-address", "", err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.portserver, "");
}
END_TEST

START_TEST(portserver_length)
{
	struct config cfg;
	char err[1024], value[200];

	/* sun_path is 108 bytes: 107 and a NUL. */
	config_defaults(&cfg);
	memset(value, 'p', sizeof(value));
	value[0] = '/';
	value[107] = '\0';
	ck_assert_int_eq(
	    config_set(&cfg, "portserver-address", value, err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.portserver, value);
	value[0] = '@';
	ck_assert_int_eq(
	    config_set(&cfg, "portserver-address", value, err, sizeof(err)), 0);
	value[107] = 'p';
	value[108] = '\0';
	ck_assert_int_eq(
	    config_set(&cfg, "portserver-address", value, err, sizeof(err)),
	    -1);
	ck_assert_str_eq(err, "key 'portserver-address': longer than 107 "
	                      "bytes");
}
END_TEST

START_TEST(write_round_trip)
{
	struct config cfg, back, def;
	char err[1024];
	FILE *f;

	/* Defaults written out and read back over other values. */
	config_defaults(&def);
	f = fopen(conf, "w");
	ck_assert_ptr_nonnull(f);
	config_write(&def, f);
	ck_assert_int_eq(fclose(f), 0);
	config_defaults(&back);
	back.quota = 3;
	back.max_ttl = 5;
	back.socket_mode = 0666;
	ck_assert_msg(
	    config_load(&back, conf, false, err, sizeof(err)) == 0, "%s", err);
	back.default_ttl_set = false;
	assert_same(&back, &def);

	/* And every key changed. */
	ck_assert_int_eq(load("pool = 1-2\nstrategy = ephemeral\nquota = 3\n"
	                      "max-leases = 4\ndefault-ttl = 1500\n"
	                      "max-ttl = 90061\nmax-connections = 6\n"
	                      "max-connections-per-uid = 7\n"
	                      "request-timeout = 1234ms\nmax-output = 70000\n"
	                      "max-fd-replies = 9\nsocket-mode = 0640\n"
	                      "portserver-address = /x\nlog-level = err\n"
	                      "metrics-address = 0.0.0.0:1\n"
	                      "metrics-allow-remote = on\n",
	                     &cfg, err, sizeof(err)),
	    0);
	f = fopen(conf, "w");
	ck_assert_ptr_nonnull(f);
	config_write(&cfg, f);
	ck_assert_int_eq(fclose(f), 0);
	config_defaults(&back);
	ck_assert_msg(
	    config_load(&back, conf, false, err, sizeof(err)) == 0, "%s", err);
	assert_same(&back, &cfg);
}
END_TEST

/* Loopback unless metrics-allow-remote says otherwise; the address
 * forms and what counts as loopback. */
START_TEST(metrics_remote_check)
{
	static const struct {
		const char *addr;
		bool loopback;
		const char *host;
		int port;
	} cases[] = {
	    {"9464", true, "127.0.0.1", 9464},
	    {"0", true, "127.0.0.1", 0},
	    {"localhost:80", true, "127.0.0.1", 80},
	    {"127.0.0.1:9464", true, "127.0.0.1", 9464},
	    {"127.255.0.9:1", true, "127.255.0.9", 1},
	    {"[::1]:9464", true, "::1", 9464},
	    {"[::ffff:127.0.0.1]:9", true, "::ffff:127.0.0.1", 9},
	    {"0.0.0.0:9464", false, "0.0.0.0", 9464},
	    {"10.1.2.3:9464", false, "10.1.2.3", 9464},
	    {"128.0.0.1:9464", false, "128.0.0.1", 9464},
	    {"[::]:9464", false, "::", 9464},
	    {"[::2]:65535", false, "::2", 65535},
	    {"[::ffff:10.0.0.1]:9", false, "::ffff:10.0.0.1", 9},
	};
	struct config cfg;
	char err[512], want[512], host[64];
	uint16_t port;
	bool lo;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(
		    config_parse_hostport(cases[i].addr, host, sizeof(host),
		        &port, &lo, err, sizeof(err)),
		    0);
		ck_assert_str_eq(host, cases[i].host);
		ck_assert_int_eq(port, cases[i].port);
		ck_assert_msg(lo == cases[i].loopback, "%s", cases[i].addr);

		config_defaults(&cfg);
		ck_assert_int_eq(config_set(&cfg, "metrics-address",
		                     cases[i].addr, err, sizeof(err)),
		    0);
		if (cases[i].loopback) {
			ck_assert_int_eq(
			    config_check_metrics(&cfg, err, sizeof(err)), 0);
			continue;
		}
		ck_assert_int_eq(
		    config_check_metrics(&cfg, err, sizeof(err)), -1);
		snprintf(want, sizeof(want),
		    "key 'metrics-address': %s is not a loopback address; "
		    "set metrics-allow-remote = yes (--metrics-allow-remote) "
		    "to serve metrics beyond this host",
		    cases[i].host);
		ck_assert_str_eq(err, want);
		ck_assert_int_eq(config_set(&cfg, "metrics-allow-remote", "yes",
		                     err, sizeof(err)),
		    0);
		ck_assert_int_eq(
		    config_check_metrics(&cfg, err, sizeof(err)), 0);
	}
	/* Empty switches it off, and off needs no check. */
	ck_assert_int_eq(
	    config_set(&cfg, "metrics-address", "", err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.metrics, "");
	cfg.metrics_remote = false;
	ck_assert_int_eq(config_check_metrics(&cfg, err, sizeof(err)), 0);
	/* Off by default. */
	config_defaults(&cfg);
	ck_assert_str_eq(cfg.metrics, "");
	ck_assert(!cfg.metrics_remote);
}
END_TEST

START_TEST(parse_duration)
{
	static const struct {
		const char *s;
		int64_t unit, ms; /* ms -1: refused */
	} cases[] = {
	    {"5", 1, 5},
	    {"5", 1000, 5000},
	    {"7ms", 1000, 7},
	    {"2d", 1, 2 * 86400000},
	    {"1h30m", 1000, 5400000},
	    {"55s500ms", 1000, 55500},
	    {"300ms20s", 1000, 20300},
	    {"0.5s", 1000, 500},
	    {".5s", 1000, 500},
	    {"1.", 1000, 1000},
	    {" 1s ", 1000, 1000},
	    {"2\th", 1000, 7200000},
	    {"1000us", 1000, 1},
	    {"3usec", 1000, -1}, /* finer than a millisecond */
	    {"1 msec", 1000, 1},
	    {"2 hr", 1000, 7200000},
	    {"1 month", 1000, 2629800000},
	    {"1 year", 1000, 31557600000},
	    {"0", 1000, 0},
	    {"0s", 1000, 0},
	    /* The largest: INT64_MAX microseconds, in whole ms. */
	    {"9223372036854775ms", 1, 9223372036854775},
	    {"9223372036854776ms", 1, -1},
	    {"9223372036854775807ms", 1, -1},
	    {"9223372036854775808ms", 1, -1},
	    {"9223372036854775807s", 1, -1},
	    {"106751991d", 1000, 9223372022400000},
	    {"106751992d", 1000, -1},
	    {"100000000000d 1s", 1000, -1},
	    {"", 1, -1},
	    {" ", 1, -1},
	    {"ms", 1, -1},
	    {"s1", 1, -1},
	    {"1sek", 1, -1},
	    {"1S", 1, -1},
	    {"1H", 1, -1},
	    {"-1s", 1, -1},
	    {"+1s", 1, -1},
	    {"1e3s", 1, -1},
	    {"1,5h", 1, -1},
	    {".", 1, -1},
	    {"1..5s", 1, -1},
	    {"infinity", 1, -1},
	};
	int64_t ms;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ms = 42;
		int rc = proto_duration_parse(cases[i].s, cases[i].unit, &ms);
		if (cases[i].ms < 0) {
			ck_assert_msg(rc == -1, "'%s' parsed as %lld",
			    cases[i].s, (long long)ms);
			ck_assert_int_eq(ms, 42); /* untouched on failure */
		} else {
			ck_assert_msg(rc == 0, "'%s' refused", cases[i].s);
			ck_assert_msg(ms == cases[i].ms,
			    "'%s': %lld, want %lld", cases[i].s, (long long)ms,
			    (long long)cases[i].ms);
		}
	}
}
END_TEST

START_TEST(parse_bytes)
{
	uint64_t n;

	ck_assert_int_eq(config_parse_bytes("0", &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(config_parse_bytes("3K", &n), 0);
	ck_assert_uint_eq(n, 3072);
	ck_assert_int_eq(config_parse_bytes("2M", &n), 0);
	ck_assert_uint_eq(n, 2097152);
	n = 42;
	ck_assert_int_eq(config_parse_bytes("2KB", &n), -1);
	ck_assert_int_eq(config_parse_bytes("K", &n), -1);
	ck_assert_int_eq(config_parse_bytes("", &n), -1);
	ck_assert_int_eq(config_parse_bytes("8796093022208M", &n), -1);
	ck_assert_uint_eq(n, 42);
}
END_TEST

START_TEST(default_file)
{
	char buf[PATH_MAX];

	ck_assert_int_eq(config_default_file(true, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/etc/portd/portd.conf");

	setenv("XDG_CONFIG_HOME", "/xdg/conf", 1);
	setenv("HOME", "/home/someone", 1);
	ck_assert_int_eq(config_default_file(false, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/xdg/conf/portd/portd.conf");

	/* A relative XDG_CONFIG_HOME is ignored, as the XDG spec says. */
	setenv("XDG_CONFIG_HOME", "relative", 1);
	ck_assert_int_eq(config_default_file(false, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/home/someone/.config/portd/portd.conf");
	unsetenv("XDG_CONFIG_HOME");
	ck_assert_int_eq(config_default_file(false, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/home/someone/.config/portd/portd.conf");

	/* Too small a buffer. */
	ck_assert_int_eq(config_default_file(false, buf, 10), -1);
	ck_assert_int_eq(config_default_file(true, buf, 10), -1);
}
END_TEST

START_TEST(example_file)
{
	struct config cfg, def;
	char err[1024], line[512];
	FILE *in, *out;
	int keys = 0;

	/* As shipped, every key is commented out: the defaults. */
	config_defaults(&def);
	config_defaults(&cfg);
	ck_assert_msg(
	    config_load(&cfg, PORTD_CONF_EXAMPLE, false, err, sizeof(err)) == 0,
	    "%s", err);
	assert_same(&cfg, &def);

	/* Uncommented, each "#key = value" line must name the default. */
	in = fopen(PORTD_CONF_EXAMPLE, "r");
	ck_assert_ptr_nonnull(in);
	out = fopen(conf, "w");
	ck_assert_ptr_nonnull(out);
	while (fgets(line, sizeof(line), in) != NULL) {
		if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z') {
			fputs(line + 1, out);
			keys++;
		}
	}
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);
	ck_assert_int_eq(keys, 19); /* every key */
	config_defaults(&cfg);
	ck_assert_msg(
	    config_load(&cfg, conf, false, err, sizeof(err)) == 0, "%s", err);
	cfg.default_ttl_set = false;
	assert_same(&cfg, &def);
}
END_TEST

/*
 * The pool against a written ip_local_port_range, at the edges of the
 * overlap, in both modes, and with the override.
 */
START_TEST(ephemeral_overlap)
{
	static const struct {
		const char *pool, *range;
		bool system, allow;
		int strategy, want;
	} cases[] = {
	    {"15000-24999", "32768\t60999\n", false, false, 0, 0},
	    {"15000-32767", "32768\t60999\n", true, false, 0, 0},
	    {"15000-32768", "32768\t60999\n", false, false, 0, 1},
	    {"15000-32768", "32768\t60999\n", true, false, 0, -1},
	    {"15000-32768", "32768\t60999\n", true, true, 0, 1},
	    {"60999-61000", "32768 60999", false, false, 0, 1},
	    {"61000-65535", "32768 60999", true, false, 0, 0},
	    {"1-65535", "32768 60999", true, false, 0, -1},
	    {"40000-40010", "32768 60999", true, false, 1, 0}, /* ephemeral */
	    {"40000-40010", "garbage", true, false, 0, 0},
	    {"40000-40010", NULL, true, false, 0, 0}, /* no such file */
	};
	char range[160], err[512];
	struct config cfg;

	snprintf(range, sizeof(range), "%s/ip_local_port_range", tmpdir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		FILE *f;

		unlink(range);
		if (cases[i].range != NULL) {
			ck_assert_ptr_nonnull(f = fopen(range, "w"));
			fputs(cases[i].range, f);
			ck_assert_int_eq(fclose(f), 0);
		}
		config_defaults(&cfg);
		ck_assert_int_eq(
		    config_set(&cfg, "pool", cases[i].pool, err, sizeof(err)),
		    0);
		cfg.system = cases[i].system;
		cfg.allow_ephemeral_pool = cases[i].allow;
		cfg.strategy = cases[i].strategy ? PROTO_STRATEGY_EPHEMERAL
		                                 : PROTO_STRATEGY_POOL;
		err[0] = '\0';
		ck_assert_msg(config_check_ephemeral(&cfg, range, err,
		                  sizeof(err)) == cases[i].want,
		    "case %zu (pool %s): %s", i, cases[i].pool, err);
		if (cases[i].want != 0)
			ck_assert_msg(strstr(err, "overlaps the kernel's "
			                          "ephemeral range") != NULL,
			    "%s", err);
		if (cases[i].want == -1)
			ck_assert_msg(
			    strstr(err, "allow-ephemeral-pool") != NULL, "%s",
			    err);
	}
	unlink(range);
}
END_TEST

#define NITEMS(a) ((int)(sizeof(a) / sizeof((a)[0])))

int
main(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("values");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, defaults);
	tcase_add_test(tc, every_key);
	tcase_add_loop_test(tc, valid_value, 0, NITEMS(valid));
	tcase_add_loop_test(tc, invalid_value, 0, NITEMS(invalid));
	tcase_add_test(tc, ttl_check);
	tcase_add_test(tc, set_unknown);
	tcase_add_test(tc, portserver_length);
	tcase_add_test(tc, metrics_remote_check);
	tcase_add_test(tc, ephemeral_overlap);
	tcase_add_test(tc, parse_duration);
	tcase_add_test(tc, parse_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("file");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, comments_and_whitespace);
	tcase_add_test(tc, empty_file);
	tcase_add_loop_test(tc, bad_file, 0, NITEMS(bad_files));
	tcase_add_test(tc, line_length);
	tcase_add_test(tc, nul_byte);
	tcase_add_test(tc, missing_file);
	tcase_add_test(tc, unreadable_file);
	tcase_add_test(tc, no_partial_update);
	tcase_add_test(tc, write_round_trip);
	tcase_add_test(tc, default_file);
	tcase_add_test(tc, example_file);
	suite_add_tcase(s, tc);

	return harness_run(s);
}
