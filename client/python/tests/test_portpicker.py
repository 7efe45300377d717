"""Google's portpicker (Debian's python3-portpicker), unchanged, against
portd's portserver endpoint: distinct ports, leased while each process
lives, reclaimed when it exits; and every refusal answered as Google's
portserver answers it — the connection closed with nothing written."""

import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid

# Debian's python3-portpicker: required, so a missing one fails the suite
# instead of skipping it. The tests run it in child processes.
import portpicker  # noqa: F401
import pytest

from conftest import (SRC, Daemon, clean_env, plain_bind_ok, pool_slice,
                      wait_until)

REQUEST_TIMEOUT = 1  # seconds portd waits for a request's newline


@pytest.fixture(scope="module")
def endpoint():
    # Abstract: any uid may connect (no file permissions), as the
    # setpriv case needs; the name is unique to this run.
    addr = "@portd-py-%s" % uuid.uuid4().hex
    d = Daemon(pool_slice(2), "--portserver-address", addr,
               "--request-timeout", "%ds" % REQUEST_TIMEOUT, mode="0666")
    d.address = addr
    yield d
    d.stop()


def ask(addr, payload, send=True):
    """Speak the portserver protocol by hand; returns every byte the server
    wrote before it closed the connection."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(REQUEST_TIMEOUT + 5)
    try:
        s.connect("\0" + addr[1:])
        if send:
            s.sendall(payload)
        got = b""
        while True:
            data = s.recv(64)
            if not data:  # closed by the server
                return got
            got += data
    finally:
        s.close()


PICKER = """
    import sys, portpicker
    print(portpicker.pick_unused_port(), flush=True)
    sys.stdin.read()
"""


def test_sixteen_portpicker_processes(endpoint):
    env = clean_env(PORTSERVER_ADDRESS=endpoint.address)
    env.pop("PYTHONPATH")  # the real portpicker, nothing of ours
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(PICKER)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env)
             for _ in range(16)]
    try:
        ports = {p.pid: int(p.stdout.readline()) for p in procs}
        assert len(set(ports.values())) == 16
        lo, hi = endpoint.pool
        assert all(lo <= port <= hi for port in ports.values())
        with endpoint.client() as c:
            leases = {x.owner_pid: x for x in c.list()}
            for pid, port in ports.items():
                lease = leases[pid]  # listed as a lease while it lives
                assert lease.ports == (port,)
                assert (lease.proto, lease.scope, lease.name, lease.held) == (
                    "both", "process", "portserver", False)
            # Claimed at once: each process can bind its port, TCP and UDP.
            for port in ports.values():
                assert plain_bind_ok(port)
                assert plain_bind_ok(port, socket.SOCK_DGRAM)
            for p in procs:
                p.stdin.close()
            for p in procs:
                assert p.wait(10) == 0
                # No "Portserver failed" fallback message.
                assert p.stderr.read() == b""
            wait_until(lambda: not c.list(), what="16 leases reclaimed")
            assert c.status()["leases"] == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            for f in (p.stdin, p.stdout, p.stderr):
                f.close()


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


@pytest.mark.parametrize("case", [
    "pid 1", "pid 0", "dead pid", "garbage", "negative", "21 bytes",
    "31 bytes", "no newline, 21 bytes", "empty line",
])
def test_regression_portserver_refusal_writes_nothing(endpoint, case):
    """portd wrote "0\\n"
    (and answered 21-31 byte requests) where Google's portserver closes
    the connection with nothing written."""
    pid = os.getpid()
    payload = {
        "pid 1": b"1\n",
        "pid 0": b"0\n",
        "dead pid": b"%d\n" % dead_pid(),
        "garbage": b"hello\n",
        "negative": b"-5\n",
        # A valid pid of ours, zero-padded past Google's 20-byte limit.
        "21 bytes": b"%020d\n" % pid,
        "31 bytes": b"%030d\n" % pid,
        "no newline, 21 bytes": b"%021d" % pid,
        "empty line": b"\n",
    }[case]
    with endpoint.client() as c:
        before = len(c.list())
        assert ask(endpoint.address, payload) == b""
        assert len(c.list()) == before  # and no lease made
    # The same pid within the limit is served.
    assert ask(endpoint.address, b"%019d\n" % pid).strip().isdigit()


def test_a_client_that_never_sends_is_closed(endpoint):
    start = time.monotonic()
    assert ask(endpoint.address, b"", send=False) == b""
    assert time.monotonic() - start >= REQUEST_TIMEOUT * 0.9


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as 65534")
def test_another_uids_pid_is_refused(endpoint):
    code = textwrap.dedent("""
        import socket, sys
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect("\\0" + sys.argv[1][1:])
        s.sendall(b"%s\\n" % sys.argv[2].encode())
        got = b""
        while True:
            data = s.recv(64)
            if not data:
                break
            got += data
        print(repr(got))
    """)
    with endpoint.client() as c:
        before = len(c.list(all=True))
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                          "--clear-groups", sys.executable, "-c", code,
                          endpoint.address, str(os.getpid())],
                         capture_output=True, text=True, env=clean_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "b''"
    with endpoint.client() as c:
        assert len(c.list(all=True)) == before


def test_no_port_left_writes_nothing():
    lo, _ = pool_slice(3)
    addr = "@portd-py-%s" % uuid.uuid4().hex
    d = Daemon((lo, lo), "--portserver-address", addr)
    try:
        first = ask(addr, b"%d\n" % os.getpid())
        assert first == b"%d\n" % lo
        assert ask(addr, b"%d\n" % os.getpid()) == b""
    finally:
        d.stop()


def test_what_portpicker_does_on_a_refusal(endpoint):
    """What docs/integrations.md says: portpicker prints a message and
    falls back to a port it picks itself (not from portd)."""
    code = textwrap.dedent("""
        import portpicker
        print(portpicker.pick_unused_port(pid=1))
    """)
    env = clean_env(PORTSERVER_ADDRESS=endpoint.address)
    env.pop("PYTHONPATH")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, env=env)
    assert out.returncode == 0
    assert "Portserver failed to find a port" in out.stderr
    lo, hi = endpoint.pool
    port = int(out.stdout)
    assert not lo <= port <= hi  # the fallback's own pick


def test_portd_module_speaks_the_portserver_protocol(endpoint):
    code = textwrap.dedent("""
        import sys, portd
        print(portd.pick_unused_port(portserver_address=sys.argv[1]))
        try:
            portd.pick_unused_port(pid=1, portserver_address=sys.argv[1])
        except portd.NoFreePortFoundError:
            print("refused")
    """)
    out = subprocess.run([sys.executable, "-c", code, endpoint.address],
                         capture_output=True, text=True,
                         env=clean_env(PYTHONPATH=SRC))
    assert out.returncode == 0, out.stderr
    port, refused = out.stdout.split()
    assert endpoint.pool[0] <= int(port) <= endpoint.pool[1]
    assert refused == "refused"
