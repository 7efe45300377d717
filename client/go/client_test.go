package portd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var bg = context.Background()

func TestDialHello(t *testing.T) {
	c := dial(t, testDaemon.socket)
	if c.SocketPath() != testDaemon.socket || c.Source() != "explicit" {
		t.Errorf("connected to %s via %s", c.SocketPath(), c.Source())
	}
	if c.DaemonPID != testDaemon.pid || c.UID != os.Getuid() || c.Server.Name != "portd" {
		t.Errorf("hello: pid %d uid %d server %+v", c.DaemonPID, c.UID, c.Server)
	}
	r, err := c.Hello(bg)
	if err != nil || r.Version != 1 || r.PID != testDaemon.pid {
		t.Fatalf("Hello: %+v, %v", r, err)
	}
	// The default way finds the daemon through PORTD_SOCKET (TestMain).
	d, err := Dial(bg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Source() != "PORTD_SOCKET" || d.SocketPath() != testDaemon.socket {
		t.Errorf("default dial: %s via %s", d.SocketPath(), d.Source())
	}
}

func TestLeaseReleaseHeld(t *testing.T) {
	c := dial(t, testDaemon.socket)
	lo, hi := slice(0, 100)
	l, err := c.Lease(bg, LeaseRequest{Name: "go-one", Scope: ScopeTTL})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Ports) != 1 || l.Port() < lo || l.Port() > hi || l.Proto != TCP || l.Family != Dual ||
		l.Hold != Shared || l.Scope != ScopeTTL || l.TTL != 300*time.Second || l.Name != "go-one" ||
		!l.Held || l.Owner.UID != os.Getuid() || l.Owner.PID != os.Getpid() ||
		!strings.HasPrefix(l.ID, "L") {
		t.Errorf("lease %+v", l)
	}
	if until := time.Until(l.Expires); until < 290*time.Second || until > 300*time.Second {
		t.Errorf("expires in %v", until)
	}
	if b := busy("tcp", l.Ports, 0); len(b) != 2 {
		t.Errorf("held port: plain binds failed on %v, want both families", b)
	}
	// A Go server co-binds (net.Listen sets SO_REUSEADDR).
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", l.Port()))
	if err != nil {
		t.Fatalf("co-bind: %v", err)
	}
	ln.Close()
	got, err := l.Release(bg)
	if err != nil || len(got) != 1 || got[0] != l.Port() {
		t.Fatalf("Release: %v, %v", got, err)
	}
	if b := busy("tcp", l.Ports, time.Second); len(b) != 0 {
		t.Errorf("released, still busy: %v", b)
	}
	if _, err := l.Release(bg); !errors.Is(err, ErrNotFound) {
		t.Errorf("second release: %v", err)
	}
}

func TestLeaseOptions(t *testing.T) {
	c := dial(t, testDaemon.socket)
	lo, hi := slice(0, 100)
	run, err := c.Lease(bg, LeaseRequest{Count: 3, Contiguous: true})
	if err != nil || len(run.Ports) != 3 || run.Ports[1] != run.Port()+1 || run.Ports[2] != run.Port()+2 {
		t.Fatalf("contiguous: %+v %v", run, err)
	}
	udp, err := c.Lease(bg, LeaseRequest{Proto: UDP, Family: IPv4, TTL: 1500 * time.Millisecond})
	if err != nil || udp.Proto != UDP || udp.Family != IPv4 || udp.Hold != Exclusive || udp.TTL != 2*time.Second {
		t.Fatalf("udp: %+v %v", udp, err)
	}
	both, err := c.Lease(bg, LeaseRequest{Proto: Both, Hold: Exclusive, Family: IPv6})
	if err != nil || both.Proto != Both || both.Hold != Exclusive || both.Family != IPv6 {
		t.Fatalf("both: %+v %v", both, err)
	}
	eph, err := c.Lease(bg, LeaseRequest{Strategy: StrategyEphemeral})
	if err != nil || (eph.Port() >= lo && eph.Port() <= hi) {
		t.Fatalf("ephemeral: %+v %v", eph, err)
	}
	spec, err := c.Lease(bg, LeaseRequest{Port: hi - 1, Count: 2})
	if err != nil || spec.Ports[0] != hi-1 || spec.Ports[1] != hi {
		t.Fatalf("specific: %+v %v", spec, err)
	}
	sess, err := c.Lease(bg, LeaseRequest{Scope: ScopeSession})
	if err != nil || sess.Scope != ScopeSession || sess.TTL != 0 || !sess.Expires.IsZero() {
		t.Fatalf("session: %+v %v", sess, err)
	}
	proc, err := c.Lease(bg, LeaseRequest{Scope: ScopeProcess, PID: os.Getpid()})
	if err != nil || proc.Scope != ScopeProcess || proc.Owner.PID != os.Getpid() {
		t.Fatalf("process: %+v %v", proc, err)
	}
	ls, err := c.List(bg, false)
	if err != nil || len(ls) != 7 {
		t.Fatalf("list: %d leases, %v", len(ls), err)
	}
	want := []*Lease{run, udp, both, eph, spec, sess, proc}
	for i, l := range ls {
		if l.ID != want[i].ID {
			t.Errorf("list[%d] = %s, want %s (oldest first)", i, l.ID, want[i].ID)
		}
		if _, err := l.Release(bg); err != nil {
			t.Error(err)
		}
	}
}

