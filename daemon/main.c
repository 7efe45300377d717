/*
 * portd: hold bound sockets as leases and hand ports out over a Unix
 * socket. main: options, paths, signals, the event loop, shutdown.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "fault.h"
#include "shared.h"

struct event_base *portd_base;
struct config portd_cfg;
int64_t portd_started_ms;

static const char *stop_reason;

static const struct option longopts[] = {
    {"socket", required_argument, NULL, 's'},
    {"system", no_argument, NULL, 'S'},
    {"user", no_argument, NULL, 'U'},
    {"foreground", no_argument, NULL, 'f'},
    {"config", required_argument, NULL, 'c'},
    {"check-config", no_argument, NULL, 'C'},
    {"log-level", required_argument, NULL, 'l'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    /* Settings that the config file has too: name = key. */
    {"pool", required_argument, NULL, 0},
    {"strategy", required_argument, NULL, 0},
    {"quota", required_argument, NULL, 0},
    {"max-leases", required_argument, NULL, 0},
    {"default-ttl", required_argument, NULL, 0},
    {"max-ttl", required_argument, NULL, 0},
    {"max-connections", required_argument, NULL, 0},
    {"max-connections-per-uid", required_argument, NULL, 0},
    {"request-timeout", required_argument, NULL, 0},
    {"max-output", required_argument, NULL, 0},
    {"max-output-per-uid", required_argument, NULL, 0},
    {"max-output-total", required_argument, NULL, 0},
    {"max-fd-replies", required_argument, NULL, 0},
    {"socket-mode", required_argument, NULL, 0},
    {"portserver-address", required_argument, NULL, 0},
    {"metrics-address", required_argument, NULL, 0},
    {"metrics-allow-remote", no_argument, NULL, 'R'},
    {"allow-ephemeral-pool", no_argument, NULL, 'E'},
    {NULL, 0, NULL, 0},
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: portd [options]\n"
	    "Hold free TCP/UDP ports as bound sockets and lease them out.\n"
	    "\n"
	    "  -s, --socket PATH        API socket (default: $PORTD_SOCKET, "
	    "else\n"
	    "                           the mode's default, see below)\n"
	    "      --system             system mode: /run/portd/portd.sock, "
	    "mode 0666,\n"
	    "                           config /etc/portd/portd.conf\n"
	    "      --user               per-user mode (the default): "
	    "$XDG_RUNTIME_DIR/portd/\n"
	    "                           portd.sock or /tmp/portd-$UID/, mode "
	    "0600\n"
	    "  -f, --foreground         accepted for compatibility; portd "
	    "always stays\n"
	    "                           in the foreground (use systemd or "
	    "portctl)\n"
	    "  -c, --config FILE        config file (default: the mode's, if "
	    "present)\n"
	    "      --check-config       validate the configuration and exit\n"
	    "  -l, --log-level LEVEL    err, warning, notice, info (default), "
	    "debug\n"
	    "      --pool LO-HI         pool of ports (default 15000-24999)\n"
	    "      --strategy S         pool (default) or ephemeral\n"
	    "      --quota N            ports per uid (default 1024)\n"
	    "      --max-leases N       leases in all (default 16384)\n"
	    "      --default-ttl D      TTL of a ttl-scoped lease (default "
	    "300s)\n"
	    "      --max-ttl D          longest TTL (default 1d)\n"
	    "      --max-connections N  clients at once (default 1024)\n"
	    "      --max-connections-per-uid N   (default 256)\n"
	    "      --request-timeout D  first byte to end of a request "
	    "(default 10s)\n"
	    "      --max-output BYTES   replies queued for a client "
	    "(default 1M)\n"
	    "      --max-output-per-uid BYTES  ... for all clients of a uid "
	    "(default 16M)\n"
	    "      --max-output-total BYTES  ... for every client "
	    "(default 64M)\n"
	    "      --max-fd-replies N   unread replies carrying sockets "
	    "(default 16)\n"
	    "      --socket-mode MODE   API socket permissions (octal)\n"
	    "      --portserver-address ADDR  also serve portpicker's "
	    "portserver\n"
	    "                           protocol on ADDR (@name: abstract)\n"
	    "      --metrics-address ADDR  serve Prometheus metrics over HTTP "
	    "on\n"
	    "                           ADDR: PORT (loopback), HOST:PORT or "
	    "[V6]:PORT\n"
	    "      --metrics-allow-remote  let metrics-address be beyond "
	    "loopback\n"
	    "      --allow-ephemeral-pool  start in --system mode even when "
	    "the "
	    "pool\n"
	    "                           overlaps ip_local_port_range\n"
	    "  -h, --help               this text\n"
	    "  -V, --version            the version\n"
	    "\n"
	    "Durations are systemd time spans: 90, 90s, 5m, 1h30m, 2d. Flags "
	    "override the config "
	    "file.\n"
	    "See portd(8).\n");
}

