/*
 * Fault injection (test builds only; see fault.h for the rules' syntax).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "log.h"

#define MAX_RULES 16

struct rule {
	enum fault_point point;
	int error; /* errno, or FAULT_SHORT */
	long count, after;
};

static const char *const point_names[FAULT_NPOINTS] = {
    [FAULT_JOURNAL_WRITE] = "journal_write",
    [FAULT_BIND] = "bind",
    [FAULT_ACCEPT] = "accept",
    [FAULT_PIDFD_OPEN] = "pidfd_open",
    [FAULT_SENDMSG] = "sendmsg",
};

static const struct {
	const char *name;
	int error;
} errors[] = {
    {"short", FAULT_SHORT},
    {"EACCES", EACCES},
    {"EADDRINUSE", EADDRINUSE},
    {"EADDRNOTAVAIL", EADDRNOTAVAIL},
    {"EAGAIN", EAGAIN},
    {"ECONNABORTED", ECONNABORTED},
    {"ECONNRESET", ECONNRESET},
    {"EDQUOT", EDQUOT},
    {"EFBIG", EFBIG},
    {"EINTR", EINTR},
    {"EINVAL", EINVAL},
    {"EIO", EIO},
    {"EMFILE", EMFILE},
    {"ENFILE", ENFILE},
    {"ENOBUFS", ENOBUFS},
    {"ENOMEM", ENOMEM},
    {"ENOSPC", ENOSPC},
    {"EPERM", EPERM},
    {"EPIPE", EPIPE},
    {"EROFS", EROFS},
    {"ESRCH", ESRCH},
    {"ETOOMANYREFS", ETOOMANYREFS},
};

static struct rule rules[MAX_RULES];
static int nrules;
static long calls[FAULT_NPOINTS];

static const char *file_path;
static struct stat file_st; /* what the file was when last read */
static bool file_seen;

/* Parse a whole rule set into rules; -1 (and a message) if malformed. */
static int
parse(const char *spec, char *msg, size_t msglen)
{
	char buf[1024], *tok, *save = NULL;
	int n = 0;

	if (strlen(spec) >= sizeof(buf)) {
		snprintf(msg, msglen, "too long");
		return -1;
	}
	strcpy(buf, spec);
	for (tok = strtok_r(buf, ", \t\n", &save); tok != NULL;
	     tok = strtok_r(NULL, ", \t\n", &save)) {
		char *f[4] = {NULL}, *s = tok, *end;
		struct rule r = {.count = 1};
		int nf = 0;
		size_t i;

		while (nf < 4 && (f[nf] = strsep(&s, ":")) != NULL)
			nf++;
		if (nf < 2 || s != NULL) {
			snprintf(msg, msglen,
			    "'%s': want POINT:ERROR[:COUNT"
			    "[:AFTER]]",
			    tok);
			return -1;
		}
		for (i = 0; i < FAULT_NPOINTS; i++)
			if (strcmp(f[0], point_names[i]) == 0)
				break;
		if (i == FAULT_NPOINTS) {
			snprintf(msg, msglen, "unknown point '%s'", f[0]);
			return -1;
		}
		r.point = (enum fault_point)i;
		for (i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
			if (strcmp(f[1], errors[i].name) == 0)
				break;
		if (i == sizeof(errors) / sizeof(errors[0])) {
			snprintf(msg, msglen, "unknown error '%s'", f[1]);
			return -1;
		}
		r.error = errors[i].error;
		if (r.error == FAULT_SHORT && r.point != FAULT_JOURNAL_WRITE &&
		    r.point != FAULT_SENDMSG) {
			snprintf(
			    msg, msglen, "'%s': only writes can be short", tok);
			return -1;
		}
		for (int k = 2; k < nf; k++) {
			long v = strtol(f[k], &end, 10);
			if (f[k][0] < '0' || f[k][0] > '9' || *end != '\0') {
				snprintf(msg, msglen, "'%s': bad number '%s'",
				    tok, f[k]);
				return -1;
			}
			*(k == 2 ? &r.count : &r.after) = v;
		}
		if (n == MAX_RULES) {
			snprintf(msg, msglen, "more than %d rules", MAX_RULES);
			return -1;
		}
		rules[n++] = r;
	}
	nrules = n;
	memset(calls, 0, sizeof(calls));
	return 0;
}

void
fault_init(void)
{
	const char *spec = getenv("PORTD_FAULTS");
	char msg[256];

	file_path = getenv("PORTD_FAULTS_FILE");
	if (file_path != NULL && *file_path == '\0')
		file_path = NULL;
	if (spec != NULL && parse(spec, msg, sizeof(msg)) == -1)
		fatalx("PORTD_FAULTS: %s", msg);
	log_notice("fault injection built in: %d rule(s)%s%s", nrules,
	    file_path ? ", and the rules in " : "", file_path ? file_path : "");
}

/* Re-read the rules file if it changed (or appeared, or went away). */
static void
reload(void)
{
	struct stat st;
	char buf[1024], msg[256];
	ssize_t n;
	int fd;

	if (file_path == NULL)
		return;
	if (stat(file_path, &st) == -1) {
		if (file_seen) {
			file_seen = false;
			nrules = 0;
			log_notice("fault rules: %s is gone; none", file_path);
		}
		return;
	}
	if (file_seen && st.st_ino == file_st.st_ino &&
	    st.st_size == file_st.st_size &&
	    st.st_mtim.tv_sec == file_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == file_st.st_mtim.tv_nsec)
		return;
	file_seen = true;
	file_st = st;
	if ((fd = open(file_path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	if (parse(buf, msg, sizeof(msg)) == -1)
		fatalx("%s: %s", file_path, msg);
	log_notice("fault rules from %s: %d rule(s)", file_path, nrules);
}

int
fault_hit(enum fault_point point)
{
	long call;

	reload();
	call = ++calls[point];
	for (int i = 0; i < nrules; i++) {
		const struct rule *r = &rules[i];

		if (r->point != point || call <= r->after ||
		    (r->count != 0 && call > r->after + r->count))
			continue;
		log_info("fault: %s call %ld fails with %s", point_names[point],
		    call,
		    r->error == FAULT_SHORT ? "a short transfer"
		                            : strerror(r->error));
		return r->error;
	}
	return 0;
}

bool
fault_fail(enum fault_point point)
{
	int e = fault_hit(point);

	if (e <= 0)
		return false;
	errno = e;
	return true;
}
