"""The Python client against a real portd: every call, every error class,
fd handoff, lease lifetimes, discovery and auto-start."""

import datetime
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import portd
from conftest import (PORTCTL_BIN, PORTD_BIN, Daemon, clean_env,
                      plain_bind_ok, pool_slice, reuse_bind_listen_ok,
                      wait_until)


def ids(client):
    return {lease.id for lease in client.list()}


# -- hello and the connection ---------------------------------------------

def test_hello_checks_the_version_and_reports_the_daemon(daemon, client):
    assert client.version == portd.PROTOCOL_VERSION == 1
    assert client.server.startswith("portd ")
    assert client.daemon_pid == daemon.proc.pid
    assert client.uid == os.geteuid()
    assert client.source == "explicit"
    assert client.socket_path == daemon.socket
    reply = client.hello()
    assert reply["ok"] is True and reply["version"] == 1


def test_portd_socket_is_used_alone(daemon, monkeypatch):
    monkeypatch.setenv("PORTD_SOCKET", daemon.socket)
    monkeypatch.setenv("PORTD_SYSTEM_SOCKET", "/nonexistent/portd.sock")
    with portd.Client() as c:
        assert c.source == "PORTD_SOCKET"
        assert c.daemon_pid == daemon.proc.pid


def test_client_close_is_idempotent_and_later_calls_fail(daemon):
    c = daemon.client()
    c.close()
    c.close()
    assert c.closed
    with pytest.raises(portd.ConnectionLost) as e:
        c.status()
    assert e.value.code == "io" and e.value.sent is False


# -- lease and its options --------------------------------------------------

def test_lease_defaults(daemon, client):
    with client.lease() as lease:
        lo, hi = daemon.pool
        assert len(lease.ports) == 1 and lease.port == lease.ports[0]
        assert lo <= lease.port <= hi
        assert (lease.proto, lease.family, lease.hold, lease.scope) == (
            "tcp", "dual", "shared", "session")
        assert lease.held is True and lease.sockets == []
        assert lease.owner_uid == os.geteuid()
        assert lease.owner_pid == os.getpid()
        assert isinstance(lease.created, int) and lease.info["id"] == lease.id
        # Held: a plain bind fails, a co-binding server succeeds.
        assert not plain_bind_ok(lease.port)
        assert reuse_bind_listen_ok(lease.port)
        assert lease.id in ids(client)
    assert lease.released
    assert lease.id not in ids(client)
    assert plain_bind_ok(lease.port)


def test_lease_options(daemon, client):
    lease = client.lease(3, contiguous=True, name="py options",
                         ttl=datetime.timedelta(minutes=2), scope="ttl")
    assert lease.ports == tuple(range(lease.port, lease.port + 3))
    assert lease.name == "py options" and lease.scope == "ttl"
    assert lease.ttl == 120
    assert abs(lease.expires - lease.created - 120000) < 2000
    lease.release()

    udp = client.lease(proto="udp")
    assert (udp.proto, udp.hold) == ("udp", "exclusive")
    assert not plain_bind_ok(udp.port, socket.SOCK_DGRAM)
    udp.release()

    both = client.lease(proto="both", family="ipv4")
    assert (both.proto, both.family) == ("both", "ipv4")
    both.release()

    excl = client.lease(hold="exclusive")
    assert not reuse_bind_listen_ok(excl.port)
    excl.release()

    eph = client.lease(strategy="ephemeral")
    assert not daemon.pool[0] <= eph.port <= daemon.pool[1]
    eph.release()


def test_lease_a_specific_port_and_port_unavailable(daemon, client):
    first = client.lease()
    again = client.lease(port=first.port + 50)
    assert again.port == first.port + 50
    with pytest.raises(portd.PortUnavailable) as e:
        client.lease(port=first.port)
    assert e.value.code == "port_unavailable"
    assert isinstance(e.value, portd.Refused)
    assert str(e.value).startswith("port_unavailable: ")
    first.release()
    again.release()


