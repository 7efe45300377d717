"""pytest fixtures for ports from portd.

Loaded automatically when the portd package is installed (entry point
``pytest11``); from a source tree, load it with ``-p portd.pytest_plugin``.

Fixtures:

* ``portd_port`` — an int: one TCP port held by portd for the test (shared
  hold), so a server that sets SO_REUSEADDR (http.server, socketserver with
  allow_reuse_address, asyncio, Go, Node...) binds and listens on it while
  portd still holds it: no window for anybody else.
* ``portd_socket`` — a bound TCP socket (dual-stack IPv6, IPV6_V6ONLY off)
  handed over by portd (fd handoff), ready for ``listen()``.
* ``portd_lease`` — a factory: ``portd_lease(count=1, **options)`` takes
  ``portd.Client.lease``'s options and returns a ``portd.Lease``.
* ``portd_client`` — the session-wide ``portd.Client`` of this pytest
  process (one per xdist worker).

Every lease is a session lease of the process's one connection, named after
the test, and released at the test's teardown. A test that fails, raises or
is interrupted still runs its teardown; a pytest process that is killed
outright closes its connection, and the daemon ends its leases then. Under
``pytest -n N`` each worker has its own connection and the daemon keeps
their ports distinct.

Options: ``--portd-socket PATH`` (else the usual discovery: PORTD_SOCKET,
the system socket, the per-user socket) and ``--portd-no-autostart``.
When no daemon can be reached the fixtures fail the test with the reason —
they never fall back to a racy pick.
"""

import pytest

import portd

__all__ = ["portd_client", "portd_lease", "portd_port", "portd_socket"]


def pytest_addoption(parser):
    group = parser.getgroup("portd", "ports from portd")
    group.addoption("--portd-socket", metavar="PATH", default=None,
                    help="portd API socket (default: PORTD_SOCKET, the "
                    "system socket, else the per-user one)")
    group.addoption("--portd-no-autostart", action="store_true",
                    default=False,
                    help="do not start a per-user portd when none answers")


def _label(nodeid):
    """A lease name from a test id: printable ASCII, at most 128 bytes."""
    name = "".join(c if " " <= c <= "~" else "?" for c in nodeid)
    return name if len(name) <= 128 else "..." + name[-125:]


@pytest.fixture(scope="session")
def portd_client(request):
    """The portd.Client of this pytest process (one per xdist worker). Its
    session leases end when it closes, at the end of the run."""
    opt = request.config.getoption
    try:
        client = portd.Client(opt("portd_socket"),
                              autostart=not opt("portd_no_autostart"))
    except portd.Error as e:
        pytest.fail("portd fixtures need a portd daemon: %s" % e,
                    pytrace=False)
    yield client
    client.close()


@pytest.fixture
def portd_lease(request, portd_client):
    """A factory: portd_lease(count=1, **options) -> portd.Lease, with
    portd.Client.lease's options (proto, family, port, hold, fd, ...).
    Every lease it makes is released at the test's teardown."""
    made = []

    def factory(count=1, **options):
        options.setdefault("name", _label(request.node.nodeid))
        lease = portd_client.lease(count, **options)
        made.append(lease)
        return lease

    yield factory
    errors = []
    for lease in reversed(made):
        try:
            lease.release()
        except portd.NotFound:
            pass  # it ended already (a TTL, or the test released it)
        except portd.Error as e:
            errors.append("%s: %s" % (lease.id, e))
    if errors:
        pytest.fail("releasing portd leases failed: %s" % "; ".join(errors),
                    pytrace=False)


@pytest.fixture
def portd_port(portd_lease):
    """One TCP port (int) held by portd with a shared hold: bind it with
    SO_REUSEADDR (most servers do) and listen; released at teardown."""
    return portd_lease(hold="shared").port


@pytest.fixture
def portd_socket(portd_lease):
    """A bound TCP socket from portd (fd handoff; dual-stack, port in
    getsockname()[1]), ready for listen(); closed and released at
    teardown."""
    return portd_lease(fd=True).sockets[0]
