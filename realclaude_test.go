package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"github.com/agent-sessions/agent-sessions/state"
)

// realClaudeEnv is the engine's environment for a run of the real Claude
// Code CLI against api: hermetic (temp HOME, no telemetry), `claude` on
// PATH as a symlink to the pinned CLI, no retries of failed requests.
func realClaudeEnv(t *testing.T, api *testkit.Messages) []string {
	t.Helper()
	cli := testkit.RequireClaudeCLI(t)
	bin := t.TempDir()
	if err := os.Symlink(cli, filepath.Join(bin, "claude")); err != nil {
		t.Fatal(err)
	}
	env := testkit.NewEnv(t, api.URL)
	return append(env.List(), "PATH="+bin+":"+os.Getenv("PATH"), "AGENT_SESSIONS_NOTIFY=0", "AGENT_SESSIONS_KILL_GRACE=2s")
}

// iterationResult reads one iteration's result.json.
func iterationResult(t *testing.T, project, session, stage string, it int) (r struct {
	ExitCode     int            `json:"exit_code"`
	TimedOut     bool           `json:"timed_out"`
	CostUSD      float64        `json:"cost_usd"`
	InputTokens  int64          `json:"input_tokens"`
	OutputTokens int64          `json:"output_tokens"`
	Failure      *state.Failure `json:"failure"`
}) {
	t.Helper()
	if err := json.Unmarshal([]byte(readFile(t, state.NewLayout(project, session).Iteration(0, stage, it).Result)), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRealClaudeEngine runs the engine with provider claude — the real
// Claude Code CLI 2.1.332 — against a fake Messages API on 127.0.0.1
// (SPEC §12, §13, issue 10 test (a)).
func TestRealClaudeEngine(t *testing.T) {
	t.Parallel()

	// Completes by plateau: two answers in a row say PLATEAU: true; the
	// result text is output.md; cost and tokens are recorded.
	//
	// The first call gets a plain 429 (an API key; no retries): the session
	// parks with a backoff and the same iteration runs again (issue 13's
	// "backoff on a plain 429", TestRealClaudeGuardrails/rate_limit_backoff
	// until it shared this run: each run of the CLI costs a second or two
	// of CPU, and the plateau needs two runs after the 429 anyway).
	t.Run("plateau", func(t *testing.T) {
		t.Parallel()
		const answer = "Nothing left to improve.\nPLATEAU: true\nREASONING: the fake model says so"
		var calls atomic.Int32
		api := testkit.NewMessages(t)
		api.Script = func(testkit.Request) testkit.Turn {
			if calls.Add(1) == 1 {
				return testkit.APIError(429, "slow down")
			}
			return testkit.Turn{Blocks: []testkit.Block{{Kind: "text", Text: answer}}, InputTokens: 100, OutputTokens: 20}
		}
		project := t.TempDir()
		writeStage(t, project, "polish", "completion: plateau\nprovider: claude\nmodel: sonnet\nmax_iterations: 5\ndelay: 0\ntimeout: 120\n", "Polish iteration ${ITERATION}.\n")
		code, stdout, stderr := runBinary(t, guardClaudeEnv(t, api, false, t.TempDir()), "run", "--session", "rp", "--stage", "polish", "--project", project, "--foreground")
		if code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		st := loadState(t, project, "rp")
		if st.Status != state.StatusComplete || st.CompletionReason != "plateau" || len(st.History) != 2 {
			t.Fatalf("state: %s/%s after %d iterations, want complete/plateau after 2\n%s", st.Status, st.CompletionReason, len(st.History), stdout)
		}
		checkOnce(t, project, "rp", 2)
		checkOneRateLimitPark(t, project, "rp", stdout)
		for it := 1; it <= 2; it++ {
			if got := readFile(t, state.NewLayout(project, "rp").Iteration(0, "polish", it).Output); got != answer {
				t.Errorf("iteration %d output.md = %q, want the result text", it, got)
			}
			r := iterationResult(t, project, "rp", "polish", it)
			if r.ExitCode != 0 || r.CostUSD <= 0 || r.InputTokens < 100 || r.OutputTokens < 20 {
				t.Errorf("iteration %d result.json = %+v, want exit 0 with cost and tokens", it, r)
			}
		}
		if st.Cost.USD <= 0 || st.Cost.InputTokens < 200 {
			t.Errorf("state cost = %+v", st.Cost)
		}
		if !strings.Contains(stdout, "● claude started (model claude-sonnet") || !strings.Contains(stdout, "● claude done · 1 turns") {
			t.Errorf("the pane does not show the stream readably:\n%s", stdout)
		}
		if reqs := api.MessageRequests(); len(reqs) == 0 || !strings.Contains(string(reqs[0]), "Polish iteration 1.") {
			t.Errorf("the first request does not carry the prompt")
		}
	})
	// An API error fails the session with the API's own message (before:
	// "claude reported an error: success"), its kind and status recorded.
	t.Run("api_error", func(t *testing.T) {
		t.Parallel()
		const msg = "max_tokens: 99999999 > 64000, which is the maximum allowed number of output tokens"
		api := testkit.NewMessages(t)
		api.Script = func(testkit.Request) testkit.Turn { return testkit.APIError(400, msg) }
		project := t.TempDir()
		writeStage(t, project, "polish", "completion: fixed-n\nprovider: claude\nmax_iterations: 1\ndelay: 0\ntimeout: 120\n", "Polish.\n")
		code, stdout, stderr := runBinary(t, realClaudeEnv(t, api), "run", "--session", "ra", "--stage", "polish", "--project", project, "--foreground")
		if code != 1 {
			t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		st := loadState(t, project, "ra")
		if st.Status != state.StatusFailed || !strings.Contains(st.Error, msg) {
			t.Errorf("state: %s, error %q; want failed with the API's message", st.Status, st.Error)
		}
		r := iterationResult(t, project, "ra", "polish", 1)
		if r.Failure == nil || r.Failure.Kind != state.FailureAPIError || r.Failure.Status != 400 || !strings.Contains(r.Failure.Message, msg) {
			t.Errorf("result.json failure = %+v, want api_error 400 with the message", r.Failure)
		}
	})

	// The background shell (a run_in_background Bash call must not hold the
	// iteration) is checked in the same CLI run as the escape, in
	// TestRealClaudeEscapeIsContained.
}
