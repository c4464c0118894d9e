package tools_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tools"
)

// TestOneStagePipelineProgress: a pipeline of one stage keeps its progress
// where a loop does (the engine's rule); monitor and the progress resource
// must look there too — they once looked in stage-01-<name>/progress.md.
func TestOneStagePipelineProgress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("noted", "completion: fixed-n\nprovider: mock\nmax_iterations: 2\ndelay: 0.1\n")
	writeFile(t, filepath.Join(e.project, ".claude", "pipelines", "solo.yaml"),
		"name: solo\ndescription: one stage\nstages:\n  - name: only\n    stage: noted\n    runs: 2\n")
	c := e.connect(modernVersion)
	c.start(map[string]any{"session": "solo-1", "pipeline": "solo"})
	m := c.monitorWait("solo-1", "complete", 60)
	if m.Status != state.LiveComplete {
		t.Fatalf("status %q, want complete", m.Status)
	}
	if !strings.Contains(m.ProgressTail, "mock agent") {
		t.Errorf("monitor progress_tail = %q, want the mock agent's notes", m.ProgressTail)
	}
	text, err := c.readResource("sessions://session/solo-1/progress")
	if err != nil || !strings.Contains(text, "mock agent") {
		t.Errorf("progress resource = %q, %v", text, err)
	}
}

// TestNestedSessionsRefused: a server running inside an agent (its
// environment has AGENT_SESSIONS_SESSION) refuses to start sessions, unless
// a person allowed it with AGENT_SESSIONS_ALLOW_NESTED=1.
func TestNestedSessionsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("quick", quickStage)
	e.setEnv(tools.SessionEnv + "=outer")
	c := e.connect(modernVersion)
	te := c.fail("start_session", map[string]any{"session": "inner", "stage": "quick"}, tools.CodeNotAllowed)
	if !strings.Contains(te.Message, tools.AllowNestedEnv+"=1") {
		t.Errorf("message %q does not say how to allow it", te.Message)
	}
	if e.hasTmux("loop-inner") {
		t.Error("a refused start created a tmux session")
	}
	var dry tools.StartResult
	c.ok("start_session", map[string]any{"session": "inner", "stage": "quick", "dry_run": true}, &dry)
	e.setEnv(tools.AllowNestedEnv + "=1")
	if res := c.start(map[string]any{"session": "inner", "stage": "quick"}); res.Status == "" {
		t.Errorf("allowed nested start: %+v", res)
	}
}

// execOptions runs every option of an error as given and fails the test if
// one of them does not succeed: an option is a call Claude makes verbatim.
func execOptions(t *testing.T, c *mcpClient, what string, te toolErr) {
	t.Helper()
	if len(te.Options) == 0 {
		t.Errorf("%s: no options", what)
	}
	for _, o := range te.Options {
		if r := c.call(o.Tool, o.Arguments); r.IsError {
			t.Errorf("%s: option %s %v failed: %s", what, o.Tool, o.Arguments, r.Text)
		}
	}
}

// TestErrorOptionsSucceedAsGiven provokes each error that offers options
// and executes every option exactly as offered.
func TestErrorOptionsSucceedAsGiven(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("quick", quickStage)
	e.stage("long", longStage)
	e.stage("absent", "completion: fixed-n\nprovider: command\ncommand: [no-such-agent-cli-xyz]\nmax_iterations: 2\n")
	c := e.connect(modernVersion)

	te := c.fail("start_session", map[string]any{"session": "Bad Name!", "stage": "quick"}, tools.CodeInvalidArgument)
	execOptions(t, c, "invalid name", te)

	execOptions(t, c, "monitor of nobody", c.fail("monitor", map[string]any{"session": "nobody"}, tools.CodeNotFound))
	execOptions(t, c, "resume of nobody", c.fail("start_session", map[string]any{"session": "nobody", "mode": "resume"}, tools.CodeNotFound))
	execOptions(t, c, "missing agent", c.fail("start_session", map[string]any{"session": "needs-cli", "stage": "absent"}, tools.CodeAgentUnavailable))
	execOptions(t, c, "neither stage nor pipeline", c.fail("start_session", map[string]any{"session": "what"}, tools.CodeInvalidArgument))

	c.start(map[string]any{"session": "done", "stage": "quick"})
	c.monitorWait("done", "complete", 60)
	execOptions(t, c, "attach to an ended session", c.fail("attach_hint", map[string]any{"session": "done"}, tools.CodeNotFound))
	// A taken name's other-name option must skip names in use too.
	c.start(map[string]any{"session": "done-2", "stage": "quick"})
	c.monitorWait("done-2", "complete", 60)
	execOptions(t, c, "complete name taken", c.fail("start_session", map[string]any{"session": "done", "stage": "quick"}, tools.CodeConflictComplete))
	execOptions(t, c, "resume of a complete session", c.fail("start_session", map[string]any{"session": "done-2", "mode": "resume"}, tools.CodeConflictComplete))

	c.start(map[string]any{"session": "busy", "stage": "long"})
	execOptions(t, c, "running name taken", c.fail("start_session", map[string]any{"session": "busy", "stage": "long"}, tools.CodeConflictRunning))
	c.call("kill", map[string]any{"session": "busy"})
	execOptions(t, c, "killed name taken", c.fail("start_session", map[string]any{"session": "busy", "stage": "long"}, tools.CodeConflictCrashed))
}

