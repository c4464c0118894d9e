package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"github.com/agent-sessions/agent-sessions/state"
)

// stateWatcher re-reads state.json (testkit.WatchFile) and records every
// moment it was not a complete, parseable state (once it first existed).
type stateWatcher struct{ w *testkit.FileWatch }

func watchState(path string) *stateWatcher {
	return &stateWatcher{testkit.WatchFile(path, func(data []byte) string {
		var st state.State
		if err := json.Unmarshal(data, &st); err != nil {
			return fmt.Sprintf("does not parse (%v): %q", err, data[max(0, len(data)-80):])
		}
		if st.Session == "" || st.Status == "" || len(st.Stages) == 0 {
			return fmt.Sprintf("incomplete state: %.200s", data)
		}
		return ""
	})}
}

// finish stops the watcher and reports what it saw.
func (w *stateWatcher) finish(t *testing.T) {
	t.Helper()
	reads, failures := w.w.Finish()
	for _, f := range failures {
		t.Errorf("state.json was not a valid state at some moment: %s", f)
	}
	if reads < 50 {
		t.Errorf("the watcher read state.json only %d times", reads)
	}
}

// TestKillNineAndResume kills the engine with SIGKILL at many points of an
// iteration — starting, in the agent, right after an iteration is
// recorded, in the delay — resumes it, and checks that no iteration is lost
// or counted twice, that numbering continues, and that state.json could be
// parsed at every moment of the run and the resume.
func TestKillNineAndResume(t *testing.T) {
	t.Parallel()
	const iterations = 3
	type point struct {
		name string
		// ready reports that the engine reached the kill point, given the
		// run dir's events.jsonl and the agent log.
		ready func(events, agentLog string) bool
		// settle is how long to wait once ready before killing.
		settle time.Duration
	}
	completed := func(k int) func(string, string) bool {
		return func(ev, _ string) bool { return countEvents(ev, state.EventIterationDone) >= k }
	}
	started := func(k int) func(string, string) bool {
		return func(ev, _ string) bool { return countEvents(ev, state.EventIterationStart) >= k }
	}
	inAgent := func(k int) func(string, string) bool {
		return func(_, log string) bool { return lineCount(log) >= k }
	}
	points := []point{
		{"just started", func(ev, _ string) bool { return countEvents(ev, state.EventSessionStart) >= 1 }, 0},
		{"iteration 1 starting", started(1), 0},
		{"iteration 2 starting", started(2), 0},
		{"iteration 3 starting", started(3), 0},
		{"in agent 1", inAgent(1), 100 * time.Millisecond},
		{"in agent 2", inAgent(2), 100 * time.Millisecond},
		{"in agent 3", inAgent(3), 100 * time.Millisecond},
		{"iteration 1 just recorded", completed(1), 0},
		{"iteration 2 just recorded", completed(2), 0},
		{"in delay after 1", completed(1), 150 * time.Millisecond},
		{"in delay after 2", completed(2), 150 * time.Millisecond},
		{"twice: agent 1, then agent 2 of the resume", inAgent(1), 100 * time.Millisecond},
	}
	for _, pt := range points {
		t.Run(pt.name, func(t *testing.T) {
			t.Parallel()
			project := t.TempDir()
			logFile := filepath.Join(t.TempDir(), "agent.log")
			writeStage(t, project, "s", fmt.Sprintf("completion: fixed-n\nprovider: command\ncommand: [%q]\nmax_iterations: %d\ndelay: 0.3\n",
				agentPath("sleep-agent"), iterations), "iteration ${ITERATION}\n")
			l := state.NewLayout(project, "k")
			// A kill "in agent k" lands settle after the agent's log line; the
			// agent must outlast that by a margin a loaded machine keeps, or
			// (at k = 3) the session completes first and there is nothing to
			// resume.
			sleep := "0.25"
			if strings.Contains(pt.name, "agent") {
				sleep = "1"
			}
			env := engineEnv(true, "SLEEP_SECONDS="+sleep, "FAKE_AGENT_LOG="+logFile)
			args := []string{"run", "--session", "k", "--stage", "s", "--project", project, "--foreground"}
			watcher := watchState(l.StateFile())

			killAt := func(p *binaryProc, ready func(string, string) bool, settle time.Duration) {
				t.Helper()
				waitFor(t, 20*time.Second, "the kill point", func() bool {
					log, _ := os.ReadFile(logFile)
					return ready(l.EventsFile(), string(log))
				})
				time.Sleep(settle)
				p.cmd.Process.Kill() // SIGKILL
				p.wait(t, 10*time.Second)
				// The kernel frees the engine socket when the last copy of
				// it closes: a child the engine was forking at the kill
				// holds a copy until its exec closes it (close-on-exec), an
				// instant later. So the lock must be free at once or very
				// soon: well within the agent's own run (SLEEP_SECONDS 0.25 or
				// more), so an agent holding the socket would still fail this.
				var ls state.LockStatus
				var err error
				if !testkit.WaitUntil(150*time.Millisecond, func() bool { ls, err = state.ProbeLock(l.LockFile()); return err == nil && !ls.Held }) {
					t.Fatalf("after kill -9 the lock is still held (%+v, %v)", ls, err)
				}
			}

			killAt(startBinary(t, env, args...), pt.ready, pt.settle)
			resumeArgs := append(args, "--resume")
			if strings.HasPrefix(pt.name, "twice") {
				killAt(startBinary(t, env, resumeArgs...), inAgent(3), 100*time.Millisecond)
			}
			p := startBinary(t, env, resumeArgs...)
			code := p.wait(t, 30*time.Second)
			watcher.finish(t)
			if code != 0 {
				t.Fatalf("resume: exit %d\nstdout:\n%s\nstderr:\n%s", code, p.stdout.String(), p.stderr.String())
			}

			st := loadState(t, project, "k")
			if st.Status != state.StatusComplete || st.CompletionReason != "fixed-n" || st.IterationCompleted != iterations {
				t.Errorf("final state: %s/%s iteration_completed %d", st.Status, st.CompletionReason, st.IterationCompleted)
			}
			var hist []int
			for _, h := range st.History {
				hist = append(hist, h.Iteration)
			}
			if fmt.Sprint(hist) != fmt.Sprint(seq(iterations)) {
				t.Errorf("state.json history iterations %v, want each of 1..%d once", hist, iterations)
			}
			evs := readEvents(t, project, "k")
			var done []int
			resumes, doneAtLastResume := 0, 0
			for i, ev := range evs {
				switch ev.Type {
				case state.EventIterationDone:
					done = append(done, ev.Iteration)
				case state.EventSessionResume:
					resumes++
					doneAtLastResume = len(done)
					// The first iteration after a resume is the one after
					// the last completed.
					for _, next := range evs[i+1:] {
						if next.Type == state.EventIterationStart {
							if next.Iteration != len(done)+1 {
								t.Errorf("after resume %d (with %d iterations complete) iteration %d started, want %d", resumes, len(done), next.Iteration, len(done)+1)
							}
							break
						}
					}
				}
			}
			if fmt.Sprint(done) != fmt.Sprint(seq(iterations)) {
				t.Errorf("events.jsonl iteration_complete %v, want each of 1..%d once", done, iterations)
			}
			wantResumes := 1
			if strings.HasPrefix(pt.name, "twice") {
				wantResumes = 2
			}
			if resumes != wantResumes {
				t.Errorf("%d session_resume events, want %d", resumes, wantResumes)
			}
			if want := fmt.Sprintf("resuming at stage 1/1, iteration %d ", doneAtLastResume+1); !strings.Contains(p.stdout.String(), want) {
				t.Errorf("the last resume does not say %q:\n%s", want, p.stdout.String())
			}
		})
	}
}

func lineCount(s string) int { return strings.Count(s, "\n") }

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}
