package engine

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// fakeClaude runs testdata/agents/claude with the engine's argv and returns
// its stdout (stream-json).
func fakeClaude(t *testing.T, prompt string, env ...string) []byte {
	t.Helper()
	argv := claudeArgv(StagePlan{Model: "sonnet"})
	cmd := exec.Command(agentPath("claude"), argv[1:]...)
	cmd.Env = append(agentEnv("AGENT_SESSIONS_ITERATION=2", "AGENT_SESSIONS_STAGE=polish", "AGENT_SESSIONS_PROGRESS=/p/progress.md"), env...)
	cmd.Stdin = strings.NewReader(prompt)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, exit := err.(*exec.ExitError); err != nil && !exit {
		t.Fatalf("fake claude: %v", err)
	}
	return out.Bytes()
}

func TestRenderStreamOfFakeClaude(t *testing.T) {
	stream := fakeClaude(t, "improve things\n", "FAKE_CLAUDE_PLATEAU_AFTER=2")
	var pane bytes.Buffer
	res := renderStream(bytes.NewReader(stream), &pane, nil)

	wantFinal := "Did iteration 2 of polish.\nPLATEAU: true\nREASONING: iteration 2 reached FAKE_CLAUDE_PLATEAU_AFTER=\"2\"; nothing left to improve"
	if res.Final != wantFinal {
		t.Errorf("Final = %q, want %q", res.Final, wantFinal)
	}
	if !res.SawResult || res.IsError || math.Abs(res.CostUSD-0.0123) > 1e-9 || res.InputTokens != 1200+256+4096 || res.OutputTokens != 345 {
		t.Errorf("result = %+v, want cost 0.0123, %d in, 345 out", res, 1200+256+4096)
	}
	got := pane.String()
	for _, want := range []string{
		"● claude started (model claude-sonnet-4-5-20250929)\n",
		"✻ Let me look at the progress notes first.\n",
		"I received the prompt (15 bytes) for iteration 2 of polish. Let me read the progress file first.\n",
		"→ Read /p/progress.md\n",
		wantFinal + "\n",
		"● claude done · 2 turns,",
		"$0.0123, 5552 in / 345 out tokens\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rendered stream lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, `"type"`) {
		t.Errorf("rendered stream shows raw JSON:\n%s", got)
	}
	if strings.Index(got, "→ Read") > strings.Index(got, "Did iteration") {
		t.Errorf("tool call rendered after the final text:\n%s", got)
	}
}

