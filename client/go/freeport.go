package portd

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// The process's shared client for PickPort and Take: its session leases
// end with the process. A closed one is replaced on next use.
var shared struct {
	mu     sync.Mutex
	client *Client
	leases map[int]string // port -> lease id
}

func sharedClient(ctx context.Context) (*Client, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.client != nil {
		shared.client.mu.Lock()
		closed := shared.client.closed != nil
		shared.client.mu.Unlock()
		if !closed {
			return shared.client, nil
		}
	}
	c, err := Dial(ctx, nil)
	if err != nil {
		return nil, err
	}
	shared.client = c
	shared.leases = map[int]string{}
	return c, nil
}

func remember(c *Client, l *Lease) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.client == c {
		for _, p := range l.Ports {
			shared.leases[p] = l.ID
		}
	}
}

// PickPort returns a TCP port held for the rest of the process (a session
// lease, hold shared): a server that sets SO_REUSEADDR, as net.Listen
// does, listens on it while portd holds it, and no other portd client or
// autobind gets it meanwhile. Return gives it back early.
func PickPort() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*autostartWait)
	defer cancel()
	c, err := sharedClient(ctx)
	if err != nil {
		return 0, err
	}
	l, err := c.Lease(ctx, LeaseRequest{Scope: ScopeSession, Name: "PickPort"})
	if err != nil {
		return 0, err
	}
	remember(c, l)
	return l.Port(), nil
}

// Take returns n distinct ports for code moving off HashiCorp's freeport:
// each is free for TCP and UDP, for any bind (with SO_REUSEADDR or
// without), and recorded by portd until Return or the end of the process,
// so no portd client gets it meanwhile; the pool lies outside the
// ephemeral range, so no autobind takes it either. portd holds no socket
// for them (the leases are claimed, as portpicker's are): bind them soon.
func Take(n int) ([]int, error) {
	if n <= 0 {
		return nil, newError("invalid", nil, "Take: n must be positive, not %d", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*autostartWait)
	defer cancel()
	c, err := sharedClient(ctx)
	if err != nil {
		return nil, err
	}
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := c.Lease(ctx, LeaseRequest{Proto: Both, Scope: ScopeSession, Name: "Take"})
		if err == nil {
			remember(c, l)
			if err = l.Claim(ctx); err == nil {
				ports = append(ports, l.Port())
				continue
			}
			ports = append(ports, l.Port())
		}
		Return(ports)
		return nil, err
	}
	return ports, nil
}

// MustTake is Take that panics on failure.
func MustTake(n int) []int {
	ports, err := Take(n)
	if err != nil {
		panic(err)
	}
	return ports
}

// Return gives back ports from Take or PickPort. Other ports are ignored.
func Return(ports []int) {
	shared.mu.Lock()
	c := shared.client
	var ids []string
	seen := map[string]bool{}
	for _, p := range ports {
		if id, ok := shared.leases[p]; ok {
			delete(shared.leases, p)
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	shared.mu.Unlock()
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	for _, id := range ids {
		if _, err := c.Release(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
			return // the connection is gone, and its leases with it
		}
	}
}

// TestingT is the part of testing.TB that GetN uses.
type TestingT interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// GetN is freeport.GetN: n ports from Take, returned when the test ends;
// the test fails if there are none.
func GetN(t TestingT, n int) []int {
	t.Helper()
	ports, err := Take(n)
	if err != nil {
		t.Fatalf("%v", fmt.Errorf("portd.GetN(%d): %w", n, err))
	}
	t.Cleanup(func() { Return(ports) })
	return ports
}

// GetOne is GetN(t, 1)[0].
func GetOne(t TestingT) int {
	t.Helper()
	return GetN(t, 1)[0]
}
