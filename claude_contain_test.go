package main

import (
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

// TestRealClaudeEscapeIsContained: the real Claude Code CLI, told by the
// (fake) model to run `setsid -f … sleep 1000` through its Bash tool, leaves
// a process outside its process group and session — which used to outlive
// the session. Under the engine's containment (cgroup here, the subreaper
// walk elsewhere) it is gone when the session completes.
func TestRealClaudeEscapeIsContained(t *testing.T) {
	t.Parallel()
	cli := testkit.RequireClaudeCLI(t)
	pidFile := filepath.Join(t.TempDir(), "escaped.pid")
	cmd := fmt.Sprintf("setsid -f sh -c 'echo $$ > %s; exec sleep 1000' </dev/null >/dev/null 2>&1", pidFile)
	input := fmt.Sprintf(`{"command": %q, "description": "start a detached sleeper"}`, cmd)
	api := testkit.NewMessages(t, testkit.ToolUse("Bash", input), testkit.Text("Started it.\nPLATEAU: true\nREASONING: done"))
	henv := testkit.NewEnv(t, api.URL)

	bin := t.TempDir()
	if err := os.Symlink(cli, filepath.Join(bin, "claude")); err != nil {
		t.Fatal(err)
	}
	env := append(henv.List(), "PATH="+bin+":"+os.Getenv("PATH"), "AGENT_SESSIONS_NOTIFY=0", "AGENT_SESSIONS_KILL_GRACE=2s")
	project := t.TempDir()
	writeStage(t, project, "s", "completion: fixed-n\nmax_iterations: 1\nmodel: sonnet\ndelay: 0\ntimeout: 120\n", "Start the sleeper.\n")
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
	if code != 0 {
		t.Errorf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, p.stdout.String(), p.stderr.String())
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
}
