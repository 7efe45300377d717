package portd

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests run against a real portd: PORTD_BIN (what ctest passes), else
// portd on PATH. Ports come from PORTD_TEST_PORTS (LO-HI), cut into
// slices of 100.

type daemon struct {
	socket, dir string
	pid         int
	cmd         *exec.Cmd
	done        chan error
}

var (
	testDaemon *daemon
	portsLo    = 31000
	portsHi    = 31499
)

func slice(i, size int) (int, int) {
	lo := portsLo + 100*i
	if lo+size-1 > portsHi {
		panic(fmt.Sprintf("port slice %d is outside %d-%d", i, portsLo, portsHi))
	}
	return lo, lo + size - 1
}

func portdBin() (string, error) {
	if b := os.Getenv("PORTD_BIN"); b != "" {
		return b, nil
	}
	return exec.LookPath("portd")
}

func startTestDaemon(lo, hi int, args ...string) (*daemon, error) {
	bin, err := portdBin()
	if err != nil {
		return nil, fmt.Errorf("set PORTD_BIN to the portd to test (ctest does), or put portd on PATH: %v", err)
	}
	dir, err := os.MkdirTemp("", "portd-go-")
	if err != nil {
		return nil, err
	}
	d := &daemon{socket: filepath.Join(dir, "portd.sock"), dir: dir, done: make(chan error, 1)}
	log, err := os.Create(filepath.Join(dir, "portd.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	d.cmd = exec.Command(bin, append([]string{"--socket", d.socket, "--pool",
		fmt.Sprintf("%d-%d", lo, hi)}, args...)...)
	d.cmd.Stderr = log
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	d.pid = d.cmd.Process.Pid
	go func() { d.done <- d.cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", d.socket); err == nil {
			c.Close()
			return d, nil
		}
		select {
		case err := <-d.done:
			return nil, fmt.Errorf("portd exited (%v): %s", err, d.log())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.cmd.Process.Kill()
			return nil, fmt.Errorf("portd did not answer: %s", d.log())
		}
	}
}

func (d *daemon) log() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "portd.log"))
	return string(b)
}

// stop stops the daemon and checks that it exited cleanly (under the
// sanitizers a leak or an error in the daemon fails here).
func (d *daemon) stop() error {
	d.cmd.Process.Signal(syscall.SIGTERM)
	err := <-d.done
	defer os.RemoveAll(d.dir)
	if err != nil {
		return fmt.Errorf("portd exited with %v: %s", err, d.log())
	}
	return nil
}

func TestMain(m *testing.M) {
	if mode := os.Getenv("PORTD_GO_HELPER"); mode != "" {
		os.Exit(helperMain(mode))
	}
	if r := os.Getenv("PORTD_TEST_PORTS"); r != "" {
		lo, hi, ok := strings.Cut(r, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if !ok || err1 != nil || err2 != nil {
			fmt.Fprintf(os.Stderr, "bad PORTD_TEST_PORTS %q\n", r)
			os.Exit(2)
		}
		portsLo, portsHi = a, b
	}
	lo, hi := slice(0, 100)
	d, err := startTestDaemon(lo, hi, "--quota", "40")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testDaemon = d
	os.Setenv("PORTD_SOCKET", d.socket)
	code := m.Run()
	if err := d.stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// busy binds each port on the IPv4 and IPv6 wildcards without
// SO_REUSEADDR, for proto ("tcp" or "udp"), and returns those that fail.
// It retries for wait while some are busy (a just-closed connection may
// linger for a moment).
func busy(proto string, ports []int, wait time.Duration) []string {
	typ := syscall.SOCK_STREAM
	if proto == "udp" {
		typ = syscall.SOCK_DGRAM
	}
	deadline := time.Now().Add(wait)
	for {
		var out []string
		for _, p := range ports {
			for _, fam := range []int{syscall.AF_INET, syscall.AF_INET6} {
				fd, err := syscall.Socket(fam, typ|syscall.SOCK_CLOEXEC, 0)
				if err != nil {
					out = append(out, fmt.Sprintf("socket: %v", err))
					continue
				}
				var sa syscall.Sockaddr = &syscall.SockaddrInet4{Port: p}
				if fam == syscall.AF_INET6 {
					syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 1)
					sa = &syscall.SockaddrInet6{Port: p}
				}
				if err := syscall.Bind(fd, sa); err != nil {
					out = append(out, fmt.Sprintf("%s/%d af %d: %v", proto, p, fam, err))
				}
				syscall.Close(fd)
			}
		}
		if len(out) == 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dial(t *testing.T, socket string) *Client {
	t.Helper()
	c, err := Dial(context.Background(), &Options{Socket: socket})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func leasedPorts(t *testing.T, c *Client) map[int]bool {
	t.Helper()
	ls, err := c.List(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	m := map[int]bool{}
	for _, l := range ls {
		for _, p := range l.Ports {
			m[p] = true
		}
	}
	return m
}