func TestRenderStreamOfFailingFakeClaude(t *testing.T) {
	for _, tt := range []struct {
		env          []string
		kind, msg    string
		status       int
		resets, pane string
	}{
		{[]string{"FAKE_CLAUDE_FAIL=1"}, state.FailureExit, "fake claude: simulated failure (FAKE_CLAUDE_FAIL=1)", 0, "", ""},
		{[]string{"FAKE_CLAUDE_FAIL=max_turns"}, state.FailureExit, "Reached maximum number of turns", 0, "", ""},
		// The real CLI's API error: subtype success, is_error, no errors
		// array — before the fix this read "claude reported an error: success".
		{[]string{"FAKE_CLAUDE_FAIL=api", "FAKE_CLAUDE_API_MESSAGE=max_tokens: 99999999 > 64000", "FAKE_CLAUDE_RETRIES=2"},
			state.FailureAPIError, "API Error: 400 max_tokens: 99999999 > 64000", 400, "", "● API error 400 (invalid_request), retry 2/2 in 0.6s\n"},
		{[]string{"FAKE_CLAUDE_FAIL=api", "FAKE_CLAUDE_API_STATUS=529", "FAKE_CLAUDE_API_TYPE=overloaded_error", "FAKE_CLAUDE_API_MESSAGE=Overloaded"},
			state.FailureOverloaded, "API Error: 529 Overloaded", 529, "", ""},
		{[]string{"FAKE_CLAUDE_FAIL=api", "FAKE_CLAUDE_API_STATUS=401", "FAKE_CLAUDE_API_TYPE=authentication_error"},
			state.FailureAuth, "API Error: 401 fake claude: the API refused the request", 401, "", ""},
		{[]string{"FAKE_CLAUDE_FAIL=api", "FAKE_CLAUDE_API_STATUS=429", "FAKE_CLAUDE_API_TYPE=rate_limit_error"},
			state.FailureRateLimit, "API Error: 429 fake claude: the API refused the request", 429, "", ""},
		{[]string{"FAKE_CLAUDE_FAIL=usage_limit", "FAKE_CLAUDE_RESETS_AT=1800000000"},
			state.FailureUsageLimit, "Claude usage limit reached. Your limit will reset later.", 429, "2027-01-15T08:00:00Z", "● claude: limit reached (five_hour)"},
	} {
		var pane bytes.Buffer
		res := renderStream(bytes.NewReader(fakeClaude(t, "x", tt.env...)), &pane, nil)
		f := res.Failure
		if !res.SawResult || !res.IsError || f == nil || f.Kind != tt.kind || f.Message != tt.msg || f.Status != tt.status {
			t.Errorf("%v: result = %+v, failure %+v; want %s %q status %d", tt.env, res, f, tt.kind, tt.msg, tt.status)
			continue
		}
		if got := ""; f.ResetsAt != nil || tt.resets != "" {
			if f.ResetsAt != nil {
				got = f.ResetsAt.Format(time.RFC3339)
			}
			if got != tt.resets {
				t.Errorf("%v: resets_at %q, want %q", tt.env, got, tt.resets)
			}
		}
		if want := "● claude failed (" + tt.kind + "): " + tt.msg; !strings.Contains(pane.String(), want) {
			t.Errorf("%v: pane lacks %q:\n%s", tt.env, want, pane.String())
		}
		if !strings.Contains(pane.String(), tt.pane) {
			t.Errorf("%v: pane lacks %q:\n%s", tt.env, tt.pane, pane.String())
		}
	}
}

func TestRenderStreamWithoutResult(t *testing.T) {
	stream := `{"type":"assistant","message":{"content":[{"type":"text","text":"first"}]}}
not json at all
{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Bash","input":{"command":"go test ./...\nsecond line"}},{"type":"text","text":"second\n"}]}}
{"type":"user","message":{"content":[{"type":"tool_result","is_error":true,"content":"boom\ntrace"}]}}
`
	var pane bytes.Buffer
	res := renderStream(strings.NewReader(stream), &pane, nil)
	if res.SawResult || res.Final != "first\n\nsecond" {
		t.Errorf("result = %+v, want the assistant text as Final", res)
	}
	want := "first\nnot json at all\n→ Bash go test ./...\nsecond\n  ✗ boom\n"
	if pane.String() != want {
		t.Errorf("pane = %q, want %q", pane.String(), want)
	}
}