def test_renew_claim_release_release_port(daemon, client):
    lease = client.lease(scope="ttl", ttl=30)
    before = lease.expires
    time.sleep(0.01)
    assert lease.renew(600) is lease
    assert lease.ttl == 600 and lease.expires > before
    assert client.renew(lease.id).id == lease.id  # by id: a new Lease

    assert not plain_bind_ok(lease.port)
    assert lease.claim().held is False
    assert plain_bind_ok(lease.port)  # ours to bind, still leased
    assert lease.claim().held is False  # twice is no error
    assert lease.port in [p for x in client.list() for p in x.ports]
    assert lease.release() == (lease.port,)
    assert lease.release() == ()  # released already by this object

    two = client.lease(2)
    assert client.release_port(two.ports[1]) == two.ports
    with pytest.raises(portd.NotFound):
        client.release(two.id)


def test_list_and_status(daemon, client):
    a = client.lease(name="first")
    b = client.lease(name="second")
    listed = [x for x in client.list() if x.id in (a.id, b.id)]
    assert [x.name for x in listed] == ["first", "second"]
    # A listed lease is a Lease bound to the client: it can be released.
    listed[0].release()
    assert a.id not in ids(client)
    status = client.status()
    assert status["leases"] >= 1 and status["pool"]["lo"] == daemon.pool[0]
    assert status["pid"] == daemon.proc.pid
    assert "counters" in status
    b.release()
    if os.geteuid() == 0:
        assert isinstance(client.list(all=True), list)
    else:
        with pytest.raises(portd.Forbidden):
            client.list(all=True)


def test_who_leases_a_port(client):
    lease = client.lease(name="asked about")
    assert lease.state == "held"
    reply = client.who(lease.port)
    assert reply["leased"] is True and reply["lease"]["id"] == lease.id
    assert reply["lease"]["name"] == "asked about"
    assert client.claim(lease).state == "claimed"
    lease.release()
    assert client.who(lease.port, proto="tcp")["leased"] is False


def test_env_matches_portctl_exec(daemon, client):
    lease = client.lease(3)
    env = lease.env()
    assert env == {"PORT": str(lease.ports[0]),
                   "PORTS": " ".join(map(str, lease.ports)),
                   "PORT_0": str(lease.ports[0]),
                   "PORT_1": str(lease.ports[1]),
                   "PORT_2": str(lease.ports[2])}
    lease.release()
    # portctl exec sets the same names, with the same formatting.
    out = subprocess.run(
        [PORTCTL_BIN, "--socket", daemon.socket, "exec", "-n", "3", "--",
         "env"], capture_output=True, text=True, check=True,
        env=clean_env()).stdout
    theirs = dict(line.split("=", 1) for line in out.splitlines()
                  if line.split("=")[0] in ("PORT", "PORTS")
                  or line.startswith("PORT_"))
    ports = theirs["PORTS"].split()
    mine = {"PORT": ports[0], "PORTS": " ".join(ports)}
    mine.update(("PORT_%d" % i, p) for i, p in enumerate(ports))
    assert theirs == mine
    proc = subprocess.run([sys.executable, "-c",
                           "import os; print(os.environ['PORTS'])"],
                          env={**os.environ, **env}, capture_output=True,
                          text=True, check=True)
    assert proc.stdout.split() == [str(p) for p in lease.ports]


# -- fd handoff --------------------------------------------------------------

def test_fd_handoff_tcp_listen_accept(daemon, client):
    lease = client.lease(fd=True)
    assert len(lease.sockets) == 1
    srv = lease.sockets[0]
    assert srv.getsockname()[1] == lease.port
    assert srv.family == socket.AF_INET6 and srv.type == socket.SOCK_STREAM
    assert srv.get_inheritable() is False  # received with MSG_CMSG_CLOEXEC
    srv.listen()
    for addr in ("127.0.0.1", "::1"):
        c = socket.create_connection((addr, lease.port), timeout=5)
        conn, _ = srv.accept()
        c.sendall(b"ping")
        assert conn.recv(4) == b"ping"
        conn.sendall(b"pong")
        assert c.recv(4) == b"pong"
        # The client closes first, so no TIME_WAIT is left on the port.
        c.close()
        assert conn.recv(1) == b""
        conn.close()
    lease.release()
    assert srv.fileno() == -1  # release closed the handed-over socket
    assert plain_bind_ok(lease.port)


