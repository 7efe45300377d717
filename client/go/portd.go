// Package portd is a client of the portd daemon, which binds TCP and UDP
// ports and holds the sockets as leases, so that tests and services never
// race for a port. It speaks the daemon's JSON-lines protocol (version 1)
// over its Unix socket, with the standard library only.
//
// A Client is safe for concurrent use; its requests go one at a time.
package portd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Client is one connection to a daemon. Session-scoped leases end when it
// is closed.
type Client struct {
	mu      sync.Mutex
	conn    *net.UnixConn
	path    string
	source  string
	timeout time.Duration
	nextID  int64
	buf     []byte
	closed  error

	// From hello.
	Server    ServerInfo
	DaemonPID int
	UID       int
}

// ServerInfo names the daemon's program and version.
type ServerInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Dial connects to a daemon along the discovery order (see SocketPaths),
// auto-starting the per-user one when allowed, and checks the protocol
// version with hello. opts may be nil.
func Dial(ctx context.Context, opts *Options) (*Client, error) {
	if opts == nil {
		opts = &Options{}
	}
	conn, path, source, err := discover(ctx, opts)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, path: path, source: source, timeout: opts.Timeout, nextID: 1}
	if c.timeout == 0 {
		c.timeout = defaultTimeout
	}
	if err := c.hello(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// SocketPath is the socket the client is connected to.
func (c *Client) SocketPath() string { return c.path }

// Source says which discovery step answered: explicit, PORTD_SOCKET, system,
// user, or user-started (the per-user daemon this client started).
func (c *Client) Source() string { return c.source }

// Close closes the connection; its session-scoped leases end.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail(newError("io", nil, "client closed"))
	return nil
}

// fail closes the connection for good; every later call gets err.
func (c *Client) fail(err *Error) *Error {
	if c.closed == nil {
		c.closed = err
		c.conn.Close()
	}
	return err
}

