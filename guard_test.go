package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// waitState polls a session's state (rebuilt from events when needed)
// until cond holds.
func waitState(t *testing.T, project, session, what string, cond func(state.State) bool) state.State {
	t.Helper()
	var st state.State
	waitFor(t, 30*time.Second, what, func() bool {
		s, _, err := state.Load(state.NewLayout(project, session))
		st = s
		return err == nil && cond(s)
	})
	return st
}

// TestKillNineWhileWaitingOrParked: an engine SIGKILLed while it waits for
// an answer, or while it is parked, leaves a session list calls crashed; a
// resume waits again (and takes the answer given meanwhile) or parks again
// until the same time, then completes with every iteration exactly once.
func TestKillNineWhileWaitingOrParked(t *testing.T) {
	t.Parallel()
	t.Run("waiting", func(t *testing.T) {
		t.Parallel()
		project := t.TempDir()
		writeStage(t, project, "asker", commandStage("fixed-n", "status-agent", "max_iterations: 2"), "answer: [${ANSWER}]\n")
		prompts := t.TempDir()
		env := engineEnv(true, "STATUS_DECISION=ask", "STATUS_AT=1", "STATUS_QUESTION=which one?", "FAKE_AGENT_PROMPT_DIR="+prompts,
			"XDG_STATE_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
		args := []string{"run", "--session", "kw", "--stage", "asker", "--project", project, "--foreground"}
		p := startBinary(t, env, args...)
		waitState(t, project, "kw", "waiting", func(s state.State) bool { return s.Status == state.StatusWaiting })
		syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
		p.wait(t, 10*time.Second)
		lv := classify(t, project, "kw")
		if lv.Status != state.LiveCrashed {
			t.Fatalf("after kill -9 while waiting: %s (%s)", lv.Status, lv.Why)
		}
		// The answer given while no engine runs waits for the resume.
		if err := state.WriteAnswer(state.NewLayout(project, "kw"), state.AnswerFile{Iteration: 1, Answer: "the second"}); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runBinary(t, env, append(args, "--resume")...)
		if code != 0 {
			t.Fatalf("resume: exit %d\n%s\n%s", code, out, errOut)
		}
		if p2 := readFile(t, filepath.Join(prompts, "prompt-kw-asker-2.txt")); !strings.Contains(p2, "answer: [the second]") {
			t.Errorf("iteration 2's prompt = %q", p2)
		}
		checkOnce(t, project, "kw", 2)
	})
	t.Run("parked", func(t *testing.T) {
		t.Parallel()
		project := t.TempDir()
		hostState := t.TempDir()
		writeStage(t, project, "s", commandStage("fixed-n", "echo-agent", "max_iterations: 2"), "hi\n")
		env := engineEnv(true, "XDG_STATE_HOME="+hostState, "XDG_CONFIG_HOME="+t.TempDir())
		until := time.Now().Add(4 * time.Second)
		if err := state.WritePark(filepath.Join(hostState, "agent-sessions"), state.Park{Provider: "command", Until: until, Reason: "usage_limit", BySession: "other"}); err != nil {
			t.Fatal(err)
		}
		args := []string{"run", "--session", "kp", "--stage", "s", "--project", project, "--foreground"}
		p := startBinary(t, env, args...)
		waitState(t, project, "kp", "parked", func(s state.State) bool { return s.Status == state.StatusParked })
		syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
		p.wait(t, 10*time.Second)
		if lv := classify(t, project, "kp"); lv.Status != state.LiveCrashed {
			t.Fatalf("after kill -9 while parked: %s (%s)", lv.Status, lv.Why)
		}
		r := startBinary(t, env, append(args, "--resume")...)
		st := waitState(t, project, "kp", "parked again", func(s state.State) bool { return s.Status == state.StatusParked })
		if st.ParkedUntil == nil || !st.ParkedUntil.Equal(until) {
			t.Errorf("parked again until %v, want %v", st.ParkedUntil, until)
		}
		if code := r.wait(t, 60*time.Second); code != 0 {
			t.Fatalf("resume: exit %d\n%s\n%s", code, r.stdout.String(), r.stderr.String())
		}
		checkOnce(t, project, "kp", 2)
	})
}

func classify(t *testing.T, project, session string) state.Liveness {
	t.Helper()
	l := state.NewLayout(project, session)
	st, _, err := state.Load(l)
	if err != nil {
		t.Fatal(err)
	}
	lock, _ := state.ProbeLock(l.LockFile())
	_, statErr := os.Stat(l.RunDir())
	return state.Classify(state.Facts{HasRunDir: statErr == nil, State: &st, Lock: lock, Now: time.Now()})
}

// checkOnce: the session completed with iterations 1..n, each recorded once
// and none failed.
func checkOnce(t *testing.T, project, session string, n int) {
	t.Helper()
	st := loadState(t, project, session)
	if st.Status != state.StatusComplete || st.IterationCompleted != n {
		t.Fatalf("state: %s at %d, want complete at %d", st.Status, st.IterationCompleted, n)
	}
	var its []int
	for _, ev := range readEvents(t, project, session) {
		if ev.Type == state.EventIterationDone {
			its = append(its, ev.Iteration)
		}
	}
	if len(its) != n {
		t.Errorf("iteration_complete events %v, want 1..%d once each", its, n)
	}
	for i, it := range its {
		if it != i+1 {
			t.Errorf("iteration_complete events %v, want 1..%d", its, n)
			break
		}
	}
	for _, h := range st.History {
		if h.ExitCode != 0 {
			t.Errorf("iteration %d failed: %+v", h.Iteration, h)
		}
	}
}
