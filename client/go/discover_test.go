package portd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func withEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	for k, v := range vars {
		k := k
		old, had := os.LookupEnv(k)
		if v == "<unset>" {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, v)
		}
		t.Cleanup(func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		})
	}
}

func TestSocketPaths(t *testing.T) {
	none := map[string]string{"PORTD_SOCKET": "<unset>", "PORTD_SYSTEM_SOCKET": "<unset>",
		"PORTD_NO_AUTOSTART": "<unset>"}
	t.Run("default", func(t *testing.T) {
		withEnv(t, none)
		withEnv(t, map[string]string{"XDG_RUNTIME_DIR": "/run/user/42"})
		want := []SocketStep{{"/run/portd/portd.sock", "system", false},
			{"/run/user/42/portd/portd.sock", "user", true}}
		if got := SocketPaths(nil); !reflect.DeepEqual(got, want) {
			t.Errorf("%+v", got)
		}
		if got := SocketPaths(&Options{Socket: "/x/s"}); !reflect.DeepEqual(got,
			[]SocketStep{{"/x/s", "explicit", false}}) {
			t.Errorf("explicit: %+v", got)
		}
		if SocketPaths(&Options{NoAutostart: true})[1].Autostart {
			t.Error("NoAutostart")
		}
	})
	for _, xdg := range []string{"relative/dir", "<unset>", ""} {
		t.Run("xdg "+xdg, func(t *testing.T) {
			withEnv(t, none)
			withEnv(t, map[string]string{"XDG_RUNTIME_DIR": xdg})
			want := fmt.Sprintf("/tmp/portd-%d/portd.sock", os.Geteuid())
			if got := SocketPaths(nil)[1].Path; got != want {
				t.Errorf("%s, want %s", got, want)
			}
		})
	}
	t.Run("env", func(t *testing.T) {
		withEnv(t, map[string]string{"PORTD_SOCKET": "/e/s", "PORTD_SYSTEM_SOCKET": "/sys/s"})
		if got := SocketPaths(nil); !reflect.DeepEqual(got, []SocketStep{{"/e/s", "PORTD_SOCKET", false}}) {
			t.Errorf("%+v", got)
		}
		if got := SocketPaths(&Options{Socket: "/o/s"})[0].Path; got != "/o/s" {
			t.Errorf("option first: %s", got)
		}
	})
	t.Run("empty PORTD_SOCKET", func(t *testing.T) {
		withEnv(t, map[string]string{"PORTD_SOCKET": "", "PORTD_SYSTEM_SOCKET": "/sys/s",
			"PORTD_NO_AUTOSTART": "1"})
		steps := SocketPaths(nil)
		if steps[0].Path != "/sys/s" || steps[1].Autostart {
			t.Errorf("%+v", steps)
		}
	})
}

type found struct {
	Path, Source, Code, Message string
	PID                         int
}

