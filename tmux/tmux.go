// Package tmux owns every interaction with the tmux binary: building argv,
// choosing the server socket, targeting sessions exactly, and turning tmux's
// stderr into sentinel errors.
//
// All invocations pass through one chokepoint (Client.exec → Runner) which
// prepends `-L socket` when a socket is configured and execs tmux with an argv,
// never through a shell. Tests inject a Runner to assert the exact argv.
//
// Every call carries a deadline (DefaultTimeout unless the caller's is
// sooner): a stopped or hung tmux server costs a caller one timeout
// (ErrTimeout), never a hang.
//
// Targets are always exact. tmux's default target matching is a prefix match,
// so `-t loop-a` would hit `loop-auth`; a leading '=' makes the match exact.
package tmux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
	"unicode"
)

// SocketEnv names the environment variable whose value, when set, makes every
// tmux call use `-L <value>` instead of the user's default server.
const SocketEnv = "AGENT_SESSIONS_TMUX_SOCKET"

// Sentinel errors. Errors returned by Client wrap one of these (test with
// errors.Is) and keep tmux's own message in the text.
var (
	// ErrNotInstalled means the tmux binary is not on PATH. It also wraps
	// exec.ErrNotFound.
	ErrNotInstalled = errors.New("tmux not installed")
	// ErrNoServer means no tmux server is running on the socket.
	ErrNoServer = errors.New("no tmux server running")
	// ErrSessionNotFound means the targeted session (or its pane) does not exist.
	ErrSessionNotFound = errors.New("tmux session not found")
	// ErrSessionExists means new-session was asked for a name already in use.
	ErrSessionExists = errors.New("tmux session already exists")
	// ErrInvalidName means a session name cannot be used as an exact tmux target.
	ErrInvalidName = errors.New("invalid tmux session name")
	// ErrTimeout means tmux did not answer within the call's deadline: its
	// server is stopped (SIGSTOP), hung, or the socket belongs to something
	// that accepts and never replies. The tmux client was killed.
	ErrTimeout = errors.New("tmux did not answer")
)

// DefaultTimeout bounds every tmux call whose context has no earlier
// deadline. A healthy tmux answers in milliseconds; a stopped or hung
// server never does, and no caller (the Stop hook, list, kill) may hang
// behind it.
const DefaultTimeout = 5 * time.Second

// TimeoutEnv names the environment variable that overrides DefaultTimeout
// (a Go duration such as "500ms"), for slow machines and for tests.
const TimeoutEnv = "AGENT_SESSIONS_TMUX_TIMEOUT"

// InstallHint returns a one-line hint telling the user how to install tmux.
func InstallHint() string {
	return "install tmux: sudo apt-get install tmux / brew install tmux"
}

// Runner executes one tmux invocation. argv[0] is the tmux binary. It is the
// single exec chokepoint: every tmux call made by a Client goes through it.
// On failure the returned error's text should carry tmux's stderr, which the
// Client maps onto the sentinel errors.
type Runner func(ctx context.Context, argv []string) (stdout []byte, err error)

// Client runs tmux commands against one server (the default one, or the one
// named by a socket). The zero value is not usable; construct with New.
type Client struct {
	bin     string
	socket  string
	run     Runner
	timeout time.Duration // per-call deadline; see DefaultTimeout
	look    *lookup       // shared by copies made with WithRunner
}

// lookup caches the PATH lookup done by Available.
type lookup struct {
	once sync.Once
	err  error
}

// New returns a Client for the server on socket. socket "" means tmux's
// default server; otherwise every call gets `-L socket`.
func New(socket string) *Client {
	return &Client{bin: "tmux", socket: socket, run: ExecRunner, timeout: DefaultTimeout, look: &lookup{}}
}

// NewFromEnv returns a Client whose socket is taken from SocketEnv and
// whose per-call timeout is taken from TimeoutEnv when that is a positive
// duration (an unusable value keeps DefaultTimeout: a hung tmux must stay
// bounded whatever the environment says).
func NewFromEnv() *Client {
	c := New(os.Getenv(SocketEnv))
	if d, err := time.ParseDuration(os.Getenv(TimeoutEnv)); err == nil && d > 0 {
		c.timeout = d
	}
	return c
}

// WithTimeout returns a copy of c whose calls each give tmux at most d
// (d <= 0 restores DefaultTimeout).
func (c *Client) WithTimeout(d time.Duration) *Client {
	if d <= 0 {
		d = DefaultTimeout
	}
	cp := *c
	cp.timeout = d
	return &cp
}