def test_fd_handoff_udp_and_both(daemon, client):
    lease = client.lease(2, proto="both", fd=True)
    kinds = sorted((s.getsockname()[1], s.type) for s in lease.sockets)
    assert kinds == sorted((p, t) for p in lease.ports
                           for t in (socket.SOCK_STREAM, socket.SOCK_DGRAM))
    udp = next(s for s in lease.sockets if s.type == socket.SOCK_DGRAM)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.sendto(b"hi", ("127.0.0.1", udp.getsockname()[1]))
        udp.settimeout(5)
        assert udp.recvfrom(16)[0] == b"hi"
    kept = lease.sockets.pop()  # taken out: release leaves it open
    lease.release()
    assert kept.fileno() != -1
    kept.close()


def test_fd_handoff_with_claim_keeps_the_socket(daemon, client):
    lease = client.lease(fd=True, hold="exclusive")
    lease.claim()
    srv = lease.sockets[0]
    srv.listen()
    with socket.create_connection(("127.0.0.1", lease.port), timeout=5):
        srv.accept()[0].close()
    lease.release()


def test_sockets_the_kernel_drops_release_the_lease(daemon, client):
    """At RLIMIT_NOFILE the kernel installs what fits of the descriptors
    portd sends and sets MSG_CTRUNC: the client closes what arrived,
    releases the lease and says why; the connection stays usable."""
    child = run_py("""
        import os, resource, sys
        import portd
        c = portd.Client(sys.argv[1])
        n = len(os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (n + 3, n + 3))
        try:
            c.lease(4, proto="both", fd=True)
            print("no error")
        except portd.Error as e:
            print(e.code, "MSG_CTRUNC" in str(e), len(c.list()),
                  len(os.listdir("/proc/self/fd")) - n)
    """, args=[daemon.socket], env=clean_env())
    out, _ = child.communicate(timeout=30)
    child.stdin.close()
    # io, the reason named, no lease left, no descriptor leaked.
    assert out.split() == ["io", "True", "0", "0"], out
    assert client.list() == []


# -- lifetimes ----------------------------------------------------------------

def test_session_lease_ends_when_its_client_closes(daemon, client):
    other = daemon.client()
    lease = other.lease()
    assert lease.scope == "session"
    assert lease.id in ids(client)
    assert not plain_bind_ok(lease.port)
    other.close()
    wait_until(lambda: lease.id not in ids(client), what="session end")
    assert plain_bind_ok(lease.port)
    # Leaving the block after the client closed is no error.
    with daemon.client() as c:
        ended = c.lease()
    with ended:
        pass
    assert ended.released


def test_process_and_ttl_leases_outlive_the_client(daemon, client):
    with daemon.client() as c:
        proc = c.lease(scope="process")
        ttl = c.lease(scope="ttl", ttl=60)
    assert {proc.id, ttl.id} <= ids(client)
    assert client.release(proc.id) and client.release(ttl.id)


def run_py(code, args=(), **kw):
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)]
                            + list(args), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, **kw)


def test_pick_unused_port_is_reclaimed_when_its_process_exits(daemon,
                                                              client):
    child = run_py("""
        import sys
        import portd as portpicker
        ports = [portpicker.pick_unused_port() for _ in range(3)]
        portpicker.return_port(ports.pop())
        print(*ports, flush=True)
        sys.stdin.read()
    """, env=clean_env(PORTD_SOCKET=daemon.socket))
    ports = [int(p) for p in child.stdout.readline().split()]
    assert len(set(ports)) == 2
    mine = [x for x in client.list() if x.owner_pid == child.pid]
    assert sorted(p for x in mine for p in x.ports) == sorted(ports)
    for lease in mine:
        assert (lease.proto, lease.scope, lease.held, lease.name) == (
            "both", "process", False, "pick_unused_port")
    for p in ports:  # claimed: free to bind, for TCP and UDP
        assert plain_bind_ok(p) and plain_bind_ok(p, socket.SOCK_DGRAM)
        assert daemon.pool[0] <= p <= daemon.pool[1]
    child.kill()
    child.wait()
    child.stdout.close()
    child.stdin.close()
    wait_until(lambda: not any(x.owner_pid == child.pid
                               for x in client.list()), what="reclaim")


