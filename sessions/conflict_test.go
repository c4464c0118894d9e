package sessions

import (
	"errors"
	"strings"
	"testing"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
)

// TestNewConflict: a new session's name is judged by the classifier's
// verdict, and the conflict says what was found.
func TestNewConflict(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	for _, tc := range []struct {
		status state.Status
		held   bool
		want   ConflictReason
		says   string
	}{
		{state.LiveRunning, true, ConflictRunning, "already running"},
		{state.LiveParked, true, ConflictRunning, "already running"},
		{state.LiveZombie, false, ConflictLeftover, "without a live engine (zombie"},
		{state.LiveComplete, false, ConflictComplete, "already completed (done)"},
		{state.LiveCrashed, false, ConflictResumable, "can be resumed (crashed: boom; stopped at iteration 4)"},
		{"", true, ConflictLocked, "locked by a running engine"},
	} {
		info := Info{Name: "s", ProjectDir: project, Lock: state.LockStatus{Exists: tc.held, Held: tc.held}, Live: state.Liveness{Status: tc.status, Why: "w"}}
		if tc.status != "" {
			info.State = &state.State{Status: string(tc.status), CompletionReason: "done", Error: "boom", IterationCompleted: 3}
		}
		err := newConflict(info)
		var c *ConflictError
		if !errors.As(err, &c) || c.Reason != tc.want || c.FreeName != "s-2" || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%q: %v (%+v), want reason %d saying %q", tc.status, err, c, tc.want, tc.says)
		}
	}
	if err := newConflict(Info{Name: "s", ProjectDir: project}); err != nil {
		t.Errorf("a free name: %v", err)
	}
}

// TestDomainErrorsKeepTheirCause: the engine's sentinels stay reachable
// through the lifecycle's errors, so the caller maps them to codes.
func TestDomainErrorsKeepTheirCause(t *testing.T) {
	t.Parallel()
	inner := &StartFailure{Msg: "could not start", Err: engine.ErrAgentUnavailable}
	for _, err := range []error{
		&PlanError{Err: engine.ErrAgentUnavailable},
		&KeptWorktreeError{Err: inner, Dir: "/wt", Why: errors.New("busy")},
		inner,
	} {
		if !errors.Is(err, engine.ErrAgentUnavailable) {
			t.Errorf("%T %v: the engine's sentinel is lost", err, err)
		}
	}
	if got := (&KeptWorktreeError{Err: inner, Dir: "/wt", Why: errors.New("busy")}).Error(); got != "could not start (its worktree /wt was kept: busy)" {
		t.Errorf("got %q", got)
	}
}

func TestNextName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"a": "a-2", "a-2": "a-3", "x-y": "x-y-2", strings.Repeat("n", 48): strings.Repeat("n", 46) + "-2"} {
		if got := nextName(in); got != want {
			t.Errorf("nextName(%q) = %q, want %q", in, got, want)
		}
	}
}
