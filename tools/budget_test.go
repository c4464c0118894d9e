package tools_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agent-sessions/agent-sessions/state"
)

// Byte budgets of what Claude reads (SPEC §13): on success Claude Code
// hands the model JSON.stringify(structuredContent) and nothing else.
const (
	budgetStart      = 800
	budgetListBase   = 300
	budgetPerSession = 180
	budgetListMax    = 6 << 10
	budgetMonitor    = 2560
	budgetSmall      = 1 << 10
)

// claudeReads is the compact JSON of a result's structuredContent, as
// JavaScript's JSON.stringify writes it (no HTML escaping).
func claudeReads(t *testing.T, sc any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(sc); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

// fabricate writes n finished (or crashed) sessions straight to disk: a
// state.json each, no engine. Every fourth is a three-stage pipeline.
func fabricate(t *testing.T, project string, n int) {
	t.Helper()
	now := time.Now().Add(-3 * time.Hour)
	statuses := []string{state.StatusComplete, state.StatusFailed, state.StatusKilled, state.StatusRunning, state.StatusComplete}
	for i := range n {
		name := fmt.Sprintf("fab-%03d-refine-the-plan", i)
		status := statuses[i%len(statuses)]
		st := state.State{SchemaVersion: state.SchemaVersion, Session: name, Type: "loop", Stage: "improve-plan",
			StartedAt: now, Status: status, Iteration: 7, IterationCompleted: 7, MaxIterations: 25, ProjectDir: project,
			TmuxSession: "loop-" + name, Provider: "claude", Model: "opus", Cost: state.Cost{USD: 1.2345, InputTokens: 123456, OutputTokens: 23456},
			Stages: []state.StageState{{Name: "improve-plan", Status: status, Iterations: 7, MaxIterations: 25, StartedAt: &now}}}
		if i%4 == 3 {
			st.Type, st.Stage, st.Pipeline, st.TmuxSession = "pipeline", "", "full-refine", "pipeline-"+name
			st.Stages = append(st.Stages, state.StageState{Name: "refine-beads", Status: "pending", MaxIterations: 5},
				state.StageState{Name: "work", Status: "pending", MaxIterations: 25})
		}
		if state.Terminal(status) {
			done := now.Add(time.Hour)
			st.CompletedAt = &done
			st.CompletionReason = map[string]string{state.StatusComplete: "plateau", state.StatusFailed: "error", state.StatusKilled: "killed"}[status]
		}
		if status == state.StatusFailed {
			st.Error = "3 consecutive agent failures: claude reported an error: API Error: 400 {\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"prompt is too long\"}}"
		}
		for it := 1; it <= 7; it++ {
			st.History = append(st.History, state.HistoryEntry{Iteration: it, Stage: "improve-plan", Timestamp: now, Decision: "continue", Reasoning: "more to do", DurationMS: 61000})
		}
		data, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(state.NewLayout(project, name).RunDir(), "state.json"), string(data))
	}
}

// serveBinary connects the official SDK's client to the built binary's
// `serve` in the env's project.
func serveBinary(t *testing.T, e *testEnv) *sdk.ClientSession {
	t.Helper()
	var stderr lockedBuffer
	cmd := exec.Command(binary(t), "serve")
	cmd.Dir = e.project
	cmd.Env = e.environ()
	cmd.Stderr = &stderr
	client := sdk.NewClient(&sdk.Implementation{Name: "budget-test", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := client.Connect(ctx, &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect: %v\nstderr: %s", err, stderr.String())
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// measure calls a tool on the binary and returns what Claude reads: the
// structuredContent JSON on success, the text on error.
func measure(t *testing.T, cs *sdk.ClientSession, name string, args map[string]any) (read []byte, isError bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.IsError {
		var text strings.Builder
		for _, c := range res.Content {
			if tc, ok := c.(*sdk.TextContent); ok {
				text.WriteString(tc.Text)
			}
		}
		return []byte(text.String()), true
	}
	return claudeReads(t, res.StructuredContent), false
}

// TestAnswerBudgets asserts the byte budgets on what the built binary
// returns over stdio, and logs the figures.
func TestAnswerBudgets(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and serves the binary")
	}
	t.Run("list", func(t *testing.T) {
		t.Parallel()
		for _, n := range []int{1, 12, 60, 200} {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				fabricate(t, e.project, n)
				cs := serveBinary(t, e)
				read, isErr := measure(t, cs, "list", nil)
				if isErr {
					t.Fatalf("list failed: %s", read)
				}
				var l struct {
					Sessions []json.RawMessage `json:"sessions"`
				}
				json.Unmarshal(read, &l)
				shown := len(l.Sessions)
				t.Logf("list of %d sessions: %d B, %d shown", n, len(read), shown)
				if limit := min(budgetListBase+budgetPerSession*shown, budgetListMax); len(read) > limit {
					t.Errorf("list of %d (%d shown): %d B, budget %d B\n%s", n, shown, len(read), limit, read)
				}
				if shown == 0 {
					t.Errorf("list of %d shows no session", n)
				}
			})
		}
	})
	t.Run("live", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.stage("long", longStage)
		cs := serveBinary(t, e)
		read, isErr := measure(t, cs, "start_session", map[string]any{"session": "budget-live-session", "stage": "long"})
		if isErr {
			t.Fatalf("start failed: %s", read)
		}
		t.Logf("start_session: %d B", len(read))
		if len(read) > budgetStart {
			t.Errorf("start_session: %d B, budget %d\n%s", len(read), budgetStart, read)
		}
		// Let a few iterations land so monitor has something to show.
		eventually(t, 30*time.Second, "three iterations", func() bool {
			st, _, err := state.LoadSummary(e.layout("budget-live-session"))
			return err == nil && st.IterationCompleted >= 3
		})
		exactLines := func(when string) {
			read, isErr := measure(t, cs, "monitor", map[string]any{"session": "budget-live-session", "lines": 5})
			var m struct {
				RecentOutput string `json:"recent_output"`
				OutputSource string `json:"output_source"`
			}
			if isErr || json.Unmarshal(read, &m) != nil {
				t.Fatalf("monitor lines=5 %s: %s", when, read)
			}
			if got := strings.Count(m.RecentOutput, "\n") + 1; got != 5 {
				t.Errorf("monitor lines=5 %s (%s) returned %d lines:\n%s", when, m.OutputSource, got, m.RecentOutput)
			}
		}
		exactLines("while live")
		for _, c := range []struct {
			tool   string
			args   map[string]any
			budget int
		}{
			{"monitor", map[string]any{"session": "budget-live-session"}, budgetMonitor},
			{"attach_hint", map[string]any{"session": "budget-live-session"}, budgetSmall},
			{"cleanup", nil, budgetSmall},
			{"kill", map[string]any{"session": "budget-live-session"}, budgetSmall},
			{"monitor", map[string]any{"session": "budget-live-session"}, budgetMonitor},
		} {
			read, isErr := measure(t, cs, c.tool, c.args)
			if isErr {
				t.Fatalf("%s failed: %s", c.tool, read)
			}
			t.Logf("%s: %d B", c.tool, len(read))
			if len(read) > c.budget || testing.Verbose() {
				t.Logf("%s: %d B, budget %d\n%s", c.tool, len(read), c.budget, read)
			}
			if len(read) > c.budget {
				t.Fail()
			}
		}
		exactLines("once ended")
	})
}
