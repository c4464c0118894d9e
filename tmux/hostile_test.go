package tmux

// Real tmux misbehaving: a stopped server, a socket that never answers, a
// user config with remain-on-exit on, newlines in names and directories.
// Each test runs its own private server (never the default one) and kills
// it when it ends.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var serverSeq atomic.Int64

// privateServer starts a tmux server on a socket of its own, configured by
// conf (tmux.conf text), with a sentinel session so it stays up; it returns
// a Client on it and the server's pid. The server is continued (should a
// test have stopped it) and killed when the test ends.
func privateServer(t *testing.T, conf string) (*Client, int) {
	t.Helper()
	realClient(t)
	socket := fmt.Sprintf("%s-h%d", testSocket, serverSeq.Add(1))
	confFile := filepath.Join(t.TempDir(), "tmux.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tmux", "-L", socket, "-f", confFile, "new-session", "-d", "-s", "sentinel", "--", "sleep", "600").CombinedOutput(); err != nil {
		t.Fatalf("start tmux on %s: %v: %s", socket, err, out)
	}
	out, err := exec.Command("tmux", "-L", socket, "display-message", "-p", "#{pid}\t#{socket_path}").Output()
	if err != nil {
		t.Fatal(err)
	}
	pidText, socketPath, _ := strings.Cut(strings.TrimSpace(string(out)), "\t")
	pid, err := strconv.Atoi(pidText)
	if err != nil {
		t.Fatalf("server pid %q: %v", out, err)
	}
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGCONT)
		exec.Command("tmux", "-L", socket, "kill-server").Run()
		os.Remove(socketPath)
	})
	return New(socket), pid
}

// hungCalls runs every Client method against c and returns their errors.
func hungCalls(t *testing.T, c *Client) map[string]error {
	ctx := t.Context()
	errs := map[string]error{}
	_, errs["ListSessions"] = c.ListSessions(ctx)
	_, errs["HasSession"] = c.HasSession(ctx, "sentinel")
	_, errs["CapturePane"] = c.CapturePane(ctx, "sentinel", 10)
	errs["KillSession"] = c.KillSession(ctx, "sentinel")
	errs["NewSession"] = c.NewSession(ctx, NewSessionOptions{Name: "loop-new", Argv: sleeper()})
	return errs
}

// TestRealStoppedServer: with the server SIGSTOPped, every call returns
// ErrTimeout after its deadline instead of hanging for ever, and the server
// works again once continued.
func TestRealStoppedServer(t *testing.T) {
	t.Parallel()
	c, pid := privateServer(t, "")
	c = c.WithTimeout(300 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for name, err := range hungCalls(t, c) {
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("%s with the server stopped: got %v, want ErrTimeout", name, err)
		}
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// What the killed clients had already sent (kill-session included) may
	// still be done now; the server answers again.
	if _, err := c.WithTimeout(5 * time.Second).ListSessions(t.Context()); err != nil {
		t.Errorf("ListSessions after SIGCONT: %v", err)
	}
}

// TestRealSilentSocket: a socket that accepts connections and never
// answers (not a tmux server at all) costs one timeout per call.
func TestRealSilentSocket(t *testing.T) {
	t.Parallel()
	realClient(t)
	dir := os.Getenv("TMUX_TMPDIR")
	if dir == "" {
		dir = "/tmp"
	}
	dir = filepath.Join(dir, fmt.Sprintf("tmux-%d", os.Getuid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	socket := fmt.Sprintf("%s-silent%d", testSocket, serverSeq.Add(1))
	ln, err := net.Listen("unix", filepath.Join(dir, socket))
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
			t.Cleanup(func() { conn.Close() }) // hold it open, say nothing
		}
	}()
	c := New(socket).WithTimeout(300 * time.Millisecond)
	for name, err := range hungCalls(t, c) {
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("%s on a silent socket: got %v, want ErrTimeout", name, err)
		}
	}
}

// TestRealRemainOnExitConfig: a user config with remain-on-exit on must not
// keep our sessions around, dead, once their command ends.
func TestRealRemainOnExitConfig(t *testing.T) {
	t.Parallel()
	c, _ := privateServer(t, "set-option -g remain-on-exit on\n")
	ctx := t.Context()
	if err := c.NewSession(ctx, NewSessionOptions{Name: "loop-quick", Argv: []string{"true", "quick"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "loop-quick to close when its command ended", func() bool {
		ok, err := c.HasSession(ctx, "loop-quick")
		if err != nil {
			t.Fatal(err)
		}
		return !ok
	})
	// A session made without us keeps the user's setting: its pane stays, dead.
	if _, err := c.exec(ctx, "new-session", "-d", "-s", "users", "--", "true", "users"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the user's session to show a dead pane", func() bool {
		sessions, err := c.ListSessions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sessions {
			if s.Name == "users" {
				return s.PaneDead
			}
		}
		t.Fatal("the user's session vanished: its remain-on-exit was changed")
		return false
	})
}

// TestRealOddSessionsListed: a session (not ours) with a newline and a tab
// in its name and in its directory does not break the listing of others.
func TestRealOddSessionsListed(t *testing.T) {
	t.Parallel()
	c, _ := privateServer(t, "")
	ctx := t.Context()
	odd := filepath.Join(t.TempDir(), "a\nb\tc")
	if err := os.Mkdir(odd, 0o755); err != nil {
		t.Fatal(err)
	}
	// Made with tmux directly: our ValidateName would refuse the name.
	if out, err := c.exec(ctx, "new-session", "-d", "-s", "odd\nname\there", "-c", odd, "--", "sleep", "60"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := c.NewSession(ctx, NewSessionOptions{Name: "loop-after", Dir: odd, Argv: sleeper()}); err != nil {
		t.Fatal(err)
	}
	sessions, err := c.ListSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range sessions {
		got[s.Name] = s.Path
	}
	// tmux stores a name's control characters escaped ("\\n"), a path's verbatim.
	for _, name := range []string{"sentinel", `odd\nname\there`, "loop-after"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%q missing from %q", name, got)
		}
	}
	if got["loop-after"] != odd {
		t.Errorf("loop-after path = %q, want %q", got["loop-after"], odd)
	}
}
