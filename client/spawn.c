/* libportd: where the per-user daemon lives, and starting it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "shared.h"

#ifndef PORTD_SBINDIR
#define PORTD_SBINDIR "/usr/local/sbin"
#endif

extern char **environ;

int
spawn_socket_path(
    const char *explicit_path, char *buf, size_t size, bool *ret_is_default)
{
	const char *env = getenv("PORTD_SOCKET");
	bool is_default = false;
	int n;

	if (explicit_path != NULL && explicit_path[0] != '\0')
		n = snprintf(buf, size, "%s", explicit_path);
	else if (env != NULL && env[0] != '\0')
		n = snprintf(buf, size, "%s", env);
	else {
		is_default = true;
		n = proto_socket_path(false, buf, size);
	}
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	*ret_is_default = is_default;
	return 0;
}

static bool
is_executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       access(path, X_OK) == 0;
}

/* "portd" in $PATH, else the installed one. */
static int
find_daemon(char *buf, size_t size)
{
	const char *path = getenv("PATH");

	while (path != NULL && *path != '\0') {
		const char *end = strchr(path, ':');
		size_t n = end ? (size_t)(end - path) : strlen(path);
		int k;

		if (n > 0) {
			k = snprintf(buf, size, "%.*s/portd", (int)n, path);
			if (k > 0 && (size_t)k < size && is_executable(buf))
				return 0;
		}
		path = end ? end + 1 : NULL;
	}
	snprintf(buf, size, "%s/portd", PORTD_SBINDIR);
	return is_executable(buf) ? 0 : -ENOENT;
}

/*
 * The log beside the socket, only in a folder that is ours and closed to
 * others (a shared /tmp path could be someone else's trap). -1 if not.
 */
static int
open_log(const char *socket_path)
{
	char dir[PATH_MAX];
	char *slash;
	struct stat st;
	int n;

	n = snprintf(dir, sizeof(dir), "%s", socket_path);
	if (n < 0 || (size_t)n >= sizeof(dir) ||
	    (slash = strrchr(dir, '/')) == NULL || slash == dir)
		return -1;
	*slash = '\0';
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return -1;
	if (lstat(dir, &st) == -1 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 0022) != 0)
		return -1;
	if (strlen(dir) + sizeof("/portd.log") > sizeof(dir))
		return -1;
	strcat(dir, "/portd.log");
	return open(
	    dir, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
}

/* Our environment minus what belongs to our own service manager. */
static char **
daemon_environ(void)
{
	static const char *const drop[] = {
	    "NOTIFY_SOCKET=", "LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=",
	    "WATCHDOG_USEC=", "WATCHDOG_PID=", "PORTD_SOCKET=", NULL};
	size_t n = 0, k = 0;
	char **env;

	while (environ != NULL && environ[n] != NULL)
		n++;
	if ((env = calloc(n + 1, sizeof(*env))) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		bool keep = true;

		for (int j = 0; drop[j] != NULL; j++)
			if (strncmp(environ[i], drop[j], strlen(drop[j])) == 0)
				keep = false;
		if (keep)
			env[k++] = environ[i];
	}
	env[k] = NULL;
	return env;
}

/*
 * In the grandchild after fork: only async-signal-safe calls, since the
 * caller may have threads.
 */
static _Noreturn void
exec_daemon(const char *bin, char *const argv[], char *const envp[],
    int null_fd, int log_fd)
{
	struct sigaction sa = {.sa_handler = SIG_DFL};
	sigset_t none;

	/* The caller's signal mask and ignored signals would be inherited. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL);
	if (dup2(null_fd, 0) == -1 || dup2(null_fd, 1) == -1 ||
	    dup2(log_fd >= 0 ? log_fd : null_fd, 2) == -1)
		_exit(127);
	/* The caller's descriptors without O_CLOEXEC must not leak. */
	if (close_range(3, ~0U, 0) == -1)
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	execve(bin, argv, envp);
	_exit(127);
}

int
spawn_daemon(const char *daemon_path, const char *socket_path)
{
	char bin[PATH_MAX];
	char **envp;
	int null_fd, log_fd, status, rc = 0;
	pid_t pid;

	if (daemon_path != NULL && daemon_path[0] != '\0') {
		if (snprintf(bin, sizeof(bin), "%s", daemon_path) >=
		    (int)sizeof(bin))
			return -ENAMETOOLONG;
		if (!is_executable(bin))
			return -ENOENT;
	} else if ((rc = find_daemon(bin, sizeof(bin))) < 0)
		return rc;

	char *const argv[] = {
	    bin, "--user", "--socket", (char *)socket_path, NULL};

	if ((null_fd = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1)
		return -errno;
	log_fd = open_log(socket_path);
	if ((envp = daemon_environ()) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	/*
	 * Fork twice so the daemon is not our child: no zombie and no
	 * SIGCHLD for the caller, and the daemon outlives us in its own
	 * session.
	 */
	pid = fork();
	if (pid == -1) {
		rc = -errno;
		goto out;
	}
	if (pid == 0) {
		if (setsid() == -1)
			_exit(1);
		pid = fork();
		if (pid == 0)
			exec_daemon(bin, argv, envp, null_fd, log_fd);
		_exit(pid == -1 ? 1 : 0);
	}
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR) {
			status = 0; /* SIGCHLD ignored: reaped already */
			break;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		rc = -ECHILD;
out:
	free(envp);
	close(null_fd);
	if (log_fd >= 0)
		close(log_fd);
	return rc;
}
