package portd

import "fmt"

// Error is a refusal by the daemon (Code is its error code) or a failure
// of the client (Code is one of no_daemon, timeout, protocol, version, io,
// invalid). Program against Code, or errors.Is with the Err* values; the
// message is for humans.
type Error struct {
	Code    string
	Message string
	// Op is the request's op, for the daemon's refusals.
	Op string
	// Err is the underlying error, if any (a system call's).
	Err error
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "portd: " + e.Code
	}
	return "portd: " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's code:
// errors.Is(err, portd.ErrNoPorts).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Code == e.Code
}

func newError(code string, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// Sentinels for errors.Is, one per code.
var (
	ErrBadRequest        = &Error{Code: "bad_request"}
	ErrUnknownOp         = &Error{Code: "unknown_op"}
	ErrRequestTooLarge   = &Error{Code: "request_too_large"}
	ErrNoPorts           = &Error{Code: "no_ports"}
	ErrPortUnavailable   = &Error{Code: "port_unavailable"}
	ErrQuotaExceeded     = &Error{Code: "quota_exceeded"}
	ErrNotFound          = &Error{Code: "not_found"}
	ErrForbidden         = &Error{Code: "forbidden"}
	ErrResourceExhausted = &Error{Code: "resource_exhausted"}
	ErrInternal          = &Error{Code: "internal"}

	// ErrNoDaemon: nothing answers at any socket of the discovery order.
	ErrNoDaemon = &Error{Code: "no_daemon"}
	// ErrTimeout: no reply within the timeout or the context's deadline;
	// the client is closed.
	ErrTimeout = &Error{Code: "timeout"}
	// ErrProtocol: the reply broke the protocol; the client is closed.
	ErrProtocol = &Error{Code: "protocol"}
	// ErrVersion: the daemon does not speak protocol version 1.
	ErrVersion = &Error{Code: "version"}
	// ErrIO: the connection failed or is closed, or the kernel dropped
	// descriptors the daemon sent.
	ErrIO = &Error{Code: "io"}
	// ErrInvalid: a request the client refuses to send.
	ErrInvalid = &Error{Code: "invalid"}
)
