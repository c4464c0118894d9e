package sessions

import (
	"errors"
	"fmt"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
)

// The lifecycle's domain errors. Each carries the facts a caller needs to
// say what went wrong and what would resolve it; errors of the engine,
// tmux and state packages pass through wrapped, their sentinels intact.

// ErrNotWaiting: an answer for a session that asked no question.
var ErrNotWaiting = errors.New("not waiting for an answer")

// InvalidNameError is a session name that breaks the naming rule.
type InvalidNameError struct{ Err error }

func (e *InvalidNameError) Error() string { return e.Err.Error() }
func (e *InvalidNameError) Unwrap() error { return e.Err }

// NotFoundError: no session of that name (no run directory, lock or tmux
// session). Resume is set when a resume asked for it.
type NotFoundError struct {
	Session    string
	ProjectDir string
	Resume     bool
}

func (e *NotFoundError) Error() string {
	if e.Resume {
		return fmt.Sprintf("no session %s to resume in %s; to start it new, give a stage or pipeline and no mode", e.Session, e.ProjectDir)
	}
	return fmt.Sprintf("no session %q in %s (no run directory, lock or tmux session loop-%s/pipeline-%s)", e.Session, e.ProjectDir, e.Session, e.Session)
}

// ConflictReason says why a session's name or state is in the way.
type ConflictReason int

// Conflict reasons.
const (
	// ConflictRunning: an engine runs it (running, starting, waiting, parked).
	ConflictRunning ConflictReason = iota
	// ConflictLeftover: its tmux session lives on without an engine
	// (orphan, zombie).
	ConflictLeftover
	// ConflictComplete: it completed.
	ConflictComplete
	// ConflictResumable: it stopped before its end (crashed, failed,
	// killed) and resume continues it.
	ConflictResumable
	// ConflictLocked: a live engine holds its lock, nothing else is known.
	ConflictLocked
	// ConflictTmuxTaken: its tmux session name was taken as the engine
	// was about to start (another start won the race, or a hand-made one).
	ConflictTmuxTaken
	// ConflictNothingToResume: a resume of a session that runs.
	ConflictNothingToResume
	// ConflictResumeComplete: a resume of a session that completed for good.
	ConflictResumeComplete
)

// ConflictError: the session exists in a state the request cannot act on.
type ConflictError struct {
	Reason      ConflictReason
	Session     string
	ProjectDir  string
	Status      state.Status // its liveness
	Why         string       // the classifier's why
	TmuxSession string
	// CompletionReason is why it ended, when it did.
	CompletionReason string
	// Error is what it failed with (cut to 300 bytes).
	Failure string
	// Stopped is the last iteration it completed.
	Stopped int
	// Stage or Pipeline is what it ran, for a call that runs it again.
	Stage, Pipeline string
	// FreeName is a name no session of the project uses.
	FreeName string
}

func (e *ConflictError) Error() string {
	switch e.Reason {
	case ConflictRunning:
		return fmt.Sprintf("session %s is already running (%s)", e.Session, e.Why)
	case ConflictLeftover:
		return fmt.Sprintf("tmux session %s exists without a live engine (%s: %s)", e.TmuxSession, e.Status, e.Why)
	case ConflictComplete:
		return fmt.Sprintf("session %s already completed (%s)", e.Session, e.CompletionReason)
	case ConflictResumable:
		what := string(e.Status)
		if e.Failure != "" {
			what += ": " + e.Failure
		}
		return fmt.Sprintf("session %s exists and can be resumed (%s; stopped at iteration %d)", e.Session, what, e.Stopped+1)
	case ConflictTmuxTaken:
		return fmt.Sprintf("tmux session %s already exists (another start won the race, or a hand-made session has the name)", e.TmuxSession)
	case ConflictNothingToResume:
		return fmt.Sprintf("session %s is running; there is nothing to resume", e.Session)
	case ConflictResumeComplete:
		return fmt.Sprintf("session %s already completed (%s); nothing to resume", e.Session, e.CompletionReason)
	}
	return fmt.Sprintf("session %s is locked by a running engine", e.Session)
}

// UnreadableError: a session whose state cannot be read, so it cannot be
// resumed (only started over with force).
type UnreadableError struct {
	Session string
	Err     error
}

func (e *UnreadableError) Error() string {
	return fmt.Sprintf("session %s cannot be read: %v; start it over with mode force and its stage or pipeline (the old run is moved aside)", e.Session, e.Err)
}
func (e *UnreadableError) Unwrap() error { return e.Err }

// NestedError refuses a start from inside an agent session (SPEC §13).
type NestedError struct{ Outer string }

func (e *NestedError) Error() string {
	return fmt.Sprintf("this server runs inside agent session %s (%s is set), and agents may not start sessions of their own; "+
		"a person who wants nested sessions sets %s=1 in this server's environment", e.Outer, SessionEnv, AllowNestedEnv)
}

// NoTmuxError: tmux is missing, and sessions run in tmux.
type NoTmuxError struct{ Err error }

func (e *NoTmuxError) Error() string {
	return "tmux is not installed, and sessions run in tmux; " + tmux.InstallHint() + " (or run `agent-sessions run` in a terminal yourself)"
}
func (e *NoTmuxError) Unwrap() error { return e.Err }

// PlanError: the definition cannot run as asked (engine.Prepare, the
// sandbox check, an agent CLI missing on resume); Err carries the engine's
// sentinel.
type PlanError struct{ Err error }

func (e *PlanError) Error() string { return e.Err.Error() }
func (e *PlanError) Unwrap() error { return e.Err }

// WorktreeError: isolation worktree was asked where no worktree can be made
// (not a repository, or base_ref names nothing).
type WorktreeError struct{ Err error }

func (e *WorktreeError) Error() string { return "isolation worktree: " + e.Err.Error() }
func (e *WorktreeError) Unwrap() error { return e.Err }

// StartFailure: the engine was handed the session but did not start it.
// Err, when set, is what the engine reported (its sentinel kept).
type StartFailure struct {
	Msg string
	Err error
}

func (e *StartFailure) Error() string { return e.Msg }
func (e *StartFailure) Unwrap() error { return e.Err }

// KeptWorktreeError: a start failed (Err) after making a worktree that
// could not be taken back (Why); it was kept at Dir.
type KeptWorktreeError struct {
	Err error
	Dir string
	Why error
}

func (e *KeptWorktreeError) Error() string {
	return fmt.Sprintf("%v (its worktree %s was kept: %v)", e.Err, e.Dir, e.Why)
}
func (e *KeptWorktreeError) Unwrap() error { return e.Err }