func TestRenewClaimReleasePort(t *testing.T) {
	c := dial(t, testDaemon.socket)
	l, err := c.Lease(bg, LeaseRequest{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	before := l.Expires
	if err := l.Renew(bg, 100*time.Second); err != nil || l.TTL != 100*time.Second ||
		l.Expires.Sub(before) < 80*time.Second {
		t.Fatalf("Renew: %+v %v", l, err)
	}
	n, err := c.Renew(bg, l.ID, 0)
	if err != nil || n.TTL != 100*time.Second {
		t.Fatalf("Renew default: %+v %v", n, err)
	}
	if b := busy("tcp", l.Ports, 0); len(b) != 2 {
		t.Errorf("held: %v", b)
	}
	if err := l.Claim(bg); err != nil || l.Held {
		t.Fatalf("Claim: %+v %v", l, err)
	}
	if b := busy("tcp", l.Ports, time.Second); len(b) != 0 {
		t.Errorf("claimed, still bound: %v", b)
	}
	if _, err := c.Lease(bg, LeaseRequest{Port: l.Port()}); !errors.Is(err, ErrPortUnavailable) {
		t.Errorf("claimed port leased again: %v", err)
	}
	if n, err := c.Claim(bg, l.ID); err != nil || n.Held {
		t.Errorf("claim twice: %v", err)
	}
	got, err := c.ReleasePort(bg, l.Port())
	if err != nil || len(got) != 1 || got[0] != l.Port() {
		t.Fatalf("ReleasePort: %v %v", got, err)
	}
	if err := l.Renew(bg, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("renew released: %v", err)
	}
}

func TestStatus(t *testing.T) {
	c := dial(t, testDaemon.socket)
	l, err := c.Lease(bg, LeaseRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(bg)
	s, err := c.Status(bg)
	lo, hi := slice(0, 100)
	if err != nil || s.Version != 1 || s.PID != testDaemon.pid || s.Pool.Lo != lo || s.Pool.Hi != hi ||
		s.Leases < 1 || s.Counters["leases_created"] < 1 {
		t.Fatalf("status %+v %v", s, err)
	}
}

func TestErrors(t *testing.T) {
	c := dial(t, testDaemon.socket)
	_, err := c.Release(bg, "L0000000000000000")
	var pe *Error
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &pe) || pe.Op != "release" ||
		!strings.Contains(pe.Message, "no lease") {
		t.Errorf("release unknown: %#v", err)
	}
	if errors.Is(err, ErrBadRequest) {
		t.Error("not_found matched ErrBadRequest")
	}
	if _, err := c.Lease(bg, LeaseRequest{Count: 65}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("count 65: %v", err)
	}
	if _, err := c.Lease(bg, LeaseRequest{Count: 41}); !errors.Is(err, ErrQuotaExceeded) {
		t.Errorf("past the quota: %v", err)
	}
	if _, err := c.do(bg, "frobnicate", nil, nil); !errors.Is(err, ErrUnknownOp) {
		t.Errorf("unknown op: %v", err)
	}
	if _, err := c.do(bg, "lease", map[string]any{"colour": "red"}, nil); !errors.Is(err, ErrBadRequest) ||
		!strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown field: %v", err)
	}
	// Still usable after refusals.
	l, err := c.Lease(bg, LeaseRequest{})
	if err != nil {
		t.Fatal(err)
	}
	l.Release(bg)

	lo, hi := slice(1, 3)
	small, err := startTestDaemon(lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := small.stop(); err != nil {
			t.Error(err)
		}
	}()
	s := dial(t, small.socket)
	if _, err := s.Lease(bg, LeaseRequest{Count: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lease(bg, LeaseRequest{}); !errors.Is(err, ErrNoPorts) {
		t.Errorf("empty pool: %v", err)
	}
	s.Close()
	if _, err := s.Status(bg); !errors.Is(err, ErrIO) {
		t.Errorf("after Close: %v", err)
	}
}

func TestSessionEndsWithClient(t *testing.T) {
	c, err := Dial(bg, &Options{Socket: testDaemon.socket})
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.Lease(bg, LeaseRequest{}) // session: the default
	if err != nil || l.Scope != ScopeSession {
		t.Fatalf("%+v %v", l, err)
	}
	w := dial(t, testDaemon.socket)
	if !leasedPorts(t, w)[l.Port()] {
		t.Fatal("session lease not listed")
	}
	c.Close()
	waitFor(t, "the session lease to end", func() bool { return !leasedPorts(t, w)[l.Port()] })
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestFDHandoffHTTP(t *testing.T) {
	c := dial(t, testDaemon.socket)
	l, err := c.Lease(bg, LeaseRequest{FD: true, Scope: ScopeSession})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Sockets) != 1 || l.Sockets[0].Port != l.Port() || l.Sockets[0].Proto != TCP {
		t.Fatalf("sockets %+v", l.Sockets)
	}
	f := l.Sockets[0].File
	if !strings.HasPrefix(f.Name(), "portd:tcp/") {
		t.Errorf("file name %q", f.Name())
	}
	if flags, err := fcntl(f.Fd(), syscall.F_GETFD); err != nil || flags&syscall.FD_CLOEXEC == 0 {
		t.Errorf("received fd is not close-on-exec: %v", err)
	}
	ln, err := l.Sockets[0].Listener()
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served by the handed-over socket")
	})}
	// The client's keep-alive connections close from the transport's own
	// goroutines; they are closed and waited for below, so that the next
	// test's count of open descriptors does not see them go.
	base := openFDs(t)
	tr := &http.Transport{}
	hc := &http.Client{Transport: tr}
	go srv.Serve(ln)
	defer func() {
		srv.Close()
		tr.CloseIdleConnections()
		waitFor(t, "the HTTP connections to close", func() bool { return openFDs(t) < base })
	}()
	for _, host := range []string{"127.0.0.1", "[::1]"} {
		if host == "[::1]" && !l.IPv6 {
			continue
		}
		res, err := hc.Get(fmt.Sprintf("http://%s:%d/", host, l.Port()))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(body) != "served by the handed-over socket" {
			t.Errorf("%s: body %q", host, body)
		}
	}
	// The port was never free: a plain bind still fails.
	if b := busy("tcp", l.Ports, 0); len(b) != 2 {
		t.Errorf("handed-over port bindable: %v", b)
	}
	if _, err := l.Release(bg); err != nil {
		t.Fatal(err)
	}
}

