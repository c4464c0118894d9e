package tools_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tools"
)

// forVersions runs f as a parallel subtest per protocol revision. Tests of
// what the protocol carries (the handshake, instructions, resources, error
// shapes, text bounds) run under both.
func forVersions(t *testing.T, f func(t *testing.T, v string)) {
	t.Helper()
	t.Parallel()
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			f(t, v)
		})
	}
}

// inVersion runs f as a subtest under the one protocol revision v (named
// like forVersions' subtests). Tests of what the tools do to sessions
// (start, kill, crash, resume, list) run under one revision each, half
// under each: the revisions differ in the handshake and in each request's
// metadata, never in what a handler does, and TestEveryToolInBothEras calls
// every tool under both. Each of these tests under both revisions cost the
// suite about 4 CPU-seconds of sessions doing the same thing twice.
func inVersion(t *testing.T, v string, f func(t *testing.T, v string)) {
	t.Helper()
	t.Parallel()
	t.Run(v, func(t *testing.T) { f(t, v) })
}

// finish starts a session of the quick stage and waits for it to complete.
func finish(t *testing.T, c *mcpClient, session string) {
	t.Helper()
	c.start(map[string]any{"session": session, "stage": "quick"})
	if m := c.monitorWait(session, "complete", 60); m.Status != state.LiveComplete {
		t.Fatalf("%s: status %q after wait complete (%s)", session, m.Status, m.Why)
	}
}

