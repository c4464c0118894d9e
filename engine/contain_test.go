package engine

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// escapees reads the pids escape-agent recorded for an iteration.
func escapees(t *testing.T, dir string, it int) []int {
	t.Helper()
	path := filepath.Join(dir, strconv.Itoa(it))
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			break
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("escape-agent recorded no pids: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: %q", path, data)
		}
		pids = append(pids, pid)
	}
	if len(pids) != 4 {
		t.Fatalf("escape-agent recorded %v, want 4 pids", pids)
	}
	return pids
}

// alive lists the pids still running (zombies do not count).
func alive(pids []int) []int {
	var out []int
	for _, p := range pids {
		if live(p) {
			out = append(out, p)
		}
	}
	return out
}

// killAtEnd makes sure a test never leaves a process behind, whatever it
// asserted.
func killAtEnd(t *testing.T, pids []int) {
	t.Cleanup(func() {
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
	})
}

// runEnding runs a fake agent in ctr through runProcess, set up to end the
// way end says: "exit" (it exits at once, leaving its children), "timeout"
// (a one-second iteration timeout) or "cancel" (the caller calls cancel).
func runEnding(t *testing.T, ctr *Container, dir, agent, end string, env ...string) (cancel context.CancelFunc, done <-chan procResult) {
	t.Helper()
	sleep := "1000"
	if end == "exit" {
		sleep = "0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	spec := procSpec{
		Argv: []string{agentPath(agent)}, Dir: dir, Stdout: io.Discard, Stderr: io.Discard,
		Env:   agentEnv(append(env, "SLEEP_SECONDS="+sleep, "AGENT_SESSIONS_ITERATION=1")...),
		Grace: 200 * time.Millisecond, Container: ctr,
	}
	if end == "timeout" {
		spec.Timeout = time.Second
	}
	ch := make(chan procResult, 1)
	go func() { ch <- runProcess(ctx, spec) }()
	return cancel, ch
}

// TestContainerEndsEscapes runs escape-agent through runProcess under each
// mechanism and ends the iteration each way (the agent exits, the timeout,
// the session is killed): none of the four escaped children may survive.
// The process-group fallback finds escapees only by their environment
// marker, so the one started with `env -i` is out of its reach.
func TestContainerEndsEscapes(t *testing.T) {
	t.Parallel()
	mechs := []string{ContainPgroup}
	if dir, err := makeSessionCgroup(t.TempDir(), "probe"); err == nil {
		removeCgroupTree(dir)
		mechs = append(mechs, ContainCgroup)
	} else {
		t.Logf("no cgroup here (%v): testing the fallback only", err)
	}
	ends := []string{"exit", "timeout", "cancel"}
	for _, mech := range mechs {
		for _, end := range ends {
			t.Run(mech+"/"+end, func(t *testing.T) {
				t.Parallel()
				project, escDir := t.TempDir(), t.TempDir()
				scope := Scope{Mechanism: mech, RunDir: filepath.Join(project, "run")}
				if mech == ContainCgroup {
					dir, err := makeSessionCgroup(project, "contain")
					if err != nil {
						t.Fatal(err)
					}
					scope.Cgroup = dir
					t.Cleanup(scope.Close)
				}
				ctr, err := scope.NewContainer("s1-i1")
				if err != nil {
					t.Fatal(err)
				}
				cancel, done := runEnding(t, ctr, project, "escape-agent", end, "ESCAPE_DIR="+escDir)
				pids := escapees(t, escDir, 1)
				killAtEnd(t, pids)
				if end == "cancel" {
					cancel()
				}
				res := <-done
				want := pids
				if mech == ContainPgroup {
					want = pids[:3] // env -i left no marker
				}
				if live := alive(want); len(live) > 0 {
					t.Errorf("%v of escaped children %v outlived the iteration (%+v)", live, pids, res)
				}
				if res.Contained < len(want) {
					t.Errorf("container reports %d processes stopped, want at least %d", res.Contained, len(want))
				}
				if mech == ContainCgroup {
					if _, err := os.Stat(filepath.Join(scope.Cgroup, "s1-i1")); err == nil {
						t.Errorf("the iteration's cgroup was not removed")
					}
				}
			})
		}
	}
}

