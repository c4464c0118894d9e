package tmux

// Tests against a real tmux server on a private socket. TestMain starts that
// server (with a sentinel session so it stays up between tests) and always
// kills it at the end; the user's default server is never touched.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// helperArg, as the test binary's first argument, turns it into the pane
// helper program (see helperMain) instead of running tests.
const helperArg = "tmux-test-helper"

// helperEnv is the variable the helper reports, to prove -e reaches the command.
const helperEnv = "AS_TMUX_TEST_VAR"

var (
	testSocket  string // private -L socket for this test process
	tmuxMissing error  // non-nil when tmux is not on PATH and real tests skip
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == helperArg {
		os.Exit(helperMain(os.Args[2:]))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	testSocket = fmt.Sprintf("as-test-%d", os.Getpid())
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintf(os.Stderr, "tmux is required when CI is set: %v\n", err)
			return 1
		}
		tmuxMissing = err
		return m.Run()
	}
	// -f /dev/null keeps the user's tmux.conf out of the test server.
	start := exec.Command("tmux", "-L", testSocket, "-f", "/dev/null",
		"new-session", "-d", "-s", "as-sentinel", "--", "sleep", "3600")
	if out, err := start.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "start tmux test server: %v: %s\n", err, out)
		return 1
	}
	// kill-server leaves the socket file behind; remove it too.
	socketPath, _ := exec.Command("tmux", "-L", testSocket, "display-message", "-p", "#{socket_path}").Output()
	defer func() {
		_ = exec.Command("tmux", "-L", testSocket, "kill-server").Run()
		if p := strings.TrimSpace(string(socketPath)); p != "" {
			_ = os.Remove(p)
		}
	}()
	return m.Run()
}

// helperMain is the pane program: it records its arguments and the value of
// helperEnv to the file args[0] (atomically), prints them to the pane, and
// then waits to be killed.
func helperMain(args []string) int {
	if len(args) < 1 {
		return 2
	}
	rec := helperRecord{Args: args[1:], Env: os.Getenv(helperEnv)}
	for _, a := range rec.Args {
		fmt.Printf("ARG:%s\n", a)
	}
	fmt.Printf("ENV:%s\n", rec.Env)
	b, _ := json.Marshal(rec)
	tmp := args[0] + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return 1
	}
	if err := os.Rename(tmp, args[0]); err != nil {
		return 1
	}
	time.Sleep(60 * time.Second)
	return 0
}

type helperRecord struct {
	Args []string `json:"args"`
	Env  string   `json:"env"`
}

// realClient returns a Client on the private test socket, skipping the test
// when tmux is not installed.
func realClient(t *testing.T) *Client {
	t.Helper()
	if tmuxMissing != nil {
		t.Skipf("tmux not installed: %v", tmuxMissing)
	}
	return New(testSocket)
}

// newTestSession creates a session and kills it when the test ends.
func newTestSession(t *testing.T, c *Client, o NewSessionOptions) {
	t.Helper()
	if err := c.NewSession(t.Context(), o); err != nil {
		t.Fatalf("NewSession(%s): %v", o.Name, err)
	}
	t.Cleanup(func() { _ = c.KillSession(context.Background(), o.Name) })
}

// waitFor polls cond until it is true or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeExecutable(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o755)
}

func sleeper() []string { return []string{"sleep", "30"} }

func TestRealAvailable(t *testing.T) {
	c := realClient(t)
	if err := c.Available(); err != nil {
		t.Errorf("Available() = %v, want nil", err)
	}
}

// TestRealPrefixSafety proves "loop-a" never resolves to "loop-auth".
func TestRealPrefixSafety(t *testing.T) {
	c := realClient(t)
	ctx := t.Context()
	newTestSession(t, c, NewSessionOptions{Name: "loop-auth", Argv: sleeper()})

	if ok, err := c.HasSession(ctx, "loop-a"); ok || err != nil {
		t.Errorf("HasSession(loop-a) = %v, %v; want false, nil", ok, err)
	}
	if err := c.KillSession(ctx, "loop-a"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("KillSession(loop-a) = %v, want ErrSessionNotFound", err)
	}
	if ok, err := c.HasSession(ctx, "loop-auth"); !ok || err != nil {
		t.Errorf("HasSession(loop-auth) after KillSession(loop-a) = %v, %v; want true, nil", ok, err)
	}
	if _, err := c.CapturePane(ctx, "loop-a", 10); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("CapturePane(loop-a) = %v, want ErrSessionNotFound", err)
	}
}