// discoverIn runs a helper process that dials the default way in env.
func discoverIn(t *testing.T, env ...string) found {
	t.Helper()
	cmd := helper("discover", append([]string{"PORTD_SOCKET=", "PORTD_SYSTEM_SOCKET=",
		"PORTD_NO_AUTOSTART=", "PATH=" + filepath.Dir(mustBin(t)) + ":" + os.Getenv("PATH")}, env...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	var f found
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatalf("helper said %q", out)
	}
	return f
}

func mustBin(t *testing.T) string {
	b, err := portdBin()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExplicitAndEnvAlone(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "none.sock")
	env := []string{"XDG_RUNTIME_DIR=" + dir, "PORTD_SYSTEM_SOCKET=" + testDaemon.socket}
	f := discoverIn(t, append(env, "PORTD_SOCKET="+sock)...)
	if f.Code != "no_daemon" || !strings.Contains(f.Message, "none.sock (PORTD_SOCKET: ENOENT)") ||
		strings.Contains(f.Message, testDaemon.socket) {
		t.Errorf("%+v", f)
	}
	_, err := Dial(bg, &Options{Socket: sock})
	if err == nil || !strings.Contains(err.Error(), "the Socket option") {
		t.Errorf("explicit: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("something was started: %v", ents)
	}
	f = discoverIn(t, append(env, "PORTD_SOCKET="+testDaemon.socket)...)
	if f.Path != testDaemon.socket || f.Source != "PORTD_SOCKET" || f.PID != testDaemon.pid {
		t.Errorf("%+v", f)
	}
}

func TestSystemSocket(t *testing.T) {
	f := discoverIn(t, "XDG_RUNTIME_DIR="+t.TempDir(), "PORTD_SYSTEM_SOCKET="+testDaemon.socket)
	if f.Path != testDaemon.socket || f.Source != "system" || f.PID != testDaemon.pid {
		t.Errorf("%+v", f)
	}
}

func TestNoDaemonNoAutostart(t *testing.T) {
	dir := t.TempDir()
	sys := filepath.Join(dir, "system.sock")
	os.WriteFile(sys, nil, 0o600) // a stale file where the system socket would be
	for _, extra := range []string{"PORTD_NO_AUTOSTART=1", "HELPER_NO_AUTOSTART=1"} {
		f := discoverIn(t, "XDG_RUNTIME_DIR="+dir, "PORTD_SYSTEM_SOCKET="+sys, extra)
		want := fmt.Sprintf("tried %s (system: ECONNREFUSED), %s (user: ENOENT)", sys,
			filepath.Join(dir, "portd", "portd.sock"))
		if f.Code != "no_daemon" || !strings.Contains(f.Message, want) ||
			!strings.Contains(f.Message, "start one with `portd`") {
			t.Errorf("%s: %+v", extra, f)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("something was started: %v", ents)
	}
}

func procStat(t *testing.T, pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
}

// stopStarted stops the daemon pid that a test started in dir, and any
// other one a concurrent start left there; log is its log file.
func stopStarted(t *testing.T, pid int, dir, log string) {
	syscall.Kill(pid, syscall.SIGTERM)
	waitFor(t, "the started portd to exit", func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return err != nil
	})
	stopDaemonsUnder(dir)
	if b, _ := os.ReadFile(log); strings.Contains(string(b), "Sanitizer") ||
		strings.Contains(string(b), "runtime error") {
		t.Errorf("the started portd: %s", b)
	}
}

// stopDaemonsUnder stops every portd whose command line names dir, until
// none is left for half a second. Of concurrent autostarts one daemon wins
// and the others exit at once, unless one is so slow to start that it
// takes the lock only after the winner was stopped: it would then serve on
// in a deleted folder.
func stopDaemonsUnder(dir string) {
	var quiet time.Time
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		found := false
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			argv := strings.Split(string(b), "\x00")
			if err != nil || !strings.HasSuffix(argv[0], "portd") || !strings.Contains(string(b), dir) {
				continue
			}
			syscall.Kill(pid, syscall.SIGTERM)
			found = true
		}
		switch {
		case found:
			quiet = time.Time{}
		case quiet.IsZero():
			quiet = time.Now()
		case time.Since(quiet) > 500*time.Millisecond:
			return
		}
	}
}

