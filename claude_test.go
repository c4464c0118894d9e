package main

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-sessions/agent-sessions/state"
)

// TestClaudeProvider runs the claude provider with the fake claude on PATH,
// from an engine that itself runs inside Claude Code (CLAUDECODE=1).
// (Claude Code 2.1.332 does not refuse CLAUDECODE; the engine still strips
// it so each agent is a top-level session.)
func TestClaudeProvider(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	logFile := filepath.Join(t.TempDir(), "agent.log")
	writeStage(t, project, "polish", "completion: fixed-n\nmax_iterations: 2\nmodel: sonnet\ndelay: 0\n", "Polish iteration ${ITERATION}.\n")
	code, stdout, stderr := runBinary(t, engineEnv(true, "CLAUDECODE=1", "CLAUDE_CODE_ENTRYPOINT=cli", "FAKE_AGENT_LOG="+logFile),
		"run", "--session", "cc", "--stage", "polish", "--project", project, "--foreground")
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	l := state.NewLayout(project, "cc")

	// The argv of SPEC §7.
	for i, line := range strings.Split(strings.TrimSpace(readFile(t, logFile)), "\n") {
		if f := strings.SplitN(line, "\t", 3); len(f) != 3 || f[2] != "-p --model sonnet --dangerously-skip-permissions --output-format stream-json --verbose" {
			t.Errorf("claude run %d argv = %q", i+1, line)
		}
	}

	// The pane (session.log) shows the stream as text, not JSON.
	log := readFile(t, l.LogFile())
	for _, want := range []string{
		"● claude started (model claude-sonnet-4-5-20250929)",
		"→ Read " + l.ProgressFile() + "\n",
		"Did iteration 2 of polish.\nPLATEAU: false\n",
		"● claude done · 2 turns,",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("session.log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, `"type":"assistant"`) {
		t.Errorf("session.log shows raw stream-json:\n%s", log)
	}
	if stdout != log {
		t.Errorf("the pane (stdout) and session.log differ")
	}

	var usd float64
	var in, outTok int64
	for it := 1; it <= 2; it++ {
		f := l.Iteration(0, "polish", it)
		want := fmt.Sprintf("Did iteration %d of polish.\nPLATEAU: false\nREASONING: FAKE_CLAUDE_PLATEAU_AFTER is not set, so there is more to do", it)
		if got := readFile(t, f.Output); got != want {
			t.Errorf("iteration %d output.md = %q, want exactly the result text %q", it, got, want)
		}
		var r struct {
			ExitCode     int     `json:"exit_code"`
			CostUSD      float64 `json:"cost_usd"`
			InputTokens  int64   `json:"input_tokens"`
			OutputTokens int64   `json:"output_tokens"`
			Provider     string  `json:"provider"`
			Model        string  `json:"model"`
		}
		if err := json.Unmarshal([]byte(readFile(t, f.Result)), &r); err != nil {
			t.Fatal(err)
		}
		if r.ExitCode != 0 || r.CostUSD != 0.0123 || r.InputTokens != 1200+256+4096 || r.OutputTokens != 345 || r.Provider != "claude" || r.Model != "sonnet" {
			t.Errorf("iteration %d result.json = %+v", it, r)
		}
		usd += r.CostUSD
		in += r.InputTokens
		outTok += r.OutputTokens
	}
	st := loadState(t, project, "cc")
	if math.Abs(st.Cost.USD-0.0246) > 1e-9 || st.Cost.InputTokens != 2*5552 || st.Cost.OutputTokens != 690 {
		t.Errorf("state.json cost = %+v, want 0.0246 USD, %d in, 690 out", st.Cost, 2*5552)
	}
	if st.Status != state.StatusComplete || st.Provider != "claude" || st.Model != "sonnet" {
		t.Errorf("state.json status %s provider %s model %s", st.Status, st.Provider, st.Model)
	}
}

// TestClaudeFailures: a claude result with is_error is a failed iteration,
// and three in a row fail the session with exit code 1.
func TestClaudeFailures(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "polish", "completion: plateau\nmax_iterations: 9\ndelay: 0\n", "Polish.\n")
	code, stdout, stderr := runBinary(t, engineEnv(true, "FAKE_CLAUDE_FAIL=1", "CLAUDECODE=1"),
		"run", "--session", "cf", "--stage", "polish", "--project", project, "--foreground")
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	st := loadState(t, project, "cf")
	if st.Status != state.StatusFailed || st.CompletionReason != "agent_failures" || len(st.History) != 3 {
		t.Fatalf("state.json: status %s reason %s history %d; want failed, agent_failures, 3", st.Status, st.CompletionReason, len(st.History))
	}
	for _, h := range st.History {
		if h.ExitCode != 1 || !strings.Contains(h.Warning, "claude reported an error (exit): fake claude: simulated failure") {
			t.Errorf("iteration %d: exit %d warning %q", h.Iteration, h.ExitCode, h.Warning)
		}
		if h.CostUSD != 0.0123 {
			t.Errorf("iteration %d: a failed run's cost %v was not recorded", h.Iteration, h.CostUSD)
		}
	}
	if !strings.Contains(st.Error, "3 consecutive agent failures") {
		t.Errorf("state.json error = %q", st.Error)
	}
}

// TestClaudeAPIError: the real CLI's API-error result (subtype success,
// is_error, no errors array) fails the session with the API's message and
// its kind recorded — before, the session failed with "claude reported an
// error: success".
func TestClaudeAPIError(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "polish", "completion: fixed-n\nmax_iterations: 3\ndelay: 0\n", "Polish.\n")
	code, stdout, stderr := runBinary(t, engineEnv(true, "FAKE_CLAUDE_FAIL=api", "FAKE_CLAUDE_API_MESSAGE=model: claude-nope not found"),
		"run", "--session", "ca", "--stage", "polish", "--project", project, "--foreground")
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	st := loadState(t, project, "ca")
	want := "claude reported an error (api_error): API Error: 400 model: claude-nope not found"
	if st.Status != state.StatusFailed || !strings.Contains(st.Error, want) {
		t.Errorf("state.json: status %s error %q; want failed with %q", st.Status, st.Error, want)
	}
	for _, h := range st.History {
		if h.Failure == nil || h.Failure.Kind != state.FailureAPIError || h.Failure.Status != 400 {
			t.Errorf("iteration %d failure = %+v, want api_error 400", h.Iteration, h.Failure)
		}
	}
	var r struct {
		Failure *state.Failure `json:"failure"`
	}
	if err := json.Unmarshal([]byte(readFile(t, state.NewLayout(project, "ca").Iteration(0, "polish", 1).Result)), &r); err != nil {
		t.Fatal(err)
	}
	if r.Failure == nil || r.Failure.Kind != state.FailureAPIError {
		t.Errorf("result.json failure = %+v, want api_error", r.Failure)
	}
}