def test_pick_unused_port_and_return_port(daemon, client, monkeypatch):
    monkeypatch.setenv("PORTD_SOCKET", daemon.socket)
    p = portd.pick_unused_port()
    q = portd.PickUnusedPort()
    assert p != q
    leases = {x.ports[0]: x for x in client.list()}
    assert leases[p].owner_pid == os.getpid() and not leases[p].held
    assert portd.is_port_free(p)
    portd.return_port(p)
    assert p not in {x.ports[0] for x in client.list()}
    # A port this process did not pick is left alone.
    other = client.lease()
    portd.ReturnPort(other.port)
    assert other.id in ids(client)
    assert not portd.is_port_free(other.port)  # held by portd
    other.release()
    portd.return_port(q)
    assert portd.NoFreePortFoundError is portd.NoPorts


def test_module_lease_defaults_to_process_scope(daemon, client, monkeypatch):
    monkeypatch.setenv("PORTD_SOCKET", daemon.socket)
    with portd.lease(proto="udp") as lease:
        assert lease.scope == "process" and lease.proto == "udp"
        assert lease.client.socket_path == daemon.socket
        lease.renew(30)
        assert lease.ttl == 30
        assert lease.id in ids(client)
    assert lease.id not in ids(client)
    # With an explicit socket it has a connection of its own.
    own = portd.lease(socket=daemon.socket, scope="session")
    assert own.client is not portd.lease(socket=daemon.socket).client
    assert own.id in ids(client)
    own.release()
    assert own.client.closed


def test_a_client_belongs_to_its_process(daemon, client, monkeypatch):
    monkeypatch.setenv("PORTD_SOCKET", daemon.socket)
    parent_port = portd.pick_unused_port()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's client refuses, the module works
        code = 1
        try:
            try:
                client.status()
            except portd.Error as e:
                if e.code == "invalid":
                    p = portd.pick_unused_port()
                    os.write(w, b"%d" % p)
                    code = 0
        finally:
            os._exit(code)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    child_port = int(os.read(r, 16) or 0)
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child_port and child_port != parent_port
    wait_until(lambda: child_port not in
               {x.ports[0] for x in client.list()}, what="child reclaim")
    assert parent_port in {x.ports[0] for x in client.list()}
    portd.return_port(parent_port)


