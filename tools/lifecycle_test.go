package tools_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
	"github.com/agent-sessions/agent-sessions/tools"
)

// kill targets exactly: killing "a" while "auth" runs is not_found and
// leaves auth alone.
func TestKillExactName(t *testing.T) {
	inVersion(t, legacyVersion, func(t *testing.T, v string) {
		e := newEnv(t)
		e.stage("long", longStage)
		c := e.connect(v)
		c.start(map[string]any{"session": "auth", "stage": "long"})
		pid := e.enginePID("auth")

		te := c.fail("kill", map[string]any{"session": "a"}, tools.CodeNotFound)
		if !strings.Contains(te.Message, `"a"`) {
			t.Errorf("message %q does not name a", te.Message)
		}
		c.fail("monitor", map[string]any{"session": "a"}, tools.CodeNotFound)
		c.fail("attach_hint", map[string]any{"session": "a"}, tools.CodeNotFound)

		if processDead(pid) {
			t.Error("auth's engine died")
		}
		if !e.hasTmux("loop-auth") {
			t.Error("auth's tmux session is gone")
		}
		if st := e.loadState("auth"); st.Status != state.StatusRunning {
			t.Errorf("auth's state is %q, want running", st.Status)
		}
		if s, ok := summary(c.list(nil), "auth"); !ok || s.Status != state.LiveRunning {
			t.Errorf("auth listed as %+v", s)
		}
		if _, err := os.Stat(e.layout("a").RunDir()); err == nil {
			t.Error("a run dir appeared for a")
		}
	})
}

// After kill no agent process survives, even one that ignores SIGTERM and
// leaves children, or one whose grandchild holds its output open.
func TestKillLeavesNoAgent(t *testing.T) {
	inVersion(t, modernVersion, func(t *testing.T, v string) {
		e := newEnv(t)
		pidDir := t.TempDir()
		stubbornPIDs := filepath.Join(pidDir, "stubborn.pids")
		childPIDs := filepath.Join(pidDir, "child.pids")
		e.setEnv("STUBBORN_PIDS="+stubbornPIDs, "CHILD_PIDS="+childPIDs)
		e.stage("stubborn", commandStage("fixed-n", 5, "stubborn-agent"))
		e.stage("child", commandStage("fixed-n", 5, "child-agent"))
		c := e.connect(v)

		for _, tc := range []struct {
			session, stage, pidFile string
			pids                    int
		}{
			{"mule", "stubborn", stubbornPIDs, 3},
			{"kid", "child", childPIDs, 1},
		} {
			c.start(map[string]any{"session": tc.session, "stage": tc.stage})
			var pids []int
			eventually(t, 10*time.Second, tc.stage+" agent pids", func() bool {
				if _, err := os.Stat(tc.pidFile); err != nil {
					return false
				}
				pids = readPIDs(t, tc.pidFile)
				return len(pids) == tc.pids
			})
			engine := e.enginePID(tc.session)
			var k tools.KillResult
			c.ok("kill", map[string]any{"session": tc.session}, &k)
			if !k.Killed || k.Status != state.StatusKilled {
				t.Errorf("%s: kill = %+v", tc.session, k)
			}
			eventually(t, 5*time.Second, tc.session+"'s engine and agents to be gone", func() bool {
				for _, pid := range append(pids, engine) {
					if !processDead(pid) {
						return false
					}
				}
				return true
			})
			if e.hasTmux("loop-" + tc.session) {
				t.Errorf("%s: tmux session survived", tc.session)
			}
		}
	})
}

// lockPID reads the engine's pid from .claude/locks/<session>.lock.
func lockPID(t *testing.T, e *testEnv, session string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.project, ".claude", "locks", session+".lock"))
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Session string `json:"session"`
		PID     int    `json:"pid"`
	}
	if err := json.Unmarshal(data, &l); err != nil || l.PID <= 0 || l.Session != session {
		t.Fatalf("lock file %s: %v", data, err)
	}
	return l.PID
}