type envelope struct {
	ID    json.RawMessage `json:"id"`
	OK    *bool           `json:"ok"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// errTruncated: the kernel dropped descriptors of a reply (MSG_CTRUNC).
var errTruncated = newError("io", nil, "the kernel dropped descriptors portd sent (MSG_CTRUNC)")

// oobSpace holds the most descriptors one reply can carry (64 ports, TCP
// and UDP); a variable so that a test can make it too small.
var oobSpace = syscall.CmsgSpace(128 * 4)

// do sends one request and decodes the reply into out (may be nil); the
// descriptors that came with the reply are returned, in order.
func (c *Client) do(ctx context.Context, op string, args map[string]any, out any) ([]int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed != nil {
		return nil, c.closed
	}
	id := c.nextID
	c.nextID++
	req := map[string]any{}
	for k, v := range args {
		req[k] = v
	}
	req["op"] = op
	req["id"] = id
	line, err := json.Marshal(req)
	if err != nil {
		return nil, newError("invalid", err, "%s: %v", op, err)
	}
	line = append(line, '\n')

	deadline, hasDeadline := ctx.Deadline()
	if c.timeout > 0 {
		if t := time.Now().Add(c.timeout); !hasDeadline || t.Before(deadline) {
			deadline, hasDeadline = t, true
		}
	}
	if hasDeadline {
		_ = c.conn.SetDeadline(deadline)
	} else {
		_ = c.conn.SetDeadline(time.Time{})
	}
	// Cancelling the context interrupts the read or write.
	if ctx.Done() != nil {
		stop, exited := make(chan struct{}), make(chan struct{})
		// Wait for it, so that it cannot touch the deadline of the next
		// request.
		defer func() { close(stop); <-exited }()
		go func() {
			defer close(exited)
			select {
			case <-ctx.Done():
				_ = c.conn.SetDeadline(time.Unix(1, 0))
			case <-stop:
			}
		}()
	}
	ioErr := func(err error) error {
		if ctx.Err() != nil {
			return c.fail(newError("timeout", ctx.Err(), "'%s' to portd at %s: %v", op, c.path, ctx.Err()))
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return c.fail(newError("timeout", err, "no reply to '%s' from portd at %s within %v",
				op, c.path, c.timeout))
		}
		return c.fail(newError("io", err, "connection to portd at %s: %v", c.path, err))
	}
	if _, err := c.conn.Write(line); err != nil {
		return nil, ioErr(err)
	}
	reply, files, err := c.readLine()
	if err == errTruncated {
		// The reply is whole, its descriptors are not: decode it for
		// the caller to clean up after, and fail the call.
		if out != nil {
			_ = json.Unmarshal(reply, out)
		}
		return nil, err
	}
	if err != nil {
		if pe, ok := err.(*Error); ok {
			return nil, c.fail(pe)
		}
		return nil, ioErr(err)
	}
	var env envelope
	if err := json.Unmarshal(reply, &env); err != nil || env.OK == nil ||
		!bytes.Equal(env.ID, []byte(fmt.Sprint(id))) {
		closeFiles(files)
		return nil, c.fail(newError("protocol", err, "bad reply to '%s': %.200s", op, reply))
	}
	if !*env.OK {
		closeFiles(files)
		code, msg := "protocol", fmt.Sprintf("'%s' failed", op)
		if env.Error != nil && env.Error.Code != "" {
			code, msg = env.Error.Code, env.Error.Message
		}
		return nil, &Error{Code: code, Message: msg, Op: op}
	}
	if out != nil {
		if err := json.Unmarshal(reply, out); err != nil {
			closeFiles(files)
			return nil, newError("protocol", err, "bad reply to '%s': %v", op, err)
		}
	}
	return files, nil
}

func closeFiles(fds []int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}

// readLine reads one reply line with recvmsg, keeping the descriptors
// that arrive with it. More bytes than one line are a protocol error:
// requests go one at a time.
func (c *Client) readLine() ([]byte, []int, error) {
	rc, err := c.conn.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	var files []int
	fail := func(e error) ([]byte, []int, error) {
		closeFiles(files)
		return nil, nil, e
	}
	buf := make([]byte, 64<<10)
	oob := make([]byte, oobSpace)
	c.buf = c.buf[:0]
	truncated := false
	for {
		var n, oobn, flags int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			for {
				n, oobn, flags, _, rerr = syscall.Recvmsg(int(fd), buf, oob, syscall.MSG_CMSG_CLOEXEC)
				if rerr != syscall.EINTR {
					return rerr != syscall.EAGAIN
				}
			}
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			return fail(err)
		}
		if oobn > 0 {
			got, perr := parseRights(oob[:oobn])
			files = append(files, got...)
			if perr != nil {
				return fail(newError("protocol", perr, "bad control message from portd: %v", perr))
			}
		}
		if flags&syscall.MSG_CTRUNC != 0 {
			// The kernel dropped descriptors that did not fit: the reply
			// cannot be matched to its sockets. Read the rest of the line
			// all the same, so that the connection stays in step and the
			// caller can end the lease it names.
			truncated = true
		}
		if n == 0 {
			return fail(newError("io", nil, "portd at %s closed the connection", c.path))
		}
		c.buf = append(c.buf, buf[:n]...)
		if i := bytes.IndexByte(c.buf, '\n'); i >= 0 {
			if i != len(c.buf)-1 {
				return fail(newError("protocol", nil, "portd sent more than the one reply asked for"))
			}
			if truncated {
				closeFiles(files)
				return c.buf[:i], nil, errTruncated
			}
			return c.buf[:i], files, nil
		}
		if len(c.buf) > maxReplyBytes {
			return fail(newError("protocol", nil, "reply line too long"))
		}
	}
}

// parseRights returns every descriptor in the control messages.
func parseRights(oob []byte) ([]int, error) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var files []int
	for _, m := range msgs {
		if m.Header.Level != syscall.SOL_SOCKET || m.Header.Type != syscall.SCM_RIGHTS {
			continue
		}
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			return files, err
		}
		files = append(files, fds...)
	}
	return files, nil
}

// HelloReply is hello's answer.
type HelloReply struct {
	Version int        `json:"version"`
	Server  ServerInfo `json:"server"`
	PID     int        `json:"pid"`
	UID     int        `json:"uid"`
}

// Hello asks the daemon who it is (Dial already did, and checked the
// version).
func (c *Client) Hello(ctx context.Context) (*HelloReply, error) {
	var r HelloReply
	if _, err := c.do(ctx, "hello", map[string]any{"version": protocolVersion}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func (c *Client) hello(ctx context.Context) error {
	r, err := c.Hello(ctx)
	if err != nil {
		if errors.Is(err, ErrBadRequest) {
			return newError("version", err, "portd at %s does not speak protocol version %d: %s",
				c.path, protocolVersion, err.(*Error).Message)
		}
		return err
	}
	if r.Version != protocolVersion {
		return newError("version", nil, "portd at %s speaks protocol version %d, not %d",
			c.path, r.Version, protocolVersion)
	}
	c.Server, c.DaemonPID, c.UID = r.Server, r.PID, r.UID
	return nil
}