static void
stop_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	portd_shutdown(sig == SIGINT ? "SIGINT" : "SIGTERM");
}

void
portd_shutdown(const char *reason)
{
	stop_reason = reason;
	event_base_loopbreak(portd_base);
}

/*
 * Every held port is an open socket: take the whole descriptor allowance
 * (the soft limit is often 1024, the hard one far higher). libevent uses
 * epoll, so large descriptor numbers cost nothing.
 */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("raising the descriptor limit");
}

/* Make the default socket's folder, private to us unless system-wide. */
static int
make_dir(const char *dir, mode_t mode)
{
	struct stat st;

	if (mkdir(dir, mode) == -1 && errno != EEXIST) {
		log_warn("mkdir %s", dir);
		return -1;
	}
	if (lstat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		log_warnx("%s is not a directory", dir);
		return -1;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077 & ~mode) != 0) {
		log_warnx("%s must belong to uid %u with mode %04o", dir,
		    (unsigned)geteuid(), (unsigned)mode);
		return -1;
	}
	return 0;
}

/* Resolve the socket path (and make its folder when it is ours). */
static int
socket_path(bool explicit_path)
{
	char dir[CONFIG_PATH_MAX], path[CONFIG_PATH_MAX];
	const char *env;

	if (explicit_path)
		return 0;
	if ((env = getenv("PORTD_SOCKET")) != NULL && *env != '\0') {
		if (strlen(env) >= sizeof(portd_cfg.socket_path))
			return -1;
		strcpy(portd_cfg.socket_path, env);
		return 0;
	}
	if (proto_socket_dir(portd_cfg.system, dir, sizeof(dir)) < 0 ||
	    proto_socket_path(portd_cfg.system, path, sizeof(path)) < 0) {
		log_warnx("the socket folder's path is too long");
		return -1;
	}
	if (make_dir(dir, portd_cfg.system ? 0755 : 0700) == -1)
		return -1;
	memcpy(portd_cfg.socket_path, path, sizeof(path));
	return 0;
}

/* How the configuration was given, kept for SIGHUP. */
static struct {
	bool system, explicit_config;
	char config_file[PATH_MAX];
	int nflags;
	const char **keys, **vals;
} opt;

/* Defaults, then the config file, then the flags; checked as a whole. */
static int
build_config(struct config *out, char *err, size_t errlen)
{
	struct config cfg;
	char file[PATH_MAX], warn[512];

	config_defaults(&cfg);
	cfg.system = opt.system;
	if (opt.system)
		cfg.socket_mode = 0666; /* authorization is by peer uid */
	if (opt.explicit_config)
		snprintf(file, sizeof(file), "%s", opt.config_file);
	else if (config_default_file(opt.system, file, sizeof(file)) == -1)
		file[0] = '\0';
	snprintf(cfg.config_file, sizeof(cfg.config_file), "%s", file);
	if (file[0] != '\0' &&
	    config_load(&cfg, file, !opt.explicit_config, err, errlen) == -1)
		return -1;
	for (int i = 0; i < opt.nflags; i++) {
		char e[768];
		if (config_set(&cfg, opt.keys[i], opt.vals[i], e, sizeof(e)) ==
		    -1) {
			snprintf(err, errlen, "--%s: %s", opt.keys[i], e);
			return -1;
		}
	}
	if (config_check(&cfg, err, errlen) == -1 ||
	    config_check_metrics(&cfg, err, errlen) == -1)
		return -1;
	switch (config_check_ephemeral(
	    &cfg, CONFIG_EPHEMERAL_RANGE, warn, sizeof(warn))) {
	case -1:
		snprintf(err, errlen, "%s", warn);
		return -1;
	case 1:
		log_warnx("%s", warn);
		break;
	}
	*out = cfg;
	return 0;
}

