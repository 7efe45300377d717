/*
 * The state journal: one JSON line per acknowledged change, appended
 * before the reply is sent, so a daemon killed at any moment restarts with
 * every lease it had acknowledged.
 *
 *   {"portd_journal":2,"crc":"…"}              header
 *   {"put":{lease object},"start":N,"crc":"…"}  a lease as it is now
 *   {"del":"L…","crc":"…"}                      a lease that ended
 *
 * Every line carries its checksum (jrecord.c); a damaged line is refused,
 * never restored.
 *
 * When a record cannot be written (full disk, I/O error) the file is cut
 * back to the end of the last whole record, so the next record never
 * lands on a partial line, and the caller is told: a change whose record
 * is not on disk is undone and refused. An end that happened anyway (an
 * expiry, an owner that exited) is owed: it is written before the next
 * record, and retried every second until it is. If the file cannot even
 * be cut back, it is no longer trusted: nothing is appended until a
 * rewrite of the whole table has replaced it.
 *
 * When the file holds more than twice as many records as live leases
 * (plus a constant), it is rewritten with one put a lease and renamed into
 * place: each change costs one write whatever the table's size, and the
 * rewrite is paid for by the records that made it necessary. A torn last
 * line (no '\n') is ignored and cut off.
 *
 * The journal knows records, not leases: lease.c hands it each lease as
 * a struct proto_lease (journal_put), and gives it, once, the table's
 * three questions (struct journal_table): every live lease for a rewrite,
 * how many are live, and what to do with each lease read back at open.
 * journal.c calls nothing of lease.c by name.
 */
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "fault.h"

#define COMPACT_SLACK 1024
#define MAX_OWED      65536 /* ends owed before a rewrite is the cheaper way */

static int jfd = -1;
static char jpath[PATH_MAX];
static long nrecords; /* lines in the file since the last rewrite */
static off_t jsize;   /* where the last whole record ends */
static bool jstale;   /* the file may not match the table: rewrite first */
static bool jbroken;  /* a write failed; say it once */
static uint64_t ncompactions;
static const char *compact_skip; /* a lease the rewrite leaves out */
static bool compact_failing;     /* the last rewrite failed; said once */
static long compact_at;          /* no size-driven rewrite before this */
static const struct journal_table *table; /* lease.c's, from journal_init */

/* Ends that happened but are not in the file yet. */
static char (*owed)[PROTO_MAX_ID + 1];
static int nowed, maxowed;
static struct event *retry_ev;

void
journal_init(const struct journal_table *t)
{
	table = t;
}

