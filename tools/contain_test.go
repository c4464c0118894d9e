package tools_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tools"
)

// escapedPids waits for escape-agent's record of the children it started
// that left its process group, session or environment (iteration it).
func escapedPids(t *testing.T, dir string, it int) []int {
	t.Helper()
	path := filepath.Join(dir, strconv.Itoa(it))
	eventually(t, 20*time.Second, "escape-agent's pids", func() bool { _, err := os.Stat(path); return err == nil })
	pids := readPIDs(t, path)
	if len(pids) != 4 {
		t.Fatalf("escape-agent recorded %v, want 4 pids", pids)
	}
	t.Cleanup(func() {
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
	})
	return pids
}

func liveOf(pids []int) []int {
	var live []int
	for _, p := range pids {
		if !processDead(p) {
			live = append(live, p)
		}
	}
	return live
}

// TestContainmentKillPaths runs escape-agent (four children escaping by
// setsid, setsid -f, job control and env -i setsid) in a real engine under
// tmux, then ends the session by every path: the kill tool, tmux
// kill-session, tmux kill-server, and — after the engine was kill -9'd —
// the kill tool, cleanup mark_crashed, start_session force and resume. No
// escaped child may survive. Under cgroup containment that holds for all
// four; under the subreaper fallback it holds for all four while the engine
// lives, and after a crash for the three that kept the environment marker
// (the env -i child of a dead engine is beyond any fallback's reach).
func TestContainmentKillPaths(t *testing.T) {
	mechs := []string{engine.ContainSubreaper}
	if engine.SessionCgroup("/", "probe") != "" {
		mechs = append(mechs, engine.ContainCgroup)
	}
	paths := []string{"kill", "tmux-kill-session", "tmux-kill-server", "crash+kill", "crash+cleanup", "crash+force", "crash+resume"}
	for _, mech := range mechs {
		for _, path := range paths {
			t.Run(mech+"/"+path, func(t *testing.T) {
				t.Parallel()
				containmentPath(t, mech, path)
			})
		}
	}
}

func containmentPath(t *testing.T, mech, path string) {
	e := newEnv(t)
	c := e.connect("2025-06-18")
	escDir := t.TempDir()
	e.setEnv("ESCAPE_DIR="+escDir, "SLEEP_SECONDS=1000", engine.ContainmentEnv+"="+mech)
	e.stage("esc", commandStage("fixed-n", 1, "escape-agent"))
	c.start(map[string]any{"session": "esc", "stage": "esc"})
	pids := escapedPids(t, escDir, 1)
	if m := c.monitorWait("esc", "none", 0); m.Containment != mech {
		t.Errorf("monitor says containment %q, want %q", m.Containment, mech)
	}
	want := pids
	if crashed := strings.HasPrefix(path, "crash+"); crashed {
		pid := e.enginePID("esc")
		if pid <= 0 {
			// kill(0) would signal this test's own process group.
			t.Fatal("esc: no engine pid in the lock file")
		}
		syscall.Kill(pid, syscall.SIGKILL)
		eventually(t, 10*time.Second, "the engine to die", func() bool { return processDead(pid) })
		// A crash is what the tools see once tmux has closed the engine's
		// session too: until then (an instant, longer under load) the
		// session is live as far as tmux can tell, and cleanup has no crash
		// to mark (it failed so under `go test -p 3`).
		eventually(t, 10*time.Second, "its tmux session to close", func() bool { return !e.hasTmux("loop-esc") })
		if mech != engine.ContainCgroup {
			want = pids[:3]
		}
		if live := liveOf(want); len(live) != len(want) {
			t.Fatalf("escaped children %v died with the engine already (live: %v): the test proves nothing", want, live)
		}
	}
	switch path {
	case "kill", "crash+kill":
		var res tools.KillResult
		c.ok("kill", map[string]any{"session": "esc"}, &res)
		if !res.Killed || res.StoppedProcesses < len(want) || res.Containment != mech {
			t.Errorf("kill: killed %v, stopped_processes %d (want ≥ %d), containment %q (want %q); steps %q",
				res.Killed, res.StoppedProcesses, len(want), res.Containment, mech, res.Steps)
		}
		if path == "kill" && res.EngineSignal != "SIGTERM" {
			t.Errorf("kill: engine_signal %q, want SIGTERM (steps %q)", res.EngineSignal, res.Steps)
		}
	case "tmux-kill-session":
		if err := e.tmux.KillSession(context.Background(), "loop-esc"); err != nil {
			t.Fatal(err)
		}
	case "tmux-kill-server":
		e.tmux.KillServer(context.Background())
	case "crash+cleanup":
		var res tools.CleanupResult
		c.ok("cleanup", map[string]any{"dry_run": false, "mark_crashed": true, "kill_orphans": true}, &res)
	case "crash+force", "crash+resume":
		e.setEnv("ESCAPE_DIR="+t.TempDir(), "SLEEP_SECONDS=0")
		c.start(map[string]any{"session": "esc", "stage": "esc", "mode": strings.TrimPrefix(path, "crash+")})
	}
	if live := waitDeadPids(want, 10*time.Second); len(live) > 0 {
		t.Errorf("%s/%s: escaped children %v of %v outlived the session", mech, path, live, pids)
	}
	if dir := engine.SessionCgroup(e.project, "esc"); mech == engine.ContainCgroup && !strings.HasPrefix(path, "crash+") {
		eventually(t, 10*time.Second, "the session's cgroup to be removed", func() bool { _, err := os.Stat(dir); return err != nil })
	}
	if path == "crash+kill" || path == "crash+cleanup" {
		if st, _, err := state.Load(e.layout("esc")); err != nil || st.Status == state.StatusRunning {
			t.Errorf("%s: state %s (%v); want the crash recorded", path, st.Status, err)
		}
	}
}

