package tmux

import (
	"context"
	"errors"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeRunner records every argv it is given and answers with out and err.
type fakeRunner struct {
	calls [][]string
	out   string
	err   error
}

func (f *fakeRunner) run(_ context.Context, argv []string) ([]byte, error) {
	f.calls = append(f.calls, slices.Clone(argv))
	return []byte(f.out), f.err
}

func fakeClient(socket string, out string, err error) (*Client, *fakeRunner) {
	f := &fakeRunner{out: out, err: err}
	return New(socket).WithRunner(f.run), f
}

// onlyCall returns the single argv the fake saw, failing unless there was exactly one.
func onlyCall(t *testing.T, f *fakeRunner) []string {
	t.Helper()
	if len(f.calls) != 1 {
		t.Fatalf("got %d tmux calls %q, want 1", len(f.calls), f.calls)
	}
	return f.calls[0]
}

func assertArgv(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("argv:\n got %q\nwant %q", got, want)
	}
}

// TestArgv snapshots the exact argv of every method that runs tmux.
func TestArgv(t *testing.T) {
	tests := []struct {
		name   string
		socket string
		call   func(ctx context.Context, c *Client) error
		want   []string
	}{
		{
			name:   "list-sessions",
			socket: "sock",
			call:   func(ctx context.Context, c *Client) error { _, err := c.ListSessions(ctx); return err },
			want: []string{"tmux", "-L", "sock", "-u", "list-sessions", "-F",
				"#{session_name}\x1f#{session_created}\x1f#{session_attached}\x1f#{pane_pid}\x1f#{pane_dead}\x1f#{session_path}\x1e"},
		},
		{
			name:   "has-session exact target",
			socket: "sock",
			call:   func(ctx context.Context, c *Client) error { _, err := c.HasSession(ctx, "loop-a"); return err },
			want:   []string{"tmux", "-L", "sock", "-u", "has-session", "-t", "=loop-a"},
		},
		{
			name:   "default server has no -L",
			socket: "",
			call:   func(ctx context.Context, c *Client) error { _, err := c.HasSession(ctx, "loop-a"); return err },
			want:   []string{"tmux", "-u", "has-session", "-t", "=loop-a"},
		},
		{
			name:   "new-session full",
			socket: "sock",
			call: func(ctx context.Context, c *Client) error {
				return c.NewSession(ctx, NewSessionOptions{
					Name: "loop-a", Dir: "/work dir", Env: []string{"A=1", "B=x y"},
					Argv:  []string{"claude", "-p", "a;b $(x) `y`"},
					Width: 120, Height: 40,
				})
			},
			want: []string{"tmux", "-L", "sock", "-u", "new-session", "-d", "-s", "loop-a", "-c", "/work dir",
				"-x", "120", "-y", "40", "-e", "A=1", "-e", "B=x y", "--", "claude", "-p", "a;b $(x) `y`", ";", "set-option", "-t", "=loop-a:", "remain-on-exit", "off"},
		},
		{
			name:   "new-session minimal",
			socket: "sock",
			call: func(ctx context.Context, c *Client) error {
				return c.NewSession(ctx, NewSessionOptions{Name: "loop-a", Argv: []string{"sleep", "30"}})
			},
			want: []string{"tmux", "-L", "sock", "-u", "new-session", "-d", "-s", "loop-a", "--", "sleep", "30", ";", "set-option", "-t", "=loop-a:", "remain-on-exit", "off"},
		},
		{
			name:   "new-session single-element argv goes through env, not a shell",
			socket: "sock",
			call: func(ctx context.Context, c *Client) error {
				return c.NewSession(ctx, NewSessionOptions{Name: "loop-a", Argv: []string{"my prog;x"}})
			},
			want: []string{"tmux", "-L", "sock", "-u", "new-session", "-d", "-s", "loop-a", "--", "env", "--", "my prog;x", ";", "set-option", "-t", "=loop-a:", "remain-on-exit", "off"},
		},
		{
			name:   "new-session without argv uses the default command",
			socket: "sock",
			call: func(ctx context.Context, c *Client) error {
				return c.NewSession(ctx, NewSessionOptions{Name: "loop-a"})
			},
			want: []string{"tmux", "-L", "sock", "-u", "new-session", "-d", "-s", "loop-a", ";", "set-option", "-t", "=loop-a:", "remain-on-exit", "off"},
		},
		{
			name:   "capture-pane with history",
			socket: "sock",
			call:   func(ctx context.Context, c *Client) error { _, err := c.CapturePane(ctx, "loop-a", 200); return err },
			want:   []string{"tmux", "-L", "sock", "-u", "capture-pane", "-p", "-J", "-t", "=loop-a:", "-S", "-200"},
		},
		{
			name:   "capture-pane visible screen",
			socket: "sock",
			call:   func(ctx context.Context, c *Client) error { _, err := c.CapturePane(ctx, "loop-a", 0); return err },
			want:   []string{"tmux", "-L", "sock", "-u", "capture-pane", "-p", "-J", "-t", "=loop-a:"},
		},
		{
			name:   "kill-session exact target",
			socket: "sock",
			call:   func(ctx context.Context, c *Client) error { return c.KillSession(ctx, "loop-a") },
			want:   []string{"tmux", "-L", "sock", "-u", "kill-session", "-t", "=loop-a"},
		},
		{
			name:   "kill-server",
			socket: "sock",
			call:   func(ctx context.Context, c *Client) error { return c.KillServer(ctx) },
			want:   []string{"tmux", "-L", "sock", "-u", "kill-server"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := fakeClient(tt.socket, "", nil)
			if err := tt.call(t.Context(), c); err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			assertArgv(t, onlyCall(t, f), tt.want)
		})
	}
}