bool
journal_enabled(void)
{
	return jfd != -1;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		int f = FAULT(JOURNAL_WRITE);
		ssize_t n;

		if (f > 0) {
			errno = f;
			n = -1;
		} else
			n = write(fd, buf,
			    f == FAULT_SHORT && len > 1 ? len / 2 : len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void retry_cb(evutil_socket_t, short, void *);

/* Try again in a second while something is owed. */
static void
arm_retry(void)
{
	struct timeval one = {1, 0};

	if (portd_base == NULL)
		return;
	if (retry_ev == NULL &&
	    (retry_ev = evtimer_new(portd_base, retry_cb, NULL)) == NULL)
		return;
	if (!evtimer_pending(retry_ev, NULL))
		evtimer_add(retry_ev, &one);
}

/* A write failed: say so once, and cut the file back to its last whole
 * record; if that fails too, stop trusting the file. */
static void
write_failed(void)
{
	int e = errno;

	if (!jbroken)
		log_warnx("journal %s: write: %s; changes that cannot be "
		          "recorded are refused",
		    jpath, strerror(e));
	jbroken = true;
	if (ftruncate(jfd, jsize) == -1) {
		log_warn("journal %s: cannot cut back a partial record; "
		         "appending no more until it is rewritten",
		    jpath);
		jstale = true;
	}
	arm_retry();
	errno = e;
}

/*
 * Rewrite if the file is not trusted; else write the owed ends and the
 * change (the put of v with its owner's start, or the end of del; neither
 * for NULL, NULL) in one write. 0 if all of it is on disk. The buffer is
 * kept between appends: a record costs no allocation.
 */
static int
append(const struct proto_lease *v, uint64_t start, const char *del)
{
	static struct jbuf b;
	int i;

	if (jstale)
		/* The rewrite holds the table as it is now, this change
		 * included. */
		return journal_compact();
	b.len = 0;
	b.nrecords = 0;
	for (i = 0; i < nowed; i++)
		if (jrecord_add_del(&b, owed[i]) == -1)
			break;
	if (i < nowed || (v != NULL && jrecord_add_put(&b, v, start) == -1) ||
	    (del != NULL && jrecord_add_del(&b, del) == -1)) {
		errno = ENOMEM;
		return -1;
	}
	if (b.len > 0 && write_all(jfd, b.p, b.len) == -1) {
		write_failed();
		return -1;
	}
	jsize += (off_t)b.len;
	nrecords += b.nrecords;
	/* One record is the usual; let a burst's buffer go. */
	if (b.cap > 65536)
		jbuf_free(&b);
	if (jbroken)
		log_notice("journal %s: writes succeed again", jpath);
	jbroken = false;
	nowed = 0;
	if (nrecords > 2L * table->count() + COMPACT_SLACK &&
	    nrecords >= compact_at)
		journal_compact();
	return 0;
}

int
journal_put(const struct proto_lease *v, uint64_t start)
{
	return jfd == -1 ? 0 : append(v, start, NULL);
}

int
journal_del(const char *id)
{
	int rc;

	if (jfd == -1)
		return 0;
	/* A rewrite instead of the record must leave the lease out: it is
	 * still in the table while its end is being recorded. */
	compact_skip = id;
	rc = append(NULL, 0, id);
	compact_skip = NULL;
	return rc;
}

void
journal_del_later(const char *id)
{
	if (jfd == -1)
		return;
	if (nowed == maxowed) {
		void *p = NULL;
		int n = maxowed ? maxowed * 2 : 16;
		if (n <= MAX_OWED)
			p = realloc(owed, sizeof(*owed) * (size_t)n);
		if (p == NULL) {
			/* A rewrite leaves out every lease that ended. */
			jstale = true;
			arm_retry();
			return;
		}
		owed = p;
		maxowed = n;
	}
	snprintf(owed[nowed++], sizeof(owed[0]), "%s", id);
	arm_retry();
}

void
journal_flush(void)
{
	if (jfd != -1 && (jstale || nowed > 0) && append(NULL, 0, NULL) == -1)
		log_warnx("journal %s: %d lease end(s) could not be recorded",
		    jpath, jstale ? -1 : nowed);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (jfd == -1 || (!jstale && nowed == 0))
		return;
	if (append(NULL, 0, NULL) == -1)
		arm_retry();
}

struct rewrite {
	struct jbuf b;
	bool failed;
};

/* The rewrite's record of one live lease; -1 (out of memory) stops the
 * table's walk. */
static int
put_one(const struct proto_lease *v, uint64_t start, void *arg)
{
	struct rewrite *w = arg;

	if (compact_skip != NULL && strcmp(v->id, compact_skip) == 0)
		return 0;
	if (jrecord_add_put(&w->b, v, start) == -1) {
		w->failed = true;
		return -1;
	}
	return 0;
}

/* A rewrite failed: say so once until one succeeds, and wait for another
 * COMPACT_SLACK records before the next size-driven attempt. */
static int
compact_failed(const char *what)
{
	if (!compact_failing)
		log_warn("journal %s: cannot rewrite it (%s)", jpath, what);
	compact_failing = true;
	compact_at = nrecords + COMPACT_SLACK;
	return -1;
}

int
journal_compact(void)
{
	char tmp[PATH_MAX + 8];
	struct rewrite w = {0};
	struct jbuf *b = &w.b;
	json_object *header;
	int fd;

	if (jfd == -1)
		return 0;
	/* The target first: when it cannot be made, nothing is serialised
	 * in vain. */
	snprintf(tmp, sizeof(tmp), "%s.new", jpath);
	fd = open(tmp,
	    O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd == -1)
		return compact_failed("create");
	header = json_object_new_object();
	json_object_object_add(
	    header, "portd_journal", json_object_new_int(JOURNAL_VERSION));
	if (jrecord_add(b, header) == -1)
		w.failed = true;
	else
		table->each(put_one, &w);
	if (w.failed || write_all(fd, b->p, b->len) == -1 ||
	    fdatasync(fd) == -1 || rename(tmp, jpath) == -1) {
		int e = w.failed ? ENOMEM : errno;
		close(fd);
		unlink(tmp);
		jbuf_free(b);
		errno = e;
		return compact_failed("write");
	}
	close(jfd);
	jfd = fd;
	jsize = (off_t)b->len;
	nrecords = b->nrecords - 1;
	compact_at = 0;
	/* The table as it is: every owed end is in it. */
	nowed = 0;
	if (jstale || jbroken || compact_failing)
		log_notice(
		    "journal %s: rewritten; writes succeed again", jpath);
	jstale = false;
	jbroken = false;
	compact_failing = false;
	ncompactions++;
	jbuf_free(b);
	return 0;
}

const char *
journal_path(void)
{
	return jpath;
}

void
journal_stats(struct journal_stats *ret)
{
	struct stat st;

	ret->bytes =
	    jfd != -1 && fstat(jfd, &st) == 0 ? (int64_t)st.st_size : -1;
	ret->compactions = ncompactions;
}

static void
report(void *arg, int line, enum jline what)
{
	int *bad = arg;
	const char *why;

	switch (what) {
	case JLINE_TORN:
		log_warnx("journal %s: line %d is torn (no newline); ignored",
		    jpath, line);
		return;
	case JLINE_OTHER_VERSION:
		return;
	case JLINE_CHECKSUM:
		why = "fails its checksum";
		break;
	default:
		why = "is corrupt";
		break;
	}
	(*bad)++;
	log_warnx("journal %s: line %d %s; skipped", jpath, line, why);
}

/*
 * Give the restore's garbage back to the kernel. Reading the journal
 * builds a json-c object tree of every record (a few KiB a lease) while
 * the leases are allocated among it; freed, those pages stay in malloc's
 * heap, pinned by the leases after them, and the daemon kept 5.5 KiB per
 * lease resident after a restart against 1 KiB when the same table was
 * built live. malloc_trim releases the free pages inside the heap, not
 * only its top.
 */
static void
trim_heap(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

int
journal_open(const char *path)
{
	struct jload j = {.report = report};
	struct stat st;
	char *buf = NULL;
	int fd, rc, bad = 0, restored = 0;

	snprintf(jpath, sizeof(jpath), "%s", path);
	j.arg = &bad;
	fd = open(
	    path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_APPEND, 0600);
	if (fd == -1 || fstat(fd, &st) == -1) {
		log_warn("journal %s", path);
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		log_warnx("journal %s is not a regular file", path);
		close(fd);
		return -1;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL ||
	    (st.st_size > 0 &&
	        pread(fd, buf, (size_t)st.st_size, 0) != st.st_size)) {
		log_warn("journal %s: read", path);
		free(buf);
		close(fd);
		return -1;
	}
	if (jrecord_load(buf, (size_t)st.st_size, &j) == -1) {
		free(buf);
		close(fd);
		if (j.other_version != 0) {
			/* A newer portd's: read nothing, rewrite nothing. */
			log_warnx("journal %s is of another version (%lld); "
			          "leaving it untouched",
			    path, (long long)j.other_version);
		} else
			log_warnx("journal %s: out of memory", path);
		return -1;
	}
	free(buf);
	if (bad > 0)
		log_warnx("journal %s: %d corrupt line(s); restored what is "
		          "valid",
		    path, bad);

	json_object_object_foreach(j.map, id, rec)
	{
		struct proto_lease v;
		struct proto_error err;
		uint64_t start;

		if (jrecord_decode(rec, &v, &start, &err) == -1) {
			log_warnx("journal %s: lease %s: %s; skipped", path, id,
			    err.message);
			continue;
		}
		rc = table->restore(&v, start);
		if (rc == -2)
			/* Before anything is rewritten: the file keeps the
			 * lease for the next try (the service manager's
			 * restart, or the operator's). */
			fatalx("journal %s: cannot restore lease %s now; "
			       "stopping so that it is not lost",
			    path, id);
		if (rc == 0)
			restored++;
	}
	json_object_put(j.map);
	jfd = fd;
	jsize = (off_t)j.complete;
	nrecords = 0;
	/* Appends go after the last whole line, never onto a torn one. */
	if (j.torn && ftruncate(fd, jsize) == -1) {
		log_warn("journal %s: cannot cut off the torn line", path);
		jstale = true;
	}
	log_info("journal %s: %d lease(s) restored", path, restored);
	/* Start from a clean file holding just what is live. If that cannot
	 * be written, the journal is still the old file: keep appending to
	 * it (it was read whole), and say so. */
	if (journal_compact() == -1) {
		if (jstale)
			log_warnx("journal %s: no change can be recorded until "
			          "it can be rewritten",
			    path);
		else
			log_warnx("journal %s: appending to it as it is", path);
	}
	/* What the restore and the rewrite allocated is free now: give it
	 * back (docs/benchmarks.md, RSS after a restart). */
	trim_heap();
	return 0;
}

void
journal_close(void)
{
	if (retry_ev != NULL)
		event_free(retry_ev);
	retry_ev = NULL;
	if (jfd != -1)
		close(jfd);
	jfd = -1;
	free(owed);
	owed = NULL;
	nowed = maxowed = 0;
}