// TestRealNewSessionArgvVerbatim proves the command's arguments reach it
// byte for byte (no shell ever sees them), that Env set with -e reaches it,
// and that CapturePane returns what it printed.
func TestRealNewSessionArgvVerbatim(t *testing.T) {
	c := realClient(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "record.json")
	args := []string{"a;b $(x) `y`", "$HOME", "*", "'q' \"d\"", "two  words", "x|y&z>w"}
	envValue := "v with spaces;$(x)"
	newTestSession(t, c, NewSessionOptions{
		Name:  "argv-verbatim",
		Dir:   dir,
		Env:   []string{helperEnv + "=" + envValue},
		Argv:  append([]string{exe, helperArg, out}, args...),
		Width: 200,
	})

	var rec helperRecord
	waitFor(t, "the helper's record", func() bool {
		b, err := os.ReadFile(out)
		return err == nil && json.Unmarshal(b, &rec) == nil
	})
	if !slices.Equal(rec.Args, args) {
		t.Errorf("args:\n got %q\nwant %q", rec.Args, args)
	}
	if rec.Env != envValue {
		t.Errorf("env: got %q, want %q", rec.Env, envValue)
	}

	var want strings.Builder
	for _, a := range args {
		fmt.Fprintf(&want, "ARG:%s\n", a)
	}
	fmt.Fprintf(&want, "ENV:%s", envValue)
	var got string
	waitFor(t, "the helper's output in the pane", func() bool {
		got, err = c.CapturePane(t.Context(), "argv-verbatim", 100)
		return err == nil && strings.Contains(got, "ENV:")
	})
	if got != want.String() {
		t.Errorf("CapturePane:\n got %q\nwant %q", got, want.String())
	}
}

// TestRealNewSessionSingleArgNoShell proves a one-element Argv is exec'd,
// not handed to `sh -c` (tmux's behaviour for a single argument).
func TestRealNewSessionSingleArgNoShell(t *testing.T) {
	c := realClient(t)
	dir := t.TempDir()
	// Through a shell this path would run "<dir>/a" and then "touch pwned".
	prog := filepath.Join(dir, "a;touch pwned")
	if err := writeExecutable(prog, "#!/bin/sh\necho ran > ran\nexec sleep 30\n"); err != nil {
		t.Fatal(err)
	}
	newTestSession(t, c, NewSessionOptions{Name: "single-arg", Dir: dir, Argv: []string{prog}})
	waitFor(t, "the program to run", func() bool {
		_, err := os.Stat(filepath.Join(dir, "ran"))
		return err == nil
	})
	if _, err := os.Stat(filepath.Join(dir, "pwned")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat pwned: %v; the argument went through a shell", err)
	}
}

// TestRealListSessions proves one list-sessions call reports name, created
// time, path, pane pid and pane state for several sessions.
func TestRealListSessions(t *testing.T) {
	calls := 0
	c := realClient(t)
	c = c.WithRunner(func(ctx context.Context, argv []string) ([]byte, error) {
		calls++
		return ExecRunner(ctx, argv)
	})
	before := time.Now().Add(-time.Second)
	type want struct{ dir, pidFile string }
	wants := map[string]want{}
	for _, name := range []string{"list-one", "list-two", "list-three"} {
		dir := t.TempDir()
		pidFile := filepath.Join(dir, "pid")
		wants[name] = want{dir, pidFile}
		// The shell writes its pid and then execs sleep, so the pane pid is that pid.
		newTestSession(t, c, NewSessionOptions{
			Name: name, Dir: dir,
			Argv: []string{"sh", "-c", `echo $$ > "$1.tmp" && mv "$1.tmp" "$1" && exec sleep 30`, "sh", pidFile},
		})
	}
	after := time.Now().Add(time.Second)
	for name, w := range wants {
		waitFor(t, name+"'s pid file", func() bool {
			_, err := os.Stat(w.pidFile)
			return err == nil
		})
	}

	calls = 0
	sessions, err := c.ListSessions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("ListSessions made %d tmux calls, want 1", calls)
	}
	seen := map[string]bool{}
	for _, s := range sessions {
		w, ok := wants[s.Name]
		if !ok {
			continue
		}
		seen[s.Name] = true
		b, err := os.ReadFile(w.pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if s.PanePID != pid {
			t.Errorf("%s: PanePID = %d, want %d", s.Name, s.PanePID, pid)
		}
		if s.Path != w.dir {
			t.Errorf("%s: Path = %q, want %q", s.Name, s.Path, w.dir)
		}
		if s.Created.Before(before) || s.Created.After(after) {
			t.Errorf("%s: Created = %v, want between %v and %v", s.Name, s.Created, before, after)
		}
		if s.PaneDead || s.Attached {
			t.Errorf("%s: PaneDead = %v, Attached = %v; want false, false", s.Name, s.PaneDead, s.Attached)
		}
	}
	for name := range wants {
		if !seen[name] {
			t.Errorf("session %s missing from %+v", name, sessions)
		}
	}
}