func TestAttachAndSwitchCommands(t *testing.T) {
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"attach", New("sock").AttachCommand("loop-a", false), []string{"tmux", "-L", "sock", "attach-session", "-t", "=loop-a"}},
		{"attach read-only", New("sock").AttachCommand("loop-a", true), []string{"tmux", "-L", "sock", "attach-session", "-t", "=loop-a", "-r"}},
		{"attach default server", New("").AttachCommand("loop-a", false), []string{"tmux", "attach-session", "-t", "=loop-a"}},
		{"switch", New("sock").SwitchCommand("loop-a"), []string{"tmux", "-L", "sock", "switch-client", "-t", "=loop-a"}},
		{"switch default server", New("").SwitchCommand("loop-a"), []string{"tmux", "switch-client", "-t", "=loop-a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assertArgv(t, tt.got, tt.want) })
	}
}

func TestNewFromEnv(t *testing.T) {
	t.Setenv(SocketEnv, "from-env")
	if got, want := NewFromEnv().Socket(), "from-env"; got != want {
		t.Errorf("Socket() = %q, want %q", got, want)
	}
	t.Setenv(SocketEnv, "")
	if got, want := NewFromEnv().Socket(), ""; got != want {
		t.Errorf("Socket() = %q, want %q", got, want)
	}
}

// TestErrorMapping proves tmux's stderr becomes the right sentinel, with
// tmux's message kept in the text.
func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name   string
		stderr string
		call   func(ctx context.Context, c *Client) error
		want   []error
	}{
		{"kill missing session", "can't find session: loop-a",
			func(ctx context.Context, c *Client) error { return c.KillSession(ctx, "loop-a") },
			[]error{ErrSessionNotFound}},
		{"kill with no server", "no server running on /tmp/tmux-0/sock",
			func(ctx context.Context, c *Client) error { return c.KillSession(ctx, "loop-a") },
			[]error{ErrSessionNotFound, ErrNoServer}},
		{"kill with missing socket", "error connecting to /tmp/tmux-0/sock (No such file or directory)",
			func(ctx context.Context, c *Client) error { return c.KillSession(ctx, "loop-a") },
			[]error{ErrSessionNotFound, ErrNoServer}},
		{"capture missing pane", "can't find pane: =loop-a",
			func(ctx context.Context, c *Client) error { _, err := c.CapturePane(ctx, "loop-a", 10); return err },
			[]error{ErrSessionNotFound}},
		{"capture missing window", "can't find window: 0",
			func(ctx context.Context, c *Client) error { _, err := c.CapturePane(ctx, "loop-a", 10); return err },
			[]error{ErrSessionNotFound}},
		{"capture with no server", "no server running on /tmp/tmux-0/sock",
			func(ctx context.Context, c *Client) error { _, err := c.CapturePane(ctx, "loop-a", 10); return err },
			[]error{ErrSessionNotFound, ErrNoServer}},
		{"server shutting down", "no current target",
			func(ctx context.Context, c *Client) error { return c.KillSession(ctx, "loop-a") },
			[]error{ErrSessionNotFound}},
		{"duplicate", "duplicate session: loop-a",
			func(ctx context.Context, c *Client) error {
				return c.NewSession(ctx, NewSessionOptions{Name: "loop-a", Argv: []string{"sleep", "1"}})
			},
			[]error{ErrSessionExists}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fakeClient("sock", "", &runError{stderr: tt.stderr, err: errors.New("exit status 1")})
			err := tt.call(t.Context(), c)
			if err == nil {
				t.Fatal("got nil error")
			}
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("got %v, want errors.Is %v", err, want)
				}
			}
			if !strings.Contains(err.Error(), tt.stderr) {
				t.Errorf("error %q does not keep tmux's message %q", err, tt.stderr)
			}
			if msg := err.Error(); msg != strings.ToLower(msg[:1])+msg[1:] {
				t.Errorf("error %q does not start lowercase", msg)
			}
		})
	}
}