// Timeout returns the per-call deadline.
func (c *Client) Timeout() time.Duration { return c.timeout }

// WithRunner returns a copy of c that executes tmux through r. A nil r
// restores ExecRunner.
func (c *Client) WithRunner(r Runner) *Client {
	if r == nil {
		r = ExecRunner
	}
	cp := *c
	cp.run = r
	return &cp
}

// Socket returns the `-L` socket name, or "" for the default server.
func (c *Client) Socket() string { return c.socket }

// Available reports whether the tmux binary is on PATH. It returns an error
// wrapping both ErrNotInstalled and exec.ErrNotFound when it is not. The
// lookup is done once per Client and cached.
func (c *Client) Available() error {
	c.look.once.Do(func() {
		if _, err := exec.LookPath(c.bin); err != nil {
			c.look.err = fmt.Errorf("%w: %w", ErrNotInstalled, err)
		}
	})
	return c.look.err
}

// ExecRunner is the production Runner: it execs argv directly (no shell)
// and returns stdout. When tmux fails, the error's text is tmux's trimmed
// stderr and it unwraps to the underlying exec error. When ctx is done it
// kills tmux and returns at once.
//
// The pipes are our own rather than exec's because the tmux client hands
// its stdout and stderr to the server (SCM_RIGHTS): a stopped server holds
// them open, so waiting for EOF after killing the client would wait for
// the server. After a kill, what was read is returned without waiting; after
// a normal exit, pipeDrain bounds the wait (new-session may start the server,
// which daemonizes and should a descendant keep them open, nothing hangs).
func ExecRunner(ctx context.Context, argv []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("tmux: empty argv")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	readers, writers, copies, err := attachPipes(cmd, &stdout, &stderr)
	if err != nil {
		return nil, err
	}
	closeAll := func() {
		for _, r := range readers {
			r.Close()
		}
	}
	startErr := cmd.Start()
	// Our copies of the write ends go now, so EOF comes when tmux (and
	// whatever it handed them to) lets go of them.
	for _, w := range writers {
		w.Close()
	}
	if startErr != nil {
		closeAll()
		copies.Wait()
		return nil, startErr
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var runErr error
	select {
	case runErr = <-waited:
		drained := make(chan struct{})
		go func() { copies.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(pipeDrain):
		case <-ctx.Done():
			if runErr == nil {
				runErr = ctx.Err() // its output may be cut short
			}
		}
	case <-ctx.Done():
		cmd.Process.Kill()
		if runErr = <-waited; runErr == nil {
			runErr = ctx.Err() // it had just ended: its output is not drained
		}
	}
	closeAll()
	copies.Wait()
	if runErr != nil {
		return stdout.Bytes(), &runError{stderr: strings.TrimSpace(stderr.String()), err: runErr}
	}
	return stdout.Bytes(), nil
}

// pipeDrain is how long ExecRunner waits, after tmux exited, for the last of
// its output.
const pipeDrain = 2 * time.Second

// attachPipes gives cmd a fresh pipe for stdout and one for stderr, copied
// into the buffers by goroutines that end when the read ends are closed (or
// reach EOF). The caller closes the write ends once cmd has started.
func attachPipes(cmd *exec.Cmd, stdout, stderr *bytes.Buffer) (readers, writers []*os.File, copies *sync.WaitGroup, err error) {
	copies = &sync.WaitGroup{}
	for _, buf := range []*bytes.Buffer{stdout, stderr} {
		r, w, err := os.Pipe()
		if err != nil {
			for _, f := range append(readers, writers...) {
				f.Close()
			}
			return nil, nil, nil, fmt.Errorf("tmux: %w", err)
		}
		readers, writers = append(readers, r), append(writers, w)
		if buf == stdout {
			cmd.Stdout = w
		} else {
			cmd.Stderr = w
		}
		copies.Add(1)
		go func() { defer copies.Done(); io.Copy(buf, r) }()
	}
	return readers, writers, copies, nil
}

// runError carries tmux's stderr as its message and the exec error as its cause.
type runError struct {
	stderr string
	err    error
}

func (e *runError) Error() string {
	if e.stderr == "" {
		return e.err.Error()
	}
	return e.stderr
}

func (e *runError) Unwrap() error { return e.err }

// socketFlag is " -L socket" when a socket is set, for messages.
func (c *Client) socketFlag() string {
	if c.socket == "" {
		return ""
	}
	return " -L " + c.socket
}

// argv builds the full command line: the binary, `-L socket` when set, then args.
func (c *Client) argv(args ...string) []string {
	argv := make([]string, 0, len(args)+3)
	argv = append(argv, c.bin)
	if c.socket != "" {
		argv = append(argv, "-L", c.socket)
	}
	return append(argv, args...)
}

// exec is the chokepoint every method uses: it builds the argv, runs it and
// maps failures onto the sentinel errors. args[0] is the tmux subcommand.
//
// Every call carries a deadline (the Client's timeout, or ctx's if sooner);
// at the deadline exec.CommandContext kills the tmux client, so a stopped
// server costs the caller one timeout and leaves no process behind.
func (c *Client) exec(ctx context.Context, args ...string) ([]byte, error) {
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	// -u: without a UTF-8 locale in the environment (LANG, LC_CTYPE or
	// LC_ALL — an ssh login to a host often has none) tmux prints every
	// control character of command output as '_', the separators of
	// list-sessions included, and no record parses. (Attach hints leave
	// it out: there the user's terminal decides.)
	out, err := c.run(callCtx, c.argv(append([]string{"-u"}, args...)...))
	if err == nil {
		return out, nil
	}
	sub := args[0]
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil, fmt.Errorf("tmux %s: %w", sub, ctx.Err())
	}
	if callCtx.Err() != nil {
		return nil, fmt.Errorf("tmux %s: %w in %s (is its server stopped or hung? `tmux%s ls` in a terminal shows whether it answers): %w",
			sub, ErrTimeout, time.Since(start).Round(time.Millisecond), c.socketFlag(), callCtx.Err())
	}
	if errors.Is(err, exec.ErrNotFound) {
		return nil, fmt.Errorf("tmux %s: %w: %w", sub, ErrNotInstalled, err)
	}
	if sentinel := classify(err.Error()); sentinel != nil {
		return nil, fmt.Errorf("tmux %s: %w: %w", sub, err, sentinel)
	}
	return nil, fmt.Errorf("tmux %s: %w", sub, err)
}