/* SIGHUP: apply what can change without dropping a lease. */
static void
reload_cb(evutil_socket_t sig, short what, void *arg)
{
	struct config cfg;
	char err[1024];

	(void)sig;
	(void)what;
	(void)arg;
	service_reloading(false);
	alloc_reprobe_ipv6();
	if (build_config(&cfg, err, sizeof(err)) == -1) {
		log_warnx("reload: %s; keeping the running configuration", err);
		service_reloading(true);
		return;
	}
	if (strcmp(cfg.portserver, portd_cfg.portserver) != 0 ||
	    strcmp(cfg.metrics, portd_cfg.metrics) != 0 ||
	    cfg.metrics_remote != portd_cfg.metrics_remote ||
	    cfg.socket_mode != portd_cfg.socket_mode)
		log_warnx("reload: the socket mode and the portserver and "
		          "metrics addresses change at the next start");
	if (cfg.pool_lo != portd_cfg.pool_lo ||
	    cfg.pool_hi != portd_cfg.pool_hi) {
		if (alloc_set_pool(cfg.pool_lo, cfg.pool_hi) == -1) {
			log_warnx("reload: cannot resize the pool");
			cfg.pool_lo = portd_cfg.pool_lo;
			cfg.pool_hi = portd_cfg.pool_hi;
		}
	}
	/* Kept from the start: paths and the mode. */
	memcpy(cfg.socket_path, portd_cfg.socket_path, sizeof(cfg.socket_path));
	memcpy(cfg.portserver, portd_cfg.portserver, sizeof(cfg.portserver));
	memcpy(cfg.metrics, portd_cfg.metrics, sizeof(cfg.metrics));
	cfg.metrics_remote = portd_cfg.metrics_remote;
	cfg.socket_mode = portd_cfg.socket_mode;
	portd_cfg = cfg;
	log_setlevel(portd_cfg.log_level);
	log_info("reloaded %s: pool %u-%u, quota %d",
	    cfg.config_file[0] ? cfg.config_file : "(no file)",
	    portd_cfg.pool_lo, portd_cfg.pool_hi, portd_cfg.quota);
	service_reloading(true);
}

/* The service manager's STATUS= line (service.c). */
static void
status_line(char *buf, size_t len, bool ready)
{
	if (ready)
		snprintf(buf, len, "%d lease(s), %d port(s) held",
		    lease_count(), lease_ports_held());
	else
		snprintf(buf, len, "%d lease(s), %d port(s), %d connection(s)",
		    lease_count(), lease_ports_held(), conn_count());
}

