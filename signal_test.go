package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// TestSignalsStopEverything sends SIGHUP, SIGTERM and SIGINT to an engine
// whose agent ignores them (stubborn-agent) or leaves a grandchild behind
// (child-agent): no agent process may survive, the session is `killed`,
// the exit code is 3 and the lock is free.
func TestSignalsStopEverything(t *testing.T) {
	t.Parallel()
	agents := []struct {
		agent, pidsEnv string
		wantPids       int
	}{
		{"stubborn-agent", "STUBBORN_PIDS", 3},
		{"child-agent", "CHILD_PIDS", 1},
	}
	names := map[syscall.Signal]string{syscall.SIGHUP: "SIGHUP", syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT"}
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT} {
		for _, a := range agents {
			t.Run(fmt.Sprintf("%s/%s", sig, a.agent), func(t *testing.T) {
				t.Parallel()
				project := t.TempDir()
				pidsFile := filepath.Join(t.TempDir(), "pids")
				writeStage(t, project, "s", commandStage("fixed-n", a.agent, "max_iterations: 3"), "go\n")
				logFile := filepath.Join(t.TempDir(), "agent.log")
				p := startBinary(t, engineEnv(true, a.pidsEnv+"="+pidsFile, "FAKE_AGENT_LOG="+logFile),
					"run", "--session", "sig", "--stage", "s", "--project", project, "--foreground")
				waitFor(t, 20*time.Second, "the agent's pids", func() bool { return pathExists(pidsFile) })
				pids := readPids(t, pidsFile)
				if len(pids) != a.wantPids {
					t.Fatalf("pids %v, want %d", pids, a.wantPids)
				}
				// The agent itself (its log line's pid column) must go too.
				f := strings.Split(strings.TrimSpace(readFile(t, logFile)), "\t")
				agentPid, err := strconv.Atoi(f[1])
				if err != nil {
					t.Fatalf("agent log %q: %v", f, err)
				}
				if !processAlive(agentPid) {
					t.Fatalf("agent %d is not running before the signal", agentPid)
				}
				pids = append(pids, agentPid)
				if err := p.cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				code := p.wait(t, 20*time.Second)
				if code != 3 {
					t.Errorf("exit %d, want 3\nstdout:\n%s\nstderr:\n%s", code, p.stdout.String(), p.stderr.String())
				}
				if live := waitDead(pids, 5*time.Second); len(live) > 0 {
					t.Errorf("agent processes %v outlived the engine", live)
				}
				st := loadState(t, project, "sig")
				if st.Status != state.StatusKilled || st.CompletionReason != "killed" || st.Stages[0].Status != state.StageKilled {
					t.Errorf("state.json: status %s reason %s stage %s; want killed", st.Status, st.CompletionReason, st.Stages[0].Status)
				}
				// events.jsonl records which signal ended the session.
				evs := readEvents(t, project, "sig")
				if last := evs[len(evs)-1]; last.Type != state.EventSessionKilled || !strings.Contains(string(last.Data), `"error":"killed by `+names[sig]+`"`) {
					t.Errorf("last event = %s %s, want session_killed naming %s", last.Type, last.Data, names[sig])
				}
				if st.IterationCompleted != 0 || st.IterationStarted != nil {
					t.Errorf("state.json: iteration_completed %d, iteration_started %v; the interrupted iteration must not count", st.IterationCompleted, st.IterationStarted)
				}
				l := state.NewLayout(project, "sig")
				ls, err := state.ProbeLock(l.LockFile())
				if err != nil || ls.Held || ls.Exists {
					t.Errorf("lock after the engine ended: %+v, %v; want gone", ls, err)
				}
			})
		}
	}
}