func fcntl(fd uintptr, cmd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, uintptr(cmd), 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func TestFDHandoffUDPAndBoth(t *testing.T) {
	c := dial(t, testDaemon.socket)
	l, err := c.Lease(bg, LeaseRequest{FD: true, Proto: UDP, Family: IPv4})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := l.Sockets[0].PacketConn()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	out, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", l.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	out.Write([]byte("ping"))
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	n, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("udp read %q %v", buf[:n], err)
	}
	l.Release(bg)

	before := openFDs(t)
	b, err := c.Lease(bg, LeaseRequest{FD: true, Proto: Both, Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := 6
	if b.Family == IPv4 {
		want = 6
	}
	if len(b.Sockets) != want {
		t.Fatalf("%d sockets, want %d", len(b.Sockets), want)
	}
	for i, s := range b.Sockets {
		proto := []string{TCP, UDP}[i%2]
		typ, err := syscall.GetsockoptInt(int(s.File.Fd()), syscall.SOL_SOCKET, syscall.SO_TYPE)
		wantType := map[string]int{TCP: syscall.SOCK_STREAM, UDP: syscall.SOCK_DGRAM}[proto]
		if s.Port != b.Ports[i/2] || s.Proto != proto || err != nil || typ != wantType {
			t.Errorf("socket %d: %+v type %d %v", i, s, typ, err)
		}
	}
	if got := openFDs(t); got != before+6 {
		t.Errorf("%d descriptors open, want %d", got, before+6)
	}
	b.Release(bg)
	if got := openFDs(t); got != before {
		t.Errorf("after Release %d descriptors open, want %d", got, before)
	}
}

// The kernel drops descriptors that do not fit the control buffer and
// says so with MSG_CTRUNC: the lease fails, what did arrive is closed,
// and the lease is not left behind.
func TestRegressionTruncatedFDsLeaveNoLease(t *testing.T) {
	saved := oobSpace
	oobSpace = syscall.CmsgSpace(4)
	defer func() { oobSpace = saved }()
	c := dial(t, testDaemon.socket)
	before := openFDs(t)
	_, err := c.Lease(bg, LeaseRequest{FD: true, Count: 3, Name: "truncated"})
	if !errors.Is(err, ErrIO) || !strings.Contains(err.Error(), "MSG_CTRUNC") {
		t.Fatalf("lease with a one-fd buffer: %v", err)
	}
	if got := openFDs(t); got > before {
		t.Errorf("%d descriptors open, want %d", got, before)
	}
	ls, err := c.List(bg, false)
	if err != nil {
		t.Fatalf("the connection is out of step: %v", err)
	}
	for _, l := range ls {
		if l.Name == "truncated" {
			t.Errorf("lease %s left behind", l.ID)
		}
	}
}

// A scripted peer: what a newer or a broken daemon may send. The real
// daemon does not send these replies today.
func peer(t *testing.T, reply func(req string) string) string {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "peer.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				buf := make([]byte, 65536)
				var acc []byte
				for {
					n, err := conn.Read(buf)
					if err != nil {
						return
					}
					acc = append(acc, buf[:n]...)
					for {
						i := strings.IndexByte(string(acc), '\n')
						if i < 0 {
							break
						}
						out := reply(string(acc[:i]))
						acc = acc[i+1:]
						if out == "" {
							return
						}
						conn.Write([]byte(out))
					}
				}
			}()
		}
	}()
	return sock
}

