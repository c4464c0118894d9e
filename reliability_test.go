package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// Issue 6.4: state taken away or unwritable under a running engine.

// checkComplete checks a session that ran to its end: status complete,
// history and iteration_complete events holding 1..max once each, every
// event line readable, no temporary file and no space reserve left.
func checkComplete(t *testing.T, project, session string, max int) {
	t.Helper()
	st := loadState(t, project, session)
	if st.Status != state.StatusComplete || st.IterationCompleted != max {
		t.Errorf("final state %s with %d iterations (%s); want complete with %d", st.Status, st.IterationCompleted, st.Error, max)
	}
	var hist, done []int
	for _, h := range st.History {
		hist = append(hist, h.Iteration)
	}
	l := state.NewLayout(project, session)
	evs, skipped, err := state.ReadEvents(l.EventsFile())
	if err != nil || skipped > 0 {
		t.Errorf("events.jsonl: %v, %d unreadable lines", err, skipped)
	}
	for _, ev := range evs {
		if ev.Type == state.EventIterationDone {
			done = append(done, ev.Iteration)
		}
	}
	if !slices.Equal(hist, seq(max)) || !slices.Equal(done, seq(max)) {
		t.Errorf("history %v, iteration_complete events %v; want 1..%d once each", hist, done, max)
	}
	checkNoLeftovers(t, l)
}

