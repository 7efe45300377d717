"""Shared parts of the Python client's tests: a real portd from the build
tree on a private socket.

The suite runs under Debian's pytest, from ctest (tests/python.cmake), which
passes PORTD_BIN (the daemon) and PORTCTL_BIN, and PORTD_TEST_POOL (the port
range this test program may use, "LO-HI")."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)  # client/python, importable from the tree
sys.path.insert(0, SRC)

# The sample suite is run by test_fixtures.py in its own pytest, with -n 4.
collect_ignore = ["sample"]

PORTD_BIN = os.environ.get("PORTD_BIN", "portd")
PORTCTL_BIN = os.environ.get("PORTCTL_BIN", "portctl")
POOL = tuple(int(x) for x in
             os.environ.get("PORTD_TEST_POOL", "31500-31899").split("-"))


def pool_slice(index, size=64):
    """The index-th slice of `size` ports of this program's range."""
    lo = POOL[0] + index * size
    assert lo + size - 1 <= POOL[1], "the test pool is too small"
    return lo, lo + size - 1


def clean_env(**extra):
    """os.environ without anything that would steer discovery elsewhere."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PORTD_SOCKET", "PORTD_SYSTEM_SOCKET",
                        "PORTD_NO_AUTOSTART", "PORTSERVER_ADDRESS",
                        "XDG_RUNTIME_DIR")}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


class Daemon:
    """A real portd on a private socket, stopped (SIGTERM) and checked for a
    clean exit — under the sanitizer build a leak fails the exit code."""

    def __init__(self, pool, *args, mode=None):
        # Open to other uids when asked (setpriv tests): mkdtemp is 0700.
        self.dir = tempfile.mkdtemp(prefix="portd-py.")
        if mode:
            os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "portd.sock")
        self.pool = pool
        self.log = os.path.join(self.dir, "portd.log")
        argv = [PORTD_BIN, "--socket", self.socket,
                "--pool", "%d-%d" % pool] + list(args)
        if mode:
            argv += ["--socket-mode", mode]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log,
                                         env=clean_env())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("portd exited: %s" % self.read_log())
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(self.socket)
                return
            except OSError:
                time.sleep(0.01)
            finally:
                s.close()
        self.stop()
        raise RuntimeError("portd did not start: %s" % self.read_log())

    def read_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def client(self, **kw):
        import portd
        return portd.Client(self.socket, **kw)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        log = self.read_log()
        subprocess.run(["rm", "-rf", self.dir])
        assert rc == 0, "portd exited with %s: %s" % (rc, log)


@pytest.fixture(scope="module")
def daemon():
    """One daemon for a test module, on the module's first pool slice."""
    d = Daemon(pool_slice(0))
    yield d
    d.stop()


@pytest.fixture
def client(daemon):
    c = daemon.client()
    yield c
    c.close()


def wait_until(check, timeout=5.0, what="condition"):
    """Poll check() until true (the daemon notices exits within ms)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.01)


def plain_bind_ok(port, kind=socket.SOCK_STREAM):
    """A bind without SO_REUSEADDR on the dual-stack wildcard: succeeds only
    when nobody holds the port in any way."""
    s = socket.socket(socket.AF_INET6, kind)
    try:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def reuse_bind_listen_ok(port):
    """A co-binding server's bind: SO_REUSEADDR, then listen."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port))
        s.listen()
        return True
    except OSError:
        return False
    finally:
        s.close()


@pytest.fixture(autouse=True)
def fresh_shared_client():
    """Each test starts without the module-level calls' shared connection
    (it would remember the daemon an earlier test's environment named)."""
    import portd._default as shared
    yield
    with shared._lock:
        if shared._client is not None:
            shared._client.close()
        shared._client = None
        shared._picked.clear()