func TestAutostart(t *testing.T) {
	dir := t.TempDir()
	config := t.TempDir()
	lo, hi := slice(2, 100)
	os.Mkdir(filepath.Join(config, "portd"), 0o700)
	os.WriteFile(filepath.Join(config, "portd", "portd.conf"), []byte(fmt.Sprintf("pool = %d-%d\n", lo, hi)), 0o600)
	env := []string{"XDG_RUNTIME_DIR=" + dir, "XDG_CONFIG_HOME=" + config,
		"PORTD_SYSTEM_SOCKET=" + filepath.Join(dir, "no-system.sock"),
		"NOTIFY_SOCKET=" + filepath.Join(dir, "notify"), "LISTEN_FDS=1", "LISTEN_PID=1"}
	sock := filepath.Join(dir, "portd", "portd.sock")
	logPath := filepath.Join(dir, "portd", "portd.log")
	res := make(chan found, 4)
	for i := 0; i < 4; i++ {
		go func() { res <- discoverIn(t, env...) }()
	}
	var fs []found
	for i := 0; i < 4; i++ {
		fs = append(fs, <-res)
	}
	pid := fs[0].PID
	if pid == 0 {
		t.Fatalf("%+v", fs)
	}
	defer stopStarted(t, pid, dir, logPath)
	started := false
	for _, f := range fs {
		if f.Path != sock || f.PID != pid || (f.Source != "user-started" && f.Source != "user") {
			t.Errorf("%+v (want one daemon, pid %d)", f, pid)
		}
		started = started || f.Source == "user-started"
	}
	if !started {
		t.Error("none says it started the daemon")
	}
	if st := procStat(t, pid); st[3] != fmt.Sprint(pid) {
		t.Errorf("not a session leader: session %s", st[3])
	}
	for fd, want := range []string{"/dev/null", "/dev/null", logPath} {
		if got, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd)); got != want {
			t.Errorf("fd %d is %s, want %s", fd, got, want)
		}
	}
	if st, err := os.Stat(filepath.Dir(sock)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("socket folder: %v %v", st.Mode(), err)
	}
	environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	for _, k := range []string{"PORTD_SOCKET=", "NOTIFY_SOCKET=", "LISTEN_FDS=", "LISTEN_PID="} {
		if strings.Contains("\x00"+string(environ), "\x00"+k) {
			t.Errorf("%s reached the daemon", k)
		}
	}
	c := dial(t, sock)
	l, err := c.Lease(bg, LeaseRequest{})
	if err != nil || l.Port() < lo || l.Port() > hi {
		t.Errorf("lease from the started daemon: %+v %v", l, err)
	}
	c.Close()
	if f := discoverIn(t, env...); f.Source != "user" || f.PID != pid {
		t.Errorf("next client: %+v", f)
	}
}

func TestAutostartNoLogInOpenFolder(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "portd"), 0o700)
	os.Chmod(filepath.Join(dir, "portd"), 0o777) // others may write
	config := t.TempDir()
	lo, hi := slice(2, 100)
	os.Mkdir(filepath.Join(config, "portd"), 0o700)
	os.WriteFile(filepath.Join(config, "portd", "portd.conf"), []byte(fmt.Sprintf("pool = %d-%d\n", lo, hi)), 0o600)
	f := discoverIn(t, "XDG_RUNTIME_DIR="+dir, "XDG_CONFIG_HOME="+config,
		"PORTD_SYSTEM_SOCKET="+filepath.Join(dir, "none"))
	if f.Source != "user-started" {
		t.Fatalf("%+v", f)
	}
	defer stopStarted(t, f.PID, dir, "/dev/null")
	if got, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/2", f.PID)); got != "/dev/null" {
		t.Errorf("stderr is %s", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "portd", "portd.log")); err == nil {
		t.Error("a log in a folder others may write to")
	}
}

func TestAutostartWithoutPortd(t *testing.T) {
	for _, f := range []string{"/usr/local/sbin/portd", "/usr/sbin/portd"} {
		if executable(f) {
			t.Skipf("%s is installed, so it would be started", f)
		}
	}
	dir := t.TempDir()
	cmd := helper("discover", "PORTD_SOCKET=", "XDG_RUNTIME_DIR="+dir,
		"PORTD_SYSTEM_SOCKET="+filepath.Join(dir, "none"), "PATH=/nonexistent")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var f found
	json.Unmarshal(out, &f)
	if f.Code != "no_daemon" || !strings.Contains(f.Message, "portd is not on PATH") {
		t.Errorf("%+v", f)
	}
}
