"""The module-level calls: one shared connection per process, and
portpicker's pick_unused_port() / return_port() on top of it."""

import logging
import os
import socket
import threading

from ._client import Client
from ._errors import ConnectionLost, NoPorts, NotFound, Error

__all__ = ["lease", "pick_unused_port", "return_port", "is_port_free",
           "get_port_from_port_server"]

_log = logging.getLogger("portd")
_lock = threading.RLock()
_client = None          # the process's shared Client, opened on first use
_picked = {}            # port -> lease id, for return_port()


class _Shared:
    """Stands in for the shared Client inside the Leases it makes, so that
    their renew/claim/release reach a live connection even after the
    shared one was reopened (process and ttl leases outlive connections)."""

    def __getattr__(self, name):
        method = getattr(Client, name)

        def forward(*args, **kwargs):
            return _call(lambda c: method(c, *args, **kwargs))
        return forward

    def _current(self):
        return _shared_client()


_SHARED = _Shared()


def _after_fork_in_child():
    # The parent's connection is not ours: our copy would keep its session
    # leases alive and interleave replies. Another thread may have held
    # the lock at fork(), so it is made anew.
    global _lock, _client, _picked
    _lock = threading.RLock()
    c, _client, _picked = _client, None, {}
    if c is not None and c._sock is not None:
        sock, c._sock = c._sock, None
        sock.close()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _shared_client():
    global _client
    with _lock:
        if _client is None or _client.closed:
            _client = Client()
        return _client


def _call(fn):
    """fn(shared client), reconnecting once if the request never reached
    the daemon (for example, it was restarted since the last call)."""
    with _lock:
        try:
            return fn(_shared_client())
        except ConnectionLost as e:
            if e.sent:
                raise
            return fn(_shared_client())


def lease(count=1, proto="tcp", family="dual", port=None, contiguous=False,
          hold=None, ttl=None, scope="process", name=None, fd=False, *,
          pid=None, strategy=None, socket=None):
    """Lease `count` ports; returns a Lease (a context manager that releases
    on exit). The options are Client.lease()'s.

    The default scope here is "process": the lease ends at release(), at the
    end of the ``with`` block, or when this process exits — whichever comes
    first — however the connection fares. Module-level calls share one
    connection per process, opened on first use; a scope="session" lease
    made here lives as long as that connection (normally the process).
    For leases tied to a connection you control, use a Client.

    socket: a daemon socket path, used alone (no discovery, no auto-start);
    the lease then gets a connection of its own, closed at release().
    """
    args = (count, proto, family, port, contiguous, hold, ttl, scope, name,
            fd)
    if socket is not None:
        c = Client(socket)
        try:
            lease = c.lease(*args, pid=pid, strategy=strategy)
        except BaseException:
            c.close()
            raise
        lease._own_client = True
        return lease
    lease = _call(lambda c: c.lease(*args, pid=pid, strategy=strategy))
    lease._client = _SHARED
    return lease


def pick_unused_port(pid=None, portserver_address=None):
    """A port free for TCP and UDP, reserved for you until process `pid`
    (default: this one) exits or you return_port() it — portpicker's call,
    served by portd so that no other portd client is given the port.

    The port comes from portd's pool, outside the kernel's ephemeral range
    (no autobind or outgoing connection lands on it), and is claimed: portd
    does not hold a socket, so bind it yourself, with or without
    SO_REUSEADDR. (portd.lease() keeps the port held until your server
    binds it: hold="shared" for co-binding servers, or fd=True.)

    portserver_address: ask that portserver (portpicker's protocol; "@name"
    is the abstract namespace) instead of portd's API socket.
    Raises NoPorts (alias NoFreePortFoundError) and the other portd errors;
    never falls back to a racy pick.
    """
    if portserver_address:
        port = get_port_from_port_server(portserver_address, pid)
        if not port:
            raise NoPorts("the portserver at %s gave no port"
                          % portserver_address)
        return port
    with _lock:
        def pick(c):
            got = c.lease(proto="both", scope="process", pid=pid,
                          name="pick_unused_port")
            try:
                c.claim(got)
            except BaseException:
                try:
                    c.release(got)
                except Error:
                    pass
                raise
            return got
        got = _call(pick)
        _picked[got.port] = got.id
        return got.port


def return_port(port):
    """Give back a port from pick_unused_port(): portd ends its lease now
    instead of at process exit. A port this process did not pick is left
    alone (logged at INFO, as portpicker does)."""
    with _lock:
        lid = _picked.pop(port, None)
        if lid is None:
            _log.info("Returning a port that wasn't given by "
                      "pick_unused_port: %s", port)
            return
        try:
            _call(lambda c: c.release(lid))
        except NotFound:
            pass


def is_port_free(port):
    """Whether `port` can be bound right now for TCP and UDP, on IPv6 (when
    the host has it) and IPv4. Stricter than portpicker's: it binds without
    SO_REUSEADDR, so a port portd holds counts as busy — and so does one in
    TIME_WAIT."""
    kinds = [(socket.SOCK_STREAM, socket.IPPROTO_TCP),
             (socket.SOCK_DGRAM, socket.IPPROTO_UDP)]
    for kind, proto in kinds:
        for family in (socket.AF_INET6, socket.AF_INET):
            try:
                s = socket.socket(family, kind, proto)
            except OSError:
                continue
            try:
                if family == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind(("", port))
            except OSError:
                return False
            finally:
                s.close()
    return True


def get_port_from_port_server(portserver_address, pid=None):
    """portpicker's portserver protocol: send the pid, read a port. Returns
    the port, or None when the portserver refused (it closes the connection
    with nothing written) or cannot be reached."""
    addr = portserver_address
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(10)
        s.connect(addr)
        s.sendall(b"%d\n" % (os.getpid() if pid is None else pid))
        buf = b""
        while not buf.endswith(b"\n"):
            data = s.recv(64)
            if not data:
                break
            buf += data
    except OSError as e:
        _log.warning("portserver %s: %s", portserver_address, e)
        return None
    finally:
        s.close()
    try:
        port = int(buf.split(b"\n")[0])
    except ValueError:
        return None
    return port if port > 0 else None
