package tools_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tools"
)

// Issue 6.6: agents that misbehave, run the way Claude runs them — through
// start_session in tmux, watched with monitor. Each session ends the way
// it should, monitor says what went wrong in words, no agent process is
// left, and the answers stay small.
func TestMisbehavingAgentsThroughTheTools(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("a prompt far larger than a pipe buffer\n", 8<<10) // ≈ 300 KiB, never read
	cases := []struct {
		name, agent string
		max         int
		extra       string // more stage YAML
		env         []string
		context     string
		status      state.Status // final classifier status
		warning     string       // in the last iteration's warning
		check       func(t *testing.T, m tools.MonitorResult, st state.State)
	}{
		// Every iteration timed out: the stage fails, however short.
		{name: "hangs past its timeout", agent: "hang-agent", max: 2, extra: "timeout: 1\n", status: state.LiveFailed, warning: "timeout",
			check: func(t *testing.T, m tools.MonitorResult, st state.State) {
				for _, h := range st.History {
					if h.ExitCode != engine.ExitTimeout {
						t.Errorf("iteration %d exit %d, want %d (timed out)", h.Iteration, h.ExitCode, engine.ExitTimeout)
					}
				}
			}},
		{name: "prints 100 MB", agent: "flood-agent", max: 1, status: state.LiveComplete, warning: "output was 104857",
			check: func(t *testing.T, m tools.MonitorResult, st state.State) {
				if len(m.RecentOutput) > tools.TextLimit {
					t.Errorf("monitor's recent output is %d bytes", len(m.RecentOutput))
				}
			}},
		{name: "writes an invalid status.json", agent: "status-agent", max: 2, env: []string{"STATUS_INVALID=1"}, status: state.LiveComplete, warning: "status.json is not valid JSON"},
		{name: "exits non-zero every time", agent: "fail-agent", max: 10, env: []string{"FAIL_CODE=7"}, status: state.LiveFailed, warning: "3 consecutive agent failures",
			check: func(t *testing.T, m tools.MonitorResult, st state.State) {
				if len(st.History) != 3 || st.CompletionReason != engine.ReasonAgentFailures {
					t.Errorf("%d iterations, reason %q; want to stop after 3 with agent_failures", len(st.History), st.CompletionReason)
				}
				if !strings.Contains(m.Why+m.Error, "fail") {
					t.Errorf("monitor does not say why it failed: why %q error %q", m.Why, m.Error)
				}
			}},
		{name: "fails once of two", agent: "fail-agent", max: 2, env: []string{"FAIL_AT=1"}, status: state.LiveComplete,
			check: func(t *testing.T, m tools.MonitorResult, st state.State) {
				if m.FailedIterations != 1 || st.FailedIterations != 1 {
					t.Errorf("monitor failed_iterations %d, state.json %d; want 1", m.FailedIterations, st.FailedIterations)
				}
			}},
		{name: "closes stdout at once", agent: "closeout-agent", max: 2, status: state.LiveComplete},
		{name: "reads no stdin", agent: "nostdin-agent", max: 2, context: big, status: state.LiveComplete},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.setEnv(tc.env...)
			e.stage("s", commandStage("fixed-n", tc.max, tc.agent)+tc.extra)
			c := e.connect(modernVersion)
			args := map[string]any{"session": "bad", "stage": "s"}
			if tc.context != "" {
				args["context"] = tc.context
			}
			// A session that fails within start_session's confirmation
			// window is answered as an error carrying why.
			if r := c.call("start_session", args); r.IsError && (tc.status != state.LiveFailed || !strings.Contains(r.Text, tc.warning)) {
				t.Fatalf("start_session: %s", r.Text)
			}
			m := c.monitorWait("bad", "complete", 180)
			if m.Status != tc.status {
				t.Fatalf("ended %s (%s), want %s", m.Status, m.Why, tc.status)
			}
			st := e.loadState("bad")
			if m.LastIteration == nil || !strings.Contains(m.LastIteration.Warning, tc.warning) {
				t.Errorf("monitor's last iteration = %+v, want a warning containing %q", m.LastIteration, tc.warning)
			}
			if tc.check != nil {
				tc.check(t, m, st)
			}
			if !waitUntil(5*time.Second, func() bool { return len(engine.FindAgents(e.layout("bad").RunDir())) == 0 }) {
				t.Errorf("agent processes left: %v", engine.FindAgents(e.layout("bad").RunDir()))
			}
			if s, _ := summary(c.list(nil), "bad"); s.Status != tc.status || s.FailedIterations != st.FailedIterations {
				t.Errorf("list says %s with %d failed iterations, want %s with %d", s.Status, s.FailedIterations, tc.status, st.FailedIterations)
			}
			t.Logf("%s: %s after %d iteration(s); last warning: %s", tc.agent, m.Status, len(st.History), fmt.Sprint(m.LastIteration.Warning))
		})
	}
}
