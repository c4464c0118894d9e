package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
)

// usageTestErr is a command's error the caller can fix.
type usageTestErr struct{ error }

func (usageTestErr) Usage() bool { return true }

func TestExitCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("the tool answered with an error"), exitFailed},
		{usageTestErr{errors.New("bad flag")}, exitUsage},
		{fmt.Errorf("wrapped: %w", usageTestErr{errors.New("bad flag")}), exitUsage},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestRunExitCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		res  engine.Result
		err  error
		want int
	}{
		{engine.Result{Status: state.StatusComplete}, nil, exitComplete},
		{engine.Result{Status: state.StatusKilled}, nil, exitKilled},
		{engine.Result{Status: state.StatusFailed}, nil, exitFailed},
		{engine.Result{}, engine.ErrConflictRunning, exitUsage},
		{engine.Result{}, fmt.Errorf("write state: %w", state.ErrDiskFull), exitFailed},
	} {
		if got := runExitCode(tc.res, tc.err); got != tc.want {
			t.Errorf("runExitCode(%q, %v) = %d, want %d", tc.res.Status, tc.err, got, tc.want)
		}
	}
}
