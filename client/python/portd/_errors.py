"""The exceptions portd raises."""

__all__ = [
    "Error",
    "Refused",
    "BadRequest",
    "NoPorts",
    "PortUnavailable",
    "QuotaExceeded",
    "NotFound",
    "Forbidden",
    "ResourceExhausted",
    "DaemonUnavailable",
    "ConnectionLost",
    "ProtocolError",
    "NoFreePortFoundError",
]


class Error(Exception):
    """Base class of every exception this package raises.

    Attributes:
        code: the daemon's error code for its refusals ("no_ports",
            "not_found", ...), or one of the local codes "no_daemon",
            "io", "timeout", "protocol", "version". Program against it:
            the message is for humans and may change.
        message: the human-readable text (the daemon's, for refusals).
    """

    code = "error"

    def __init__(self, message, code=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self):
        return self.message

    def __repr__(self):
        return "%s(%r, code=%r)" % (type(self).__name__, self.message,
                                    self.code)


class Refused(Error):
    """The daemon refused the request; .code is its error code.

    The codes without a subclass of their own ("internal") raise this
    class itself. str() gives "code: message".
    """

    def __str__(self):
        return "%s: %s" % (self.code, self.message)


class BadRequest(Refused):
    """bad_request, unknown_op or request_too_large: an argument the daemon
    does not accept (a wrong type, out of range, a bad combination such as
    hold="shared" with proto="udp", a TTL above the daemon's maximum)."""

    code = "bad_request"


class NoPorts(Refused):
    """no_ports: the pool (or the kernel, for strategy "ephemeral") has no
    free port that fits the request."""

    code = "no_ports"


class PortUnavailable(Refused):
    """port_unavailable: a requested port is leased, in use by another
    program, privileged, or needs IPv6 the host lacks."""

    code = "port_unavailable"


class QuotaExceeded(Refused):
    """quota_exceeded: the lease would take your uid past its port quota
    (1024 ports by default)."""

    code = "quota_exceeded"


class NotFound(Refused):
    """not_found: no such lease (id or port) — it may have ended already —
    or no such live process for scope "process"."""

    code = "not_found"


class Forbidden(Refused):
    """forbidden: the lease or the named pid belongs to another uid, or a
    non-root caller asked list(all=True)."""

    code = "forbidden"


class ResourceExhausted(Refused):
    """resource_exhausted: a daemon-wide limit (connections, leases,
    descriptors, memory, unread socket replies)."""

    code = "resource_exhausted"


class DaemonUnavailable(Error):
    """No portd answers. The message names every socket path tried, why each
    failed, and what to run next (start portd, point PORTD_SOCKET at a
    running daemon, or allow auto-start)."""

    code = "no_daemon"


class ConnectionLost(Error):
    """The connection broke during a call, or no reply came within the
    client's timeout (.code "timeout"; else "io"). The client is closed
    afterwards, and the session leases made on it have ended."""

    code = "io"

    def __init__(self, message, code=None, sent=True):
        super().__init__(message, code)
        # False when the request never reached the daemon (safe to retry).
        self.sent = sent


class ProtocolError(Error):
    """The daemon's reply broke the protocol (.code "protocol"), or the
    daemon does not speak this client's protocol version (.code
    "version")."""

    code = "protocol"


#: portpicker's name for "no port could be found": the same class as NoPorts,
#: so code written for portpicker catches it unchanged.
NoFreePortFoundError = NoPorts

_BY_CODE = {
    "bad_request": BadRequest,
    "unknown_op": BadRequest,
    "request_too_large": BadRequest,
    "no_ports": NoPorts,
    "port_unavailable": PortUnavailable,
    "quota_exceeded": QuotaExceeded,
    "not_found": NotFound,
    "forbidden": Forbidden,
    "resource_exhausted": ResourceExhausted,
}


def refusal(code, message):
    """The exception for a daemon error reply with this code."""
    if not isinstance(code, str) or not code:
        code = "internal"
    if not isinstance(message, str):
        message = "(no message)"
    return _BY_CODE.get(code, Refused)(message, code)
