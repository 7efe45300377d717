"""Race-free TCP/UDP ports for tests and services, from portd.

portd is a daemon that binds ports and *holds* the bound sockets for as long
as a lease lives, so nothing else can take a port between the moment you
learn its number and the moment your server binds it — the race of
``s.bind(('', 0)); port = s.getsockname()[1]; s.close()``. This package is
its Python client: standard library only, Python 3.9 or later.

Quick start
-----------

    import portd

    with portd.lease() as lease:           # one TCP port, held by portd
        server = http.server.HTTPServer(("", lease.port), Handler)
        ...                                # SO_REUSEADDR servers co-bind

    port = portd.pick_unused_port()        # portpicker's call (see below)

    with portd.Client() as client:         # many calls, one connection
        a = client.lease(2)                # session scope: ends with client
        b = client.lease(fd=True)          # the bound socket itself
        b.sockets[0].listen()

Three ways to hand a port over, safest first:

* fd handoff — ``lease(fd=True)``: the bound sockets come over the Unix
  socket (SCM_RIGHTS) as ``socket.socket`` objects in ``Lease.sockets``;
  call ``listen()`` and ``accept()`` on them. No window at all.
* co-bind — the default TCP lease has ``hold="shared"``: a server that sets
  ``SO_REUSEADDR`` (http.server, socketserver with allow_reuse_address,
  asyncio, aiohttp, Go, Node, nginx...) binds and listens on ``lease.port``
  while portd still holds it. No window at all.
* claim — ``lease.claim()``: portd closes its sockets, the ports stay
  reserved for you (no other portd client is given them; outside the
  kernel's ephemeral range, so no autobind takes them), and you bind right
  after. For servers without ``SO_REUSEADDR``, and for UDP.

When does a lease end?
----------------------

At the first of: ``release()`` (or the end of its ``with`` block); its TTL
(scope "ttl", 300 s by default, ``renew()`` to extend); the end of the
connection it was made on (scope "session"); the exit of the owning process
(scope "process"). ``Client.lease()`` defaults to **session**: the lease
lives as long as that Client's connection — close the client and its session
leases end. ``portd.lease()`` defaults to **process**: the lease lives until
released or until this process exits.

Finding the daemon
------------------

Every portd client (libportd, portctl, Python, Node, Go) follows one order:

1. an explicit ``socket`` argument: used alone, never auto-started;
2. ``PORTD_SOCKET`` (set and not empty): used alone, never auto-started;
3. the system daemon at ``/run/portd/portd.sock`` (``PORTD_SYSTEM_SOCKET``
   overrides the path), if a daemon accepts a connection there;
4. the per-user daemon at ``$XDG_RUNTIME_DIR/portd/portd.sock`` (when
   XDG_RUNTIME_DIR is absolute), else ``/tmp/portd-$EUID/portd.sock``;
   if nothing answers, ``portd`` (first on PATH, else /usr/local/sbin or
   /usr/sbin) is started there detached, its stderr in ``portd.log`` beside
   the socket, unless ``PORTD_NO_AUTOSTART=1`` or ``autostart=False``.

``Client.source`` tells which step answered. When none does,
``DaemonUnavailable`` names every path tried and what to run.

portpicker
----------

``import portd as portpicker`` works for the common calls:
``pick_unused_port()``, ``return_port()``, ``is_port_free()``,
``NoFreePortFoundError`` (and the legacy ``PickUnusedPort``,
``ReturnPort``, ``IsPortFree``). The port is free for TCP and UDP, comes from
portd's pool and is reserved there until the calling process exits (or
``return_port``): no other portd client is given it. It is not a held
socket — bind it yourself. Unlike portpicker, it never falls back to a racy
pick: without a daemon it raises ``DaemonUnavailable``.

Existing suites need no code change at all if portd serves portpicker's own
protocol: start it with ``--portserver-address @portserver`` and set
``PORTSERVER_ADDRESS=@portserver`` for the tests.

pytest
------

The ``portd.pytest_plugin`` module (loaded automatically when this package is
installed; ``-p portd.pytest_plugin`` otherwise) provides the fixtures
``portd_port`` (an int: one held TCP port, shared hold, for co-binding
servers), ``portd_socket`` (a bound TCP socket by fd handoff, ready for
``listen()``), ``portd_lease`` (a factory taking ``Client.lease``'s
options) and ``portd_client`` (the worker's Client). They are released at
teardown, and because they are session leases of one connection per pytest
process, a crashed or killed test run frees them too. Correct under
``pytest -n N`` (pytest-xdist).

Errors
------

``Error`` (with ``.code`` and ``.message``) is the base of everything raised:
``Refused`` for the daemon's refusals, with ``BadRequest``, ``NoPorts``,
``PortUnavailable``, ``QuotaExceeded``, ``NotFound``, ``Forbidden``,
``ResourceExhausted``; ``DaemonUnavailable`` when no daemon answers;
``ConnectionLost`` when a connection breaks or times out; ``ProtocolError``
for a reply that breaks the protocol or another protocol version.
"""

from ._client import MAX_SOCKETS, PROTOCOL_VERSION, Client, Lease
from ._default import (get_port_from_port_server, is_port_free, lease,
                       pick_unused_port, return_port)
from ._discovery import system_socket_path, user_socket_path
from ._errors import (BadRequest, ConnectionLost, DaemonUnavailable, Error,
                      Forbidden, NoFreePortFoundError, NoPorts, NotFound,
                      PortUnavailable, ProtocolError, QuotaExceeded, Refused,
                      ResourceExhausted)

__version__ = "0.1.0"

# portpicker's legacy names, so `import portd as portpicker` keeps working.
PickUnusedPort = pick_unused_port
ReturnPort = return_port
IsPortFree = is_port_free
GetPortFromPortServer = get_port_from_port_server

__all__ = [
    "lease", "Client", "Lease",
    "pick_unused_port", "return_port", "is_port_free",
    "get_port_from_port_server",
    "Error", "Refused", "BadRequest", "NoPorts", "PortUnavailable",
    "QuotaExceeded", "NotFound", "Forbidden", "ResourceExhausted",
    "DaemonUnavailable", "ConnectionLost", "ProtocolError",
    "NoFreePortFoundError",
    "system_socket_path", "user_socket_path",
    "PROTOCOL_VERSION", "MAX_SOCKETS",
]

# Shown as portd.X in help(), pydoc and tracebacks, where users meet them.
for _obj in (Client, Lease, Error, Refused, BadRequest, NoPorts,
             PortUnavailable, QuotaExceeded, NotFound, Forbidden,
             ResourceExhausted, DaemonUnavailable, ConnectionLost,
             ProtocolError, lease, pick_unused_port, return_port,
             is_port_free, get_port_from_port_server, system_socket_path,
             user_socket_path):
    _obj.__module__ = __name__
del _obj
