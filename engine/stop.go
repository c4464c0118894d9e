package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// stopLiveEngine stops the engine holding a session's lock: SIGTERM to
// the pid its lock names, then SIGKILL when it still holds the lock after
// wait (StopWait(0) when 0) — exactly that long: kill
// reports the wait it gave, and once waited grace+5 s while saying grace.
// A caller that wants the engine to end its agents itself gives it
// StopWait of their grace. It returns the signal that ended the engine
// ("" when none held the lock).
func stopLiveEngine(ctx context.Context, l state.Layout, wait time.Duration) (string, error) {
	ls, err := state.ProbeLock(l.LockFile())
	// A lock held with no process named is an engine's last instant (its
	// lock file removed, its socket not yet closed), or a copy of its
	// descriptors in a child forked just then that has not yet exec'd:
	// give it a moment to go before calling the session taken.
	for end := time.Now().Add(time.Second); err == nil && ls.Held && !namesOther(ls) && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
		ls, err = state.ProbeLock(l.LockFile())
	}
	if err != nil || !ls.Held {
		return "", err
	}
	if !namesOther(ls) {
		return "", fmt.Errorf("%w: session %s is locked but its lock file does not name a process to stop", ErrConflictRunning, l.Session)
	}
	if wait <= 0 {
		wait = StopWait(0)
	}
	pid := ls.Info.PID
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if ls, _ := state.ProbeLock(l.LockFile()); !ls.Held {
			return "SIGTERM", nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if ls, _ := state.ProbeLock(l.LockFile()); !ls.Held {
			return "SIGKILL", nil
		}
	}
	return "SIGKILL", fmt.Errorf("%w: the engine of session %s (pid %d) did not stop", ErrConflictRunning, l.Session, pid)
}

// engineMargin is what an engine gets beyond its agents' grace to stop:
// to record its end and let go of its lock once its agents are gone.
const engineMargin = 5 * time.Second

// StopWait is how long to give an engine between SIGTERM and SIGKILL so
// that it can end its agents itself: their grace (DefaultGrace when 0)
// and engineMargin. kill's default and force use it.
func StopWait(agentGrace time.Duration) time.Duration {
	return graceOr(agentGrace) + engineMargin
}

// namesOther: the lock names a process to stop, not this one.
func namesOther(ls state.LockStatus) bool {
	return ls.Info != nil && ls.Info.PID > 0 && ls.Info.PID != os.Getpid()
}

// FindAgents lists the live processes whose environment says they are an
// agent of the run directory (AGENT_SESSIONS_RUN_DIR). Unlike a stored PID
// this cannot mistake an unrelated process for ours. Linux only; elsewhere
// it finds nothing.
func FindAgents(runDir string) []int {
	if runtime.GOOS != "linux" {
		return nil
	}
	marker := []byte("AGENT_SESSIONS_RUN_DIR=" + runDir + "\x00")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	self := os.Getpid()
	for _, e := range entries {
		pid := 0
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !containsBytes(env, marker) {
			continue
		}
		if st, err := procStat(pid); err == nil && st.state != 'Z' {
			pids = append(pids, pid)
		}
	}
	return pids
}

func containsBytes(hay, needle []byte) bool {
	return strings.Contains(string(hay), string(needle))
}

// StopAgents stops every agent process of a run directory (a crashed
// engine's leftovers): SIGTERM to each one's process group, grace, SIGKILL.
func StopAgents(runDir string, grace time.Duration) int {
	pids := FindAgents(runDir)
	groups := map[int]bool{}
	for _, pid := range pids {
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid > 1 && pgid != syscall.Getpgrp() {
			groups[pgid] = true
		} else {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for pgid := range groups {
		StopProcessGroup(pgid, grace)
	}
	return len(pids)
}

// stopLeftoverAgents stops what a crashed run of the session left running
// (resume and force, under the session's lock).
func stopLeftoverAgents(l state.Layout, grace time.Duration) Leftovers {
	return StopLeftovers(l.ProjectDir, l.Session, l.RunDir(), graceOr(grace))
}

// graceOr is grace, or DefaultGrace when it is not set.
func graceOr(grace time.Duration) time.Duration {
	if grace <= 0 {
		return DefaultGrace
	}
	return grace
}
