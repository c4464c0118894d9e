package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"github.com/agent-sessions/agent-sessions/state"
)

// TestRealClaudeEscapeIsContained runs one iteration of the real Claude Code
// CLI whose (fake) model makes two Bash calls, then answers. It carries three
// checks, each once, because every run of the CLI costs a second or two of
// CPU:
//
//   - escape: `setsid -f … sleep 1000` leaves a process outside claude's
//     process group and session — which used to outlive the session. Under
//     the engine's containment (cgroup here, the subreaper walk elsewhere) it
//     is gone when the session completes.
//   - background shell (issue 10 (a)): `sleep 300` with run_in_background —
//     claude -p prints its result, then waits for the shell; the iteration
//     ends at the result instead (before: it ran into its timeout, exit 124).
//   - the harness (testkit's fake Messages API, formerly TestClaudeCLISmoke):
//     the CLI completes the turn with the result the fake scripted (a
//     thinking block, then text), and the fake records what Claude Code hands
//     back to the model — the first Bash call's output arrives as a
//     tool_result in the next request.
func TestRealClaudeEscapeIsContained(t *testing.T) {
	t.Parallel()
	cli := testkit.RequireClaudeCLI(t)
	pidFile := filepath.Join(t.TempDir(), "escaped.pid")
	escape := fmt.Sprintf("setsid -f sh -c 'echo $$ > %s; exec sleep 1000' </dev/null >/dev/null 2>&1; echo from-the-tool", pidFile)
	const answer = "Started them.\nPLATEAU: true\nREASONING: done"
	// Each call its own id: Claude Code pairs results by id.
	api := testkit.NewMessages(t,
		testkit.Turn{Blocks: []testkit.Block{{Kind: "tool_use", Name: "Bash", ID: "toolu_escape",
			Input: json.RawMessage(fmt.Sprintf(`{"command": %q, "description": "start a detached sleeper"}`, escape))}}},
		testkit.Turn{Blocks: []testkit.Block{{Kind: "tool_use", Name: "Bash", ID: "toolu_background",
			Input: json.RawMessage(`{"command":"sleep 300","run_in_background":true,"description":"sleep in the background"}`)}}},
		testkit.Turn{Blocks: []testkit.Block{{Kind: "thinking", Text: "hmm"}, {Kind: "text", Text: answer}}})
	henv := testkit.NewEnv(t, api.URL)

	bin := t.TempDir()
	if err := os.Symlink(cli, filepath.Join(bin, "claude")); err != nil {
		t.Fatal(err)
	}
	env := append(henv.List(), "PATH="+bin+":"+os.Getenv("PATH"), "AGENT_SESSIONS_NOTIFY=0", "AGENT_SESSIONS_KILL_GRACE=2s")
	project := t.TempDir()
	writeStage(t, project, "s", "completion: fixed-n\nmax_iterations: 1\nmodel: sonnet\ndelay: 0\ntimeout: 120\n", "Start the sleepers.\n")
	p := startBinary(t, env, "run", "--session", "cc", "--stage", "s", "--project", project, "--foreground")
	code := p.wait(t, 150*time.Second)
	pid := 0
	if data, err := os.ReadFile(pidFile); err == nil {
		pid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
	}
	if pid <= 0 {
		t.Fatalf("the Bash tool never started the sleeper (exit %d)\nstdout:\n%s\nstderr:\n%s", code, p.stdout.String(), p.stderr.String())
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	stdout := p.stdout.String()
	if code != 0 {
		t.Errorf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, p.stderr.String())
	}
	if live := waitDead([]int{pid}, 5*time.Second); len(live) > 0 {
		t.Errorf("the sleeper %d started through claude's Bash tool outlived the session", pid)
	}
	if st := loadState(t, project, "cc"); st.Status != state.StatusComplete {
		t.Errorf("status %s, want complete", st.Status)
	}
	if sc, ok := engine.ReadContainment(state.NewLayout(project, "cc")); !ok || sc.Mechanism == engine.ContainPgroup {
		t.Errorf("containment %+v: want cgroup or subreaper", sc)
	}

	// The background shell did not hold the iteration.
	r := iterationResult(t, project, "cc", "s", 1)
	if r.ExitCode != 0 || r.TimedOut || r.Failure != nil {
		t.Errorf("result.json = %+v, want a clean exit at the result\n%s", r, stdout)
	}
	if !strings.Contains(stdout, "● background task started: sleep in the background") || !strings.Contains(stdout, "its leftover processes were ended") {
		t.Errorf("the pane does not show the background task and its end:\n%s", stdout)
	}

	// The fake's scripted result is the CLI's result (output.md), and the
	// first tool call's output reached the model in the next request.
	if got := readFile(t, state.NewLayout(project, "cc").Iteration(0, "s", 1).Output); got != answer {
		t.Errorf("output.md = %q, want the scripted result %q", got, answer)
	}
	checkToolResultHandedBack(t, api.MessageRequests(), "from-the-tool")
}

// checkToolResultHandedBack asserts that the second message request's last
// message is the tool_result of the first request's tool call, with want in it.
func checkToolResultHandedBack(t *testing.T, reqs [][]byte, want string) {
	t.Helper()
	if len(reqs) < 2 {
		t.Fatalf("got %d message requests, want at least 2 (the tool call and its result)", len(reqs))
	}
	var body struct {
		Messages []struct {
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(reqs[1], &body); err != nil || len(body.Messages) == 0 {
		t.Fatalf("second request: %v\n%.2000s", err, reqs[1])
	}
	last := string(body.Messages[len(body.Messages)-1].Content)
	if !strings.Contains(last, `"tool_result"`) || !strings.Contains(last, want) {
		t.Errorf("second request's last message = %s, want a tool_result with the command's output %q", last, want)
	}
}