// TestContainerWithoutProcessTable: where there is no /proc (macOS, the
// BSDs) the process-group fallback cannot walk anything, so the leader
// stands for its group: a grandchild the agent left in its group is still
// ended, whether the agent exits, times out or is cancelled.
func TestContainerWithoutProcessTable(t *testing.T) {
	t.Parallel()
	for _, end := range []string{"exit", "timeout", "cancel"} {
		t.Run(end, func(t *testing.T) {
			t.Parallel()
			project := t.TempDir()
			ctr, err := Scope{Mechanism: ContainPgroup, RunDir: filepath.Join(project, "run")}.NewContainer("s1-i1")
			if err != nil {
				t.Fatal(err)
			}
			ctr.procs = func() []procInfo { return nil }
			pidFile := filepath.Join(project, "child.pid")
			cancel, done := runEnding(t, ctr, project, "child-agent", end, "CHILD_PIDS="+pidFile)
			var child int
			for deadline := time.Now().Add(20 * time.Second); child == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				data, _ := os.ReadFile(pidFile)
				child, _ = strconv.Atoi(strings.TrimSpace(string(data)))
			}
			if child == 0 {
				t.Fatal("child-agent recorded no grandchild")
			}
			killAtEnd(t, []int{child})
			if end == "cancel" {
				cancel()
			}
			var res procResult
			select {
			case res = <-done:
			case <-time.After(60 * time.Second):
				// The grandchild holds the output pipe: a container that
				// cannot end it never lets the iteration end.
				t.Fatalf("the iteration did not end within a minute: the grandchild %d was not stopped", child)
			}
			if live := alive([]int{child}); len(live) > 0 {
				t.Errorf("the grandchild %d in the agent's group outlived the iteration (%+v)", child, res)
			}
			if res.Contained < 1 {
				t.Errorf("container reports %d processes stopped, want the group's leader", res.Contained)
			}
		})
	}
}

// TestStopLeftoversCgroup: what a crashed engine's agents left in the
// session's cgroup is found from the project and session alone, and killed.
func TestStopLeftoversCgroup(t *testing.T) {
	t.Parallel()
	project, escDir := t.TempDir(), t.TempDir()
	scope := Scope{Mechanism: ContainCgroup, RunDir: filepath.Join(project, "run")}
	dir, err := makeSessionCgroup(project, "crashed")
	if err != nil {
		t.Skipf("no cgroup here: %v", err)
	}
	scope.Cgroup = dir
	ctr, err := scope.NewContainer("s1-i3")
	if err != nil {
		t.Fatal(err)
	}
	// The "crashed engine": the agent runs in the cgroup, nobody waits.
	cmd := execInContainer(t, ctr, "ESCAPE_DIR="+escDir, "SLEEP_SECONDS=1000", "AGENT_SESSIONS_ITERATION=3")
	pids := append(escapees(t, escDir, 3), cmd.Process.Pid)
	killAtEnd(t, pids)
	got := SessionAgents(project, "crashed", scope.RunDir)
	if got.Mechanism != ContainCgroup || len(got.Pids) < len(pids) {
		t.Fatalf("SessionAgents = %+v, want the %d processes %v by cgroup", got, len(pids), pids)
	}
	left := StopLeftovers(project, "crashed", scope.RunDir, 100*time.Millisecond)
	go cmd.Wait()
	if live := alive(pids); len(live) > 0 {
		t.Errorf("%v survived StopLeftovers (%+v)", live, left)
	}
	if len(left.Pids) < len(pids) {
		t.Errorf("StopLeftovers reports %v, want at least %v", left.Pids, pids)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("the session's cgroup %s was not removed", dir)
	}
}

// execInContainer starts escape-agent in a container and leaves it running,
// as a crashed engine would.
func execInContainer(t *testing.T, ctr *Container, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(agentPath("escape-agent"))
	cmd.Env = append(agentEnv(env...), ctr.Env())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	ctr.prepare(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctr.fd.Close()
	return cmd
}

// TestReadContainmentRefusesFIFO: a FIFO in place of containment.json is
// not read (it would block monitor for ever).
func TestReadContainmentRefusesFIFO(t *testing.T) {
	t.Parallel()
	l := state.NewLayout(t.TempDir(), "fifo")
	if err := os.MkdirAll(l.RunDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(containmentFile(l), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan bool, 1)
	go func() { _, ok := ReadContainment(l); done <- ok }()
	select {
	case ok := <-done:
		if ok {
			t.Error("a FIFO was read as the containment")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadContainment blocked on a FIFO")
	}
	if err := os.Remove(containmentFile(l)); err != nil {
		t.Fatal(err)
	}
	if err := writeContainment(l, Scope{Mechanism: ContainCgroup, Cgroup: "/x"}); err != nil {
		t.Fatal(err)
	}
	if s, ok := ReadContainment(l); !ok || s.Mechanism != ContainCgroup || s.Cgroup != "/x" {
		t.Errorf("ReadContainment = %+v, %v", s, ok)
	}
}
