"""The connection to portd (Client) and the leases it makes (Lease)."""

import array
import datetime
import json
import os
import socket
import threading

from . import _discovery
from ._errors import ConnectionLost, Error, NotFound, ProtocolError, refusal

__all__ = ["Client", "Lease", "PROTOCOL_VERSION", "MAX_SOCKETS"]

#: The wire protocol version this client speaks (the hello check).
PROTOCOL_VERSION = 1
#: Most sockets one lease hands over (64 ports, TCP and UDP).
MAX_SOCKETS = 128
_MAX_LINE = 1 << 20


def _recv_fds(sock, bufsize, maxfds):
    """socket.recv_fds, with MSG_CMSG_CLOEXEC: the descriptors must not leak
    into a child the program execs meanwhile (the recv_fds of CPython 3.9
    to 3.12 drops its flags argument). Walks every control message and
    returns (data, fds, msg_flags)."""
    fds = array.array("i")
    data, ancdata, flags, _ = sock.recvmsg(
        bufsize, socket.CMSG_SPACE(maxfds * fds.itemsize),
        socket.MSG_CMSG_CLOEXEC)
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    return data, list(fds), flags


def _close_fds(fds):
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _seconds(value, what):
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, datetime.timedelta):
        secs = value.total_seconds()
        if secs != int(secs):
            raise ValueError("%s must be whole seconds, not %s"
                             % (what, value))
        return int(secs)
    return value  # the daemon refuses anything but an integer


def _lease_ref(lease):
    return lease.id if isinstance(lease, Lease) else lease


