"""Finding the daemon, in the order every portd client follows.

1. An explicit socket path (the ``socket`` argument): used alone, never
   auto-started.
2. ``PORTD_SOCKET`` (set and not empty): used alone, never auto-started.
3. The system socket ``/run/portd/portd.sock`` (or ``PORTD_SYSTEM_SOCKET``
   when set), if a daemon accepts a connection there.
4. The per-user socket ``$XDG_RUNTIME_DIR/portd/portd.sock`` (when
   XDG_RUNTIME_DIR is an absolute path), else ``/tmp/portd-$EUID/portd.sock``.
   If nothing answers there and auto-start is allowed (no
   ``PORTD_NO_AUTOSTART=1``, ``autostart=True``), start ``portd`` detached in
   its own session and retry for up to 5 seconds.
"""

import errno
import os
import shutil
import socket
import stat
import subprocess
import sys
import time

from ._errors import DaemonUnavailable

SYSTEM_SOCKET = "/run/portd/portd.sock"
AUTOSTART_WAIT = 5.0
#: Where an installed portd is looked for when it is not on PATH.
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin")

# What belongs to our own service manager, not to the daemon we start.
_DROP_ENV = ("PORTD_SOCKET", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID",
             "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID")

# Run by a fresh interpreter, our child in a new session: it forks the
# daemon and exits at once, so the daemon is nobody's child but init's (no
# zombie, no SIGCHLD, no surprise for the caller's os.wait()). Signal
# dispositions and the mask are reset first: exec keeps ignored signals.
_SPAWN = """\
import os, signal, sys
signal.pthread_sigmask(signal.SIG_SETMASK, [])
for s in signal.valid_signals():
    try:
        signal.signal(s, signal.SIG_DFL)
    except (OSError, ValueError, RuntimeError):
        pass
if os.fork() == 0:
    os.execv(sys.argv[1], sys.argv[1:])
os._exit(0)
"""


def system_socket_path():
    """The system daemon's socket: $PORTD_SYSTEM_SOCKET, else
    /run/portd/portd.sock."""
    return os.environ.get("PORTD_SYSTEM_SOCKET") or SYSTEM_SOCKET


def user_socket_path():
    """The per-user daemon's socket: $XDG_RUNTIME_DIR/portd/portd.sock when
    XDG_RUNTIME_DIR is absolute, else /tmp/portd-$EUID/portd.sock."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg.startswith("/"):
        return os.path.join(xdg, "portd", "portd.sock")
    return "/tmp/portd-%d/portd.sock" % os.geteuid()


def autostart_allowed(autostart=True):
    """False when the caller or PORTD_NO_AUTOSTART=1 forbids auto-start."""
    return bool(autostart) and os.environ.get("PORTD_NO_AUTOSTART") != "1"


def _connect(path, timeout):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def _why(err):
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def find_daemon(daemon=None):
    """The portd to start: `daemon` if given, else the first portd on PATH,
    else an installed one in SBIN_DIRS. None when there is none."""
    if daemon:
        return daemon if os.access(daemon, os.X_OK) else None
    found = shutil.which("portd")
    if found:
        return found
    for d in SBIN_DIRS:
        path = os.path.join(d, "portd")
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _open_log(socket_path):
    """portd.log beside the socket, only in a folder that is ours and closed
    to others (a shared /tmp path could be someone else's trap)."""
    folder = os.path.dirname(socket_path)
    if not folder or folder == "/":
        return None
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        st = os.lstat(folder)
        if (not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid()
                or st.st_mode & 0o022):
            return None
        return os.open(os.path.join(folder, "portd.log"),
                       os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
                       | os.O_CLOEXEC, 0o600)
    except OSError:
        return None


def spawn_daemon(binary, socket_path):
    """Start `binary --user --socket socket_path` detached (new session,
    stdin/stdout on /dev/null, stderr appended to portd.log beside the
    socket when that folder is safe). Raises OSError if it cannot."""
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    argv = [binary, "--user", "--socket", socket_path]
    log = _open_log(socket_path)
    try:
        stderr = log if log is not None else subprocess.DEVNULL
        if sys.executable:
            subprocess.run([sys.executable, "-I", "-S", "-c", _SPAWN] + argv,
                           stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=stderr, env=env,
                           start_new_session=True, check=True, timeout=30)
        else:  # an embedded interpreter: the daemon stays our child
            subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=stderr,
                             env=env, start_new_session=True)
    except subprocess.SubprocessError as e:
        raise OSError(errno.ECHILD, "could not start %s: %s" % (binary, e))
    finally:
        if log is not None:
            os.close(log)


_HINT = ("start one with `portd` (per user) or `systemctl start portd.socket` "
         "(system), or set PORTD_SOCKET to a running daemon's socket")


def _connect_only(path, timeout, source, given, hint):
    """Connect to a socket named by the caller, with no fallback."""
    try:
        return _connect(path, timeout), path, source
    except OSError as e:
        raise DaemonUnavailable(
            "no portd answers at %s (%s): %s; start one with `portd "
            "--socket %s`%s" % (path, given, _why(e), path, hint)) from None


def open_socket(path=None, autostart=True, daemon=None, timeout=5.0):
    """Connect to the daemon in the documented order.

    Returns (socket, path, source), where source says which step answered:
    "explicit", "PORTD_SOCKET", "system", "user" or "user-started".
    Raises DaemonUnavailable naming every path tried.
    """
    if path:
        return _connect_only(path, timeout, "explicit", "the socket given",
                             "")
    env = os.environ.get("PORTD_SOCKET")
    if env:
        return _connect_only(env, timeout, "PORTD_SOCKET",
                             "from PORTD_SOCKET",
                             ", or unset PORTD_SOCKET to use the system or "
                             "per-user daemon")

    tried = []
    system = system_socket_path()
    try:
        return _connect(system, timeout), system, "system"
    except OSError as e:
        tried.append("%s (system): %s" % (system, _why(e)))

    user = user_socket_path()
    try:
        return _connect(user, timeout), user, "user"
    except OSError as e:
        tried.append("%s (per-user): %s" % (user, _why(e)))
        err = e
    if err.errno not in (errno.ENOENT, errno.ECONNREFUSED, errno.EAGAIN):
        raise DaemonUnavailable("no portd answers: %s; %s"
                                % ("; ".join(tried), _HINT))
    if not autostart_allowed(autostart):
        why = ("PORTD_NO_AUTOSTART=1" if autostart else "autostart=False")
        raise DaemonUnavailable(
            "no portd answers: %s; auto-start is off (%s): %s"
            % ("; ".join(tried), why, _HINT))
    binary = find_daemon(daemon)
    if binary is None:
        raise DaemonUnavailable(
            "no portd answers: %s; and none could be started: %s is not "
            "installed (not on PATH, nor in %s)"
            % ("; ".join(tried), daemon or "portd", " or ".join(SBIN_DIRS)))
    try:
        spawn_daemon(binary, user)
    except OSError as e:
        raise DaemonUnavailable("no portd answers: %s; starting %s failed: %s"
                                % ("; ".join(tried), binary, _why(e)))
    # Several clients may start a daemon at once: portd's lock lets one
    # win and the others exit, so just keep connecting.
    deadline = time.monotonic() + AUTOSTART_WAIT
    while True:
        try:
            return _connect(user, timeout), user, "user-started"
        except OSError as e:
            err = e
        if time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    raise DaemonUnavailable(
        "no portd answers: %s; started %s, but it did not answer at %s "
        "within %g s: %s (see portd.log beside the socket)"
        % ("; ".join(tried), binary, user, AUTOSTART_WAIT, _why(err)))
