/*
 * Test harness: start a real portd on a private socket, talk to it over
 * real sockets. Failures abort the calling Check test (ck_abort).
 */
#ifndef PORTD_HARNESS_H
#define PORTD_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include <check.h>
#include <json-c/json.h>

struct daemon_proc {
	pid_t pid;
	char dir[64];   /* private temporary folder, removed by stop */
	char sock[108]; /* API socket path inside dir */
	char log[160];  /* the daemon's stderr */
};

/* Path of the built portd binary, and of the build's bin folder. */
extern const char *harness_portd_bin;
/* portd with fault injection built in (daemon/fault.h): run it with
 * PORTD_FAULTS or PORTD_FAULTS_FILE in its environment. */
extern const char *harness_portd_faults_bin;
extern const char *harness_bin_dir;

/*
 * Start portd --socket DIR/portd.sock plus the NULL-terminated extra args
 * (may be NULL) and wait until it answers. Extra environment: none; the
 * daemon inherits ours.
 */
void harness_start(struct daemon_proc *d, const char *const *args);
/* Like harness_start without waiting: returns the pid. */
pid_t harness_spawn(struct daemon_proc *d, const char *const *args);
/* Start portd on sock (its folder as XDG_RUNTIME_DIR and XDG_CONFIG_HOME),
 * stderr appended to log, plus args; returns the pid without waiting. */
pid_t harness_spawn_on(
    const char *sock, const char *log, const char *const *args);
/* Start portd again in d's folder and socket (after a stop or a kill),
 * and wait until it answers. */
void harness_restart(struct daemon_proc *d, const char *const *args);
/* Wait up to ms for pid to exit: its wait status, or -1 on timeout. */
int harness_wait_exit(pid_t pid, int ms);
/* Wait up to ms for the socket to accept connections; true if it did. */
bool harness_wait_ready(const char *sock, int ms);
/* SIGTERM, wait, check clean exit status, remove the folder. */
void harness_stop(struct daemon_proc *d);
/* Send sig and wait for the daemon; returns its wait status. */
int harness_kill(struct daemon_proc *d, int sig);
/* Return the daemon's stderr so far (static buffer). */
const char *harness_log(struct daemon_proc *d);

/* A blocking connection to sock; -1 on failure (errno set). */
int harness_connect(const char *sock);
/* Write all of buf. */
void harness_send(int fd, const void *buf, size_t len);
/* Send like harness_send, but stop quietly when the peer hangs up; at most
 * chunk bytes a send() (0: no limit), sleeping pause_us after each. Returns
 * the bytes sent. */
size_t harness_send_upto(
    int fd, const void *buf, size_t len, size_t chunk, unsigned pause_us);
/*
 * Read one reply line (without '\n') within timeout_ms. Returns a malloc'd
 * string, or NULL on EOF or timeout. Any fds that come with it are stored
 * in fds[0..*nfds) when fds is not NULL (else closed).
 */
char *harness_recv_line(int fd, int timeout_ms, int *fds, int *nfds);
/*
 * One recvmsg of at most len bytes into buf before deadline (now_ms()). The
 * fds that come with them go to fds[*nfds..max), *nfds counting them; fds
 * beyond max are closed, and so are control messages other than SCM_RIGHTS
 * skipped, unless strict, where either fails the test. Returns the bytes
 * read, 0 to call again (EINTR), -1 on timeout or end of file.
 */
ssize_t harness_recv_some(int fd, char *buf, size_t len, int64_t deadline,
    int *fds, int *nfds, int max, bool strict);
/* Send a printf-formatted request line ('\n' added), read and parse the
 * reply; aborts the test on EOF, timeout or bad JSON. */
#define harness_call(fd, ...) harness_call_fds((fd), NULL, NULL, __VA_ARGS__)
/* Like harness_call, also receiving fds. */
json_object *harness_call_fds(int fd, int *fds, int *nfds, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reply helpers. */
bool reply_ok(json_object *reply);
const char *reply_error(json_object *reply); /* code, or NULL if ok */
json_object *reply_get(json_object *obj, const char *path); /* "a.b" */
int64_t reply_int(json_object *obj, const char *path);
const char *reply_str(json_object *obj, const char *path);
/* The integer at path ("leases", "counters.x") of a status reply on fd. */
int64_t status_int(int fd, const char *path);
/* Lease id and first port of a lease reply. */
const char *lease_id(json_object *reply);
int lease_port(json_object *reply, int i);
/* The lease with that id in an array of leases (a list reply's "leases"),
 * or NULL. */
json_object *find_lease(json_object *leases, const char *id);

/* A refusal of the codec or the core (proto.h): err must hold code (an
 * enum proto_errcode) and have msg in its message; what names the call
 * in a failure. */
struct proto_error;
void assert_proto_error(
    const char *what, const struct proto_error *err, int code, const char *msg);

/* Real kernel checks. type is SOCK_STREAM or SOCK_DGRAM; family AF_INET
 * (0.0.0.0), AF_INET6 ([::], V6ONLY on). Returns 0 or errno. */
int try_bind(int family, int type, int port, bool reuseaddr);
/* Bind on a specific address ("127.0.0.1", "::1"); 0 or errno. */
int try_bind_addr(const char *addr, int type, int port, bool reuseaddr);
/* Bind and listen, keeping the socket: fd or -errno. */
int bind_listen(const char *addr, int port, bool reuseaddr);

/* Milliseconds on the monotonic clock. */
int64_t now_ms(void);

/* Walk pid's open fds: with each NULL, count them; else count what each
 * returns for the link target of every fd it can read (a negative return
 * stops the walk). -1 when pid has no /proc entry (errno set). */
int harness_proc_fds(
    pid_t pid, int (*each)(const char *target, void *arg), void *arg);
/* Run a Check suite; returns the process exit status. */
int harness_run(Suite *s);

#endif