// TestRealListSessionsPaneDead proves PaneDead reports a pane whose command
// has exited (kept around by remain-on-exit).
func TestRealListSessionsPaneDead(t *testing.T) {
	c := realClient(t)
	flag := filepath.Join(t.TempDir(), "exit-now")
	newTestSession(t, c, NewSessionOptions{
		Name: "pane-dead",
		Argv: []string{"sh", "-c", `while [ ! -e "$1" ]; do sleep 0.05; done`, "sh", flag},
	})
	if _, err := c.exec(t.Context(), "set-option", "-w", "-t", paneTarget("pane-dead"), "remain-on-exit", "on"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pane to be reported dead", func() bool {
		sessions, err := c.ListSessions(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sessions {
			if s.Name == "pane-dead" {
				return s.PaneDead
			}
		}
		t.Fatal("session pane-dead vanished")
		return false
	})
}

// TestRealNoServer proves a socket with no server behaves as "no sessions".
func TestRealNoServer(t *testing.T) {
	realClient(t)
	c := New(testSocket + "-none")
	ctx := t.Context()
	sessions, err := c.ListSessions(ctx)
	if err != nil || sessions == nil || len(sessions) != 0 {
		t.Errorf("ListSessions = %v, %v; want empty non-nil slice, nil", sessions, err)
	}
	if ok, err := c.HasSession(ctx, "loop-a"); ok || err != nil {
		t.Errorf("HasSession = %v, %v; want false, nil", ok, err)
	}
	err = c.KillSession(ctx, "loop-a")
	if !errors.Is(err, ErrSessionNotFound) || !errors.Is(err, ErrNoServer) {
		t.Errorf("KillSession = %v, want ErrSessionNotFound and ErrNoServer", err)
	}
	if _, err := c.CapturePane(ctx, "loop-a", 10); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("CapturePane = %v, want ErrSessionNotFound", err)
	}
}

func TestRealCapturePane(t *testing.T) {
	c := realClient(t)
	newTestSession(t, c, NewSessionOptions{
		Name: "capture",
		Argv: []string{"sh", "-c", `printf 'one\ntwo  \n\nthree\n'; exec sleep 30`},
	})
	var got string
	waitFor(t, "output in the pane", func() bool {
		var err error
		got, err = c.CapturePane(t.Context(), "capture", 50)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(got, "three")
	})
	if want := "one\ntwo  \n\nthree"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRealKillSession(t *testing.T) {
	c := realClient(t)
	ctx := t.Context()
	newTestSession(t, c, NewSessionOptions{Name: "kill-me", Argv: sleeper()})
	if err := c.KillSession(ctx, "kill-me"); err != nil {
		t.Fatalf("KillSession = %v, want nil", err)
	}
	if ok, err := c.HasSession(ctx, "kill-me"); ok || err != nil {
		t.Errorf("HasSession after kill = %v, %v; want false, nil", ok, err)
	}
	if err := c.KillSession(ctx, "kill-me"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("second KillSession = %v, want ErrSessionNotFound", err)
	}
}

func TestRealDuplicateSession(t *testing.T) {
	c := realClient(t)
	newTestSession(t, c, NewSessionOptions{Name: "dup", Argv: sleeper()})
	err := c.NewSession(t.Context(), NewSessionOptions{Name: "dup", Argv: sleeper()})
	if !errors.Is(err, ErrSessionExists) {
		t.Errorf("second NewSession = %v, want ErrSessionExists", err)
	}
	if err != nil && !strings.Contains(err.Error(), "duplicate session: dup") {
		t.Errorf("error %q does not keep tmux's message", err)
	}
}

// TestRealSize proves Width and Height set the window size, and that the
// pane target "=name:" works for display-message.
func TestRealSize(t *testing.T) {
	c := realClient(t)
	newTestSession(t, c, NewSessionOptions{Name: "sized", Argv: sleeper(), Width: 123, Height: 37})
	out, err := c.exec(t.Context(), "display-message", "-p", "-t", paneTarget("sized"), "#{window_width}x#{window_height}")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(out)), "123x37"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
