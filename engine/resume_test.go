package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// cancelWhen cancels ctx once cond holds (polled), or when the test ends.
func cancelWhen(t *testing.T, cond func() bool) (context.Context, func()) {
	t.Helper()
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if cond() {
				cancel(errors.New("killed by the test"))
				return
			}
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}

// TestResumeWithMaxRaisesTheLimit kills a fixed-n session during its second
// iteration, resumes it with a higher --max, and checks that it continues
// where it stopped and runs to the new limit, which the prompts see.
func TestResumeWithMaxRaisesTheLimit(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	tmp := t.TempDir()
	logFile := filepath.Join(tmp, "agent.log")
	prompts := filepath.Join(tmp, "prompts")
	os.MkdirAll(prompts, 0o755)
	writeStage(t, project, "s", commandStage("fixed-n", "sleep-agent", "max_iterations: 3"), "iteration ${ITERATION} of ${MAX_ITERATIONS}\n")
	env := agentEnv("FAKE_AGENT_LOG="+logFile, "FAKE_AGENT_PROMPT_DIR="+prompts, "SLEEP_SECONDS=0.2")

	ctx, stop := cancelWhen(t, func() bool { return len(agentRuns(t, logFile)) >= 2 })
	res, out := runSession(t, ctx, RunOptions{Session: "r", Stage: "s", ProjectDir: project, Foreground: true, Env: env})
	stop()
	if res.Status != state.StatusKilled {
		t.Fatalf("first run = %+v, want killed\n%s", res, out)
	}
	st := loadState(t, project, "r")
	if st.Status != state.StatusKilled || st.IterationCompleted != 1 {
		t.Fatalf("after kill: status %s, iteration_completed %d; want killed, 1", st.Status, st.IterationCompleted)
	}

	res, out = runSession(t, context.Background(), RunOptions{Session: "r", Stage: "s", ProjectDir: project, Foreground: true, Env: env,
		Mode: ModeResume, Compile: Options{Max: 5}})
	if res.Status != state.StatusComplete || res.Reason != CompletionFixedN {
		t.Fatalf("resume = %+v, want complete/fixed-n\n%s", res, out)
	}
	st = loadState(t, project, "r")
	if !equalInts(historyIterations(st), seq(5)) || st.MaxIterations != 5 || st.Stages[0].MaxIterations != 5 {
		t.Errorf("after resume: history %v, max %d, stage max %d; want 1..5 and 5", historyIterations(st), st.MaxIterations, st.Stages[0].MaxIterations)
	}
	if got := completedIterations(readEvents(t, project, "r")); !equalInts(got, seq(5)) {
		t.Errorf("iteration_complete events %v, want 1..5", got)
	}
	// Iteration 2 ran twice (killed, then again); every other once.
	if got, want := agentRuns(t, logFile), []int{1, 2, 2, 3, 4, 5}; !equalInts(got, want) {
		t.Errorf("agent runs %v, want %v", got, want)
	}
	for it := 2; it <= 5; it++ {
		got := readFile(t, filepath.Join(prompts, fmt.Sprintf("prompt-r-s-%d.txt", it)))
		if want := fmt.Sprintf("iteration %d of 5\n", it); got != want {
			t.Errorf("resumed prompt %d = %q, want %q", it, got, want)
		}
	}
	// The killed attempt of iteration 2 was kept aside, not overwritten.
	entries, _ := os.ReadDir(filepath.Join(state.NewLayout(project, "r").StageDir(0, "s"), "iterations"))
	aside := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "002.attempt-") {
			aside++
		}
	}
	if aside != 1 {
		t.Errorf("%d set-aside attempts of iteration 2, want 1 (%v)", aside, entries)
	}

	// A complete session is not resumed.
	_, _, err := tryRunSession(context.Background(), RunOptions{Session: "r", Stage: "s", ProjectDir: project, Foreground: true, Env: env, Mode: ModeResume})
	if !errors.Is(err, ErrConflictComplete) {
		t.Errorf("resume of a complete session: err = %v, want ErrConflictComplete", err)
	}
}