// classify maps tmux's stderr text onto a sentinel error, or nil.
func classify(msg string) error {
	switch {
	case strings.Contains(msg, "no server running on"),
		// The socket file does not exist: no server was ever started on it.
		strings.Contains(msg, "error connecting to") && strings.Contains(msg, "No such file or directory"),
		// A stale socket left behind by a dead server.
		strings.Contains(msg, "error connecting to") && strings.Contains(msg, "Connection refused"),
		// The server shut down while we were talking to it (e.g. its last session closed).
		strings.Contains(msg, "server exited unexpectedly"):
		return ErrNoServer
	case strings.Contains(msg, "can't find session"),
		// Between a server's last session closing and the server exiting,
		// tmux 3.3a answers every -t lookup with this.
		strings.Contains(msg, "no current target"),
		strings.Contains(msg, "session not found"),
		strings.Contains(msg, "can't find pane"),
		strings.Contains(msg, "can't find window"):
		return ErrSessionNotFound
	case strings.Contains(msg, "duplicate session"):
		return ErrSessionExists
	}
	return nil
}

// ValidateName reports whether name can be used as an exact tmux session
// target. tmux treats ':' and '.' as separators in targets (session:window.pane)
// and silently rewrites them in new session names, so such a name could never
// be targeted exactly; whitespace and control characters are rejected too.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: name is empty", ErrInvalidName)
	}
	for _, r := range name {
		switch {
		case r == ':' || r == '.':
			return fmt.Errorf("%w %q: must not contain %q (tmux target separator)", ErrInvalidName, name, r)
		case unicode.IsSpace(r) || unicode.IsControl(r):
			return fmt.Errorf("%w %q: must not contain whitespace or control characters", ErrInvalidName, name)
		}
	}
	return nil
}

// sessionTarget is the exact target for session commands (has-session,
// kill-session, attach-session, switch-client): '=' disables tmux's prefix
// matching, so "loop-a" never resolves to "loop-auth".
func sessionTarget(name string) string { return "=" + name }

// paneTarget is the exact target for pane and window commands (capture-pane,
// display-message). The trailing ':' matters: with tmux 3.3a,
// `capture-pane -t =name` fails with "can't find pane" because "=name" is
// parsed as a pane/window spec, while `-t =name:` names the session exactly
// and then its current window and pane.
func paneTarget(name string) string { return "=" + name + ":" }
