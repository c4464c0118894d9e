package tools_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tools"
)

func TestMonitor(t *testing.T) {
	t.Parallel()
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.stage("long", longStage)
			// Long enough for wait_complete_progress to see iterations pass
			// while it waits, even when the machine is busy.
			e.stage("progress", "completion: fixed-n\nprovider: mock\nmax_iterations: 4\ndelay: 0.6\n")
			c := e.connect(v)
			c.start(map[string]any{"session": "busy", "stage": "long"})

			t.Run("now", func(t *testing.T) {
				var m tools.MonitorResult
				text := c.ok("monitor", map[string]any{"session": "busy"}, &m)
				if m.Status != state.LiveRunning || m.Waited != nil {
					t.Errorf("monitor = status %q waited %+v", m.Status, m.Waited)
				}
				if m.MaxIterations != 500 || m.Definition != "long" || !strings.HasSuffix(m.RunDir, "/busy") {
					t.Errorf("monitor = %+v", m)
				}
				if !strings.Contains(text, "busy: running") {
					t.Errorf("text = %q", text)
				}
			})

			t.Run("wait_iteration", func(t *testing.T) {
				before := e.loadState("busy").IterationCompleted
				m := c.monitorWait("busy", "iteration", 60)
				if m.Waited == nil || !m.Waited.Met || m.Waited.TimedOut || m.Waited.Kind != "iteration" {
					t.Fatalf("waited = %+v, want met", m.Waited)
				}
				if m.IterationCompleted <= before {
					t.Errorf("iteration_completed = %d, want more than %d", m.IterationCompleted, before)
				}
				if m.LastIteration == nil || m.LastIteration.Iteration < 1 || !strings.Contains(m.LastIteration.OutputExcerpt, "PLATEAU") {
					t.Errorf("last_iteration = %+v", m.LastIteration)
				}
				if m.OutputSource != "pane" || !strings.Contains(m.RecentOutput, "[mock agent]") {
					t.Errorf("recent output from %q: %q", m.OutputSource, m.RecentOutput)
				}
				if !strings.Contains(m.ProgressTail, "mock agent") {
					t.Errorf("progress_tail = %q", m.ProgressTail)
				}
			})

			t.Run("timeout", func(t *testing.T) {
				m := c.monitorWait("busy", "complete", 1)
				if m.Waited == nil || !m.Waited.TimedOut || m.Waited.Met {
					t.Errorf("waited = %+v, want timed out", m.Waited)
				}
				if m.Status != state.LiveRunning {
					t.Errorf("status = %q", m.Status)
				}
			})

			t.Run("cancel", func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				type answer struct {
					r   result
					err error
				}
				answers := make(chan answer, 1)
				go func() {
					r, err := c.callRaw(ctx, "monitor", map[string]any{"session": "busy", "wait": "complete", "timeout_seconds": 600}, nil)
					answers <- answer{r, err}
				}()
				// Let the wait poll a few times, then cancel the call.
				start := e.reads.Load()
				eventually(t, 10*time.Second, "the wait to poll", func() bool { return e.reads.Load() > start+3 })
				cancel()
				select {
				case a := <-answers:
					// The client either gives up on the call itself, or the
					// server answers that the wait was cancelled.
					if a.err == nil && !(a.r.IsError && strings.Contains(a.r.Text, "cancelled")) {
						t.Errorf("cancelled call answered %s", a.r.Text)
					}
					if a.err != nil && !errors.Is(a.err, context.Canceled) {
						t.Errorf("cancelled call returned %v, want context.Canceled", a.err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the cancelled call did not return")
				}
				// The wait stops polling: the clock is read no more.
				time.Sleep(300 * time.Millisecond)
				settled := e.reads.Load()
				time.Sleep(500 * time.Millisecond)
				if got := e.reads.Load(); got != settled {
					t.Errorf("the wait kept polling after the call was cancelled (%d more clock reads)", got-settled)
				}
			})

			t.Run("wait_complete_progress", func(t *testing.T) {
				// Two sessions at once, one waited on with a progress token and
				// one without (the same wait, a run apart, doubled this test's
				// time): only the first wait may send progress.
				c.start(map[string]any{"session": "short", "stage": "progress"})
				c.start(map[string]any{"session": "short-2", "stage": "progress"})
				before := len(c.notifications(string(mcp.MethodNotificationProgress)))
				type answer struct {
					r   result
					err error
				}
				tokenless := make(chan answer, 1)
				go func() {
					r, err := c.callRaw(context.Background(), "monitor", map[string]any{"session": "short-2", "wait": "complete", "timeout_seconds": 60}, nil)
					tokenless <- answer{r, err}
				}()
				r, err := c.callRaw(context.Background(), "monitor", map[string]any{"session": "short", "wait": "complete", "timeout_seconds": 60}, "tok-"+v)
				if err != nil || r.IsError {
					t.Fatalf("monitor: %v %s", err, r.Text)
				}
				var m tools.MonitorResult
				decode(t, r, &m)
				if m.Status != state.LiveComplete || m.Waited == nil || !m.Waited.Met {
					t.Fatalf("after wait complete: status %q waited %+v", m.Status, m.Waited)
				}
				if m.CompletionReason != "fixed-n" || m.IterationCompleted != 4 || m.OutputSource != "session.log" {
					t.Errorf("monitor = reason %q completed %d source %q", m.CompletionReason, m.IterationCompleted, m.OutputSource)
				}
				notes := c.waitNotification(string(mcp.MethodNotificationProgress), before, 5*time.Second, func(n mcp.JSONRPCNotification) bool {
					return n.Params.AdditionalFields["progressToken"] == "tok-"+v
				})
				last := notes[len(notes)-1].Params.AdditionalFields
				if msg, _ := last["message"].(string); !strings.Contains(msg, "iterations done") {
					t.Errorf("progress message = %q", msg)
				}
				if total, _ := last["total"].(float64); total != 4 {
					t.Errorf("progress total = %v, want 4", last["total"])
				}
				// Without a token, nothing is sent: every progress notification
				// of these two waits is the first's.
				a := <-tokenless
				var m2 tools.MonitorResult
				if a.err != nil || a.r.IsError {
					t.Fatalf("monitor without a token: %v %s", a.err, a.r.Text)
				}
				if decode(t, a.r, &m2); m2.Status != state.LiveComplete {
					t.Errorf("short-2 after its wait: %s", m2.Status)
				}
				for _, n := range c.notifications(string(mcp.MethodNotificationProgress))[before:] {
					if tok := n.Params.AdditionalFields["progressToken"]; tok != "tok-"+v {
						t.Errorf("a progress notification with token %v: only the wait given tok-%s may send any", tok, v)
					}
				}
			})

			t.Run("errors", func(t *testing.T) {
				c.fail("monitor", map[string]any{"session": "nobody"}, tools.CodeNotFound)
				c.fail("monitor", map[string]any{"session": "busy", "lines": 2001}, tools.CodeInvalidArgument)
				c.fail("monitor", map[string]any{"session": "busy", "wait": "forever"}, tools.CodeInvalidArgument)
				c.fail("monitor", map[string]any{"session": "busy", "timeout_seconds": 601}, tools.CodeInvalidArgument)
				c.fail("monitor", map[string]any{"session": "busy", "lines": "many"}, tools.CodeInvalidArgument)
				c.fail("monitor", map[string]any{}, tools.CodeInvalidArgument)
			})
		})
	}
}

func decode(t *testing.T, r result, out any) {
	t.Helper()
	if err := json.Unmarshal(r.Structured, out); err != nil {
		t.Fatalf("decode %s: %v", r.Structured, err)
	}
}