// TestResumeAfterFailureContinues resumes a session that failed on three
// consecutive agent failures, once the agent works again: it must run the
// next iterations rather than fail again at once.
func TestResumeAfterFailureContinues(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	logFile := filepath.Join(t.TempDir(), "agent.log")
	writeStage(t, project, "s", commandStage("fixed-n", "fail-agent", "max_iterations: 5"), "go\n")

	res, out := runSession(t, context.Background(), RunOptions{Session: "f", Stage: "s", ProjectDir: project, Foreground: true,
		Env: agentEnv("FAKE_AGENT_LOG="+logFile, "FAIL_AT=1 2 3")})
	if res.Status != state.StatusFailed || res.Reason != ReasonAgentFailures {
		t.Fatalf("first run = %+v, want failed/agent_failures\n%s", res, out)
	}
	res, out = runSession(t, context.Background(), RunOptions{Session: "f", Stage: "s", ProjectDir: project, Foreground: true,
		Env: agentEnv("FAKE_AGENT_LOG="+logFile, "FAIL_AT=99"), Mode: ModeResume})
	if res.Status != state.StatusComplete || res.Reason != CompletionFixedN {
		t.Fatalf("resume = %+v, want complete/fixed-n\n%s", res, out)
	}
	if got := agentRuns(t, logFile); !equalInts(got, seq(5)) {
		t.Errorf("agent runs %v, want 1..5", got)
	}
	st := loadState(t, project, "f")
	if !equalInts(historyIterations(st), seq(5)) || st.Error != "" {
		t.Errorf("history %v, error %q; want 1..5 and no error", historyIterations(st), st.Error)
	}
}

// TestResumeParallelRerunsFailedRuns fails every run of a parallel stage,
// then resumes with a healthy agent: exactly the failed runs run again and
// the session completes.
func TestResumeParallelRerunsFailedRuns(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	logFile := filepath.Join(t.TempDir(), "agent.log")
	writeFile(t, filepath.Join(project, ".claude", "pipelines", "p.yaml"), fmt.Sprintf(`name: p
stages:
  - name: fan
    prompt: "run ${ITERATION} from ${PERSPECTIVE}"
    perspectives: [a, b, c]
    parallel: true
    completion: fixed-n
    provider: command
    command: [%q]
    delay: 0
`, agentPath("fail-agent")))
	res, out := runSession(t, context.Background(), RunOptions{Session: "par", Pipeline: "p", ProjectDir: project, Foreground: true,
		Env: agentEnv("FAKE_AGENT_LOG=" + logFile)})
	if res.Status != state.StatusFailed || res.Reason != ReasonAgentFailures {
		t.Fatalf("first run = %+v, want failed with agent_failures\n%s", res, out)
	}
	st := loadState(t, project, "par")
	if got := st.Stages[0].Failed; len(got) != 3 {
		t.Fatalf("failed runs = %v, want all 3", got)
	}

	// FAIL_AT names no run, so the agent succeeds now.
	res, out = runSession(t, context.Background(), RunOptions{Session: "par", ProjectDir: project, Mode: ModeResume, Foreground: true,
		Env: agentEnv("FAKE_AGENT_LOG="+logFile, "FAIL_AT=99")})
	if res.Status != state.StatusComplete {
		t.Fatalf("resume = %+v, want complete\n%s", res, out)
	}
	st = loadState(t, project, "par")
	if len(st.Stages[0].Failed) != 0 || st.Stages[0].Iterations != 3 {
		t.Errorf("after resume: failed %v, iterations %d; want none failed, 3", st.Stages[0].Failed, st.Stages[0].Iterations)
	}
	runs := agentRuns(t, logFile)
	slices.Sort(runs)
	if want := []int{1, 1, 2, 2, 3, 3}; !slices.Equal(runs, want) {
		t.Errorf("agent runs = %v, want each run twice (failed, then re-run): %v", runs, want)
	}
}

// TestForceWaitsOutALockWithNoProcess: a lock held for an instant by no
// process it names (an engine's last instant, or its descriptors in a child
// forked just then, before exec) does not fail a force start; one that
// stays held does, saying so.
func TestForceWaitsOutALockWithNoProcess(t *testing.T) {
	t.Parallel()
	layout := state.NewLayout(t.TempDir(), "ghost")
	if err := os.MkdirAll(filepath.Dir(layout.LockFile()), 0o755); err != nil {
		t.Fatal(err)
	}
	hold := func() *os.File {
		f, err := os.OpenFile(layout.LockFile(), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		return f
	}

	brief := hold()
	time.AfterFunc(200*time.Millisecond, func() { brief.Close() })
	if sig, err := stopLiveEngine(context.Background(), layout, time.Second); err != nil || sig != "" {
		t.Fatalf("a lock let go after 200 ms: %q %v", sig, err)
	}

	stays := hold()
	defer stays.Close()
	if _, err := stopLiveEngine(context.Background(), layout, time.Second); !errors.Is(err, ErrConflictRunning) || !strings.Contains(err.Error(), "does not name a process") {
		t.Fatalf("a lock that stays held: %v", err)
	}
}
