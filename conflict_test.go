package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// TestTwoEnginesOneSession starts two engines on one session at the same
// instant: exactly one runs the session, the other exits 2 naming the
// conflict.
func TestTwoEnginesOneSession(t *testing.T) {
	t.Parallel()
	for trial := range 4 {
		t.Run(fmt.Sprint(trial), func(t *testing.T) {
			t.Parallel()
			project := t.TempDir()
			logFile := filepath.Join(t.TempDir(), "agent.log")
			// The agent outlasts the loser's lock wait (1.5 s), so the loser
			// meets a live engine, not a finished session.
			writeStage(t, project, "s", commandStage("fixed-n", "sleep-agent", "max_iterations: 1"), "go\n")
			env := engineEnv(true, "SLEEP_SECONDS=3", "FAKE_AGENT_LOG="+logFile)
			args := []string{"run", "--session", "race", "--stage", "s", "--project", project, "--foreground"}

			procs := []*binaryProc{prepareBinary(t, "", env, args...), prepareBinary(t, "", env, args...)}
			errs := make([]error, 2)
			var ready, wg sync.WaitGroup
			gate := make(chan struct{})
			ready.Add(2)
			for i, p := range procs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ready.Done()
					<-gate
					errs[i] = p.begin()
				}()
			}
			ready.Wait()
			close(gate)
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}

			codes := make([]int, 2)
			for i, p := range procs {
				codes[i] = p.wait(t, 30*time.Second)
			}
			winner, loser := 0, 1
			if codes[0] != 0 {
				winner, loser = 1, 0
			}
			if codes[winner] != 0 || codes[loser] != 2 {
				t.Fatalf("exit codes %v, want one 0 and one 2\nstderr 0:\n%s\nstderr 1:\n%s", codes, procs[0].stderr.String(), procs[1].stderr.String())
			}
			stderr := procs[loser].stderr.String()
			for _, want := range []string{"session race is already running", fmt.Sprintf("engine pid %d", procs[winner].cmd.Process.Pid), "--force"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("loser's stderr lacks %q:\n%s", want, stderr)
				}
			}
			if procs[loser].stdout.String() != "" {
				t.Errorf("the loser printed to the pane:\n%s", procs[loser].stdout.String())
			}
			if got := strings.Count(readFile(t, logFile), "\n"); got != 1 {
				t.Errorf("the agent ran %d times, want 1", got)
			}
			evs := readEvents(t, project, "race")
			starts := 0
			for _, ev := range evs {
				if ev.Type == state.EventSessionStart {
					starts++
				}
			}
			if starts != 1 {
				t.Errorf("%d session_start events, want 1", starts)
			}
			if st := loadState(t, project, "race"); st.Status != state.StatusComplete {
				t.Errorf("state.json status %s, want complete", st.Status)
			}
		})
	}
}