func idOf(req string) string {
	i := strings.Index(req, `"id":`)
	j := strings.IndexAny(req[i+5:], ",}")
	return req[i+5 : i+5+j]
}

func helloReply(req, extra string) string {
	return `{"id":` + idOf(req) + `,"ok":true,"version":1,"server":{"name":"portd","version":"9"},"pid":7,"uid":0` + extra + "}\n"
}

func TestUnknownReplyFieldsIgnored(t *testing.T) {
	sock := peer(t, func(req string) string {
		if strings.Contains(req, `"op":"hello"`) {
			return helloReply(req, `,"features":["x"],"motd":{"a":1}`)
		}
		return `{"id":` + idOf(req) + `,"ok":true,"extra":[1],"lease":{"id":"L0123456789abcdef","ports":[40001],` +
			`"proto":"tcp","family":"dual","colour":"blue","held":true,"ttl":null,"expires":null,"created":0,"owner":{"uid":0,"pid":1,"zone":"z"}}}` + "\n"
	})
	c := dial(t, sock)
	l, err := c.Lease(bg, LeaseRequest{})
	if err != nil || l.Port() != 40001 || l.ID != "L0123456789abcdef" || !l.Expires.IsZero() {
		t.Fatalf("%+v %v", l, err)
	}
}

func TestUnknownErrorCodePassedOn(t *testing.T) {
	sock := peer(t, func(req string) string {
		if strings.Contains(req, `"op":"hello"`) {
			return helloReply(req, "")
		}
		return `{"id":` + idOf(req) + `,"ok":false,"error":{"code":"shiny_new","message":"later"}}` + "\n"
	})
	c := dial(t, sock)
	_, err := c.Lease(bg, LeaseRequest{})
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != "shiny_new" || pe.Message != "later" {
		t.Fatalf("%#v", err)
	}
}

