package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// TestLockFileLossKeepsOneEngine: with the lock file deleted, or replaced
// by one naming another process, a second `run --resume` of the same
// session still refuses (exit 2, naming the live engine's pid) while the
// first runs on; the session completes once, and events.jsonl has no
// duplicate sequence number.
func TestLockFileLossKeepsOneEngine(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "s", commandStage("fixed-n", "sleep-agent", "max_iterations: 2"), "go\n")
	// The first engine's agent waits at a gate until both second engines
	// have been refused: however slow the machine, the first engine is
	// still running when they meet it. The cleanup (run after the engine's
	// own) opens the gate for an agent left behind by a failed test.
	gate := filepath.Join(t.TempDir(), "gate")
	openGate := func() { os.WriteFile(gate, nil, 0o644) }
	t.Cleanup(openGate)
	env := engineEnv(true, "SLEEP_SECONDS=0.2", "SLEEP_AGENT_GATE="+gate)
	first := startBinary(t, env, "run", "--session", "one", "--stage", "s", "--project", project, "--foreground")
	l := state.NewLayout(project, "one")
	waitFor(t, 20*time.Second, "the engine's lock", func() bool {
		ls, _ := state.ProbeLock(l.LockFile())
		return ls.Held
	})
	pid := first.cmd.Process.Pid
	harms := []struct {
		name string
		do   func() error
	}{
		{"deleted", func() error { return os.Remove(l.LockFile()) }},
		{"replaced", func() error {
			tmp := filepath.Join(t.TempDir(), "other.lock")
			data := `{"session":"one","pid":999999,"started_at":"2020-01-01T00:00:00Z"}`
			if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
				return err
			}
			return os.Rename(tmp, l.LockFile())
		}},
	}
	for _, harm := range harms {
		if err := harm.do(); err != nil {
			t.Fatal(err)
		}
		ls, _ := state.ProbeLock(l.LockFile())
		if !ls.Held || ls.Info == nil || ls.Info.PID != pid {
			t.Errorf("lock file %s: probe = %+v, want held by engine pid %d", harm.name, ls, pid)
		}
		code, stdout, stderr := runBinary(t, env, "run", "--session", "one", "--stage", "s", "--project", project, "--foreground", "--resume")
		if code != 2 || !strings.Contains(stderr, "already running") || !strings.Contains(stderr, fmt.Sprintf("engine pid %d", pid)) {
			t.Errorf("lock file %s: second engine exit %d, want 2 naming pid %d\nstdout:\n%s\nstderr:\n%s", harm.name, code, pid, stdout, stderr)
		}
	}
	openGate()
	if code := first.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("first engine exit %d\nstderr:\n%s", code, first.stderr.String())
	}
	seen := map[int64]bool{}
	for _, ev := range readEvents(t, project, "one") {
		if seen[ev.Seq] {
			t.Errorf("duplicate event seq %d (%s)", ev.Seq, ev.Type)
		}
		seen[ev.Seq] = true
		if ev.Type == state.EventSessionResume {
			t.Errorf("a second engine resumed the session beside the first")
		}
	}
	if st := loadState(t, project, "one"); st.Status != state.StatusComplete || st.IterationCompleted != 2 {
		t.Errorf("state: %s after %d iterations, want complete after 2", st.Status, st.IterationCompleted)
	}
}