def run_threads(work, catch, n=4):
    """Run work() in n threads at once and wait for them all; returns the
    exceptions of type catch that they raised."""
    errors = []

    def guarded():
        try:
            work()
        except catch as e:  # pragma: no cover - reported by the caller
            errors.append(e)
    threads = [threading.Thread(target=guarded) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_threads_share_a_client(daemon, client):
    got = []

    def work():
        for _ in range(10):
            got.append(client.lease().port)
    errors = run_threads(work, Exception)
    assert not errors and len(set(got)) == 40
    for lease in client.list():
        lease.release()


# -- every error class --------------------------------------------------------

def test_bad_request(client):
    for kw in ({"hold": "shared", "proto": "udp"}, {"count": 0},
               {"name": "x" * 129}, {"ttl": 1.5}, {"family": "ipv5"}):
        with pytest.raises(portd.BadRequest) as e:
            client.lease(**kw)
        assert e.value.code == "bad_request" and e.value.message
    with pytest.raises(portd.BadRequest) as e:
        client.call("frobnicate")
    assert e.value.code == "unknown_op"
    with pytest.raises(ValueError):
        client.lease(ttl=datetime.timedelta(seconds=1.5))
    assert client.status()  # the connection is fine afterwards


def test_not_found(client):
    with pytest.raises(portd.NotFound) as e:
        client.release("L0000000000000000")
    assert e.value.code == "not_found"
    with pytest.raises(portd.NotFound):
        client.renew("L0000000000000000", 10)
    with pytest.raises(portd.NotFound):
        client.claim("L0000000000000000")
    with pytest.raises(portd.NotFound):
        client.release_port(1)
    dead = subprocess.Popen(["true"])
    dead.wait()
    with pytest.raises(portd.NotFound):
        client.lease(scope="process", pid=dead.pid)


def test_no_ports_and_quota_exceeded():
    lo, _ = pool_slice(1)
    d = Daemon((lo, lo + 1), "--quota", "3")
    try:
        with d.client() as c:
            with pytest.raises(portd.NoPorts) as e:
                c.lease(3)
            assert e.value.code == "no_ports"
            assert isinstance(e.value, portd.NoFreePortFoundError)
            held = c.lease(2)
            with pytest.raises(portd.NoPorts):
                c.lease()
            with pytest.raises(portd.QuotaExceeded) as e:
                c.lease(2, strategy="ephemeral")
            assert e.value.code == "quota_exceeded"
            held.release()
    finally:
        d.stop()


def test_resource_exhausted():
    d = Daemon(pool_slice(1), "--max-connections-per-uid", "1")
    try:
        first = []

        def connect():  # once portd has seen its start-up probe close
            try:
                first.append(d.client())
            except portd.ResourceExhausted:
                return False
            return True
        wait_until(connect, what="the first connection")
        first = first[0]
        with pytest.raises(portd.ResourceExhausted) as e:
            d.client()
        assert e.value.code == "resource_exhausted"
        first.close()
    finally:
        d.stop()


AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as 65534")
def test_forbidden_for_another_uid():
    d = Daemon(pool_slice(1), mode="0666")
    try:
        with d.client() as c:
            lease = c.lease(scope="ttl", ttl=60)
            code = """
                import portd, sys
                c = portd.Client(sys.argv[1])
                codes = []
                for call in (lambda: c.release(sys.argv[2]),
                             lambda: c.claim(sys.argv[2]),
                             lambda: c.list(all=True),
                             lambda: c.lease(scope="process",
                                             pid=int(sys.argv[3]))):
                    try:
                        call()
                        codes.append("ok")
                    except portd.Forbidden as e:
                        codes.append(e.code)
                print(" ".join(codes))
            """
            out = subprocess.run(
                AS_NOBODY + [sys.executable, "-c", textwrap.dedent(code),
                             d.socket, lease.id, str(os.getpid())],
                capture_output=True, text=True, env=clean_env())
            assert out.returncode == 0, out.stderr
            assert out.stdout.split() == ["forbidden"] * 4
            assert lease.id in ids(c)  # untouched
            lease.release()
    finally:
        d.stop()


def test_daemon_unavailable_explicit_and_portd_socket(tmp_path, monkeypatch):
    missing = str(tmp_path / "none.sock")
    with pytest.raises(portd.DaemonUnavailable) as e:
        portd.Client(missing)
    assert e.value.code == "no_daemon"
    assert missing in str(e.value) and "portd --socket" in str(e.value)
    monkeypatch.setenv("PORTD_SOCKET", missing)
    with pytest.raises(portd.DaemonUnavailable) as e:
        portd.Client()
    assert "PORTD_SOCKET" in str(e.value)
    assert not os.path.exists(missing)  # never auto-started
    out = subprocess.run([sys.executable, "-c",
                          "import portd; portd.pick_unused_port()"],
                         capture_output=True, text=True,
                         env=clean_env(PORTD_SOCKET=missing))
    assert out.returncode == 1 and out.stdout == ""  # no racy fallback
    assert "DaemonUnavailable" in out.stderr


def test_daemon_unavailable_names_every_path(tmp_path, monkeypatch):
    monkeypatch.delenv("PORTD_SOCKET", raising=False)
    monkeypatch.setenv("PORTD_SYSTEM_SOCKET", str(tmp_path / "sys.sock"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("PORTD_NO_AUTOSTART", "1")
    with pytest.raises(portd.DaemonUnavailable) as e:
        portd.Client()
    msg = str(e.value)
    assert str(tmp_path / "sys.sock") in msg
    assert str(tmp_path / "portd" / "portd.sock") in msg
    assert "PORTD_NO_AUTOSTART=1" in msg and "PORTD_SOCKET" in msg
    monkeypatch.delenv("PORTD_NO_AUTOSTART")
    with pytest.raises(portd.DaemonUnavailable) as e:
        portd.Client(autostart=False)
    assert "autostart=False" in str(e.value)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(portd.DaemonUnavailable) as e:
        portd.Client(daemon=str(tmp_path / "no-such-portd"))
    assert "not installed" in str(e.value)
    assert not (tmp_path / "portd" / "portd.sock").exists()


def test_connection_lost_when_the_daemon_dies():
    d = Daemon(pool_slice(1))
    try:
        c = d.client()
        lease = c.lease()
        d.proc.kill()
        d.proc.wait()
        with pytest.raises(portd.ConnectionLost) as e:
            c.lease()
        assert e.value.code == "io" and c.closed
        with lease:  # leaving the block is no error: it was a session lease
            pass
    finally:
        d.proc.kill()
        d.proc.wait()
        subprocess.run(["rm", "-rf", d.dir])


# -- discovery and auto-start ----------------------------------------------

def test_the_system_socket_comes_before_the_user_one(daemon, tmp_path,
                                                     monkeypatch):
    monkeypatch.delenv("PORTD_SOCKET", raising=False)
    monkeypatch.setenv("PORTD_SYSTEM_SOCKET", daemon.socket)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    with portd.Client() as c:
        assert c.source == "system" and c.daemon_pid == daemon.proc.pid
    assert not (tmp_path / "portd").exists()  # no per-user daemon started


def test_autostart_a_detached_per_user_daemon(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "portd").symlink_to(os.path.abspath(PORTD_BIN))
    monkeypatch.delenv("PORTD_SOCKET", raising=False)
    monkeypatch.delenv("PORTD_NO_AUTOSTART", raising=False)
    monkeypatch.setenv("PORTD_SYSTEM_SOCKET", str(tmp_path / "sys.sock"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ["PATH"]))
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    clients = []
    errors = run_threads(lambda: clients.append(portd.Client()), portd.Error)
    try:
        assert not errors, errors
        pids = {c.daemon_pid for c in clients}
        assert len(pids) == 1  # concurrent starts: one daemon wins
        pid = pids.pop()
        assert "user-started" in {c.source for c in clients}
        sock = run / "portd" / "portd.sock"
        assert all(c.socket_path == str(sock) for c in clients)
        assert (run / "portd" / "portd.log").exists()
        # Detached: not our child, a session of its own, no NOTIFY_SOCKET.
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        assert os.getsid(pid) != os.getsid(0)
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read().split(b"\0")
        assert not any(v.startswith(b"NOTIFY_SOCKET=") for v in env)
        with portd.Client() as again:
            assert again.source == "user" and again.daemon_pid == pid
    finally:
        for c in clients:
            c.close()
        for pid in {c.daemon_pid for c in clients}:
            os.kill(pid, signal.SIGTERM)
            wait_until(lambda: not os.path.exists("/proc/%d" % pid)
                       or open("/proc/%d/stat" % pid).read().split()[2]
                       == "Z", what="daemon exit")
        stop_daemons_under(str(tmp_path))


def stop_daemons_under(path):
    """Stop every portd whose command line names path, until none is left.

    Of four concurrent autostarts one daemon wins and the others exit at
    once, unless one is so slow to start that it takes the lock only after
    the winner was stopped: it would then serve on in a deleted folder.
    """
    quiet = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = []
        for name in os.listdir("/proc"):
            try:
                with open("/proc/%s/cmdline" % name, "rb") as f:
                    argv = f.read().split(b"\0")
            except (OSError, ValueError):
                continue
            if name.isdigit() and argv[0].endswith(b"portd") and \
                    any(path.encode() in a for a in argv):
                found.append(int(name))
        for pid in found:
            os.kill(pid, signal.SIGTERM)
        if found:
            quiet = None
        elif quiet is None:
            quiet = time.monotonic()
        elif time.monotonic() - quiet > 0.5:
            return
        time.sleep(0.05)


# -- the client's side of the protocol, against a scripted peer ---------------

def open_socket_inodes():
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    return inodes


class ScriptedPeer:
    """A Unix socket that answers hello like portd, then runs `script` on
    the next request: for what no real daemon does (another protocol
    version, new fields, fewer sockets than listed, silence)."""

    def __init__(self, tmp_path, hello, script=None):
        self.path = str(tmp_path / "peer.sock")
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(self.path)
        self.srv.listen()
        self.requests = []
        self.thread = threading.Thread(target=self.run,
                                       args=(hello, script), daemon=True)
        self.thread.start()

    def run(self, hello, script):
        conn, _ = self.srv.accept()
        f = conn.makefile("rb")
        import json
        while True:
            line = f.readline()
            if not line:
                break
            req = json.loads(line)
            self.requests.append(req)
            if req["op"] == "hello":
                conn.sendall(json.dumps(dict(hello, id=req["id"]))
                             .encode() + b"\n")
            elif script:
                script(conn, req)
        conn.close()

    def close(self):
        self.srv.close()


HELLO = {"ok": True, "version": 1, "server": {"name": "portd",
         "version": "9"}, "pid": 1, "uid": 0}


def test_another_protocol_version_is_refused(tmp_path):
    peer = ScriptedPeer(tmp_path, dict(HELLO, version=2))
    with pytest.raises(portd.ProtocolError) as e:
        portd.Client(peer.path)
    assert e.value.code == "version" and "version 2" in str(e.value)
    peer.close()


def test_unknown_reply_fields_are_ignored(tmp_path):
    import json

    def lease(conn, req):
        obj = {"id": "Lx", "ports": [1234], "proto": "tcp", "held": True,
               "scope": "session", "future": {"nested": [1, 2]}}
        conn.sendall(json.dumps({"id": req["id"], "ok": True, "lease": obj,
                                 "extra": 1}).encode() + b"\n")
    peer = ScriptedPeer(tmp_path, dict(HELLO, shiny="new"), lease)
    with portd.Client(peer.path) as c:
        got = c.lease()
        assert got.port == 1234 and got.info["future"] == {"nested": [1, 2]}
    peer.close()


def test_fewer_sockets_than_listed_releases_the_lease(tmp_path):
    import json

    def lease(conn, req):
        if req["op"] == "lease":
            r, w = socket.socketpair()
            peer.sent_inode = os.fstat(r.fileno()).st_ino
            body = {"id": req["id"], "ok": True,
                    "lease": {"id": "Lx", "ports": [1234]},
                    "sockets": [{"port": 1234}, {"port": 1234}]}
            socket.send_fds(conn, [json.dumps(body).encode() + b"\n"],
                            [r.fileno()])
            r.close()
            w.close()
        else:
            conn.sendall(json.dumps({"id": req["id"], "ok": True,
                                     "released": [1234]}).encode() + b"\n")
    peer = ScriptedPeer(tmp_path, HELLO, lease)
    with portd.Client(peer.path) as c:
        with pytest.raises(portd.ProtocolError) as e:
            c.lease(fd=True)
        assert "2 sockets but 1 arrived" in str(e.value)
        # The one socket that did arrive was closed, not leaked.
        assert peer.sent_inode not in open_socket_inodes()
    assert [r["op"] for r in peer.requests] == ["hello", "lease", "release"]
    peer.close()


def test_a_silent_daemon_times_out(tmp_path):
    peer = ScriptedPeer(tmp_path, HELLO, lambda conn, req: None)
    c = portd.Client(peer.path, timeout=0.2)
    with pytest.raises(portd.ConnectionLost) as e:
        c.status()
    assert e.value.code == "timeout" and c.closed
    peer.close()
