// Package sessions owns the session lifecycle on this machine: starting a
// session's engine in tmux (with its dry run, resume plan and worktree),
// inspecting and classifying sessions, waiting on them, stopping and
// killing them, marking crashed ones, moving finished runs aside, reading a
// session's files (pane, progress, log) and answering an agent's question.
//
// Its inputs are its own request types and its outputs domain results and
// errors carrying the facts (which session, its status, what would resolve
// it); turning those into MCP answers, error codes and options is the tools
// package's business, which consumes Local behind its Host interface.
package sessions

import (
	"context"
	"os"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/tmux"
)

// Tmux is what the lifecycle needs from tmux (the tmux package's Client).
type Tmux interface {
	Available() error
	Socket() string
	ListSessions(ctx context.Context) ([]tmux.Session, error)
	HasSession(ctx context.Context, name string) (bool, error)
	NewSession(ctx context.Context, o tmux.NewSessionOptions) error
	CapturePane(ctx context.Context, name string, lines int) (string, error)
	KillSession(ctx context.Context, name string) error
	AttachCommand(name string, readOnly bool) []string
	SwitchCommand(name string) []string
}

// Local runs sessions on this machine, in tmux, as its Settings say. It
// holds no state of its own, so a Local may be built for each call.
type Local struct {
	Settings
}

// Settings are what a Local runs sessions with. Their zero durations and
// nil functions take the defaults below. tools.Deps embeds them, so the
// server is configured with the same fields.
type Settings struct {
	Tmux Tmux
	// Executable is the absolute path of this binary; Start runs
	// `Executable run …` inside tmux.
	Executable string
	// ProjectDir is the default project directory (the server's cwd).
	ProjectDir string
	// Environ is the environment handed to engines (default os.Environ).
	Environ func() []string
	// Geteuid is the effective user id engines run as (default
	// os.Geteuid); claude refuses root without IS_SANDBOX=1.
	Geteuid func() int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// StartTimeout bounds how long Start waits for the engine to take its
	// lock (default 10 s).
	StartTimeout time.Duration
	// Grace is how long a kill waits for an engine to stop on its own
	// before SIGKILL (default 15 s: the engine's own agent grace plus
	// margin).
	Grace time.Duration
	// Poll is how often waits look (default 250 ms; the server's reminder
	// watcher uses 8× this).
	Poll time.Duration
}

func (l *Local) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Local) environ() []string {
	if l.Environ != nil {
		return l.Environ()
	}
	return os.Environ()
}

func (l *Local) geteuid() int {
	if l.Geteuid != nil {
		return l.Geteuid()
	}
	return os.Geteuid()
}

func (l *Local) poll() time.Duration {
	if l.Poll > 0 {
		return l.Poll
	}
	return 250 * time.Millisecond
}

// GraceOrDefault is the kill grace in effect.
func (l *Local) GraceOrDefault() time.Duration {
	if l.Grace > 0 {
		return l.Grace
	}
	return engine.StopWait(0) // the agents' default grace and a margin: 15 s
}

// StartTimeoutOrDefault is the start bound in effect.
func (l *Local) StartTimeoutOrDefault() time.Duration {
	if l.StartTimeout > 0 {
		return l.StartTimeout
	}
	return 10 * time.Second
}

// AttachCommand is the tmux command that attaches to the tmux session
// name (read-only: keystrokes are not sent).
func (l *Local) AttachCommand(name string, readOnly bool) []string {
	return l.Tmux.AttachCommand(name, readOnly)
}

// SwitchCommand is the tmux command that switches a client inside tmux
// to the tmux session name.
func (l *Local) SwitchCommand(name string) []string { return l.Tmux.SwitchCommand(name) }

// Socket is the private tmux socket in use ("" for the default server).
func (l *Local) Socket() string { return l.Tmux.Socket() }
