package engine

import (
	"bytes"
	"math"
	"os/exec"
	"strings"
	"testing"
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
	res := renderStream(bytes.NewReader(stream), &pane)

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
		"I received the prompt (15 bytes) for iteration 2 of polish. Let me read the progress file first.\n",
		"→ Read /p/progress.md\n",
		wantFinal + "\n",
		"● claude done: 2 turns,",
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
	for _, tt := range []struct{ fail, subtype string }{
		{"1", "error_during_execution: fake claude: simulated failure (FAKE_CLAUDE_FAIL=1)"},
		{"max_turns", "error_max_turns: Reached maximum number of turns"},
	} {
		var pane bytes.Buffer
		res := renderStream(bytes.NewReader(fakeClaude(t, "x", "FAKE_CLAUDE_FAIL="+tt.fail)), &pane)
		if !res.SawResult || !res.IsError || res.ErrorText != tt.subtype {
			t.Errorf("FAKE_CLAUDE_FAIL=%s: result = %+v, want error %q", tt.fail, res, tt.subtype)
		}
		if !strings.Contains(pane.String(), "● claude failed ("+tt.subtype+")") {
			t.Errorf("FAKE_CLAUDE_FAIL=%s: pane lacks the failure:\n%s", tt.fail, pane.String())
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
	res := renderStream(strings.NewReader(stream), &pane)
	if res.SawResult || res.Final != "first\n\nsecond" {
		t.Errorf("result = %+v, want the assistant text as Final", res)
	}
	want := "first\nnot json at all\n→ Bash go test ./...\nsecond\n  ✗ boom\n"
	if pane.String() != want {
		t.Errorf("pane = %q, want %q", pane.String(), want)
	}
}
