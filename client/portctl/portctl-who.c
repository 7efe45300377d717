/*
 * portctl who PORT[/tcp|/udp]: who holds a port. First the daemon (any
 * user may ask; another uid's lease shows its owner, name and state),
 * then what the kernel shows: sockets in /proc/net/{tcp,udp}{,6} with
 * their process where /proc lets us see it, another portd's marker in
 * /proc/net/unix, and, when nothing is listed, a bind probe (a bound,
 * non-listening TCP socket, as portd holds, is in none of those tables,
 * which is also why ss and lsof cannot see it).
 */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "portctl.h"
#include "shared.h"

/* The process that has socket inode ino open, where we may look. */
static pid_t
inode_owner(unsigned long ino, char *comm, size_t size)
{
	char want[64], path[600], link[64];
	struct dirent *de;
	DIR *proc, *fds;
	pid_t found = 0;

	snprintf(want, sizeof(want), "socket:[%lu]", ino);
	if ((proc = opendir("/proc")) == NULL)
		return 0;
	while (found == 0 && (de = readdir(proc)) != NULL) {
		struct dirent *fe;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", de->d_name);
		if ((fds = opendir(path)) == NULL)
			continue; /* another user's: not visible */
		while ((fe = readdir(fds)) != NULL) {
			ssize_t n;

			snprintf(path, sizeof(path), "/proc/%s/fd/%s",
			    de->d_name, fe->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (strcmp(link, want) == 0) {
				found = (pid_t)atoi(de->d_name);
				break;
			}
		}
		closedir(fds);
	}
	closedir(proc);
	comm[0] = '\0';
	if (found > 0) {
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/comm", (int)found);
		if ((f = fopen(path, "re")) != NULL) {
			if (fgets(comm, (int)size, f) == NULL)
				comm[0] = '\0';
			comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
	}
	return found;
}

static void
print_owner(unsigned long ino)
{
	char comm[64];
	pid_t pid = inode_owner(ino, comm, sizeof(comm));

	if (pid > 0)
		printf(", process %d (%s)\n", (int)pid, comm);
	else
		printf(", process not visible to you\n");
}

/* Sockets on port in one /proc/net table; how many were listed. */
static int
scan_table(const char *table, unsigned port, bool tcp)
{
	char path[64], line[512];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/net/%s", table);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char local[80], remote[80];
		unsigned st, uid;
		unsigned long ino;
		char *colon;

		if (sscanf(line, "%*d: %79s %79s %x %*s %*s %*s %u %*d %lu",
		        local, remote, &st, &uid, &ino) != 5 ||
		    (colon = strrchr(local, ':')) == NULL ||
		    strtoul(colon + 1, NULL, 16) != port)
			continue;
		n++;
		printf("kernel: %s %s, uid %u", table,
		    tcp ? (st == 0x0a ? "listening" : "connected or closing")
		        : "bound",
		    uid);
		print_owner(ino);
	}
	fclose(f);
	return n;
}

/* Another portd's marker of the port (docs/architecture.md). */
static int
scan_markers(unsigned port, bool tcp)
{
	char want[64], line[512];
	FILE *f;
	int n = 0;

	want[0] = '@'; /* how /proc/net/unix shows the abstract namespace */
	if (proto_marker_name(!tcp, port, want + 1, sizeof(want) - 1) == -1 ||
	    (f = fopen("/proc/net/unix", "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long ino;
		char name[128];

		if (sscanf(line, "%*s %*s %*s %*s %*s %*s %lu %127s", &ino,
		        name) != 2 ||
		    strcmp(name, want) != 0)
			continue;
		n++;
		printf("kernel: marker %s: a portd on this host (or someone "
		       "squatting the name) leases it",
		    want);
		print_owner(ino);
	}
	fclose(f);
	return n;
}

/* Nothing listed: does a plain bind fail? 0 free, else the errno. */
static int
probe_bind(unsigned port, bool tcp)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6,
	    .sin6_port = htons((uint16_t)port),
	    .sin6_addr = IN6ADDR_ANY_INIT};
	struct sockaddr_in sin = {
	    .sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int type = tcp ? SOCK_STREAM : SOCK_DGRAM, off = 0, fd, e = 0;

	fd = socket(AF_INET6, type | SOCK_CLOEXEC, 0);
	if (fd != -1 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) == 0) {
		if (bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == -1)
			e = errno;
		close(fd);
		return e;
	}
	if (fd != -1)
		close(fd);
	if ((fd = socket(AF_INET, type | SOCK_CLOEXEC, 0)) == -1)
		return errno;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		e = errno;
	close(fd);
	return e;
}

static void
print_daemon(const char *json, struct portd *h)
{
	json_object *r = json_tokener_parse(json), *l, *v;

	if (r == NULL)
		return;
	if (!json_object_object_get_ex(r, "leased", &v) ||
	    !json_object_get_boolean(v)) {
		printf("portd: not leased by the daemon at %s\n",
		    portd_socket_path(h));
	} else if (json_object_object_get_ex(r, "lease", &l)) {
		json_object *own = json_object_object_get(l, "owner");

		printf("portd: lease %s, uid %lld, pid %lld, state %s, "
		       "name \"%s\", command \"%s\"\n",
		    json_object_get_string(json_object_object_get(l, "id")),
		    (long long)json_object_get_int64(
		        json_object_object_get(own, "uid")),
		    (long long)json_object_get_int64(
		        json_object_object_get(own, "pid")),
		    json_object_get_string(json_object_object_get(l, "state")),
		    json_object_get_string(json_object_object_get(l, "name")),
		    json_object_object_get(r, "command") != NULL
		        ? json_object_get_string(
		              json_object_object_get(r, "command"))
		        : "-");
		if (json_object_object_get_ex(l, "reason", &v))
			printf(
			    "portd: not held: %s\n", json_object_get_string(v));
	}
	json_object_put(r);
}

int
cmd_who(int argc, char **argv)
{
	static const struct option opts[] = {GLOBAL_OPTIONS,
	    {"json", no_argument, NULL, OPT_JSON}, {NULL, 0, NULL, 0}};
	struct portd *h = NULL;
	char *json = NULL, *end, table6[8];
	const char *name;
	bool tcp = true, as_json = false;
	unsigned long port;
	int opt, rc, ex = 0, listed = 0, e;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (global_option(opt, optarg, &ex) < 0)
			return ex;
		if (opt == OPT_JSON)
			as_json = true;
	}
	if (optind + 1 != argc)
		return usage_error("who takes one PORT[/tcp|/udp]");
	errno = 0;
	port = strtoul(argv[optind], &end, 10);
	if (errno != 0 || port < 1 || port > 65535 || end == argv[optind] ||
	    (*end != '\0' && strcmp(end, "/tcp") != 0 &&
	        strcmp(end, "/udp") != 0))
		return usage_error(
		    "'%s' is not PORT, PORT/tcp or PORT/udp", argv[optind]);
	tcp = strcmp(end, "/udp") != 0;
	name = portd_proto_name(tcp ? PORTD_PROTO_TCP : PORTD_PROTO_UDP);
	if ((ex = open_daemon(&h)) != 0)
		return ex;
	rc = portd_who(
	    h, (uint16_t)port, tcp ? PORTD_PROTO_TCP : PORTD_PROTO_UDP, &json);
	if (rc < 0) {
		ex = report(h, rc, "who");
		portd_close(h);
		return ex;
	}
	if (as_json) {
		printf("%s\n", json);
		free(json);
		portd_close(h);
		return 0;
	}
	printf("%lu/%s\n", port, name);
	print_daemon(json, h);
	free(json);
	portd_close(h);
	snprintf(table6, sizeof(table6), "%s6", name);
	listed += scan_table(name, (unsigned)port, tcp);
	listed += scan_table(table6, (unsigned)port, tcp);
	listed += scan_markers((unsigned)port, tcp);
	if (listed == 0) {
		e = probe_bind((unsigned)port, tcp);
		if (e == 0)
			printf("kernel: free (a plain bind succeeds)\n");
		else if (e == EADDRINUSE)
			printf("kernel: bound, but listed nowhere: a bound, "
			       "non-listening socket (as portd holds ports; ss "
			       "and lsof cannot see those)\n");
		else
			printf("kernel: a plain bind fails: %s\n", strerror(e));
	}
	return 0;
}
