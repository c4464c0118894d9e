package engine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// runFakeClaude runs the claude provider once with the fake claude on PATH.
func runFakeClaude(t *testing.T, env ...string) (Outcome, string, string) {
	t.Helper()
	var out, pane bytes.Buffer
	o := claudeProvider{bin: agentPath("claude")}.Run(context.Background(), Call{
		Stage: StagePlan{Model: "sonnet"}, Prompt: "go\n", Dir: t.TempDir(), Iteration: 1,
		Env: agentEnv(env...), Output: &out, Transcript: &pane,
		Timeout: 20 * time.Second, Grace: 2 * time.Second, ResultGrace: 100 * time.Millisecond,
	})
	return o, out.String(), pane.String()
}

// TestClaudeResultEndsIteration: `claude -p` waits for a background shell
// after printing its result; the iteration ends at the result (after a
// short grace), the background process is ended, and the result counts.
// Before the fix the iteration ran into its timeout (exit 124).
func TestClaudeResultEndsIteration(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "bg.pid")
	o, out, pane := runFakeClaude(t, "FAKE_CLAUDE_BACKGROUND=300", "FAKE_CLAUDE_BACKGROUND_PID="+pidFile)
	if o.TimedOut || o.ExitCode != 0 || o.Problem != "" || o.Failure != nil {
		t.Fatalf("outcome %+v, want a clean exit at the result\n%s", o, pane)
	}
	if !strings.Contains(out, "PLATEAU: false") {
		t.Errorf("output = %q, want the result text", out)
	}
	if !strings.Contains(pane, "its leftover processes were ended") {
		t.Errorf("pane does not say the leftovers were ended:\n%s", pane)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if st, err := procStat(pid); err == nil && st.state != 'Z' && syscall.Kill(pid, 0) == nil {
		t.Errorf("background process %d outlived the iteration", pid)
	}
}

// TestClaudeAPIErrorOutcome: the API's message reaches the outcome with
// its kind, status and the reset time of a usage limit.
func TestClaudeAPIErrorOutcome(t *testing.T) {
	t.Parallel()
	o, _, _ := runFakeClaude(t, "FAKE_CLAUDE_FAIL=api", "FAKE_CLAUDE_API_MESSAGE=credit balance is too low")
	want := "claude reported an error (api_error): API Error: 400 credit balance is too low"
	if o.ExitCode != 1 || o.Problem != want || o.Failure == nil || o.Failure.Status != 400 {
		t.Errorf("outcome %+v (failure %+v), want exit 1 and %q", o, o.Failure, want)
	}
	o, _, _ = runFakeClaude(t, "FAKE_CLAUDE_FAIL=usage_limit", "FAKE_CLAUDE_RESETS_AT=1800000000")
	if f := o.Failure; f == nil || f.Kind != state.FailureUsageLimit || f.ResetsAt == nil || f.ResetsAt.Unix() != 1800000000 {
		t.Errorf("usage limit failure = %+v, want usage_limit resetting at 1800000000", f)
	}
}

// TestClaudeRefusedAsRoot: claude's one stderr line (root without
// IS_SANDBOX=1) is the iteration's problem, not just "exited with code 1".
func TestClaudeRefusedAsRoot(t *testing.T) {
	t.Parallel()
	o, _, pane := runFakeClaude(t, "FAKE_CLAUDE_EUID=0", "IS_SANDBOX=")
	want := "the agent exited with code 1: --dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons"
	if o.ExitCode != 1 || o.Problem != want || o.Failure == nil || o.Failure.Kind != state.FailureExit {
		t.Errorf("outcome %+v (failure %+v), want %q\n%s", o, o.Failure, want, pane)
	}
}