func TestUnmappedErrorIsWrapped(t *testing.T) {
	cause := &runError{stderr: "unknown option -- z", err: errors.New("exit status 1")}
	c, _ := fakeClient("sock", "", cause)
	err := c.KillSession(t.Context(), "loop-a")
	if !errors.Is(err, cause) {
		t.Errorf("got %v, want it to wrap the runner error", err)
	}
	for _, s := range []error{ErrSessionNotFound, ErrNoServer, ErrSessionExists, ErrNotInstalled} {
		if errors.Is(err, s) {
			t.Errorf("got %v, want it not to match %v", err, s)
		}
	}
}

func TestNotFoundAndNoServerAreNotErrorsForQueries(t *testing.T) {
	for _, stderr := range []string{
		"no server running on /tmp/tmux-0/sock",
		"error connecting to /tmp/tmux-0/sock (No such file or directory)",
	} {
		c, _ := fakeClient("sock", "", &runError{stderr: stderr, err: errors.New("exit status 1")})
		got, err := c.ListSessions(t.Context())
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("%s: ListSessions = %v, %v; want empty non-nil slice, nil", stderr, got, err)
		}
		ok, err := c.HasSession(t.Context(), "loop-a")
		if ok || err != nil {
			t.Errorf("%s: HasSession = %v, %v; want false, nil", stderr, ok, err)
		}
		if err := c.KillServer(t.Context()); err != nil {
			t.Errorf("%s: KillServer = %v, want nil", stderr, err)
		}
	}
	c, _ := fakeClient("sock", "", &runError{stderr: "can't find session: loop-a", err: errors.New("exit status 1")})
	ok, err := c.HasSession(t.Context(), "loop-a")
	if ok || err != nil {
		t.Errorf("HasSession(missing) = %v, %v; want false, nil", ok, err)
	}
}