// checkNoLeftovers: no temporary file of an atomic write and no space
// reserve is left in the run dir once the engine has ended.
func checkNoLeftovers(t *testing.T, l state.Layout) {
	t.Helper()
	filepath.WalkDir(l.RunDir(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && (strings.Contains(d.Name(), ".tmp-") || p == l.ReserveFile()) {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory; it skips the
// test, saying why, where mounting is not allowed (not root).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v): this test needs root (CI runs as root)", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// A disk that fills up under a running session: the engine stops with a
// clear error recorded in state.json (in the space it kept in reserve),
// leaves no half-written file, and once there is room again a resume
// finishes the session with every iteration recorded once. The disk sizes
// make it fill at different writes.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	const max = 40
	for _, size := range []int{112 << 10, 128 << 10, 160 << 10, 192 << 10} {
		t.Run(strconv.Itoa(size>>10)+"KiB", func(t *testing.T) {
			t.Parallel()
			project := mountTmpfs(t, size)
			filler := strings.Repeat("x", 3000)
			writeStage(t, project, "fill", fmt.Sprintf("completion: fixed-n\nprovider: mock\nmax_iterations: %d\ndelay: 0\n", max),
				"iteration ${ITERATION} "+filler+"\n")
			env := engineEnv(false, "AGENT_SESSIONS_MOCK_STEP=1ms")
			args := []string{"run", "--session", "full", "--stage", "fill", "--project", project, "--foreground"}
			code, stdout, stderr := runBinary(t, env, args...)
			if code != 1 {
				t.Fatalf("exit %d on a full disk, want 1\nstdout tail:\n%s\nstderr:\n%s", code, tail(stdout, 800), stderr)
			}
			if !strings.Contains(stdout+stderr, "the disk is full") || !strings.Contains(stdout+stderr, "resume") {
				t.Errorf("the engine does not say the disk is full and what to do:\n%s%s", tail(stdout, 800), stderr)
			}
			l := state.NewLayout(project, "full")
			data, err := os.ReadFile(l.StateFile())
			if err != nil {
				t.Fatal(err)
			}
			var st state.State
			if err := json.Unmarshal(data, &st); err != nil {
				t.Fatalf("state.json after the disk filled does not parse: %v", err)
			}
			if st.Status != state.StatusFailed || !strings.Contains(st.Error, "disk is full") || !strings.Contains(st.Error, "free space") {
				t.Errorf("state.json: status %s, error %q; want failed saying the disk is full and to free space", st.Status, st.Error)
			}
			if st.IterationCompleted >= max {
				t.Fatalf("the disk filled after %d iterations; resize the test's disks", st.IterationCompleted)
			}
			// Nothing half-written: every prompt.md and result.json there
			// is whole.
			for it := 1; it <= st.IterationCompleted+1; it++ {
				files := l.Iteration(0, "fill", it)
				if p, err := os.ReadFile(files.Prompt); err == nil && string(p) != fmt.Sprintf("iteration %d %s\n", it, filler) {
					t.Errorf("iteration %d: prompt.md is %d bytes, not the whole prompt", it, len(p))
				}
				if r, err := os.ReadFile(files.Result); err == nil && !json.Valid(r) {
					t.Errorf("iteration %d: result.json is cut short", it)
				} else if err != nil && it <= st.IterationCompleted {
					t.Errorf("iteration %d: %v", it, err)
				}
			}
			checkNoLeftovers(t, l)
			t.Logf("the %d KiB disk filled after iteration %d: %s", size>>10, st.IterationCompleted, st.Error)

			if err := syscall.Mount("tmpfs", project, "tmpfs", syscall.MS_REMOUNT, "size=8m"); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr = runBinary(t, env, append(args, "--resume")...)
			if code != 0 {
				t.Fatalf("resume with room again: exit %d\n%s\n%s", code, tail(stdout, 800), stderr)
			}
			if want := fmt.Sprintf("iteration %d ", st.IterationCompleted+1); !strings.Contains(stdout, "resuming at stage 1/1, "+want) {
				t.Errorf("resume does not continue at %q:\n%s", want, tail(stdout, 400))
			}
			checkComplete(t, project, "full", max)
		})
	}
}

// A disk too full for the session's reserve: the session does not start,
// says so, and leaves nothing behind; with room it starts.
func TestDiskFullAtStart(t *testing.T) {
	t.Parallel()
	project := mountTmpfs(t, 48<<10)
	writeStage(t, project, "s", "completion: fixed-n\nprovider: mock\nmax_iterations: 2\ndelay: 0\n", "go\n")
	args := []string{"run", "--session", "tight", "--stage", "s", "--project", project, "--foreground"}
	env := engineEnv(false, "AGENT_SESSIONS_MOCK_STEP=1ms")
	code, stdout, stderr := runBinary(t, env, args...)
	if code != 1 || !strings.Contains(stderr, "the disk is full") || !strings.Contains(stderr, "free space") {
		t.Errorf("exit %d, stderr %q; want 1 saying the disk is full and to free space\n%s", code, stderr, stdout)
	}
	l := state.NewLayout(project, "tight")
	if pathExists(l.RunDir()) {
		t.Errorf("a session that did not start left %s", l.RunDir())
	}
	if ls, _ := state.ProbeLock(l.LockFile()); ls.Held || ls.Exists {
		t.Errorf("lock left: %+v", ls)
	}
	if err := syscall.Mount("tmpfs", project, "tmpfs", syscall.MS_REMOUNT, "size=4m"); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runBinary(t, env, args...); code != 0 {
		t.Fatalf("with room: exit %d\n%s\n%s", code, stdout, stderr)
	}
	checkComplete(t, project, "tight", 2)
}

// The run directory removed under a live session — in the agent, or in
// the delay between iterations: the engine stops its agent within its
// poll, records why in a run dir it makes again, exits 1 and frees its
// lock; a resume then finishes the session.
func TestRunDirRemoved(t *testing.T) {
	t.Parallel()
	for _, where := range []string{"in the agent", "in the delay"} {
		t.Run(where, func(t *testing.T) {
			t.Parallel()
			project := t.TempDir()
			logFile := filepath.Join(t.TempDir(), "agent.log")
			sleep, delay := "30", "0"
			if where == "in the delay" {
				sleep, delay = "0", "4" // the engine checks every 2 s
			}
			writeStage(t, project, "s", fmt.Sprintf("completion: fixed-n\nprovider: command\ncommand: [%q]\nmax_iterations: 3\ndelay: %s\n", agentPath("sleep-agent"), delay), "go ${ITERATION}\n")
			args := []string{"run", "--session", "gone", "--stage", "s", "--project", project, "--foreground"}
			p := startBinary(t, engineEnv(false, "SLEEP_SECONDS="+sleep, "FAKE_AGENT_LOG="+logFile), args...)
			l := state.NewLayout(project, "gone")
			// The agent's log line, not just its file: `>>` creates it before printf writes.
			waitFor(t, 20*time.Second, "the first agent", func() bool {
				data, _ := os.ReadFile(logFile)
				return strings.Contains(string(data), "\n")
			})
			if where == "in the delay" {
				waitFor(t, 20*time.Second, "iteration 1 to be recorded", func() bool { return countEvents(l.EventsFile(), state.EventIterationDone) == 1 })
			}
			agent, _ := strconv.Atoi(strings.Fields(readFile(t, logFile))[1])
			// The directory vanishes at once (rm -rf takes a while, and a
			// retried one would delete what the engine makes to record the
			// removal): move it away, then delete it.
			gone := l.RunDir() + "-removed"
			if err := os.Rename(l.RunDir(), gone); err != nil {
				t.Fatal(err)
			}
			for i := 0; os.RemoveAll(gone) != nil && i < 50; i++ {
				time.Sleep(10 * time.Millisecond)
			}
			removed := time.Now()
			code := p.wait(t, 20*time.Second)
			t.Logf("the engine ended %s after the removal", time.Since(removed).Round(10*time.Millisecond))
			if code != 1 {
				t.Errorf("exit %d, want 1\n%s\n%s", code, p.stdout.String(), p.stderr.String())
			}
			if live := waitDead([]int{agent}, 5*time.Second); len(live) > 0 {
				t.Errorf("agent %v outlived the session", live)
			}
			st := loadState(t, project, "gone")
			if st.Status != state.StatusFailed || !strings.Contains(st.Error, "was removed") || !strings.Contains(st.Error, "Resume") {
				t.Errorf("state.json: status %s, error %q; want failed saying the run dir was removed and how to resume", st.Status, st.Error)
			}
			wantDone := 0
			if where == "in the delay" {
				wantDone = 1
			}
			if st.IterationCompleted != wantDone || len(st.History) != wantDone {
				t.Errorf("state.json: %d iterations completed, %d in history; want %d", st.IterationCompleted, len(st.History), wantDone)
			}
			if ls, err := state.ProbeLock(l.LockFile()); err != nil || ls.Held || ls.Exists {
				t.Errorf("lock after the engine ended: %+v %v", ls, err)
			}
			checkNoLeftovers(t, l)

			code, stdout, stderr := runBinary(t, engineEnv(false, "SLEEP_SECONDS=0"), append(args, "--resume")...)
			if code != 0 {
				t.Fatalf("resume: exit %d\n%s\n%s", code, stdout, stderr)
			}
			st = loadState(t, project, "gone")
			var hist []int
			for _, h := range st.History {
				hist = append(hist, h.Iteration)
			}
			if st.Status != state.StatusComplete || !slices.Equal(hist, seq(3)) {
				t.Errorf("after resume: %s, history %v; want complete with 1..3", st.Status, hist)
			}
		})
	}
}

// tail is the end of s, at most n bytes.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
