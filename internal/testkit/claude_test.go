package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runClaude runs the real CLI hermetically with args and returns its stdout
// lines and exit error.
func runClaude(t *testing.T, env *Env, args ...string) ([]string, error) {
	t.Helper()
	cli := RequireClaudeCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Env = env.List()
	cmd.Dir = env.Dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if stderr.Len() > 0 {
		t.Logf("claude stderr: %s", stderr.String())
	}
	return strings.Split(strings.TrimSpace(stdout.String()), "\n"), err
}

// TestClaudeCLISmoke proves, in one run of the real CLI (each run costs a
// second or two of CPU), that it completes a `claude -p` turn against the fake
// Messages API with the result the fake scripted, and that the fake records
// what Claude Code hands back to the model: the tool_result of a Bash call
// arrives in the next request.
func TestClaudeCLISmoke(t *testing.T) {
	t.Parallel()
	api := NewMessages(t,
		ToolUse("Bash", `{"command":"echo from-the-tool","description":"echo"}`),
		Turn{Blocks: []Block{{Kind: "thinking", Text: "hmm"}, {Kind: "text", Text: "hello from the fake"}}, InputTokens: 42, OutputTokens: 7})
	env := NewEnv(t, api.URL)
	lines, err := runClaude(t, env, "-p", "run it, then say hello", "--output-format", "stream-json", "--verbose",
		"--model", "sonnet", "--dangerously-skip-permissions")
	if err != nil {
		t.Fatalf("claude -p: %v\n%s", err, strings.Join(lines, "\n"))
	}
	var result map[string]any
	for _, l := range lines {
		t.Logf("line: %s", l)
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["type"] == "result" {
			result = m
		}
	}
	if result == nil {
		t.Fatalf("no result line in:\n%s", strings.Join(lines, "\n"))
	}
	if got, want := result["result"], "hello from the fake"; got != want {
		t.Errorf("result = %v, want %q", got, want)
	}
	if got := result["is_error"]; got != false {
		t.Errorf("is_error = %v, want false", got)
	}
	for _, r := range api.Requests() {
		t.Logf("request: %s %s", r.Method, r.Path)
	}
	reqs := api.MessageRequests()
	if len(reqs) < 2 {
		t.Fatalf("got %d message requests, want 2 (the tool call and its result)", len(reqs))
	}
	var body struct {
		Messages []struct {
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(reqs[1], &body); err != nil {
		t.Fatal(err)
	}
	last := string(body.Messages[len(body.Messages)-1].Content)
	if !strings.Contains(last, `"tool_result"`) || !strings.Contains(last, "from-the-tool") {
		t.Errorf("second request's last message = %s, want a tool_result with the command's output", last)
	}
}
