package tools_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
	"github.com/agent-sessions/agent-sessions/tools"
)

// Issue 6.4: stale and hostile state around the tools.

// A crashed engine's lock file is stale: list flags it, cleanup offers to
// remove it (a dry run does not), and resume takes the lock over and says
// so in events.jsonl.
func TestStaleLockFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("step", stepStage)
	c := e.connect(modernVersion)
	crash(t, e, c, "stale")
	l := e.layout("stale")
	if ls, _ := state.ProbeLock(l.LockFile()); !ls.Exists || ls.Held {
		t.Fatalf("after kill -9 the lock is %+v, want a stale file", ls)
	}
	s, _ := summary(c.list(nil), "stale")
	if s.Status != state.LiveCrashed || !s.StaleLock {
		t.Errorf("listed as %+v, want crashed with a stale lock", s)
	}
	var r tools.CleanupResult
	c.ok("cleanup", map[string]any{"remove_stale_locks": true}, &r)
	if len(r.StaleLocks) != 1 || !pathExists(l.LockFile()) {
		t.Errorf("dry run: stale locks %+v, lock file still there: %v", r.StaleLocks, pathExists(l.LockFile()))
	}
	done := e.loadState("stale").IterationCompleted
	c.start(map[string]any{"session": "stale", "mode": "resume", "max_iterations": done + 1})
	if m := c.monitorWait("stale", "complete", 60); m.Status != state.LiveComplete {
		t.Fatalf("resume over a stale lock: %s (%s)", m.Status, m.Why)
	}
	evs, _, _ := state.ReadEvents(l.EventsFile())
	found := false
	for _, ev := range evs {
		found = found || ev.Type == state.EventStaleLockRemoved
	}
	if !found {
		t.Error("no stale_lock_removed event after taking over a stale lock")
	}
	if err := checkRun(l, "stale", done+1, done+1); err != nil {
		t.Error(err)
	}
}

// A lock file naming a live process that has nothing to do with us (pid
// reuse after a crash, or a hand-edited file) is not a running engine: no
// tool signals that process, list says crashed, and resume works.
func TestLockNamingUnrelatedPID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("step", stepStage)
	c := e.connect(modernVersion)
	crash(t, e, c, "reused")
	bystander := exec.Command("sleep", "600")
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bystander.Process.Kill(); bystander.Wait() })
	l := e.layout("reused")
	data, err := os.ReadFile(l.LockFile())
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	if err := json.Unmarshal(data, &info); err != nil {
		t.Fatal(err)
	}
	info["pid"] = bystander.Process.Pid
	data, _ = json.Marshal(info)
	writeFile(t, l.LockFile(), string(data))

	if s, _ := summary(c.list(nil), "reused"); s.Status != state.LiveCrashed {
		t.Errorf("listed as %+v, want crashed", s)
	}
	var k tools.KillResult
	c.ok("kill", map[string]any{"session": "reused"}, &k)
	var r tools.CleanupResult
	c.ok("cleanup", map[string]any{"dry_run": false, "kill_orphans": true, "kill_stale": true}, &r)
	time.Sleep(200 * time.Millisecond)
	if processDead(bystander.Process.Pid) {
		t.Fatalf("a tool signalled pid %d, which the lock file named but which is not our engine (kill: %+v)", bystander.Process.Pid, k)
	}
	// One more iteration is enough to show resume works: the other 49
	// of the step stage were 20 s of waiting.
	done := e.loadState("reused").IterationCompleted
	c.start(map[string]any{"session": "reused", "mode": "resume", "max_iterations": done + 1})
	if m := c.monitorWait("reused", "complete", 90); m.Status != state.LiveComplete {
		t.Fatalf("resume: %s (%s)", m.Status, m.Why)
	}
	if processDead(bystander.Process.Pid) {
		t.Error("resume signalled the unrelated process")
	}
}

// With no tmux server at all every tool still answers: list and cleanup
// report the sessions on disk, monitor reads session.log, kill of an ended
// session is a calm no-op, attach_hint says there is nothing to attach to.
func TestNoTmuxServer(t *testing.T) {
	inVersion(t, legacyVersion, func(t *testing.T, v string) {
		e := newEnv(t)
		e.stage("quick", quickStage)
		c := e.connect(v)
		finish(t, c, "done")
		killServer(e.socket)
		eventually(t, 5*time.Second, "the tmux server to exit", func() bool { return !e.serverRunning() })

		l := c.list(nil)
		if s, ok := summary(l, "done"); !ok || s.Status != state.LiveComplete {
			t.Errorf("list without a tmux server: %+v", l.Sessions)
		}
		var m tools.MonitorResult
		c.ok("monitor", map[string]any{"session": "done"}, &m)
		if m.Status != state.LiveComplete || m.OutputSource != "session.log" || m.RecentOutput == "" {
			t.Errorf("monitor without a tmux server: status %s, source %s, %d bytes of output", m.Status, m.OutputSource, len(m.RecentOutput))
		}
		var k tools.KillResult
		c.ok("kill", map[string]any{"session": "done"}, &k)
		if k.Killed || k.Status != state.StatusComplete {
			t.Errorf("kill of an ended session without a server: %+v", k)
		}
		var r tools.CleanupResult
		c.ok("cleanup", map[string]any{"dry_run": false, "kill_orphans": true}, &r)
		if len(r.Orphans)+len(r.Zombies)+len(r.Crashed) != 0 {
			t.Errorf("cleanup found trouble where there is none: %+v", r)
		}
		c.call("attach_hint", map[string]any{"session": "done"}) // answers, error or not
		c.fail("monitor", map[string]any{"session": "never"}, tools.CodeNotFound)
		if e.serverRunning() {
			t.Error("a read-only tool started a tmux server")
		}
	})
}

// serverRunning reports whether the private tmux server is up (asking
// tmux itself, not through the client under test).
func (e *testEnv) serverRunning() bool {
	out, err := exec.Command("tmux", "-L", e.socket, "list-sessions").CombinedOutput()
	return err == nil || !strings.Contains(string(out), "no server running") && !strings.Contains(string(out), "error connecting")
}

// A hand-made tmux session named like ours over a session that already
// ended is a zombie, not a running session: list says so, kill closes the
// tmux session and leaves the ended state alone.
func TestHandMadeSessionOverEndedRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("quick", quickStage)
	c := e.connect(modernVersion)
	finish(t, c, "over")
	if err := e.tmux.NewSession(context.Background(), tmux.NewSessionOptions{Name: "loop-over", Dir: e.project, Argv: []string{"sleep", "600"}}); err != nil {
		t.Fatal(err)
	}
	e.advance(state.StartGrace + time.Minute)
	if s, _ := summary(c.list(nil), "over"); s.Status != state.LiveZombie {
		t.Errorf("listed as %+v, want zombie", s)
	}
	var k tools.KillResult
	c.ok("kill", map[string]any{"session": "over"}, &k)
	if !e.tmuxGone("loop-over") {
		t.Error("kill left the hand-made tmux session")
	}
	if st := e.loadState("over"); st.Status != state.StatusComplete {
		t.Errorf("kill changed an ended session's state to %s", st.Status)
	}
}