class Client:
    """One connection to portd, for many calls.

    Client(socket=None, *, timeout=5.0, autostart=True, daemon=None)

    The daemon is found in the documented order (see the package help):
    `socket` if given, else $PORTD_SOCKET, else the system socket when a
    daemon answers there, else the per-user socket, where a per-user portd
    is started when nothing answers (unless autostart=False or
    PORTD_NO_AUTOSTART=1). The constructor checks the protocol version
    (hello) and raises DaemonUnavailable or ProtocolError.

    **Session leases live exactly as long as this connection.** lease()
    defaults to scope="session": closing the client (close(), the end of a
    ``with Client() as c:`` block, garbage collection, or the death of the
    process) ends every session lease made on it, at once. Use
    scope="process" or "ttl" for leases that must outlive the client.

    Attributes: socket_path (the socket used), source (which discovery
    step answered: "explicit", "PORTD_SOCKET", "system", "user",
    "user-started"), version (the protocol version), server (e.g.
    "portd 0.1.0"), daemon_pid, uid (your uid as the daemon sees it),
    timeout (seconds per call).

    A client is thread-safe (calls are serialised) but belongs to the
    process that opened it: after fork() open a new one in the child.
    Every call blocks until its reply or `timeout` seconds; a timeout or a
    broken connection raises ConnectionLost and closes the client.
    """

    def __init__(self, socket=None, *, timeout=5.0, autostart=True,
                 daemon=None):
        self.timeout = timeout
        self._lock = threading.RLock()
        self._buf = bytearray()
        self._next_id = 1
        self._pid = os.getpid()
        self._sock = None
        sock, self.socket_path, self.source = _discovery.open_socket(
            socket, autostart=autostart, daemon=daemon, timeout=timeout)
        self._sock = sock
        self.version = self.server = self.daemon_pid = self.uid = None
        try:
            self.hello()
        except BaseException:
            self.close()
            raise

    # -- the connection ---------------------------------------------------

    @property
    def closed(self):
        """True once the connection is closed (its session leases ended)."""
        return self._sock is None

    def close(self):
        """Close the connection. Every session-scoped lease made on this
        client ends now; process- and ttl-scoped leases stay."""
        with self._lock:
            sock, self._sock = self._sock, None
            if sock is not None:
                sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        sock = getattr(self, "_sock", None)
        if sock is not None:
            sock.close()

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return "<portd.Client %s %s (%s)>" % (self.socket_path, state,
                                              self.source)

    def fileno(self):
        """The connection's descriptor (for select/poll)."""
        if self._sock is None:
            raise ConnectionLost("the client is closed", sent=False)
        return self._sock.fileno()

    def _broken(self, message, code="io", sent=True):
        self.close()
        return ConnectionLost(
            "%s (%s); the connection is closed and its session leases "
            "have ended" % (message, self.socket_path), code, sent)

    def call(self, op, **fields):
        """Send one request and return the reply (a dict; unknown fields
        are kept, never an error). Fields that are None are left out.
        Raises the Refused subclass for the daemon's error code."""
        reply, fds = self._call(op, fields, want_fds=False)
        _close_fds(fds)
        return reply

    def _call(self, op, fields, want_fds):
        if os.getpid() != self._pid:
            raise Error("this Client was opened by process %d; open a new "
                        "one after fork()" % self._pid, "invalid")
        with self._lock:
            if self._sock is None:
                raise ConnectionLost("the client is closed", sent=False)
            rid = self._next_id
            self._next_id += 1
            req = {"op": op, "id": rid}
            req.update((k, v) for k, v in fields.items() if v is not None)
            line = json.dumps(req, separators=(",", ":")).encode() + b"\n"
            try:
                self._sock.settimeout(self.timeout)
                self._sock.sendall(line, socket.MSG_NOSIGNAL)
            except OSError as e:
                # Unix sockets fail a send to a closed peer at once: the
                # daemon never saw this request. It may have said why it
                # closed (a connection limit) in a line still unread.
                refused = self._parting_words()
                if refused is not None:
                    raise refused from None
                raise self._broken("sending to portd failed: %s"
                                   % _discovery._why(e), sent=False) from None
            fds, truncated = [], False
            try:
                while b"\n" not in self._buf:
                    if len(self._buf) > _MAX_LINE:
                        raise self._broken("portd sent a line over %d bytes"
                                           % _MAX_LINE, "protocol")
                    data, got, flags = _recv_fds(self._sock, 65536,
                                                 MAX_SOCKETS + 1)
                    fds.extend(got)
                    truncated |= bool(flags & socket.MSG_CTRUNC)
                    if not data:
                        raise self._broken("portd closed the connection")
                    self._buf += data
            except socket.timeout:
                _close_fds(fds)
                raise self._broken("no reply from portd within %g s"
                                   % self.timeout, "timeout") from None
            except OSError as e:
                _close_fds(fds)
                raise self._broken("reading from portd failed: %s"
                                   % _discovery._why(e)) from None
            except BaseException:
                _close_fds(fds)
                raise
            end = self._buf.index(b"\n")
            raw = bytes(self._buf[:end])
            del self._buf[:end + 1]
            try:
                reply = json.loads(raw)
            except ValueError:
                reply = None
            if not isinstance(reply, dict):
                _close_fds(fds)
                raise self._broken("portd's reply is not a JSON object: %.80r"
                                   % raw, "protocol")
            if reply.get("id") != rid:
                _close_fds(fds)
                err = reply.get("error")
                if (reply.get("id") is None and reply.get("ok") is False
                        and isinstance(err, dict)):
                    # A refusal of the connection itself (a connection
                    # limit): portd closes it after this line.
                    self.close()
                    raise refusal(err.get("code"), err.get("message"))
                raise self._broken("portd answered request %r, not %r"
                                   % (reply.get("id"), rid), "protocol")
            if reply.get("ok") is not True:
                _close_fds(fds)
                err = reply.get("error")
                if not isinstance(err, dict):
                    raise self._broken("portd's error reply has no error "
                                       "object", "protocol")
                raise refusal(err.get("code"), err.get("message"))
            if not want_fds:
                _close_fds(fds)  # nobody asked for these
                fds = []
            elif truncated:
                _close_fds(fds)
                fds = None  # the caller releases the lease and raises
            return reply, fds

    def _parting_words(self):
        """The error line portd sent before closing, if one is unread."""
        try:
            self._sock.setblocking(False)
            while b"\n" not in self._buf:
                data = self._sock.recv(65536)
                if not data:
                    break
                self._buf += data
        except OSError:
            pass
        line = bytes(self._buf).split(b"\n", 1)[0]
        try:
            reply = json.loads(line)
            err = reply["error"]
            if reply.get("ok") is False and reply.get("id") is None:
                self.close()
                return refusal(err.get("code"), err.get("message"))
        except (ValueError, TypeError, KeyError, AttributeError):
            pass
        return None

    # -- the operations ---------------------------------------------------

    def hello(self):
        """Check that the daemon speaks PROTOCOL_VERSION; returns its reply
        and sets version, server, daemon_pid and uid. Raises ProtocolError
        (code "version") when it does not."""
        try:
            reply = self.call("hello", version=PROTOCOL_VERSION)
        except Error as e:
            if e.code in ("bad_request", "unknown_op"):
                self.close()
                raise ProtocolError("portd at %s does not speak protocol "
                                    "version %d: %s" % (self.socket_path,
                                                        PROTOCOL_VERSION, e),
                                    "version") from None
            raise
        if reply.get("version") != PROTOCOL_VERSION:
            self.close()
            raise ProtocolError("portd at %s speaks protocol version %r, not "
                                "%d" % (self.socket_path, reply.get("version"),
                                        PROTOCOL_VERSION), "version")
        self.version = reply["version"]
        server = reply.get("server")
        if isinstance(server, dict):
            server = ("%s %s" % (server.get("name", ""),
                                 server.get("version", ""))).strip()
        self.server = server
        self.daemon_pid = reply.get("pid")
        self.uid = reply.get("uid")
        return reply

    def lease(self, count=1, proto="tcp", family="dual", port=None,
              contiguous=False, hold=None, ttl=None, scope="session",
              name=None, fd=False, *, pid=None, strategy=None):
        """Lease `count` ports; returns a Lease (a context manager that
        releases on exit).

        The default scope is "session": **the lease ends when this client
        closes** (or at release(), or at its TTL if one is given).
        scope="process" ends it when process `pid` (default: yours) exits;
        scope="ttl" after `ttl` seconds (default 300) unless renewed.

        count: 1-64 ports. proto: "tcp", "udp" or "both" (one number free
        for TCP and UDP). family: "dual" (IPv4 and IPv6 wildcards),
        "ipv4", "ipv6". port: a specific port (and the count-1 after it).
        contiguous: ports p, p+1, ... hold: "shared" (the TCP default: a
        server that sets SO_REUSEADDR binds and listens on the port while
        portd holds it) or "exclusive" (nobody binds it until claim()).
        ttl: seconds (int or datetime.timedelta). name: a label shown by
        `portctl list`, at most 128 printable ASCII characters. fd: True
        hands the bound sockets over as socket.socket objects in
        Lease.sockets. strategy: "pool" or "ephemeral" (the kernel picks).

        Raises NoPorts, PortUnavailable, QuotaExceeded, BadRequest,
        Forbidden, NotFound (no such pid), ResourceExhausted.
        """
        fields = {"count": count, "proto": proto, "family": family,
                  "port": port, "hold": hold, "ttl": _seconds(ttl, "ttl"),
                  "scope": scope, "pid": pid, "name": name,
                  "strategy": strategy}
        if contiguous:
            fields["contiguous"] = True
        if fd:
            fields["fd"] = True
        reply, fds = self._call("lease", fields, want_fds=bool(fd))
        obj = reply.get("lease")
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            _close_fds(fds or [])
            raise self._broken("portd's lease reply has no lease object",
                               "protocol")
        if not fd:
            return Lease(self, obj)
        listed = reply.get("sockets")
        want = len(listed) if isinstance(listed, list) else -1
        if fds is None or len(fds) != want:
            _close_fds(fds or [])
            try:
                self.release(obj["id"])
            except Error:
                pass
            if fds is None:
                # The stream itself is intact: the client stays usable.
                raise Error("the kernel dropped sockets portd sent "
                            "(MSG_CTRUNC: out of descriptors? RLIMIT_NOFILE)"
                            "; the lease was released", "io")
            raise ProtocolError("portd listed %d sockets but %d arrived; "
                                "the lease was released" % (want, len(fds)))
        socks = []
        try:
            for f in fds:
                socks.append(socket.socket(fileno=f))
        except OSError:
            for s in socks:
                s.close()
            _close_fds(fds[len(socks):])
            try:
                self.release(obj["id"])
            except Error:
                pass
            raise
        return Lease(self, obj, socks)

    def renew(self, lease, ttl=None):
        """Reset a lease's expiry to now + ttl seconds (default: its own TTL,
        else the daemon's default). Gives a session or process lease a TTL.
        `lease` is a Lease (updated in place and returned) or an id;
        returns the Lease."""
        reply = self.call("renew", lease=_lease_ref(lease),
                          ttl=_seconds(ttl, "ttl"))
        return self._updated(lease, reply)

    def claim(self, lease):
        """Claim a lease: portd closes its own sockets (held becomes False)
        and keeps the ports reserved for you, so you can bind them yourself
        right after, without SO_REUSEADDR. Claiming twice is no error.
        Returns the Lease (a given Lease is updated in place)."""
        return self._updated(lease, self.call("claim",
                                              lease=_lease_ref(lease)))

    def release(self, lease):
        """End a lease (a Lease or an id); returns the tuple of ports it
        had. Raises NotFound if no such lease lives."""
        reply = self.call("release", lease=_lease_ref(lease))
        if isinstance(lease, Lease):
            lease._ended()
        return tuple(reply.get("released") or ())

    def release_port(self, port):
        """End the lease that holds `port`; returns its ports."""
        reply = self.call("release", port=port)
        return tuple(reply.get("released") or ())

    def list(self, all=False):
        """Your leases, oldest first, as Lease objects bound to this client
        (everyone's with all=True, which only root may ask)."""
        reply = self.call("list", all=True if all else None)
        return [Lease(self, o) for o in reply.get("leases") or ()
                if isinstance(o, dict)]

    def who(self, port, proto=None):
        """Who leases `port` (any user may ask; proto "tcp", "udp" or None
        for either): the daemon's reply as a dict with "leased" (bool) and,
        when leased, "lease" (the whole lease for its owner and root, else
        its id, ports, proto, name, owner, state) and "command" (the
        owner's command line, or only its name for other users). Held TCP
        ports are invisible to ss and lsof; this is where to look."""
        return self.call("who", port=port, proto=proto)

    def status(self):
        """The daemon's status, as the dict it sends: version, server, pid,
        uptime, leases, ports, sockets, connections, pool, ipv6, counters."""
        return self.call("status")

    def _updated(self, lease, reply):
        obj = reply.get("lease")
        if not isinstance(obj, dict):
            raise self._broken("portd's reply has no lease object", "protocol")
        if isinstance(lease, Lease):
            lease._update(obj)
            return lease
        return Lease(self, obj)