// TestRenderRealStreams reads lines the real Claude Code 2.1.332 printed
// against the fake Messages API (internal/testkit): the API's message is the
// error, retries are shown, and the first result is the answer even when a
// background task's notification makes the CLI answer again.
func TestRenderRealStreams(t *testing.T) {
	for _, tt := range []struct {
		file, final, kind string
		calls             int
		pane              []string
	}{
		{"err401", "Invalid API key · Fix external API key", state.FailureAuth, 1,
			[]string{"● API error 401 (authentication_failed), retry 1/1 in 0.6s\n", "● claude failed (auth): Invalid API key"}},
		{"err529", "", state.FailureOverloaded, 1, []string{"● API error 529 (overloaded), retry 1/1"}},
		{"err400", "", state.FailureAPIError, 1, []string{"● claude failed (api_error): Prompt is too long"}},
		{"bash", "done", "", 1, []string{"→ Bash echo hi; printf"}},
		{"bg", "PLATEAU: true", "", 1, []string{"● background task started: x\n", "● claude went on after its result (completed); the iteration is over\n"}},
	} {
		data, err := os.ReadFile(filepath.Join("testdata", "claude-stream", "real-2.1.332-"+tt.file+".jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		var pane bytes.Buffer
		calls := 0
		res := renderStream(bytes.NewReader(data), &pane, func() { calls++ })
		if calls != tt.calls {
			t.Errorf("%s: onResult called %d times, want %d", tt.file, calls, tt.calls)
		}
		if tt.kind == "" {
			if res.IsError || res.Final != tt.final {
				t.Errorf("%s: result %+v, want success %q", tt.file, res, tt.final)
			}
		} else if res.Failure == nil || res.Failure.Kind != tt.kind || (tt.final != "" && res.Failure.Message != tt.final) {
			t.Errorf("%s: failure %+v, want %s %q", tt.file, res.Failure, tt.kind, tt.final)
		}
		for _, want := range tt.pane {
			if !strings.Contains(pane.String(), want) {
				t.Errorf("%s: pane lacks %q:\n%s", tt.file, want, pane.String())
			}
		}
	}
}

// TestClassifyFallbacks: the CLI's error fields are internal, so the text
// decides when they are missing; an error with nothing to say still says
// what it knows.
func TestClassifyFallbacks(t *testing.T) {
	for _, tt := range []struct{ line, kind, msg string }{
		{`{"type":"result","subtype":"success","is_error":true,"result":"Claude AI usage limit reached|1800000000"}`, state.FailureUsageLimit, "Claude AI usage limit reached|1800000000"},
		{`{"type":"result","subtype":"error_max_budget_usd","is_error":true,"terminal_reason":"budget_exhausted"}`, state.FailureBudget, "claude ended with error_max_budget_usd, terminal_reason budget_exhausted"},
		{`{"type":"result","subtype":"success","is_error":true,"result":"API Error: 500 boom"}`, state.FailureAPIError, "API Error: 500 boom"},
		{`{"type":"result","subtype":"success","is_error":true}`, state.FailureExit, "claude reported an error without saying which"},
	} {
		res := renderStream(strings.NewReader(tt.line+"\n"), &bytes.Buffer{}, nil)
		if res.Failure == nil || res.Failure.Kind != tt.kind || res.Failure.Message != tt.msg {
			t.Errorf("%s: failure %+v, want %s %q", tt.line, res.Failure, tt.kind, tt.msg)
		}
	}
	res := renderStream(strings.NewReader(`{"type":"result","is_error":true,"result":"Claude AI usage limit reached|1800000000"}`), &bytes.Buffer{}, nil)
	if res.Failure.ResetsAt == nil || res.Failure.ResetsAt.Unix() != 1800000000 {
		t.Errorf("resets_at from the text = %v, want epoch 1800000000", res.Failure.ResetsAt)
	}
}

// TestRenderSystemLines: the notable system lines are shown in words, and
// an unexpected shape of error never drops the line.
func TestRenderSystemLines(t *testing.T) {
	stream := `{"type":"system","subtype":"compact_boundary","compact_metadata":{"trigger":"auto","pre_tokens":150000}}
{"type":"system","subtype":"model_fallback","from_model":"claude-opus-5","to_model":"claude-sonnet-5-5","session_id":"x"}
{"type":"system","subtype":"api_retry","attempt":3,"max_retries":10,"retry_delay_ms":2400,"error_status":529,"error":{"odd":"shape"}}
{"type":"system","subtype":"thinking_tokens","estimated_tokens":3}
`
	var pane bytes.Buffer
	renderStream(strings.NewReader(stream), &pane, nil)
	want := "● context compacted (auto)\n" +
		"● model fallback: from_model=claude-opus-5 to_model=claude-sonnet-5-5\n" +
		"● API error 529 (no detail), retry 3/10 in 2.4s\n"
	if pane.String() != want {
		t.Errorf("pane = %q, want %q", pane.String(), want)
	}
}