func TestHelloVersionMismatch(t *testing.T) {
	for _, r := range []func(string) string{
		func(req string) string { return strings.Replace(helloReply(req, ""), `"version":1`, `"version":2`, 1) },
		func(req string) string {
			return `{"id":` + idOf(req) + `,"ok":false,"error":{"code":"bad_request","message":"protocol version 1 is not supported"}}` + "\n"
		},
	} {
		_, err := Dial(bg, &Options{Socket: peer(t, r)})
		if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("%v", err)
		}
	}
}

func TestBrokenReplies(t *testing.T) {
	for _, bad := range []string{"not json\n", `{"id":999,"ok":true}` + "\n", "[1]\n",
		`{"id":ID,"ok":true}` + "\n" + `{"id":ID,"ok":true}` + "\n"} {
		sock := peer(t, func(req string) string {
			if strings.Contains(req, `"op":"hello"`) {
				return helloReply(req, "")
			}
			return strings.ReplaceAll(bad, "ID", idOf(req))
		})
		c := dial(t, sock)
		if _, err := c.Status(bg); !errors.Is(err, ErrProtocol) {
			t.Errorf("%q: %v", bad, err)
		}
		if _, err := c.Status(bg); !errors.Is(err, ErrProtocol) {
			t.Errorf("%q: the client is not closed: %v", bad, err)
		}
	}
	// A lease reply without a lease: refused, the connection is still good.
	sock := peer(t, func(req string) string {
		if strings.Contains(req, `"op":"hello"`) {
			return helloReply(req, "")
		}
		return `{"id":` + idOf(req) + `,"ok":true,"lease":{"id":5}}` + "\n"
	})
	c := dial(t, sock)
	if _, err := c.Lease(bg, LeaseRequest{}); !errors.Is(err, ErrProtocol) {
		t.Errorf("bad lease object: %v", err)
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	sock := peer(t, func(req string) string {
		if strings.Contains(req, `"op":"hello"`) {
			return helloReply(req, "")
		}
		time.Sleep(2 * time.Second)
		return ""
	})
	c, err := Dial(bg, &Options{Socket: sock, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Status(bg); !errors.Is(err, ErrTimeout) || time.Since(start) > time.Second {
		t.Errorf("timeout: %v after %v", err, time.Since(start))
	}
	d, err := Dial(bg, &Options{Socket: sock, Timeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(bg)
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := d.Status(ctx); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: %v", err)
	}
}

// A context cancelled just after its request returned must not reach the
// next request's deadline (it did: the watcher goroutine could still set
// a deadline in the past after the call returned).
func TestRegressionCancelAfterReturnSparesNextRequest(t *testing.T) {
	c := dial(t, testDaemon.socket)
	for i := 0; i < 300; i++ {
		ctx, cancel := context.WithCancel(bg)
		if _, err := c.Hello(ctx); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		cancel()
		if _, err := c.Hello(bg); err != nil {
			t.Fatalf("round %d, after a cancel: %v", i, err)
		}
	}
}

func TestWhoAndState(t *testing.T) {
	c := dial(t, testDaemon.socket)
	l, err := c.Lease(bg, LeaseRequest{Name: "whom"})
	if err != nil || l.State != "held" {
		t.Fatalf("%+v %v", l, err)
	}
	w, err := c.Who(bg, l.Port(), "")
	if err != nil || !w.Leased || w.Port != l.Port() || w.Lease == nil || w.Lease.ID != l.ID ||
		w.Lease.Name != "whom" || w.Command == "" {
		t.Fatalf("who: %+v %v", w, err)
	}
	if err := l.Claim(bg); err != nil || l.State != "claimed" {
		t.Fatalf("claim: %+v %v", l, err)
	}
	if w, err := c.Who(bg, l.Port(), TCP); err != nil || w.Lease.State != "claimed" {
		t.Fatalf("who after claim: %+v %v", w, err)
	}
	l.Release(bg)
	if w, err := c.Who(bg, l.Port(), ""); err != nil || w.Leased || w.Lease != nil {
		t.Fatalf("who after release: %+v %v", w, err)
	}
}
