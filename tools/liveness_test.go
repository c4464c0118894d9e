package tools_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tools"
)

// A lost or replaced lock file does not make a healthy engine look dead:
// list says running, cleanup kill_orphans leaves it alone, and kill stops
// the real engine (the pid it names itself), not the one a replaced file
// names.
func TestLockFileLossToolsSeeRunning(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("long", longStage)
	c := e.connect(modernVersion)
	c.start(map[string]any{"session": "keep", "stage": "long"})
	c.monitorWait("keep", "iteration", 60)
	l := e.layout("keep")
	pid := e.enginePID("keep")
	harms := []func() error{
		func() error { return os.Remove(l.LockFile()) },
		func() error {
			tmp := filepath.Join(t.TempDir(), "x.lock")
			os.WriteFile(tmp, []byte(`{"session":"keep","pid":1,"started_at":"2020-01-01T00:00:00Z"}`), 0o644)
			return os.Rename(tmp, l.LockFile())
		},
	}
	for i, harm := range harms {
		if err := harm(); err != nil {
			t.Fatal(err)
		}
		if s, _ := summary(c.list(nil), "keep"); s.Status != state.LiveRunning || s.StaleLock {
			t.Errorf("harm %d: listed as %s (stale lock %v), want running", i, s.Status, s.StaleLock)
		}
		var r tools.CleanupResult
		c.ok("cleanup", map[string]any{"dry_run": false, "kill_orphans": true, "remove_stale_locks": true, "mark_crashed": true}, &r)
		if len(r.Zombies)+len(r.Crashed)+len(r.StaleLocks) > 0 || processDead(pid) {
			t.Errorf("harm %d: cleanup acted on a healthy engine: %+v (engine dead: %v)", i, r, processDead(pid))
		}
		if got := e.enginePID("keep"); got != pid {
			t.Errorf("harm %d: engine pid %d, want %d", i, got, pid)
		}
	}
	var k tools.KillResult
	c.ok("kill", map[string]any{"session": "keep"}, &k)
	if !k.Killed || k.Status != state.StatusKilled {
		t.Errorf("kill: %+v, want killed", k)
	}
	eventually(t, 10*time.Second, "the engine to stop", func() bool { return processDead(pid) })
}

// monitor wait=complete over an engine that dies says so: not met, the
// engine died, resume it.
func TestMonitorCompleteWaitSaysEngineDied(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("step", stepStage)
	c := e.connect(modernVersion)
	crash(t, e, c, "dies")
	var m tools.MonitorResult
	text := c.ok("monitor", map[string]any{"session": "dies", "wait": "complete", "timeout_seconds": 30}, &m)
	if m.Waited == nil || m.Waited.Met || !m.Waited.EngineDied {
		t.Errorf("waited = %+v, want not met, engine died", m.Waited)
	}
	if !strings.Contains(text, "engine died") || !strings.Contains(text, "resume") {
		t.Errorf("text does not say the engine died and how to go on:\n%s", text)
	}
}

// cleanup with mark_crashed and remove_stale_locks together: marking takes
// and releases the crashed session's lock, which removes the file; the
// lock's own action must not then claim a process holds it.
func TestCleanupSaysWhatBecameOfTheLock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("step", stepStage)
	c := e.connect(modernVersion)
	crash(t, e, c, "gone")
	var r tools.CleanupResult
	c.ok("cleanup", map[string]any{"dry_run": false, "mark_crashed": true, "remove_stale_locks": true}, &r)
	found := false
	for _, a := range r.Actions {
		if a.Action != "remove_stale_lock" {
			continue
		}
		found = true
		if strings.Contains(a.Result, "holds") || !a.Done {
			t.Errorf("remove_stale_lock: %+v, want done without claiming a holder", a)
		}
	}
	if !found || pathExists(e.layout("gone").LockFile()) {
		t.Errorf("actions %+v; lock file still there: %v", r.Actions, pathExists(e.layout("gone").LockFile()))
	}
}

// AGENT_SESSIONS_KILL_GRACE without a unit, or a project path so long the
// engine's files under it cannot be made, is refused before anything
// starts, naming what is wrong — never answered "running" while the engine
// dies at once.
func TestStartValidatesWhatKillsTheEngine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("step", stepStage)
	e.extra = append(e.extra, "AGENT_SESSIONS_KILL_GRACE=10")
	c := e.connect(modernVersion)
	te := c.fail("start_session", map[string]any{"session": "grace", "stage": "step"}, tools.CodeInvalidArgument)
	if !strings.Contains(te.Message, "AGENT_SESSIONS_KILL_GRACE") || !strings.Contains(te.Message, "10s") {
		t.Errorf("message %q does not name the variable and a fix", te.Message)
	}

	e2 := newEnv(t)
	deep := e2.project
	for len(deep) < 3900 {
		deep = filepath.Join(deep, strings.Repeat("d", min(200, 3900-len(deep))))
	}
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	c2 := e2.connect(modernVersion)
	te = c2.fail("start_session", map[string]any{"session": "deep", "stage": "demo", "provider": "mock", "project_dir": deep}, tools.CodeInvalidArgument)
	if !strings.Contains(te.Message, "too long") {
		t.Errorf("message %q does not say the path is too long", te.Message)
	}
	if got := append(e.rec.Created(), e2.rec.Created()...); len(got) != 0 {
		t.Errorf("tmux sessions were started: %v", got)
	}
}

// The handoff file (the server's whole environment) never outlives a start
// whose engine did not read it.
func TestHandoffRemovedWhenEngineNeverStarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("step", stepStage)
	mark := fmt.Sprintf("HANDOFF_MARK_%d", time.Now().UnixNano())
	e.extra = append(e.extra, mark+"=1")
	e.deps.Executable = filepath.Join(t.TempDir(), "no-such-binary")
	c := e.connect(modernVersion)
	r := c.call("start_session", map[string]any{"session": "never", "stage": "step"})
	if !r.IsError {
		t.Errorf("start_session with no engine binary succeeded: %s", r.Text)
	}
	files, _ := filepath.Glob(filepath.Join(os.TempDir(), "agent-sessions-handoff-*.json"))
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil && strings.Contains(string(data), mark) {
			t.Errorf("handoff file %s left behind", f)
		}
	}
}