// crash starts a session of the step stage, lets one iteration complete and
// SIGKILLs its engine; its tmux session closes with it.
func crash(t *testing.T, e *testEnv, c *mcpClient, session string) {
	t.Helper()
	c.start(map[string]any{"session": session, "stage": "step"})
	c.monitorWait(session, "iteration", 60)
	pid := e.enginePID(session)
	if pid == 0 {
		t.Fatalf("%s: no engine pid in the lock file", session)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the engine to die", func() bool { return processDead(pid) })
	eventually(t, 10*time.Second, "its tmux session to close", func() bool { return !e.hasTmux("loop-" + session) })
}

func TestAttachHint(t *testing.T) {
	inVersion(t, legacyVersion, func(t *testing.T, v string) {
		e := newEnv(t)
		e.stage("long", longStage)
		e.stage("quick", quickStage)
		c := e.connect(v)
		c.start(map[string]any{"session": "watch", "stage": "long"})
		// A session whose name is a prefix of another's: the hint must
		// target exactly.
		c.start(map[string]any{"session": "watch-2", "stage": "long"})

		var a tools.AttachResult
		text := c.ok("attach_hint", map[string]any{"session": "watch"}, &a)
		for _, cmd := range []string{a.Command, a.ReadOnlyCommand, a.SwitchCommand} {
			if !strings.Contains(cmd, "-L "+e.socket) || !strings.Contains(cmd, "=loop-watch") || strings.Contains(cmd, "watch-2") {
				t.Errorf("command %q: want -L %s and exactly =loop-watch", cmd, e.socket)
			}
		}
		if strings.HasSuffix(a.Command, " -r") || !strings.HasSuffix(a.ReadOnlyCommand, " -r") || !strings.Contains(a.SwitchCommand, "switch-client") {
			t.Errorf("commands = %+v", a)
		}
		if a.Status != state.LiveRunning || !strings.Contains(a.DetachKeys, "Ctrl+b") {
			t.Errorf("attach = %+v", a)
		}
		if !strings.Contains(text, "Ctrl+C") {
			t.Errorf("text lacks the Ctrl+C warning:\n%s", text)
		}
		c.ok("attach_hint", map[string]any{"session": "watch", "read_only": true}, &a)
		if a.Command != a.ReadOnlyCommand {
			t.Errorf("read_only: command %q, want %q", a.Command, a.ReadOnlyCommand)
		}

		finish(t, c, "over")
		te := c.fail("attach_hint", map[string]any{"session": "over"}, tools.CodeNotFound)
		if !hasOption(te.Options, "monitor", map[string]any{"session": "over"}) {
			t.Errorf("options %+v lack monitor", te.Options)
		}
		c.fail("attach_hint", map[string]any{"session": "nobody"}, tools.CodeNotFound)
		c.fail("attach_hint", map[string]any{"session": "Not Valid"}, tools.CodeInvalidArgument)
	})
}

func TestList(t *testing.T) {
	inVersion(t, modernVersion, func(t *testing.T, v string) {
		e := newEnv(t)
		e.stage("long", longStage)
		e.stage("quick", quickStage)
		c := e.connect(v)
		if l := c.list(nil); len(l.Sessions) != 0 || l.Counts.Total != 0 {
			t.Errorf("empty project lists %+v", l.Sessions)
		}
		c.start(map[string]any{"session": "live", "stage": "long"})
		finish(t, c, "done")

		l := c.list(map[string]any{"include_finished": true})
		if l.ProjectDir != e.project || l.Counts.Total != 2 || l.Counts.Running != 1 || l.Counts.Complete != 1 {
			t.Errorf("list = project %q counts %+v", l.ProjectDir, l.Counts)
		}
		live, ok := summary(l, "live")
		if !ok || live.Status != state.LiveRunning || live.Definition != "long" || live.TmuxSession != "" ||
			!strings.HasSuffix(live.Iterations, "/500") || live.ProjectDir != "" {
			t.Errorf("live = %+v", live)
		}
		done, ok := summary(l, "done")
		if !ok || done.Status != state.LiveComplete || done.CompletionReason != "fixed-n" || done.Iterations != "3/3" {
			t.Errorf("done = %+v", done)
		}
		if l.Catalog != nil {
			t.Errorf("catalog listed without include_catalog")
		}
		// Running first.
		if l.Sessions[0].Session != "live" {
			t.Errorf("first session %q, want the running one", l.Sessions[0].Session)
		}
		// Default include_finished is true.
		if d := c.list(nil); d.Counts.Total != 2 {
			t.Errorf("default list has %d sessions, want 2", d.Counts.Total)
		}

		l = c.list(map[string]any{"include_finished": false})
		if len(l.Sessions) != 1 || l.Sessions[0].Session != "live" {
			t.Errorf("include_finished false lists %+v", l.Sessions)
		}

		l = c.list(map[string]any{"include_catalog": true})
		sources := map[string]string{}
		for _, en := range l.Catalog {
			sources[en.Kind+" "+en.Name] = en.Source
		}
		for _, want := range []string{"stage work", "stage improve-plan", "stage refine-beads", "stage idea-wizard", "stage demo",
			"pipeline quick-refine", "pipeline full-refine", "pipeline deep-refine"} {
			if src, ok := sources[want]; !ok || src != "" {
				t.Errorf("catalog: %s from %q, want built in (no source)", want, src)
			}
		}
		if sources["stage long"] != ".claude/stages" {
			t.Errorf("catalog: project stage long from %q", sources["stage long"])
		}
		c.fail("list", map[string]any{"project_dir": filepath.Join(e.project, "missing")}, tools.CodeInvalidArgument)
		c.fail("list", map[string]any{"include_finished": "yes"}, tools.CodeInvalidArgument)
	})
}

func TestKill(t *testing.T) {
	inVersion(t, legacyVersion, func(t *testing.T, v string) {
		e := newEnv(t)
		e.stage("long", longStage)
		c := e.connect(v)
		c.start(map[string]any{"session": "victim", "stage": "long"})
		c.monitorWait("victim", "iteration", 60)
		pid := e.enginePID("victim")

		var k tools.KillResult
		text := c.ok("kill", map[string]any{"session": "victim"}, &k)
		if !k.Killed || k.StatusBefore != state.LiveRunning || k.Status != state.StatusKilled {
			t.Errorf("kill = %+v", k)
		}
		if !strings.Contains(k.RemainingWork, "of 500 iterations done") {
			t.Errorf("kill progress = %+v", k)
		}
		if len(k.NextSteps) != 1 || k.NextSteps[0].Tool != "start_session" || k.NextSteps[0].Arguments["mode"] != "resume" || len(k.Steps) == 0 {
			t.Errorf("next steps %+v, steps %q", k.NextSteps, k.Steps)
		}
		if data, err := os.ReadFile(e.layout("victim").FinalOutput()); err != nil || !strings.Contains(string(data), "[mock agent]") {
			t.Errorf("final-output.txt = %q, %v", data, err)
		}
		if !strings.Contains(text, "Stopped victim") {
			t.Errorf("text = %q", text)
		}
		if e.hasTmux("loop-victim") {
			t.Error("tmux session loop-victim survived the kill")
		}
		eventually(t, 5*time.Second, "the engine to exit", func() bool { return processDead(pid) })
		if st := e.loadState("victim"); st.Status != state.StatusKilled {
			t.Errorf("state status = %q, want killed", st.Status)
		}

		// Killing it again is a calm no-op.
		text = c.ok("kill", map[string]any{"session": "victim"}, &k)
		if k.Killed || k.StatusBefore != state.LiveKilled {
			t.Errorf("second kill = %+v", k)
		}
		if !strings.Contains(text, "nothing was stopped") {
			t.Errorf("second kill text = %q", text)
		}
		c.fail("kill", map[string]any{"session": "nobody"}, tools.CodeNotFound)
		c.fail("kill", map[string]any{"session": "../etc"}, tools.CodeInvalidArgument)
		c.fail("kill", map[string]any{}, tools.CodeInvalidArgument)
	})
}

func TestCleanup(t *testing.T) {
	inVersion(t, modernVersion, func(t *testing.T, v string) {
		e := newEnv(t)
		e.stage("quick", quickStage)
		e.stage("step", stepStage)
		c := e.connect(v)
		finish(t, c, "old")
		crash(t, e, c, "broke")

		l := c.list(nil)
		if s, _ := summary(l, "broke"); s.Status != state.LiveCrashed || !s.StaleLock {
			t.Errorf("broke = %+v, want crashed with a stale lock", s)
		}
		var r tools.CleanupResult
		c.ok("cleanup", nil, &r)
		if !r.DryRun || len(r.Actions) != 0 {
			t.Errorf("default cleanup: dry_run %v, actions %+v", r.DryRun, r.Actions)
		}
		if len(r.Crashed) != 1 || r.Crashed[0].Session != "broke" || len(r.StaleLocks) != 1 || r.StaleLocks[0].Session != "broke" {
			t.Errorf("crashed %+v, stale locks %+v", r.Crashed, r.StaleLocks)
		}

		// Three days on, the finished run may be pruned.
		e.advance(72 * time.Hour)
		flags := map[string]any{"mark_crashed": true, "remove_stale_locks": true, "prune_older_than_days": 1}
		before := projectFiles(t, e.project)
		text := c.ok("cleanup", flags, &r)
		if got := projectFiles(t, e.project); !slices.Equal(got, before) {
			t.Errorf("a dry run changed files:\nbefore %q\nafter  %q", before, got)
		}
		if !r.DryRun || len(r.Prunable) != 1 || r.Prunable[0].Session != "old" {
			t.Errorf("dry run: prunable %+v", r.Prunable)
		}
		actions := map[string]bool{}
		for _, a := range r.Actions {
			if a.Done {
				t.Errorf("dry run did %+v", a)
			}
			actions[a.Action+" "+a.Session] = true
		}
		for _, want := range []string{"mark_crashed broke", "remove_stale_lock broke", "prune old"} {
			if !actions[want] {
				t.Errorf("dry run actions %+v lack %s", r.Actions, want)
			}
		}
		if !strings.Contains(text, "dry run") {
			t.Errorf("text = %q", text)
		}

		flags["dry_run"] = false
		c.ok("cleanup", flags, &r)
		for _, a := range r.Actions {
			if !a.Done {
				t.Errorf("action not done: %+v", a)
			}
		}
		if st := e.loadState("broke"); st.Status != state.StatusFailed {
			t.Errorf("broke: status %q, want failed", st.Status)
		}
		if ls, _ := state.ProbeLock(e.layout("broke").LockFile()); ls.Exists {
			t.Errorf("broke: lock file still there")
		}
		if _, err := os.Stat(e.layout("old").RunDir()); !os.IsNotExist(err) {
			t.Errorf("old: run dir still there (%v)", err)
		}
		archived, _ := filepath.Glob(filepath.Join(e.project, ".claude", "pipeline-runs", tools.ArchiveDir, "old.*", "state.json"))
		if len(archived) != 1 {
			t.Errorf("archived runs = %q, want old's", archived)
		}
		// A crashed session marked failed stays resumable.
		e.advance(-72 * time.Hour)
		if res := c.start(map[string]any{"session": "broke", "mode": "resume", "max_iterations": e.loadState("broke").IterationCompleted + 1}); res.Mode != "resume" {
			t.Errorf("resume = %+v", res)
		}
		if m := c.monitorWait("broke", "complete", 60); m.Status != state.LiveComplete {
			t.Errorf("broke after resume: %q (%s)", m.Status, m.Why)
		}
		c.fail("cleanup", map[string]any{"prune_older_than_days": -1}, tools.CodeInvalidArgument)
		c.fail("cleanup", map[string]any{"kill_everything": true}, tools.CodeInvalidArgument)
	})
}

// TestEveryToolInBothEras calls each of the seven tools under both protocol
// revisions on one finished session, success and error paths alike: the
// tests that run under one revision (inVersion) rely on it, and on
// TestEndToEnd, which drives start, list, monitor, kill and cleanup over
// stdio under both.
func TestEveryToolInBothEras(t *testing.T) {
	forVersions(t, func(t *testing.T, v string) {
		e := newEnv(t)
		e.stage("quick", quickStage)
		c := e.connect(v)
		var st tools.StartResult
		c.ok("start_session", map[string]any{"session": "both", "stage": "quick"}, &st)
		if st.Session != "both" {
			t.Errorf("start_session = %+v", st)
		}
		if m := c.monitorWait("both", "complete", 60); m.Status != state.LiveComplete || m.Waited == nil || !m.Waited.Met {
			t.Errorf("monitor wait complete = status %q, waited %+v", m.Status, m.Waited)
		}
		if s, ok := summary(c.list(nil), "both"); !ok || s.Status != state.LiveComplete {
			t.Errorf("list: both = %+v, %v", s, ok)
		}
		var k tools.KillResult
		c.ok("kill", map[string]any{"session": "both"}, &k)
		if k.Killed || k.StatusBefore != state.LiveComplete {
			t.Errorf("kill of a finished session = %+v", k)
		}
		var r tools.ReplyResult
		c.ok("reply", map[string]any{"session": "both", "answer": "yes"}, &r)
		if r.Answered || r.Status != state.LiveComplete {
			t.Errorf("reply to a session asking nothing = %+v", r)
		}
		var cl tools.CleanupResult
		c.ok("cleanup", nil, &cl)
		if !cl.DryRun {
			t.Errorf("cleanup = %+v", cl)
		}
		c.fail("attach_hint", map[string]any{"session": "both"}, tools.CodeNotFound)
		c.fail("monitor", map[string]any{"session": "nobody"}, tools.CodeNotFound)
		c.fail("start_session", map[string]any{"session": "both", "stage": "quick"}, tools.CodeConflictComplete)
	})
}

// TestPollFromEnv: AGENT_SESSIONS_POLL is a duration with a unit of at
// least 10 ms; unset is the default (0); anything else is refused with
// the variable named and an example.
func TestPollFromEnv(t *testing.T) {
	for _, c := range []struct {
		env  []string
		want time.Duration
		bad  bool
	}{
		{nil, 0, false},
		{[]string{"AGENT_SESSIONS_POLL=50ms"}, 50 * time.Millisecond, false},
		{[]string{"AGENT_SESSIONS_POLL=1s", "AGENT_SESSIONS_POLL=20ms"}, 20 * time.Millisecond, false},
		{[]string{"AGENT_SESSIONS_POLL=1"}, 0, true},
		{[]string{"AGENT_SESSIONS_POLL=5ms"}, 0, true},
		{[]string{"AGENT_SESSIONS_POLL=-1s"}, 0, true},
		{[]string{"AGENT_SESSIONS_POLL=soon"}, 0, true},
	} {
		got, err := tools.PollFromEnv(c.env)
		switch {
		case c.bad && (err == nil || !strings.Contains(err.Error(), "AGENT_SESSIONS_POLL=250ms")):
			t.Errorf("%q: %v, %v; want an error naming the variable and an example", c.env, got, err)
		case !c.bad && (err != nil || got != c.want):
			t.Errorf("%q: %v, %v; want %v", c.env, got, err, c.want)
		}
	}
}