// An engine killed with SIGKILL leaves a crashed session (once its tmux
// session has closed with it); resume finishes it with every iteration run
// once.
func TestCrashAndResume(t *testing.T) {
	inVersion(t, legacyVersion, func(t *testing.T, v string) {
		e := newEnv(t)
		e.stage("step", stepStage)
		c := e.connect(v)
		c.start(map[string]any{"session": "phoenix", "stage": "step"})
		c.monitorWait("phoenix", "iteration", 60)
		pid := lockPID(t, e, "phoenix")
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the tmux session to close with its engine", func() bool { return !e.hasTmux("loop-phoenix") })

		l := c.list(nil)
		s, ok := summary(l, "phoenix")
		if !ok || s.Status != state.LiveCrashed {
			t.Fatalf("phoenix listed as %+v, want crashed", s)
		}
		if l.Counts.Crashed != 1 || !slices.ContainsFunc(l.NextSteps, func(o tools.Option) bool {
			return o.Tool == "start_session" && o.Arguments["session"] == "phoenix" && o.Arguments["mode"] == "resume"
		}) {
			t.Errorf("counts %+v, next steps %+v", l.Counts, l.NextSteps)
		}
		if st := e.loadState("phoenix"); st.Status != state.StatusRunning {
			t.Errorf("state.json status = %q, want running (it never recorded an end)", st.Status)
		}

		max := e.loadState("phoenix").IterationCompleted + 2
		res := c.start(map[string]any{"session": "phoenix", "mode": "resume", "max_iterations": max})
		if res.Mode != "resume" || !strings.Contains(res.ResumeAt, "iteration") {
			t.Errorf("resume = %+v", res)
		}
		if m := c.monitorWait("phoenix", "complete", 60); m.Status != state.LiveComplete {
			t.Fatalf("after resume: %q (%s)", m.Status, m.Why)
		}
		checkHistory(t, e.loadState("phoenix"), max)
	})
}

// A hand-made loop-x tmux session with no run dir behind it is an orphan
// once past the start grace; a dry run changes nothing, a real cleanup with
// kill_orphans closes it.
func TestOrphan(t *testing.T) {
	inVersion(t, modernVersion, func(t *testing.T, v string) {
		e := newEnv(t)
		c := e.connect(v)
		err := e.tmux.NewSession(context.Background(), tmux.NewSessionOptions{Name: "loop-x", Dir: e.project, Argv: []string{"sleep", "600"}})
		if err != nil {
			t.Fatal(err)
		}

		// Young: it may be an engine starting, and cleanup never touches it.
		if s, _ := summary(c.list(nil), "x"); s.Status != state.LiveStarting {
			t.Errorf("young loop-x listed as %q, want starting", s.Status)
		}
		var r tools.CleanupResult
		c.ok("cleanup", map[string]any{"dry_run": false, "kill_orphans": true}, &r)
		if len(r.Orphans) != 0 || !e.hasTmux("loop-x") {
			t.Errorf("cleanup touched a starting session: orphans %+v", r.Orphans)
		}

		e.advance(state.StartGrace + time.Minute)
		l := c.list(nil)
		s, ok := summary(l, "x")
		if !ok || s.Status != state.LiveOrphan || s.TmuxSession != "loop-x" || l.Counts.Orphan != 1 {
			t.Errorf("loop-x listed as %+v (counts %+v), want orphan", s, l.Counts)
		}
		if !slices.ContainsFunc(l.NextSteps, func(o tools.Option) bool { return o.Tool == "cleanup" && o.Arguments["kill_orphans"] == true }) {
			t.Errorf("no cleanup of the orphan in %+v", l.NextSteps)
		}
		if text, _ := c.readResource(tools.ReminderURI); !strings.Contains(text, "**x** — orphan") || !strings.Contains(text, "kill_orphans") {
			t.Errorf("reminder does not name the orphan:\n%s", text)
		}

		before := projectFiles(t, e.project)
		c.ok("cleanup", map[string]any{"kill_orphans": true}, &r)
		if !r.DryRun || len(r.Orphans) != 1 || r.Orphans[0].Session != "x" || r.Orphans[0].TmuxSession != "loop-x" {
			t.Errorf("dry run: %+v", r)
		}
		if len(r.Actions) != 1 || r.Actions[0].Action != "kill_orphan" || r.Actions[0].Done {
			t.Errorf("dry run actions = %+v", r.Actions)
		}
		if !e.hasTmux("loop-x") {
			t.Fatal("a dry run closed loop-x")
		}
		if got := projectFiles(t, e.project); !slices.Equal(got, before) {
			t.Errorf("a dry run changed files:\nbefore %q\nafter  %q", before, got)
		}

		c.ok("cleanup", map[string]any{"dry_run": false, "kill_orphans": true}, &r)
		if r.DryRun || len(r.Actions) != 1 || !r.Actions[0].Done {
			t.Errorf("cleanup actions = %+v", r.Actions)
		}
		if e.hasTmux("loop-x") {
			t.Error("loop-x survived cleanup with kill_orphans")
		}
		if l := c.list(nil); len(l.Sessions) != 0 {
			t.Errorf("after cleanup: %+v", l.Sessions)
		}
	})
}
