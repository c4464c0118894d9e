package tools_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tools"
)

// projectFiles lists every file under dir with its size and mtime, to show
// that a call changed nothing.
func projectFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		files = append(files, fmt.Sprintf("%s %s %d %s", rel, info.Mode(), info.Size(), info.ModTime().Format(time.RFC3339Nano)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestStartSession(t *testing.T) {
	inVersion(t, modernVersion, func(t *testing.T, v string) {
		e := newEnv(t)
		e.stage("quick", quickStage)
		e.stage("long", longStage)
		e.stage("step", stepStage)
		c := e.connect(v)

		t.Run("dry_run", func(t *testing.T) {
			before := projectFiles(t, e.project)
			var res tools.StartResult
			text := c.ok("start_session", map[string]any{"session": "preview", "stage": "quick", "context": "polish the README", "dry_run": true}, &res)
			if res.Status != "dry_run" {
				t.Errorf("status = %q, want dry_run", res.Status)
			}
			want := "Session preview, iteration 1 of 3, stage quick. Context: polish the README"
			if !strings.Contains(res.FirstPrompt, want) {
				t.Errorf("first_prompt = %q, want it to contain %q", res.FirstPrompt, want)
			}
			if !strings.Contains(text, want) {
				t.Errorf("text lacks the first prompt:\n%s", text)
			}
			if len(res.Stages) != 1 || res.Stages[0].Completion != "fixed-n" || res.Stages[0].MaxIterations != 3 || res.Stages[0].Provider != "mock" {
				t.Errorf("stages = %+v, want one fixed-n stage of 3 mock iterations", res.Stages)
			}
			if res.Type != "loop" || res.AttachCommand != "" {
				t.Errorf("type, attach_command = %q, %q; want loop and none for a dry run", res.Type, res.AttachCommand)
			}
			if got := projectFiles(t, e.project); !slices.Equal(got, before) {
				t.Errorf("dry run changed the project:\nbefore %q\nafter  %q", before, got)
			}
			if got := e.rec.Created(); len(got) != 0 {
				t.Errorf("dry run created tmux sessions %q", got)
			}
			if names := e.tmuxNames(); len(names) != 0 {
				t.Errorf("tmux sessions after a dry run: %q", names)
			}
		})

		t.Run("invalid_name", func(t *testing.T) {
			te := c.fail("start_session", map[string]any{"session": "My Session!", "stage": "quick"}, tools.CodeInvalidArgument)
			suggested := state.SuggestSession("My Session!")
			if err := state.ValidateSession(suggested); err != nil {
				t.Fatalf("suggested name %q is invalid: %v", suggested, err)
			}
			if !hasOption(te.Options, "start_session", map[string]any{"session": suggested}) {
				t.Errorf("options %+v lack start_session with the suggested name %q", te.Options, suggested)
			}
		})

		t.Run("unknown_stage", func(t *testing.T) {
			te := c.fail("start_session", map[string]any{"session": "ghost", "stage": "no-such-stage"}, tools.CodeNotFound)
			if !strings.Contains(te.Message, "no-such-stage") {
				t.Errorf("message %q does not name the stage", te.Message)
			}
			if !hasOption(te.Options, "list", map[string]any{"include_catalog": true}) {
				t.Errorf("options %+v lack list with include_catalog", te.Options)
			}
		})

		t.Run("unknown_argument", func(t *testing.T) {
			te := c.fail("start_session", map[string]any{"session": "typo", "stage": "quick", "stages": "quick"}, tools.CodeInvalidArgument)
			for _, known := range []string{`"stages"`, "session", "stage", "pipeline", "max_iterations", "project_dir", "mode", "provider", "model", "context", "inputs", "dry_run"} {
				if !strings.Contains(te.Message, known) {
					t.Errorf("message %q does not name %s", te.Message, known)
				}
			}
		})

		t.Run("new", func(t *testing.T) {
			res := c.start(map[string]any{"session": "s1", "stage": "long"})
			if res.Status != state.StatusRunning {
				t.Errorf("status = %q, want running", res.Status)
			}
			if !strings.Contains(res.AttachCommand, "=loop-s1") || res.Type != "loop" || res.Definition != "long" || res.Mode != "" {
				t.Errorf("result = %+v", res)
			}
			if want := filepath.Join(e.project, ".claude", "pipeline-runs", "s1"); res.RunDir != want {
				t.Errorf("run_dir = %q, want %q", res.RunDir, want)
			}
			if !strings.Contains(res.AttachCommand, "-L "+e.socket) || !strings.Contains(res.AttachCommand, "=loop-s1") {
				t.Errorf("attach_command = %q, want -L %s and =loop-s1", res.AttachCommand, e.socket)
			}
			if !e.hasTmux("loop-s1") {
				t.Error("tmux session loop-s1 missing")
			}
			if ls, _ := state.ProbeLock(e.layout("s1").LockFile()); !ls.Held {
				t.Error("the engine does not hold its lock")
			}
			// Once start_session answers, the run's state is there to read.
			if st := e.loadState("s1"); st.Status != state.StatusRunning || st.Stage != "long" || st.MaxIterations != 500 {
				t.Errorf("state right after start: status %q stage %q max %d", st.Status, st.Stage, st.MaxIterations)
			}
		})

		t.Run("conflict_running", func(t *testing.T) {
			te := c.fail("start_session", map[string]any{"session": "s1", "stage": "long"}, tools.CodeConflictRunning)
			for _, o := range []struct {
				tool string
				args map[string]any
			}{
				{"monitor", map[string]any{"session": "s1"}},
				{"kill", map[string]any{"session": "s1"}},
				{"start_session", map[string]any{"session": "s1", "mode": "force"}},
				{"start_session", map[string]any{"session": "s1-2"}},
			} {
				if !hasOption(te.Options, o.tool, o.args) {
					t.Errorf("options %+v lack %s %v", te.Options, o.tool, o.args)
				}
			}
		})

		t.Run("force", func(t *testing.T) {
			oldPID := e.enginePID("s1")
			oldStart := e.loadState("s1").StartedAt
			res := c.start(map[string]any{"session": "s1", "stage": "long", "mode": "force"})
			if res.Status != state.StatusRunning || res.Mode != "force" {
				t.Errorf("status, mode = %q, %q; want running, force", res.Status, res.Mode)
			}
			if st := e.loadState("s1"); !st.StartedAt.After(oldStart) || st.Status != state.StatusRunning {
				t.Errorf("state right after force: started %v (old run %v), status %q", st.StartedAt, oldStart, st.Status)
			}
			aside, _ := filepath.Glob(filepath.Join(e.project, ".claude", "pipeline-runs", "s1.*"))
			if len(aside) != 1 || !regexp.MustCompile(`/s1\.\d{8}T\d{6}$`).MatchString(aside[0]) {
				t.Fatalf("moved-aside run dirs = %q, want one s1.<timestamp>", aside)
			}
			if _, err := os.Stat(filepath.Join(aside[0], "state.json")); err != nil {
				t.Errorf("the old run was not kept: %v", err)
			}
			if pid := e.enginePID("s1"); pid == oldPID || pid == 0 {
				t.Errorf("engine pid = %d, want a new engine (old %d)", pid, oldPID)
			}
			eventually(t, 5*time.Second, "the old engine to exit", func() bool { return processDead(oldPID) })
			var k tools.KillResult
			c.ok("kill", map[string]any{"session": "s1"}, &k)
			if !k.Killed || k.Status != state.StatusKilled {
				t.Errorf("kill = %+v", k)
			}
		})

		t.Run("conflict_complete", func(t *testing.T) {
			c.start(map[string]any{"session": "s2", "stage": "quick"})
			m := c.monitorWait("s2", "complete", 60)
			if m.Status != state.LiveComplete {
				t.Fatalf("status after wait complete = %q (%s)", m.Status, m.Why)
			}
			te := c.fail("start_session", map[string]any{"session": "s2", "stage": "quick"}, tools.CodeConflictComplete)
			if !hasOption(te.Options, "start_session", map[string]any{"session": "s2", "mode": "force"}) ||
				!hasOption(te.Options, "start_session", map[string]any{"session": "s2-2"}) {
				t.Errorf("options %+v lack force and another name", te.Options)
			}
			// resume of a complete session is refused too.
			c.fail("start_session", map[string]any{"session": "s2", "mode": "resume"}, tools.CodeConflictComplete)
		})

		t.Run("conflict_crashed_and_resume", func(t *testing.T) {
			c.start(map[string]any{"session": "s3", "stage": "step"})
			c.monitorWait("s3", "iteration", 60)
			pid := e.enginePID("s3")
			if pid == 0 {
				t.Fatal("no engine pid in the lock file")
			}
			syscall.Kill(pid, syscall.SIGKILL)
			eventually(t, 10*time.Second, "tmux session loop-s3 to close", func() bool { return !e.hasTmux("loop-s3") })
			te := c.fail("start_session", map[string]any{"session": "s3", "stage": "step"}, tools.CodeConflictCrashed)
			if !hasOption(te.Options, "start_session", map[string]any{"session": "s3", "mode": "resume"}) {
				t.Errorf("options %+v lack resume", te.Options)
			}
			done := e.loadState("s3").IterationCompleted
			max := done + 2
			res := c.start(map[string]any{"session": "s3", "mode": "resume", "max_iterations": max})
			if res.Mode != "resume" || res.ResumeAt == "" {
				t.Errorf("resume result = %+v", res)
			}
			m := c.monitorWait("s3", "complete", 60)
			if m.Status != state.LiveComplete {
				t.Fatalf("status after resume = %q (%s)", m.Status, m.Why)
			}
			checkHistory(t, e.loadState("s3"), max)
		})

		t.Run("agent_unavailable", func(t *testing.T) {
			e.setPath(t.TempDir()) // no claude on it
			defer e.setPath("")
			before := len(e.rec.Created())
			te := c.fail("start_session", map[string]any{"session": "needs-claude", "stage": "quick", "provider": "claude"}, tools.CodeAgentUnavailable)
			if !strings.Contains(te.Message, "claude") {
				t.Errorf("message %q does not name claude", te.Message)
			}
			if got := e.rec.Created()[before:]; len(got) != 0 {
				t.Errorf("tmux sessions created despite the missing agent: %q", got)
			}
			if _, err := os.Stat(e.layout("needs-claude").RunDir()); err == nil {
				t.Error("a run dir was created despite the missing agent")
			}
		})

		// As root without IS_SANDBOX=1, every claude iteration would exit 1
		// at once: refused before anything is created, naming the fix.
		t.Run("root_without_sandbox", func(t *testing.T) {
			e.deps.Geteuid = func() int { return 0 }
			e.setEnv("IS_SANDBOX=")
			defer func() { e.deps.Geteuid = nil; e.setEnv("IS_SANDBOX=1") }()
			before := len(e.rec.Created())
			te := c.fail("start_session", map[string]any{"session": "root-claude", "stage": "quick", "provider": "claude"}, tools.CodeAgentUnavailable)
			if !strings.Contains(te.Message, "IS_SANDBOX=1") || !strings.Contains(te.Message, "-e IS_SANDBOX=1") {
				t.Errorf("message %q does not name the fix", te.Message)
			}
			if got := e.rec.Created()[before:]; len(got) != 0 {
				t.Errorf("tmux sessions created: %q", got)
			}
			if _, err := os.Stat(e.layout("root-claude").RunDir()); err == nil {
				t.Error("a run dir was created")
			}
			// The mock provider needs no sandbox.
			e.deps.Geteuid = func() int { return 0 }
			c.ok("start_session", map[string]any{"session": "root-mock", "stage": "quick", "provider": "mock", "dry_run": true}, nil)
		})
	})
}

// checkHistory checks that a finished session ran iterations 1..n once each.
func checkHistory(t *testing.T, st state.State, n int) {
	t.Helper()
	if st.Status != state.StatusComplete {
		t.Errorf("status = %q, want complete", st.Status)
	}
	var got []int
	for _, h := range st.History {
		got = append(got, h.Iteration)
	}
	var want []int
	for i := 1; i <= n; i++ {
		want = append(want, i)
	}
	if !slices.Equal(got, want) {
		t.Errorf("history iterations = %v, want %v", got, want)
	}
}
