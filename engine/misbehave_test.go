package engine

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// TestMisbehavingAgents runs agents that hang, write a broken status.json,
// close their stdout, ignore their stdin or leave a child behind, and checks
// the engine records each sensibly and goes on.
func TestMisbehavingAgents(t *testing.T) {
	t.Parallel()
	bigContext := strings.Repeat("a prompt far larger than a pipe buffer\n", 8<<10) // ≈ 300 KiB
	tests := []struct {
		name      string
		agent     string
		yaml      []string
		env       []string
		context   string
		wantExits []int
		wantWarn  string // substring of every history entry's warning
		status    string // how the session ends (default complete)
		check     func(t *testing.T, l state.Layout, st state.State)
	}{
		// Its only iteration failed, so the session fails (SPEC §13).
		{name: "hang-agent is stopped at the timeout", agent: "hang-agent", yaml: []string{"max_iterations: 1", "timeout: 1"},
			wantExits: []int{ExitTimeout}, wantWarn: "timeout", status: state.StatusFailed,
			check: func(t *testing.T, l state.Layout, st state.State) {
				var r iterationResult
				if err := json.Unmarshal([]byte(readFile(t, l.Iteration(0, "s", 1).Result)), &r); err != nil {
					t.Fatal(err)
				}
				if !r.TimedOut || r.ExitCode != ExitTimeout || r.Failure == nil || r.Failure.Kind != state.FailureTimeout {
					t.Errorf("result.json timed_out %v exit %d, want true %d", r.TimedOut, r.ExitCode, ExitTimeout)
				}
			}},
		{name: "invalid status.json is a warning", agent: "status-agent", yaml: []string{"max_iterations: 2"}, env: []string{"STATUS_INVALID=1"},
			wantExits: []int{0, 0}, wantWarn: "status.json is not valid JSON"},
		{name: "closeout-agent closes stdout at once", agent: "closeout-agent", yaml: []string{"max_iterations: 2"},
			wantExits: []int{0, 0}},
		{name: "nostdin-agent never reads a large prompt", agent: "nostdin-agent", yaml: []string{"max_iterations: 2"}, context: bigContext,
			wantExits: []int{0, 0},
			check: func(t *testing.T, l state.Layout, st state.State) {
				if got := readFile(t, l.Iteration(0, "s", 2).Output); got != "nostdin-agent iteration=2 done\n" {
					t.Errorf("output.md = %q", got)
				}
			}},
		{name: "child-agent exits leaving a grandchild on the pipe", agent: "child-agent", yaml: []string{"max_iterations: 1"},
			env: []string{"SLEEP_SECONDS=0"}, wantExits: []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			project := t.TempDir()
			pids := filepath.Join(t.TempDir(), "child.pid")
			writeStage(t, project, "s", commandStage("fixed-n", tt.agent, tt.yaml...), "go ${CONTEXT}\n")
			res, out := runSession(t, context.Background(), RunOptions{Session: "m", Stage: "s", ProjectDir: project, Foreground: true,
				Compile: Options{Context: tt.context}, Env: agentEnv(append([]string{"CHILD_PIDS=" + pids}, tt.env...)...)})
			if want := first(tt.status, state.StatusComplete); res.Status != want {
				t.Fatalf("Run = %+v, want %s\n%s", res, want, out)
			}
			st := loadState(t, project, "m")
			var exits []int
			for _, h := range st.History {
				exits = append(exits, h.ExitCode)
				if !strings.Contains(h.Warning, tt.wantWarn) {
					t.Errorf("iteration %d warning %q, want it to contain %q", h.Iteration, h.Warning, tt.wantWarn)
				}
			}
			if !equalInts(exits, tt.wantExits) {
				t.Errorf("exit codes %v, want %v", exits, tt.wantExits)
			}
			if tt.check != nil {
				tt.check(t, state.NewLayout(project, "m"), st)
			}
			if data, err := os.ReadFile(pids); err == nil {
				pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
				if !waitDead(pid, 5*time.Second) {
					t.Errorf("grandchild %d outlived its iteration", pid)
				}
			}
		})
	}
}

// waitDead polls until pid is gone or a zombie (pid 1 may reap slowly).
func waitDead(pid int, within time.Duration) bool {
	for end := time.Now().Add(within); ; time.Sleep(20 * time.Millisecond) {
		st, err := procStat(pid)
		if err != nil || st.state == 'Z' || st.state == 'X' {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}