func waitDeadPids(pids []int, within time.Duration) []int {
	end := time.Now().Add(within)
	for {
		live := liveOf(pids)
		if len(live) == 0 || time.Now().After(end) {
			return live
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKillReportsSIGKILL: an engine still stopping its agents when the
// kill tool's grace is over (its own agent grace is longer; the agent
// ignores SIGTERM) is killed with SIGKILL once that grace is over, and
// kill says so — it used to report "stopped the engine with SIGTERM" —
// then ends the agents the engine could not, and counts them.
func TestKillReportsSIGKILL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.deps.Grace = 200 * time.Millisecond
	c := e.connect("2025-06-18")
	pidsFile := filepath.Join(t.TempDir(), "pids")
	e.setEnv("STUBBORN_PIDS="+pidsFile, "AGENT_SESSIONS_KILL_GRACE=60s")
	e.stage("stub", commandStage("fixed-n", 1, "stubborn-agent"))
	c.start(map[string]any{"session": "stub", "stage": "stub"})
	eventually(t, 20*time.Second, "stubborn-agent's pids", func() bool { _, err := os.Stat(pidsFile); return err == nil })
	pids := readPIDs(t, pidsFile)
	t.Cleanup(func() {
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
	})
	var res tools.KillResult
	start := time.Now()
	c.ok("kill", map[string]any{"session": "stub"}, &res)
	took := time.Since(start)
	steps := strings.Join(res.Steps, "\n")
	if res.EngineSignal != "SIGKILL" || !strings.Contains(steps, "SIGKILL") || strings.Contains(steps, "with SIGTERM") {
		t.Errorf("kill: engine_signal %q, steps %q; want SIGKILL named and no claim that SIGTERM worked", res.EngineSignal, res.Steps)
	}
	// The grace it names is the grace it gave: the engine got 200 ms, not
	// 5.2 s (kill once waited 5 s more than it said, here 5.5 s in all).
	if !strings.Contains(steps, "within 200ms of SIGTERM") || took > 4*time.Second {
		t.Errorf("kill took %s with steps %q; want the engine SIGKILLed 200ms after SIGTERM, as the steps say", took, res.Steps)
	}
	if res.StoppedProcesses < len(pids) || res.AgentsStopped < len(pids) {
		t.Errorf("kill: stopped_processes %d, agents_stopped %d; want ≥ %d", res.StoppedProcesses, res.AgentsStopped, len(pids))
	}
	if live := waitDeadPids(pids, 10*time.Second); len(live) > 0 {
		t.Errorf("agent processes %v outlived the kill", live)
	}
	if res.Status != state.StatusKilled {
		t.Errorf("status after kill %q, want killed", res.Status)
	}
}
