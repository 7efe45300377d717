/* portctl stop and metrics: operating the daemon. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "portctl.h"

/* Whether pid has exited but is not reaped (state Z in /proc). */
static bool
zombie(pid_t pid)
{
	char path[64], buf[512], *rp;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (rp = strrchr(buf, ')')) != NULL && rp[1] == ' ' && rp[2] == 'Z';
}

/* Wait up to ms for pid to be gone; false if it is still there. */
static bool
wait_gone(pid_t pid, int ms)
{
	struct timespec ts = {0, 10 * 1000 * 1000};

	for (int waited = 0; waited < ms; waited += 10) {
		/* EPERM: another user's daemon; it closed our connection,
		 * which is as far as we can see. */
		if (kill(pid, 0) == -1)
			return errno == ESRCH || errno == EPERM;
		if (zombie(pid))
			return true; /* exited; its parent has yet to reap it */
		nanosleep(&ts, NULL);
	}
	return false;
}

int
cmd_stop(int argc, char **argv)
{
	struct portd *h;
	int64_t leases = 0;
	int rc, ex;

	if ((ex = global_options_only(argc, argv)) != 0)
		return ex;
	/* Stopping a daemon that is not there must not start one. */
	globals.no_autostart = true;
	globals.stopping = true;
	if ((ex = open_daemon(&h)) != 0)
		return ex;
	if ((rc = portd_stop(h, &leases)) < 0) {
		ex = report(h, rc, "stop");
		portd_close(h);
		return ex;
	}
	portd_close(h);
	if (!wait_gone((pid_t)rc,
	        globals.timeout_ms > 0 ? globals.timeout_ms : 5000)) {
		say("stop: portd (pid %d) closed its connections but is still "
		    "running",
		    rc);
		return EXIT_NOD;
	}
	printf("stopped portd (pid %d); %" PRId64
	       " lease(s) kept for its next start\n",
	    rc, leases);
	return 0;
}

int
cmd_metrics(int argc, char **argv)
{
	struct portd *h;
	char *text;
	int rc, ex;

	if ((ex = global_options_only(argc, argv)) != 0)
		return ex;
	if ((ex = open_daemon(&h)) != 0)
		return ex;
	if ((rc = portd_metrics(h, &text)) < 0) {
		ex = report(h, rc, "metrics");
		portd_close(h);
		return ex;
	}
	fputs(text, stdout);
	free(text);
	portd_close(h);
	return fflush(stdout) == 0 ? 0 : EXIT_OSERR;
}