func TestContextErrorIsWrapped(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c, _ := fakeClient("sock", "", errors.New("signal: killed"))
	if err := c.KillSession(ctx, "loop-a"); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestKillServerRefusesDefaultServer(t *testing.T) {
	c, f := fakeClient("", "", nil)
	if err := c.KillServer(t.Context()); err == nil {
		t.Error("got nil error, want a refusal")
	}
	if len(f.calls) != 0 {
		t.Errorf("tmux was run: %q", f.calls)
	}
}

func TestListSessionsParses(t *testing.T) {
	out := "loop-a\x1f1700000000\x1f0\x1f4242\x1f0\x1f/home/u/a dir\x1e\n" +
		"loop-b\x1f1700000060\x1f2\x1f4343\x1f1\x1f/tmp\x1e\n"
	c, _ := fakeClient("sock", out, nil)
	got, err := c.ListSessions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []Session{
		{Name: "loop-a", Created: time.Unix(1700000000, 0), Path: "/home/u/a dir", PanePID: 4242},
		{Name: "loop-b", Created: time.Unix(1700000060, 0), Path: "/tmp", PanePID: 4343, PaneDead: true, Attached: true},
	}
	if !slices.EqualFunc(got, want, func(a, b Session) bool { return a == b }) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestListSessionsSkipsGarbage proves an unreadable record is reported
// and skipped, never hiding the sessions around it.
func TestListSessionsSkipsGarbage(t *testing.T) {
	good := "loop-ok\x1f1700000000\x1f0\x1f4242\x1f0\x1f/\x1e\n"
	for _, bad := range []string{"just-a-name\x1e\n", "n\x1fnot-a-time\x1f0\x1f1\x1f0\x1f/\x1e\n", "n\x1f1\x1f0\x1fpid\x1f0\x1f/\x1e\n", "cut\x1f1\x1f0"} {
		out := bad + good
		if !strings.HasSuffix(bad, "\n") {
			out = good + bad // a record cut short can only be the last
		}
		c, _ := fakeClient("sock", out, nil)
		got, err := c.ListSessions(t.Context())
		if !errors.Is(err, ErrUnparsable) {
			t.Errorf("ListSessions(%q): got error %v, want ErrUnparsable", bad, err)
		}
		if len(got) != 1 || got[0].Name != "loop-ok" {
			t.Errorf("ListSessions(%q) = %+v, want loop-ok kept", bad, got)
		}
	}
}

// TestListSessionsNewlines proves a newline or tab in a session's name or
// directory (printed verbatim by tmux) breaks nothing.
func TestListSessionsNewlines(t *testing.T) {
	out := "we\nird\x1f1700000000\x1f0\x1f1\x1f0\x1f/tmp/a\nb\tc\x1e\n" +
		"loop-a\x1f1700000000\x1f0\x1f2\x1f1\x1f/\nunexpected\x1e\n"
	c, _ := fakeClient("sock", out, nil)
	got, err := c.ListSessions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "we\nird" || got[0].Path != "/tmp/a\nb\tc" || got[1].Name != "loop-a" || !got[1].PaneDead {
		t.Errorf("got %+v", got)
	}
}

// TestTimeout proves every call carries a deadline even when the caller's
// ctx has none, that the runner's ctx is cancelled then (ExecRunner kills
// tmux on it), and that the error is ErrTimeout.
func TestTimeout(t *testing.T) {
	t.Parallel()
	hang := func(ctx context.Context, argv []string) ([]byte, error) {
		<-ctx.Done()
		return nil, errors.New("signal: killed")
	}
	c := New("sock").WithRunner(hang).WithTimeout(20 * time.Millisecond)
	ctx := context.Background()
	checks := map[string]error{}
	_, checks["ListSessions"] = c.ListSessions(ctx)
	_, checks["HasSession"] = c.HasSession(ctx, "loop-a")
	_, checks["CapturePane"] = c.CapturePane(ctx, "loop-a", 10)
	checks["KillSession"] = c.KillSession(ctx, "loop-a")
	checks["NewSession"] = c.NewSession(ctx, NewSessionOptions{Name: "loop-a", Argv: []string{"sleep", "1"}})
	for name, err := range checks {
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: got %v, want ErrTimeout", name, err)
		}
		if errors.Is(err, ErrSessionNotFound) {
			t.Errorf("%s: %v must not say the session is missing: nobody knows", name, err)
		}
	}
	if _, err := c.HasSession(ctx, "loop-a"); err == nil || !strings.Contains(err.Error(), "-L sock ls") {
		t.Errorf("HasSession error %v should say how to check the server", err)
	}
}

func TestCapturePaneTrimsTrailingBlankLines(t *testing.T) {
	c, _ := fakeClient("sock", "  first\n\nlast  \n\n   \n\n", nil)
	got, err := c.CapturePane(t.Context(), "loop-a", 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := "  first\n\nlast  "; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestInvalidNamesNeverReachTmux proves names that cannot be targeted
// exactly are refused before any tmux call.
func TestInvalidNamesNeverReachTmux(t *testing.T) {
	for _, name := range []string{"", "a:b", "a.b", "a b", "a\tb", "a\nb", "a\x1fb", "a\x00b", "a\u00a0b"} {
		t.Run(strconv.Quote(name), func(t *testing.T) {
			c, f := fakeClient("sock", "", nil)
			ctx := t.Context()
			errs := map[string]error{}
			_, errs["HasSession"] = c.HasSession(ctx, name)
			errs["NewSession"] = c.NewSession(ctx, NewSessionOptions{Name: name, Argv: []string{"sleep", "1"}})
			_, errs["CapturePane"] = c.CapturePane(ctx, name, 10)
			errs["KillSession"] = c.KillSession(ctx, name)
			for method, err := range errs {
				if !errors.Is(err, ErrInvalidName) {
					t.Errorf("%s: got %v, want ErrInvalidName", method, err)
				}
			}
			if len(f.calls) != 0 {
				t.Errorf("tmux was run: %q", f.calls)
			}
		})
	}
	for _, name := range []string{"loop-a", "pipeline-x1", "A_b", "-x", "=x"} {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		}
	}
}

func TestNewSessionRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		o    NewSessionOptions
	}{
		{"env without =", NewSessionOptions{Name: "loop-a", Env: []string{"NOEQUALS"}, Argv: []string{"sleep", "1"}}},
		{"env with empty key", NewSessionOptions{Name: "loop-a", Env: []string{"=v"}, Argv: []string{"sleep", "1"}}},
		{"lone argument with =", NewSessionOptions{Name: "loop-a", Argv: []string{"A=b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := fakeClient("sock", "", nil)
			if err := c.NewSession(t.Context(), tt.o); err == nil {
				t.Error("got nil error")
			}
			if len(f.calls) != 0 {
				t.Errorf("tmux was run: %q", f.calls)
			}
		})
	}
}

// TestAvailableWithoutTmux proves a PATH without tmux gives ErrNotInstalled
// (wrapping exec.ErrNotFound), both from Available and from any call, and
// that Available's lookup is cached.
func TestAvailableWithoutTmux(t *testing.T) {
	fakeDir := t.TempDir()
	t.Setenv("PATH", t.TempDir())
	c := New("as-test-unused")
	err := c.Available()
	if !errors.Is(err, ErrNotInstalled) || !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("Available() = %v, want ErrNotInstalled wrapping exec.ErrNotFound", err)
	}
	_, err = c.HasSession(t.Context(), "loop-a")
	if !errors.Is(err, ErrNotInstalled) || !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("HasSession = %v, want ErrNotInstalled wrapping exec.ErrNotFound", err)
	}
	if _, err := c.ListSessions(t.Context()); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("ListSessions = %v, want ErrNotInstalled", err)
	}

	// Put a "tmux" on PATH: the cached answer must not change.
	if err := writeExecutable(filepath.Join(fakeDir, "tmux"), "#!/bin/sh\nexit 0\n"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", fakeDir)
	if err := c.Available(); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("second Available() = %v, want the cached ErrNotInstalled", err)
	}
	if err := New("as-test-unused").Available(); err != nil {
		t.Errorf("fresh client Available() = %v, want nil", err)
	}
}