int
main(int argc, char *argv[])
{
	struct config flags_cfg;
	struct event *sigterm, *sigint, *sighup;
	char err[1024], journal_path[PATH_MAX];
	const char *flag_keys[64], *flag_vals[64];
	bool explicit_socket = false, check_only = false;
	bool explicit_config = false, system_mode = false;
	int nflags = 0, ch, idx, rc;
	double restore_started;

	log_init(LOG_INFO);
	fault_init();
	config_defaults(&flags_cfg);
	while (
	    (ch = getopt_long(argc, argv, "s:fc:l:hV", longopts, &idx)) != -1) {
		/* Settings are kept, in order, until the config file is read:
		 * a bounded list, and a clear error past its end. */
		if ((ch == 0 || ch == 'l' || ch == 'R' || ch == 'E') &&
		    nflags == (int)nitems(flag_keys)) {
			fprintf(stderr,
			    "portd: too many settings on the command line "
			    "(at most %zu)\n",
			    nitems(flag_keys));
			return 2;
		}
		switch (ch) {
		case 0:
			/* Applied after the config file, so flags win. */
			flag_keys[nflags] = longopts[idx].name;
			flag_vals[nflags++] = optarg;
			break;
		case 's':
			if (strlen(optarg) >= sizeof(flags_cfg.socket_path)) {
				fprintf(stderr,
				    "portd: socket path too long "
				    "(at most %zu bytes)\n",
				    sizeof(flags_cfg.socket_path) - 1);
				return 2;
			}
			strcpy(flags_cfg.socket_path, optarg);
			explicit_socket = true;
			break;
		case 'S':
			system_mode = true;
			break;
		case 'U':
			system_mode = false;
			break;
		case 'f':
			break;
		case 'c':
			snprintf(flags_cfg.config_file,
			    sizeof(flags_cfg.config_file), "%s", optarg);
			explicit_config = true;
			break;
		case 'C':
			check_only = true;
			break;
		case 'l':
			flag_keys[nflags] = "log-level";
			flag_vals[nflags++] = optarg;
			break;
		case 'R':
			flag_keys[nflags] = "metrics-allow-remote";
			flag_vals[nflags++] = "yes";
			break;
		case 'E':
			flag_keys[nflags] = "allow-ephemeral-pool";
			flag_vals[nflags++] = "yes";
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("portd %s (protocol %d)\n", PORTD_VERSION,
			    PROTO_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(
		    stderr, "portd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	opt.nflags = nflags;
	opt.keys = flag_keys;
	opt.vals = flag_vals;
	opt.system = system_mode;
	opt.explicit_config = explicit_config;
	if (explicit_config)
		memcpy(opt.config_file, flags_cfg.config_file,
		    sizeof(opt.config_file));
	if (build_config(&portd_cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "portd: %s\n", err);
		return check_only ? 1 : 2;
	}
	memcpy(portd_cfg.socket_path, flags_cfg.socket_path,
	    sizeof(portd_cfg.socket_path));
	if (check_only) {
		config_write(&portd_cfg, stdout);
		fprintf(stderr, "portd: configuration OK\n");
		return 0;
	}
	log_setlevel(portd_cfg.log_level);

	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if ((portd_base = event_base_new()) == NULL)
		fatalx("cannot create the event base");
	portd_started_ms = portd_clock_real();
	/* Before any socket answers: a client may stop portd as soon as it
	 * sees one, and the signal waits for the loop, which starts once
	 * the leases are restored. */
	sigterm = evsignal_new(portd_base, SIGTERM, stop_cb, NULL);
	sigint = evsignal_new(portd_base, SIGINT, stop_cb, NULL);
	sighup = evsignal_new(portd_base, SIGHUP, reload_cb, NULL);
	if (sigterm == NULL || sigint == NULL || sighup == NULL ||
	    evsignal_add(sigterm, NULL) || evsignal_add(sigint, NULL) ||
	    evsignal_add(sighup, NULL))
		fatalx("cannot watch signals");
	if (socket_path(explicit_socket) == -1)
		fatalx("no usable socket path");
	if (alloc_init(portd_cfg.pool_lo, portd_cfg.pool_hi) == -1)
		fatalx("out of memory");
	lease_init();
	service_init(status_line);
	/* Before the API socket: clients take that one answering as the
	 * sign that portd is up, portpicker's users included. */
	if (service_portserver_fd() != -1) {
		/* Passed by name: the unit's address wins over the config. */
		if (portserver_adopt(
		        service_portserver_fd(), listener_resume) == -1)
			fatalx("cannot serve the passed portserver socket");
	} else if (portd_cfg.portserver[0] != '\0' &&
	           portserver_open(portd_cfg.portserver, listener_resume) == -1)
		fatalx("cannot serve the portserver protocol on %s",
		    portd_cfg.portserver);
	if (portd_cfg.metrics[0] != '\0' &&
	    metrics_open(portd_cfg.metrics) == -1)
		fatalx("cannot serve metrics on %s", portd_cfg.metrics);
	if (service_api_fd() != -1) {
		if (listener_adopt(service_api_fd(), portd_cfg.socket_path) ==
		    -1)
			fatalx("cannot serve the activated socket");
	} else if (listener_open(
	               portd_cfg.socket_path, portd_cfg.socket_mode) == -1)
		fatalx("cannot serve %s", portd_cfg.socket_path);
	/* State lives beside the socket: two daemons never share it. */
	snprintf(journal_path, sizeof(journal_path), "%s.journal",
	    portd_cfg.socket_path);
	restore_started = proc_monotonic();
	rc = journal_open(journal_path);
	metrics_restore_seconds = proc_monotonic() - restore_started;
	if (rc == -1) {
		/* Without the journal the stored sockets match no lease and
		 * would be let go: their ports would be free for anyone.
		 * Failing keeps them in the service manager's store. */
		if (service_stored_count() > 0)
			fatalx("cannot read the journal %s: refusing to start "
			       "so that %d stored socket(s) stay held",
			    journal_path, service_stored_count());
		log_warnx("running without a journal: leases will not "
		          "survive a restart");
	}
	service_drop_strays();

	log_info("portd %s ready: pool %u-%u, quota %d, %d lease(s)",
	    PORTD_VERSION, portd_cfg.pool_lo, portd_cfg.pool_hi,
	    portd_cfg.quota, lease_count());
	service_ready();

	event_base_dispatch(portd_base);

	log_info("stopping (%s)", stop_reason ? stop_reason : "loop ended");
	service_stopping();
	/* Leases first: stopping ends none of them, not even a session's. */
	lease_shutdown();
	conn_close_all();
	portserver_close();
	metrics_close();
	journal_close();
	listener_close();
	/* Run the deferred frees of closed connections. */
	event_base_loop(portd_base, EVLOOP_NONBLOCK);
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	alloc_shutdown();
	event_base_free(portd_base);
	return 0;
}
