package portd

import (
	"context"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// Values of LeaseRequest's string fields.
const (
	TCP  = "tcp"
	UDP  = "udp"
	Both = "both"

	Dual = "dual"
	IPv4 = "ipv4"
	IPv6 = "ipv6"

	Shared    = "shared"
	Exclusive = "exclusive"

	ScopeTTL     = "ttl"
	ScopeSession = "session"
	ScopeProcess = "process"

	StrategyPool      = "pool"
	StrategyEphemeral = "ephemeral"
)

// LeaseRequest is the lease op's fields (docs/protocol.md); the zero
// value of each means the daemon's default, but for Scope, which is
// ScopeSession by default.
type LeaseRequest struct {
	Count      int    // 1-64, default 1
	Proto      string // TCP (default), UDP or Both
	Family     string // Dual (default), IPv4 or IPv6
	Port       int    // a specific port (with Count N: Port ... Port+N-1)
	Contiguous bool
	Hold       string        // Shared (default for TCP) or Exclusive
	TTL        time.Duration // whole seconds; rounded up
	Scope      string        // ScopeSession (default: ends when the Client closes), ScopeTTL, ScopeProcess
	PID        int           // for ScopeProcess: whose exit ends the lease
	Name       string        // a label, at most 128 printable ASCII characters
	FD         bool          // send the bound sockets (Lease.Sockets)
	Strategy   string        // StrategyPool or StrategyEphemeral
}

func seconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

func (r *LeaseRequest) args() map[string]any {
	a := map[string]any{}
	set := func(k string, v any, ok bool) {
		if ok {
			a[k] = v
		}
	}
	set("count", r.Count, r.Count != 0)
	set("proto", r.Proto, r.Proto != "")
	set("family", r.Family, r.Family != "")
	set("port", r.Port, r.Port != 0)
	set("contiguous", true, r.Contiguous)
	set("hold", r.Hold, r.Hold != "")
	set("ttl", seconds(r.TTL), r.TTL > 0)
	// As in the Python client, a Client's lease is tied to it by default.
	if r.Scope == "" {
		a["scope"] = ScopeSession
	} else {
		a["scope"] = r.Scope
	}
	set("pid", r.PID, r.PID != 0)
	set("name", r.Name, r.Name != "")
	set("fd", true, r.FD)
	set("strategy", r.Strategy, r.Strategy != "")
	return a
}

// Owner is a lease's owner as the daemon saw it (SO_PEERCRED).
type Owner struct {
	UID int `json:"uid"`
	PID int `json:"pid"`
}

// Socket is one descriptor of an fd-handoff lease: bound, not listening,
// in blocking mode, close-on-exec. portd keeps its own reference, so
// closing File does not free the port while the lease lives.
type Socket struct {
	Port   int
	Proto  string // TCP or UDP
	Family string
	File   *os.File
}

// Listener listens on the TCP socket and returns it as a net.Listener,
// which then owns it (File becomes nil). Once listening, the socket stays
// so until the lease ends, since portd holds the same socket.
func (s *Socket) Listener() (net.Listener, error) {
	if s.File == nil || s.Proto != TCP {
		return nil, newError("invalid", nil, "Listener: no TCP socket")
	}
	if err := syscall.Listen(int(s.File.Fd()), syscall.SOMAXCONN); err != nil {
		return nil, newError("io", err, "listen on port %d: %v", s.Port, err)
	}
	l, err := net.FileListener(s.File)
	if err != nil {
		return nil, err
	}
	s.File.Close()
	s.File = nil
	return l, nil
}

// PacketConn returns the UDP socket as a net.PacketConn, which then owns
// it (File becomes nil).
func (s *Socket) PacketConn() (net.PacketConn, error) {
	if s.File == nil || s.Proto != UDP {
		return nil, newError("invalid", nil, "PacketConn: no UDP socket")
	}
	pc, err := net.FilePacketConn(s.File)
	if err != nil {
		return nil, err
	}
	s.File.Close()
	s.File = nil
	return pc, nil
}

// Lease is the protocol's lease object, with the client it came from.
type Lease struct {
	ID      string
	Ports   []int
	Proto   string
	Family  string
	IPv6    bool
	Scope   string
	Hold    string
	TTL     time.Duration // 0: none
	Expires time.Time     // zero: never
	Created time.Time
	Name    string
	Owner   Owner
	Held    bool
	// State: held, claimed, or unheld (a restored lease whose port portd
	// could not bind again yet; Reason says why). Empty from older daemons.
	State  string
	Reason string
	// Sockets, for a lease made with FD, in the order the daemon listed them.
	Sockets []Socket

	client *Client
}

// Port is the lease's first port.
func (l *Lease) Port() int { return l.Ports[0] }

type wireLease struct {
	ID      string `json:"id"`
	Ports   []int  `json:"ports"`
	Proto   string `json:"proto"`
	Family  string `json:"family"`
	IPv6    bool   `json:"ipv6"`
	Scope   string `json:"scope"`
	Hold    string `json:"hold"`
	TTL     *int64 `json:"ttl"`
	Expires *int64 `json:"expires"`
	Created int64  `json:"created"`
	Name    string `json:"name"`
	Owner   Owner  `json:"owner"`
	Held    bool   `json:"held"`
	State   string `json:"state"`
	Reason  string `json:"reason"`
}

func (w *wireLease) lease(c *Client) (*Lease, error) {
	if w.ID == "" || len(w.Ports) == 0 {
		return nil, newError("protocol", nil, "reply without a valid lease object")
	}
	for _, p := range w.Ports {
		if p <= 0 || p > 65535 {
			return nil, newError("protocol", nil, "reply with port %d", p)
		}
	}
	l := &Lease{ID: w.ID, Ports: w.Ports, Proto: w.Proto, Family: w.Family, IPv6: w.IPv6,
		Scope: w.Scope, Hold: w.Hold, Created: time.UnixMilli(w.Created), Name: w.Name,
		Owner: w.Owner, Held: w.Held, State: w.State, Reason: w.Reason, client: c}
	if w.TTL != nil {
		l.TTL = time.Duration(*w.TTL) * time.Second
	}
	if w.Expires != nil {
		l.Expires = time.UnixMilli(*w.Expires)
	}
	return l, nil
}

type wireSocket struct {
	Port   int    `json:"port"`
	Proto  string `json:"proto"`
	Family string `json:"family"`
}

// Lease asks for a lease. With req.FD the bound sockets come as
// Lease.Sockets (close them, or take them with Listener/PacketConn).
func (c *Client) Lease(ctx context.Context, req LeaseRequest) (*Lease, error) {
	var r struct {
		Lease   *wireLease    `json:"lease"`
		Sockets *[]wireSocket `json:"sockets"`
	}
	files, err := c.do(ctx, "lease", req.args(), &r)
	if err == errTruncated && r.Lease != nil && r.Lease.ID != "" {
		// Its sockets are lost: the lease is of no use, end it.
		_, _ = c.Release(ctx, r.Lease.ID)
	}
	if err != nil {
		return nil, err
	}
	if r.Lease == nil {
		closeFiles(files)
		return nil, newError("protocol", nil, "lease reply without a lease")
	}
	l, err := r.Lease.lease(c)
	if err != nil {
		closeFiles(files)
		return nil, err
	}
	if !req.FD {
		closeFiles(files) // none were asked for
		return l, nil
	}
	if r.Sockets == nil || len(*r.Sockets) != len(files) {
		closeFiles(files)
		listed := -1
		if r.Sockets != nil {
			listed = len(*r.Sockets)
		}
		// The lease is useless without its sockets: end it.
		_, _ = c.Release(ctx, l.ID)
		return nil, newError("protocol", nil, "lease: %d sockets listed but %d received",
			listed, len(files))
	}
	for i, s := range *r.Sockets {
		f := os.NewFile(uintptr(files[i]), fmt.Sprintf("portd:%s/%d/%s", s.Proto, s.Port, s.Family))
		l.Sockets = append(l.Sockets, Socket{Port: s.Port, Proto: s.Proto, Family: s.Family, File: f})
	}
	return l, nil
}

type leaseReply struct {
	Lease *wireLease `json:"lease"`
}

func (c *Client) leaseOp(ctx context.Context, op string, args map[string]any) (*Lease, error) {
	var r leaseReply
	if _, err := c.do(ctx, op, args, &r); err != nil {
		return nil, err
	}
	if r.Lease == nil {
		return nil, newError("protocol", nil, "%s reply without a lease", op)
	}
	return r.Lease.lease(c)
}

// Renew resets a lease's expiry to now + ttl (0: the lease's TTL, else
// the daemon's default).
func (c *Client) Renew(ctx context.Context, id string, ttl time.Duration) (*Lease, error) {
	args := map[string]any{"lease": id}
	if ttl > 0 {
		args["ttl"] = seconds(ttl)
	}
	return c.leaseOp(ctx, "renew", args)
}

// Claim makes portd close its sockets for the lease (Held false); its
// ports stay leased, for the owner to bind.
func (c *Client) Claim(ctx context.Context, id string) (*Lease, error) {
	return c.leaseOp(ctx, "claim", map[string]any{"lease": id})
}

// Release ends a lease; it returns its ports.
func (c *Client) Release(ctx context.Context, id string) ([]int, error) {
	return c.release(ctx, map[string]any{"lease": id})
}

// ReleasePort ends the lease that has port.
func (c *Client) ReleasePort(ctx context.Context, port int) ([]int, error) {
	return c.release(ctx, map[string]any{"port": port})
}

func (c *Client) release(ctx context.Context, args map[string]any) ([]int, error) {
	var r struct {
		Released []int `json:"released"`
	}
	if _, err := c.do(ctx, "release", args, &r); err != nil {
		return nil, err
	}
	return r.Released, nil
}

// List returns the caller's leases, oldest first (all: every uid's, root
// only).
func (c *Client) List(ctx context.Context, all bool) ([]*Lease, error) {
	var r struct {
		Leases []wireLease `json:"leases"`
	}
	args := map[string]any{}
	if all {
		args["all"] = true
	}
	if _, err := c.do(ctx, "list", args, &r); err != nil {
		return nil, err
	}
	out := make([]*Lease, 0, len(r.Leases))
	for i := range r.Leases {
		l, err := r.Leases[i].lease(c)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// WhoReply says who leases a port.
type WhoReply struct {
	Port   int
	Proto  string
	Leased bool
	// Lease: the whole lease for its owner and root, else its ID, Ports,
	// Proto, Name, Owner, Held and State. Nil when not leased.
	Lease *Lease
	// Command: the owner's command line (its process name for other
	// users), "" if unknown.
	Command string
}

// Who asks who leases port (any user may ask); proto "" means any.
func (c *Client) Who(ctx context.Context, port int, proto string) (*WhoReply, error) {
	var r struct {
		Port    int        `json:"port"`
		Proto   string     `json:"proto"`
		Leased  bool       `json:"leased"`
		Lease   *wireLease `json:"lease"`
		Command *string    `json:"command"`
	}
	args := map[string]any{"port": port}
	if proto != "" {
		args["proto"] = proto
	}
	if _, err := c.do(ctx, "who", args, &r); err != nil {
		return nil, err
	}
	w := &WhoReply{Port: r.Port, Proto: r.Proto, Leased: r.Leased}
	if r.Command != nil {
		w.Command = *r.Command
	}
	if r.Lease != nil {
		l, err := r.Lease.lease(c)
		if err != nil {
			return nil, err
		}
		w.Lease = l
	}
	return w, nil
}

// Status is the daemon's status reply.
type Status struct {
	Version     int        `json:"version"`
	Server      ServerInfo `json:"server"`
	PID         int        `json:"pid"`
	Uptime      int64      `json:"uptime"`
	Leases      int        `json:"leases"`
	Ports       int        `json:"ports"`
	Sockets     int        `json:"sockets"`
	Connections int        `json:"connections"`
	Pool        struct {
		Lo       int    `json:"lo"`
		Hi       int    `json:"hi"`
		Size     int    `json:"size"`
		Free     int    `json:"free"`
		Strategy string `json:"strategy"`
	} `json:"pool"`
	IPv6     bool             `json:"ipv6"`
	Counters map[string]int64 `json:"counters"`
}

// Status asks for the daemon's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	if _, err := c.do(ctx, "status", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Release ends the lease and closes any of its sockets not taken.
func (l *Lease) Release(ctx context.Context) ([]int, error) {
	l.CloseSockets()
	return l.client.Release(ctx, l.ID)
}

// Renew resets the lease's expiry (see Client.Renew) and updates l.
func (l *Lease) Renew(ctx context.Context, ttl time.Duration) error {
	n, err := l.client.Renew(ctx, l.ID, ttl)
	if err == nil {
		l.update(n)
	}
	return err
}

// Claim makes portd close its sockets (see Client.Claim) and updates l.
func (l *Lease) Claim(ctx context.Context) error {
	n, err := l.client.Claim(ctx, l.ID)
	if err == nil {
		l.update(n)
	}
	return err
}

func (l *Lease) update(n *Lease) {
	sockets := l.Sockets
	*l = *n
	l.Sockets = sockets
}

// CloseSockets closes the descriptors of l.Sockets not taken yet.
func (l *Lease) CloseSockets() {
	for i := range l.Sockets {
		if l.Sockets[i].File != nil {
			l.Sockets[i].File.Close()
			l.Sockets[i].File = nil
		}
	}
}
