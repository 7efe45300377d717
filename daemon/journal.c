/*
 * The state journal: one JSON line per acknowledged change, appended
 * before the reply is sent, so a daemon killed at any moment restarts with
 * every lease it had acknowledged.
 *
 *   {"portd_journal":1}                 header
 *   {"put":{lease object},"start":N}    a lease as it is now
 *   {"del":"L…"}                        a lease that ended
 *
 * When the file holds more than twice as many records as live leases
 * (plus a constant), it is rewritten with one put a lease and renamed into
 * place: each change costs one write whatever the table's size, and the
 * rewrite is paid for by the records that made it necessary. A torn last
 * line (no '\n') is ignored; a corrupt line is reported and skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "fault.h"

#define JOURNAL_VERSION 1
#define COMPACT_SLACK   1024

static int jfd = -1;
static char jpath[PATH_MAX];
static long nrecords; /* lines in the file since the last rewrite */
static bool jbroken;  /* a write failed; say it once */
static uint64_t ncompactions;

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

/* One record as one line on fd; consumes rec. */
static int
write_record(int fd, json_object *rec)
{
	char *line;
	size_t len;
	int rc = -1;

	if ((line = proto_serialize(rec, &len)) != NULL) {
		rc = write_all(fd, line, len);
		free(line);
	}
	json_object_put(rec);
	return rc;
}

/* Append rec (consumed) to the journal; compact when it has grown. */
static int
append(json_object *rec)
{
	if (write_record(jfd, rec) == -1) {
		if (!jbroken)
			log_warn("journal %s: write", jpath);
		jbroken = true;
		return -1;
	}
	jbroken = false;
	nrecords++;
	if (nrecords > 2L * lease_count() + COMPACT_SLACK)
		journal_compact();
	return 0;
}

static json_object *
put_record(const struct lease *l)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "put", lease_json(l));
	json_object_object_add(
	    o, "start", json_object_new_int64((int64_t)lease_owner_start(l)));
	return o;
}

int
journal_put(const struct lease *l)
{
	return jfd == -1 ? 0 : append(put_record(l));
}

int
journal_del(const char *id)
{
	json_object *o;

	if (jfd == -1)
		return 0;
	o = json_object_new_object();
	json_object_object_add(o, "del", json_object_new_string(id));
	return append(o);
}

static void
put_one(struct lease *l, void *arg)
{
	int *fdp = arg;

	if (*fdp != -1 && write_record(*fdp, put_record(l)) == -1) {
		log_warn("journal rewrite");
		close(*fdp);
		*fdp = -1;
	}
}

int
journal_compact(void)
{
	char tmp[PATH_MAX + 8];
	json_object *header;
	int fd;

	if (jfd == -1)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.new", jpath);
	fd = open(
	    tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		log_warn("journal %s", tmp);
		return -1;
	}
	header = json_object_new_object();
	json_object_object_add(
	    header, "portd_journal", json_object_new_int(JOURNAL_VERSION));
	if (write_record(fd, header) == -1) {
		log_warn("journal %s", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	lease_foreach(true, 0, put_one, &fd);
	if (fd == -1 || fdatasync(fd) == -1 || rename(tmp, jpath) == -1) {
		log_warn("journal %s", tmp);
		if (fd != -1)
			close(fd);
		unlink(tmp);
		return -1;
	}
	close(jfd);
	jfd = fd;
	nrecords = lease_count();
	ncompactions++;
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

/* Apply one line to the map of live records; -1 if it is not valid, -2
 * for the header of a journal version this portd does not read. */
static int
apply(json_object *map, const char *line, size_t len)
{
	struct proto_error err;
	json_object *o, *v, *id;

	if ((o = proto_parse_object(line, len, &err)) == NULL)
		return -1;
	if (json_object_object_get_ex(o, "portd_journal", &v)) {
		int64_t ver = json_object_get_int64(v);
		json_object_put(o);
		return ver == JOURNAL_VERSION ? 0 : -2;
	}
	if (json_object_object_get_ex(o, "del", &v) &&
	    json_object_is_type(v, json_type_string)) {
		json_object_object_del(map, json_object_get_string(v));
		json_object_put(o);
		return 0;
	}
	if (json_object_object_get_ex(o, "put", &v) &&
	    json_object_object_get_ex(v, "id", &id) &&
	    json_object_is_type(id, json_type_string) &&
	    proto_lease_id_valid(json_object_get_string(id),
	        (size_t)json_object_get_string_len(id))) {
		json_object_object_add(
		    map, json_object_get_string(id), json_object_get(o));
		json_object_put(o);
		return 0;
	}
	json_object_put(o);
	return -1;
}

int
journal_open(const char *path)
{
	json_object *map;
	struct stat st;
	char *buf = NULL, *p, *end;
	int fd, bad = 0, restored = 0, line = 0;

	snprintf(jpath, sizeof(jpath), "%s", path);
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
	map = json_object_new_object();
	if (st.st_size > 0) {
		if ((buf = malloc((size_t)st.st_size + 1)) == NULL ||
		    pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
			log_warn("journal %s: read", path);
			free(buf);
			json_object_put(map);
			close(fd);
			return -1;
		}
		buf[st.st_size] = '\0';
		for (p = buf; p < buf + st.st_size; p = end + 1) {
			line++;
			end = memchr(p, '\n', (size_t)(buf + st.st_size - p));
			if (end == NULL) {
				log_warnx("journal %s: line %d is torn (no "
				          "newline); ignored",
				    path, line);
				break;
			}
			int rc = apply(map, p, (size_t)(end - p));
			if (rc == -2) {
				/* A newer portd's: read nothing, rewrite
				 * nothing. */
				log_warnx("journal %s is of another version; "
				          "leaving it untouched",
				    path);
				free(buf);
				json_object_put(map);
				close(fd);
				return -1;
			}
			if (rc == -1) {
				bad++;
				log_warnx("journal %s: line %d is corrupt; "
				          "skipped",
				    path, line);
			}
		}
		free(buf);
	}
	if (bad > 0)
		log_warnx("journal %s: %d corrupt line(s); restored what is "
		          "valid",
		    path, bad);

	json_object_object_foreach(map, id, rec)
	{
		struct proto_lease v;
		struct proto_error err;
		json_object *put = NULL, *start = NULL;

		(void)id;
		json_object_object_get_ex(rec, "put", &put);
		json_object_object_get_ex(rec, "start", &start);
		if (proto_lease_decode(put, &v, &err) == -1) {
			log_warnx("journal %s: lease %s: %s; skipped", path, id,
			    err.message);
			continue;
		}
		if (lease_restore(
		        &v, start != NULL &&
		                    json_object_is_type(start, json_type_int)
		                ? (uint64_t)json_object_get_int64(start)
		                : 0) == 0)
			restored++;
	}
	json_object_put(map);
	jfd = fd;
	log_info("journal %s: %d lease(s) restored", path, restored);
	/* Start from a clean file holding just what is live. */
	return journal_compact();
}

void
journal_close(void)
{
	if (jfd != -1)
		close(jfd);
	jfd = -1;
}