// TestListNewcomerDefects: the text puts a line break after "No agent
// sessions." and shows broken local definitions; a stale lock without a
// run dir lists with a status that says so.
func TestListNewcomerDefects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	writeFile(t, filepath.Join(e.project, ".claude", "stages", "broken", "stage.yaml"), "completion: fixed-n\nbogus_field: 1\n")
	writeFile(t, filepath.Join(e.project, ".claude", "stages", "broken", "prompt.md"), "x\n")
	c := e.connect(modernVersion)
	var l tools.ListResult
	text := c.ok("list", map[string]any{"include_catalog": true}, &l)
	if !strings.Contains(text, "No agent sessions.\nAvailable to start:") {
		t.Errorf("text runs lines together:\n%s", text)
	}
	if len(l.CatalogProblems) == 0 || !strings.Contains(text, "bogus_field") {
		t.Errorf("the broken stage is hidden: problems %q, text:\n%s", l.CatalogProblems, text)
	}

	writeFile(t, e.layout("ghost").LockFile(), `{"session":"ghost","pid":999999}`)
	text = c.ok("list", nil, &l)
	s, ok := summary(l, "ghost")
	if !ok || s.Status != tools.LiveStaleLock {
		t.Errorf("ghost listed as %+v, want status %s", s, tools.LiveStaleLock)
	}
	if !strings.Contains(text, "ghost [stale_lock]") || l.Counts.StaleLock != 1 {
		t.Errorf("counts %+v, text:\n%s", l.Counts, text)
	}
	if !hasOption(l.NextSteps, "cleanup", map[string]any{"remove_stale_locks": true}) {
		t.Errorf("next steps %+v, want the stale lock removed", l.NextSteps)
	}
}

// TestForceSaysWhereTheOldRunWent: force answers with the real directory
// the old run was moved to, not a placeholder.
func TestForceSaysWhereTheOldRunWent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("quick", quickStage)
	c := e.connect(modernVersion)
	c.start(map[string]any{"session": "again", "stage": "quick"})
	c.monitorWait("again", "complete", 60)
	var res tools.StartResult
	text := c.ok("start_session", map[string]any{"session": "again", "stage": "quick", "mode": "force"}, &res)
	if res.MovedAside == "" || strings.Contains(res.MovedAside, "<") {
		t.Fatalf("moved_aside = %q; text:\n%s", res.MovedAside, text)
	}
	if _, err := os.Stat(filepath.Join(res.MovedAside, "state.json")); err != nil {
		t.Errorf("the old run is not at %s: %v", res.MovedAside, err)
	}
	if !strings.Contains(text, res.MovedAside) {
		t.Errorf("text does not say where the old run went:\n%s", text)
	}
}

// TestDebugToolsListsArguments: debug mode's `tools` names each tool's
// arguments (required ones starred).
func TestDebugToolsListsArguments(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var out bytes.Buffer
	if err := tools.Debug(e.ctx, e.deps, "test", strings.NewReader("tools\nquit\n"), &out, ""); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"start_session", "session*", "stage", "lines", "kill_orphans"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("tools output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestReminderGivesCommands: the reminder a person reads (the reminder
// command, the Stop hook) names a command they can run, not only a call.
func TestReminderGivesCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("long", longStage)
	c := e.connect(modernVersion)
	c.start(map[string]any{"session": "left-on", "stage": "long"})
	text, err := e.deps.ReminderText(e.ctx, e.project)
	if err != nil || !strings.Contains(text, "`agent-sessions kill left-on`") || !strings.Contains(text, `kill {"session": "left-on"}`) {
		t.Errorf("reminder = %q, %v", text, err)
	}
}
