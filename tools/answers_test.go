package tools_test

import (
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
