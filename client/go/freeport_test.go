package portd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// helperMain runs in a child process started by a test (PORTD_GO_HELPER).
func helperMain(mode string) int {
	switch mode {
	case "server":
		// A test process the freeport way: ports from Take and PickPort,
		// an HTTP server on one, until stdin closes.
		taken, err := Take(2)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		port, err := PickPort()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, strconv.Itoa(os.Getpid()))
		}))
		json.NewEncoder(os.Stdout).Encode(map[string]any{"port": port, "taken": taken, "pid": os.Getpid()})
		io.Copy(io.Discard, os.Stdin)
		return 0
	case "discover":
		c, err := Dial(context.Background(), &Options{NoAutostart: os.Getenv("HELPER_NO_AUTOSTART") == "1"})
		out := map[string]any{}
		if err != nil {
			var pe *Error
			errors.As(err, &pe)
			out["code"], out["message"] = pe.Code, pe.Message
		} else {
			out["path"], out["source"], out["pid"] = c.SocketPath(), c.Source(), c.DaemonPID
			c.Close()
		}
		json.NewEncoder(os.Stdout).Encode(out)
		return 0
	}
	fmt.Fprintf(os.Stderr, "unknown helper %q\n", mode)
	return 2
}

func helper(mode string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "PORTD_GO_HELPER="+mode), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

func TestPickPort(t *testing.T) {
	w := dial(t, testDaemon.socket)
	p, err := PickPort()
	if err != nil {
		t.Fatal(err)
	}
	if b := busy("tcp", []int{p}, 0); len(b) != 2 {
		t.Errorf("picked port not held: %v", b)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
	if err != nil {
		t.Fatalf("co-bind: %v", err)
	}
	ln.Close()
	ls, _ := w.List(bg, false)
	var found *Lease
	for _, l := range ls {
		if l.Port() == p {
			found = l
		}
	}
	if found == nil || found.Scope != ScopeSession || found.Hold != Shared || found.Name != "PickPort" {
		t.Fatalf("lease of the picked port: %+v", found)
	}
	Return([]int{p})
	if leasedPorts(t, w)[p] {
		t.Error("returned port still leased")
	}
}

func TestTakeReturn(t *testing.T) {
	w := dial(t, testDaemon.socket)
	ports, err := Take(3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		seen[p] = true
	}
	if len(seen) != 3 {
		t.Fatalf("Take(3) = %v", ports)
	}
	// Free for any bind, TCP and UDP, yet leased: portd gives them nobody.
	if b := append(busy("tcp", ports, time.Second), busy("udp", ports, time.Second)...); len(b) != 0 {
		t.Errorf("taken ports not bindable: %v", b)
	}
	for _, p := range ports {
		if _, err := w.Lease(bg, LeaseRequest{Port: p}); !errors.Is(err, ErrPortUnavailable) {
			t.Errorf("taken port %d leased again: %v", p, err)
		}
	}
	Return(ports[:1])
	left := leasedPorts(t, w)
	if left[ports[0]] || !left[ports[1]] || !left[ports[2]] {
		t.Errorf("after Return(%v): %v", ports[:1], left)
	}
	Return(ports)
	Return(ports) // twice, and unknown ports: nothing happens
	Return([]int{1})
	if n := len(leasedPorts(t, w)); n != 0 {
		t.Errorf("%d ports still leased", n)
	}
	if _, err := Take(0); !errors.Is(err, ErrInvalid) {
		t.Errorf("Take(0): %v", err)
	}
}

func TestGetN(t *testing.T) {
	w := dial(t, testDaemon.socket)
	var ports []int
	t.Run("inner", func(t *testing.T) {
		ports = GetN(t, 2)
		one := GetOne(t)
		if len(ports) != 2 || one == ports[0] || one == ports[1] {
			t.Fatalf("GetN %v GetOne %d", ports, one)
		}
		if !leasedPorts(t, w)[ports[0]] {
			t.Fatal("not leased")
		}
	})
	if len(ports) != 2 {
		t.FailNow()
	}
	if left := leasedPorts(t, w); left[ports[0]] || left[ports[1]] {
		t.Errorf("not returned at the test's end: %v", left)
	}
}

// Eight test processes at once, each taking ports and serving HTTP on
// one: all distinct, all served, all free once they exit.
func TestParallelProcesses(t *testing.T) {
	const n = 8
	type kid struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		got   struct {
			Port  int   `json:"port"`
			Taken []int `json:"taken"`
			PID   int   `json:"pid"`
		}
	}
	kids := make([]*kid, n)
	for i := range kids {
		k := &kid{cmd: helper("server")}
		var err error
		if k.stdin, err = k.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		out, err := k.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := k.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer k.cmd.Process.Kill()
		kids[i] = k
		go func() {
			line, _ := bufio.NewReader(out).ReadBytes('\n')
			json.Unmarshal(line, &k.got)
			k.stdin.Write(nil)
		}()
	}
	var all []int
	deadline := time.Now().Add(60 * time.Second)
	for _, k := range kids {
		for k.got.PID == 0 {
			if time.Now().After(deadline) {
				t.Fatal("helpers did not start")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	seen := map[int]bool{}
	w := dial(t, testDaemon.socket)
	leased := leasedPorts(t, w)
	for _, k := range kids {
		for _, p := range append([]int{k.got.Port}, k.got.Taken...) {
			if seen[p] {
				t.Errorf("port %d handed out twice", p)
			}
			seen[p] = true
			all = append(all, p)
			if !leased[p] {
				t.Errorf("port %d not leased while its process lives", p)
			}
		}
		tr := &http.Transport{}
		res, err := (&http.Client{Transport: tr}).Get(fmt.Sprintf("http://127.0.0.1:%d/", k.got.Port))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		// The client closes first, so the server's port has no TIME_WAIT.
		tr.CloseIdleConnections()
		if string(body) != strconv.Itoa(k.got.PID) {
			t.Errorf("port %d served %q, want pid %d", k.got.Port, body, k.got.PID)
		}
	}
	if len(all) != 3*n {
		t.Fatalf("%d ports", len(all))
	}
	for _, k := range kids {
		k.stdin.Close()
	}
	for _, k := range kids {
		if err := k.cmd.Wait(); err != nil {
			t.Errorf("helper: %v", err)
		}
	}
	waitFor(t, "the helpers' leases to end", func() bool {
		l := leasedPorts(t, w)
		for _, p := range all {
			if l[p] {
				return false
			}
		}
		return true
	})
	if b := busy("tcp", all, time.Second); len(b) != 0 {
		t.Errorf("not free after exit: %v", b)
	}
}
