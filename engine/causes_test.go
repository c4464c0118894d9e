package engine

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// TestErrorsKeepTheirCause checks that an error wrapping one of the
// package's sentinels also keeps what caused it (errors.Is and errors.As
// see both), and still says it in the same words.
func TestErrorsKeepTheirCause(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cat := NewCatalog(dir)
	_, missingPipeline := cat.Pipeline(filepath.Join(dir, "missing.yaml"))
	_, missingInput := cat.resolveInputs([]string{"missing.txt"})
	_, badSpec := PlanFromSpec(json.RawMessage(`{"version":`))
	var syntax *json.SyntaxError
	tests := []struct {
		name     string
		err      error
		sentinel error
		cause    func(error) bool
		words    string
	}{
		{"missing pipeline file", missingPipeline, ErrNotFound,
			func(err error) bool { return errors.Is(err, fs.ErrNotExist) }, "no such file"},
		{"missing input file", missingInput, ErrInvalid,
			func(err error) bool { return errors.Is(err, fs.ErrNotExist) }, "no such file"},
		{"unreadable spec", badSpec, ErrInvalid,
			func(err error) bool { return errors.As(err, &syntax) }, "state spec unreadable: unexpected end of JSON input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.sentinel) {
				t.Errorf("err = %v, want it to wrap %v", tt.err, tt.sentinel)
			}
			if !tt.cause(tt.err) {
				t.Errorf("err = %v: its cause is lost", tt.err)
			}
			if tt.err == nil || !strings.Contains(tt.err.Error(), tt.words) {
				t.Errorf("err = %v, want it to say %q", tt.err, tt.words)
			}
		})
	}
}

// TestLockedSessionKeepsErrLocked starts a session whose lock another
// holder has: the error is the conflict and still is state.ErrLocked.
func TestLockedSessionKeepsErrLocked(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "work", commandStage("fixed-n", "echo-agent", "max_iterations: 1"), "do it\n")
	ctx := context.Background()
	l := state.NewLayout(project, "held")
	lock, err := state.AcquireLock(ctx, l.LockFile(), "held", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	_, out, err := tryRunSession(ctx, RunOptions{Session: "held", Stage: "work", ProjectDir: project,
		Config: &Config{}, HostDir: filepath.Join(project, "host"), LockWait: 10 * time.Millisecond})
	if !errors.Is(err, ErrConflictRunning) || !errors.Is(err, state.ErrLocked) {
		t.Fatalf("Run = %v, want ErrConflictRunning wrapping state.ErrLocked\noutput:\n%s", err, out)
	}
}