func TestInstallHint(t *testing.T) {
	if got, want := InstallHint(), "install tmux: sudo apt-get install tmux / brew install tmux"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestImportsOnlyStandardLibrary keeps package tmux free of project (and
// third-party) imports.
func TestImportsOnlyStandardLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %q; package tmux may import only the standard library", file, path)
			}
		}
	}
}

// TestTimeoutFromEnv: TimeoutEnv sets the per-call deadline; a value that
// is not a positive duration keeps the default (never "no deadline").
func TestTimeoutFromEnv(t *testing.T) {
	for _, tt := range []struct {
		env  string
		want time.Duration
	}{
		{"", DefaultTimeout},
		{"250ms", 250 * time.Millisecond},
		{"10", DefaultTimeout},
		{"0s", DefaultTimeout},
		{"-1s", DefaultTimeout},
	} {
		t.Setenv(TimeoutEnv, tt.env)
		if got := NewFromEnv().Timeout(); got != tt.want {
			t.Errorf("%s=%q: timeout %s, want %s", TimeoutEnv, tt.env, got, tt.want)
		}
	}
}

// TestNewSessionRetriesExitingServer: tmux answers "server exited
// unexpectedly" when a new-session reaches a server that is shutting down
// because its last session just closed; the session died with it, so
// NewSession asks again (which starts a fresh server) instead of failing.
func TestNewSessionRetriesExitingServer(t *testing.T) {
	calls := 0
	c := New("sock").WithRunner(func(_ context.Context, argv []string) ([]byte, error) {
		calls++
		if calls == 1 {
			return nil, &runError{stderr: "server exited unexpectedly", err: errors.New("exit status 1")}
		}
		return nil, nil
	})
	if err := c.NewSession(context.Background(), NewSessionOptions{Name: "loop-a", Argv: []string{"true"}}); err != nil {
		t.Fatalf("NewSession after one exiting server: %v, want nil", err)
	}
	if calls != 2 {
		t.Errorf("tmux ran %d times, want 2", calls)
	}

	// A server that keeps exiting is reported after a bounded number of tries.
	calls = 0
	c = New("sock").WithRunner(func(_ context.Context, argv []string) ([]byte, error) {
		calls++
		return nil, &runError{stderr: "server exited unexpectedly", err: errors.New("exit status 1")}
	})
	if err := c.NewSession(context.Background(), NewSessionOptions{Name: "loop-a", Argv: []string{"true"}}); !errors.Is(err, ErrNoServer) {
		t.Fatalf("NewSession with a server that always exits: %v, want ErrNoServer", err)
	}
	if calls != newSessionAttempts {
		t.Errorf("tmux ran %d times, want %d", calls, newSessionAttempts)
	}
}
