package tools

import (
	"context"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/workspace"
)

// Host is what the tools need of the machine sessions run on: the session
// lifecycle. sessions.Local is this machine's; the handlers map their
// arguments to Host calls and shape the answers, so they can be tested
// against a fake (a struct of functions).
type Host interface {
	// ResolveProject resolves a project_dir argument ("" = the default).
	ResolveProject(arg string) (string, error)
	// Find finds one named session (a *sessions.NotFoundError if none).
	Find(ctx context.Context, name, projectArg string) (sessions.Info, error)
	// Discover finds every session of a project, and warnings for what
	// could not be seen.
	Discover(ctx context.Context, project string, dp sessions.Depth) ([]sessions.Info, []string)
	// Wait waits on a session (sessions.WaitIteration or WaitComplete).
	Wait(ctx context.Context, info sessions.Info, kind string, timeout time.Duration, progress sessions.Progress) (sessions.Info, sessions.Waited, error)
	// Look reads a session's output, progress and last iteration.
	Look(ctx context.Context, info sessions.Info, lines int) sessions.View
	// ReadProgress and ReadLog read a session's progress file and log.
	ReadProgress(info sessions.Info) (text, path string, err error)
	ReadLog(info sessions.Info, lines int) (string, error)
	// Catalog lists what can be started in a project.
	Catalog(project string) ([]engine.Entry, engine.Problems)
	// Start starts (or with DryRun previews) a session.
	Start(ctx context.Context, r sessions.StartRequest) (sessions.Started, error)
	// Kill stops a session; Stop stops one for cleanup and says how.
	Kill(ctx context.Context, info sessions.Info) sessions.Killed
	Stop(ctx context.Context, info sessions.Info) []string
	// CloseTmux closes a tmux session with nothing behind it.
	CloseTmux(ctx context.Context, name string) error
	// MarkCrashed, RemoveStaleLock and Archive are cleanup's actions; each
	// says what it did.
	MarkCrashed(info sessions.Info) (string, error)
	RemoveStaleLock(path string) (string, error)
	Archive(info sessions.Info) (string, error)
	// AgentsLeft counts a session's agent processes still running.
	AgentsLeft(info sessions.Info) int
	// Worktrees are the worktrees of sessions not running; RemoveWorktree
	// removes one (its branch is kept).
	Worktrees(ctx context.Context, project string, infos []sessions.Info) ([]workspace.WorktreeInfo, error)
	RemoveWorktree(ctx context.Context, project, session string) error
	// Answer hands a waiting session the user's answer.
	Answer(ctx context.Context, info sessions.Info, answer string) (state.Status, error)
	// AttachCommand, SwitchCommand and Socket say how a person watches a
	// session's tmux session.
	AttachCommand(name string, readOnly bool) []string
	SwitchCommand(name string) []string
	Socket() string
}

// host is the Host the handlers use: Deps.Host, else this machine's, built
// from the Deps fields as they are now.
func (d *Deps) host() Host {
	if d.Host != nil {
		return d.Host
	}
	return &sessions.Local{Settings: d.Settings}
}