class Lease:
    """Ports portd holds for you, as the daemon reported them.

    Made by portd.lease() or Client.lease() (also listed by Client.list()).
    A context manager: ``with portd.lease() as l:`` releases on exit.

    Attributes (unknown fields of the daemon's lease object are ignored;
    the whole object is in .info):
        id: the lease id (opaque string).
        ports: tuple of port numbers; port: the first.
        proto: "tcp", "udp" or "both". family: "dual", "ipv4", "ipv6"
            (a dual lease on a host without IPv6 says "ipv4").
        hold: "shared" or "exclusive". scope: "ttl", "session", "process".
        held: True while portd holds the sockets; False once claimed.
        state: "held", "claimed" or "unheld" (a restored lease whose port
            portd could not bind again yet; reason says why), from daemons
            that report it, else None.
        ttl, expires (Unix ms), created (Unix ms), name, owner_uid,
        owner_pid.
        sockets: the bound socket.socket objects when the lease was made
            with fd=True (one per port and protocol; a dual socket is one
            IPv6 socket with IPV6_V6ONLY off), else []. They are yours:
            listen() on a TCP one and accept(). release() closes those
            still in the list; remove one (sockets.pop()) to keep it.
        released: True once this object released the lease.
    """

    # The reply's fields a Lease has as attributes of the same name, in the
    # order they are set after id, ports and port.
    _FIELDS = ("proto", "family", "ipv6", "hold", "scope", "held", "state",
               "reason", "ttl", "expires", "created", "name")

    def __init__(self, client, info, sockets=()):
        self._client = client
        self._own_client = False  # portd.lease(socket=...): closed with it
        self.sockets = list(sockets)
        self.released = False
        self._update(info)

    def _update(self, info):
        self.info = info
        self.id = info.get("id")
        self.ports = tuple(info.get("ports") or ())
        self.port = self.ports[0] if self.ports else None
        for field in self._FIELDS:
            setattr(self, field, info.get(field))
        owner = info.get("owner") if isinstance(info.get("owner"), dict) \
            else {}
        self.owner_uid = owner.get("uid")
        self.owner_pid = owner.get("pid")

    @property
    def client(self):
        """The Client renew/claim/release use: the one the lease was made on,
        or for portd.lease() the process's shared one."""
        c = self._client
        return c._current() if hasattr(c, "_current") else c

    def renew(self, ttl=None):
        """Extend the lease to now + ttl seconds (default: its own TTL);
        returns self, updated."""
        return self._client.renew(self, ttl)

    def claim(self):
        """portd closes its sockets and keeps the ports reserved; bind them
        yourself now (without SO_REUSEADDR if you like). Returns self, with
        held False. Sockets handed over with fd=True stay open and yours."""
        return self._client.claim(self)

    def release(self):
        """End the lease and close the sockets still in .sockets. Returns
        the ports released; () if this object released it already."""
        if self.released:
            return ()
        return self._client.release(self)

    def _ended(self):
        self.released = True
        socks, self.sockets = self.sockets, []
        for s in socks:
            s.close()
        if self._own_client:
            self._client.close()

    def env(self):
        """The variables `portctl exec` sets for the ports: PORT (the first),
        PORTS (space-separated) and PORT_0, PORT_1, ... as a new dict of
        strings. For a child: subprocess.run(cmd, env={**os.environ,
        **lease.env()})."""
        env = {"PORT": str(self.port), "PORTS": " ".join(map(str, self.ports))}
        for i, p in enumerate(self.ports):
            env["PORT_%d" % i] = str(p)
        return env

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.released:
            return
        try:
            self.release()
        except NotFound:
            self._ended()  # it ended already (TTL, its process)
        except ConnectionLost:
            if self.scope != "session":
                raise
            self._ended()  # a session lease ended with its connection

    def __repr__(self):
        state = "released" if self.released else (
            "held" if self.held else "claimed")
        return "<portd.Lease %s ports=%s %s %s %s>" % (
            self.id, list(self.ports), self.proto, self.scope, state)
