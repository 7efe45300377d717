package portd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	systemSocket     = "/run/portd/portd.sock"
	autostartWait    = 5 * time.Second
	defaultTimeout   = 5 * time.Second
	protocolVersion  = 1
	maxReplyBytes    = 64 << 20
	sourceOption     = "explicit"
	sourceEnv        = "PORTD_SOCKET"
	sourceSystem     = "system"
	sourceUser       = "user"
	sourceStarted    = "user-started"
	defaultSbinDirs  = "/usr/local/sbin:/usr/sbin"
	leaseNameDefault = "go"
)

// Options of Dial. The zero value follows the discovery order.
type Options struct {
	// Socket, when set, is used alone and never auto-started.
	Socket string
	// NoAutostart: never start a per-user daemon (as PORTD_NO_AUTOSTART=1).
	NoAutostart bool
	// Timeout per request: 0 means 5 s, a negative value no limit. The
	// context's deadline applies too.
	Timeout time.Duration
}

// SocketStep is one step of the discovery order.
type SocketStep struct {
	Path string
	// Source: explicit, PORTD_SOCKET, system or user.
	Source    string
	Autostart bool
}

// SocketPaths is the discovery order for opts and the current
// environment, the same in every portd client: an explicit socket, else
// PORTD_SOCKET, each alone; else the system socket (PORTD_SYSTEM_SOCKET
// overrides its path) and then the per-user one, which is auto-started.
func SocketPaths(opts *Options) []SocketStep {
	if opts == nil {
		opts = &Options{}
	}
	if opts.Socket != "" {
		return []SocketStep{{Path: opts.Socket, Source: sourceOption}}
	}
	if s := os.Getenv("PORTD_SOCKET"); s != "" {
		return []SocketStep{{Path: s, Source: sourceEnv}}
	}
	system := systemSocket
	if s := os.Getenv("PORTD_SYSTEM_SOCKET"); s != "" {
		system = s
	}
	user := fmt.Sprintf("/tmp/portd-%d/portd.sock", os.Geteuid())
	if x := os.Getenv("XDG_RUNTIME_DIR"); strings.HasPrefix(x, "/") {
		user = filepath.Join(x, "portd", "portd.sock")
	}
	autostart := !opts.NoAutostart && os.Getenv("PORTD_NO_AUTOSTART") != "1"
	return []SocketStep{
		{Path: system, Source: sourceSystem},
		{Path: user, Source: sourceUser, Autostart: autostart},
	}
}

func dialUnix(ctx context.Context, path string) (*net.UnixConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

func errnoName(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOENT:
			return "ENOENT"
		case syscall.ECONNREFUSED:
			return "ECONNREFUSED"
		case syscall.EAGAIN:
			return "EAGAIN"
		case syscall.EACCES:
			return "EACCES"
		}
		return errno.Error()
	}
	return err.Error()
}

func retryStart(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EAGAIN)
}

func executable(file string) bool {
	st, err := os.Stat(file)
	return err == nil && st.Mode().IsRegular() && syscall.Access(file, 1 /* X_OK */) == nil
}

// findDaemon: the first portd on PATH, else the installed one.
func findDaemon() string {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir != "" && executable(filepath.Join(dir, "portd")) {
			return filepath.Join(dir, "portd")
		}
	}
	for _, dir := range filepath.SplitList(defaultSbinDirs) {
		if executable(filepath.Join(dir, "portd")) {
			return filepath.Join(dir, "portd")
		}
	}
	return ""
}

// openLog: portd.log beside the socket, only in a folder that is ours and
// that others cannot write to (a shared /tmp path could be a trap).
func openLog(sock string) *os.File {
	dir := filepath.Dir(sock)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil
	}
	var st syscall.Stat_t
	if syscall.Lstat(dir, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFDIR ||
		int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(dir, "portd.log"),
		os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil
	}
	return f
}

var daemonEnvDrop = []string{"PORTD_SOCKET", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID",
	"LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID"}

// startDaemon starts a per-user portd for sock, detached in its own
// session. It returns why it could not, or "".
func startDaemon(sock string) string {
	bin := findDaemon()
	if bin == "" {
		return "portd is not on PATH nor in " + strings.ReplaceAll(defaultSbinDirs, ":", " or ")
	}
	var env []string
	for _, kv := range os.Environ() {
		keep := true
		for _, k := range daemonEnvDrop {
			if strings.HasPrefix(kv, k+"=") {
				keep = false
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(bin, "--user", "--socket", sock)
	cmd.Env = env
	// Stdin and stdout are /dev/null; stderr the log, or /dev/null.
	if log := openLog(sock); log != nil {
		cmd.Stderr = log
		defer log.Close()
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Sprintf("could not start %s: %v", bin, err)
	}
	// Reap it when it exits (a daemon that lost the start race exits at
	// once); it is in its own session and outlives this process.
	go func() { _ = cmd.Wait() }()
	return ""
}

type tried struct {
	path, source, err string
}

// discover connects along the discovery order.
func discover(ctx context.Context, opts *Options) (*net.UnixConn, string, string, error) {
	var log []tried
	for _, step := range SocketPaths(opts) {
		c, err := dialUnix(ctx, step.Path)
		if err == nil {
			return c, step.Path, step.Source, nil
		}
		if ctx.Err() != nil {
			return nil, "", "", newError("timeout", ctx.Err(), "connecting to portd: %v", ctx.Err())
		}
		log = append(log, tried{step.Path, step.Source, errnoName(err)})
		if !step.Autostart || !retryStart(err) {
			continue
		}
		if why := startDaemon(step.Path); why != "" {
			log[len(log)-1].err += "; " + why
			continue
		}
		deadline := time.Now().Add(autostartWait)
		for time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return nil, "", "", newError("timeout", ctx.Err(),
					"waiting for the portd started on %s: %v", step.Path, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
			if c, err = dialUnix(ctx, step.Path); err == nil {
				return c, step.Path, sourceStarted, nil
			}
		}
		log[len(log)-1].err += fmt.Sprintf("; started portd, but it did not answer within %v (%s)",
			autostartWait, errnoName(err))
	}
	var parts []string
	for _, t := range log {
		parts = append(parts, fmt.Sprintf("%s (%s: %s)", t.path, t.source, t.err))
	}
	next := "start one with `portd` (or `systemctl --user start portd.socket`), " +
		"set PORTD_SOCKET to a running daemon's socket, or unset PORTD_NO_AUTOSTART"
	if len(log) == 1 {
		what := "PORTD_SOCKET"
		if log[0].source == sourceOption {
			what = "the Socket option"
		}
		next = fmt.Sprintf("start portd on %s, or point %s at a running daemon", log[0].path, what)
	}
	return nil, "", "", newError("no_daemon", nil, "no portd daemon reachable: tried %s; %s",
		strings.Join(parts, ", "), next)
}
