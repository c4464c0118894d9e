package engine

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cgroupPids lists the live processes of a cgroup and of every cgroup
// below it (an agent running as root may make its own).
func cgroupPids(dir string) []int {
	if !populated(dir) {
		return nil // one small read for the usual case: nothing left
	}
	var pids []int
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil && live(pid) {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

func live(pid int) bool {
	st, err := procStat(pid)
	return err == nil && st.state != 'Z' && st.state != 'X'
}

// killCgroup kills every process of a cgroup tree at once — cgroup.kill,
// or where the kernel lacks it, freeze and SIGKILL each process — and waits
// up to wait (5 s when 0) until cgroup.events says it is empty.
func killCgroup(dir string, wait time.Duration) {
	if wait <= 0 {
		wait = 5 * time.Second
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err != nil {
		// A frozen cgroup cannot fork while we kill it pid by pid; fatal
		// signals are still delivered to frozen tasks.
		os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("1"), 0)
		for _, pid := range cgroupPids(dir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for end := time.Now().Add(wait); populated(dir) && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
}

// populated reads cgroup.events; a cgroup that is gone is not populated.
func populated(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return false
	}
	return bytes.Contains(data, []byte("populated 1"))
}

// removeCgroupTree removes a cgroup and the cgroups below it, deepest
// first. rmdir only ever succeeds on an empty cgroup, so nothing running
// is lost; what cannot be removed stays.
func removeCgroupTree(dir string) {
	var dirs []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		syscall.Rmdir(dirs[i])
	}
}

// leaders are the agent processes this engine started under the subreaper
// mechanism: processes re-parented to the engine that are not leaders are
// escaped agent children.
var leaders = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

func registerLeader(pid int) {
	leaders.Lock()
	leaders.m[pid] = true
	leaders.Unlock()
}

func unregisterLeader(pid int) {
	leaders.Lock()
	delete(leaders.m, pid)
	leaders.Unlock()
}

func isLeader(pid int) bool {
	leaders.Lock()
	defer leaders.Unlock()
	return leaders.m[pid]
}

// procInfo is what the process walk needs of one process.
type procInfo struct {
	pid, ppid, pgrp int
	state           byte
	start           uint64
}

// allProcs reads every process from /proc: nil when /proc cannot be read
// (a successful read is never nil).
func allProcs() []procInfo {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	procs := make([]procInfo, 0, len(entries))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := procStat(pid)
		if err != nil {
			continue
		}
		procs = append(procs, procInfo{pid: pid, ppid: st.ppid, pgrp: st.pgrp, state: st.state, start: st.start})
	}
	return procs
}

// adopted reports whether p is an orphan this (subreaper) engine adopted
// from an agent: our child, not an agent leader, and not in the engine's
// own process group (agents run in their own group, the engine's other
// children — bd, notify-send — in the engine's).
func adopted(p procInfo) bool {
	return p.ppid == os.Getpid() && !isLeader(p.pid) && p.pgrp != syscall.Getpgrp()
}

// walkMembers finds a container's processes without a cgroup: the leader's
// descendants and process group, orphans the subreaper engine adopted
// (unless they carry another container's marker), and anything carrying
// the container's environment marker. Zombies and the engine are excluded.
//
// Where there is no process table (readProcs returns nil: macOS, the BSDs),
// it returns the leader alone while the leader's process group lives, and
// whole is true: the leader stands for its group, which the caller
// signals as one.
func walkMembers(readProcs func() []procInfo, leader int, subreaper bool, marker string, since uint64) (pids []int, whole bool) {
	if marker == "" && leader > 0 && !groupExists(leader) && (!subreaper || len(adoptedChildren()) == 0) {
		// The usual end of an iteration: the leader's group is gone and, as
		// every orphan of ours is re-parented to a subreaper engine, an empty
		// list of adopted children proves nothing escaped — no /proc walk.
		return nil, false
	}
	procs := readProcs()
	if procs == nil {
		// What left the group is out of reach without a process table.
		if leader > 0 && groupExists(leader) {
			return []int{leader}, true
		}
		return nil, true
	}
	children := map[int][]int{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	set := map[int]bool{}
	var roots []int
	if leader > 0 {
		roots = append(roots, leader)
	}
	for _, p := range procs {
		switch {
		case leader > 0 && p.pgrp == leader:
			roots = append(roots, p.pid)
		case subreaper && adopted(p) && claimable(p.pid, marker):
			roots = append(roots, p.pid)
		}
	}
	for len(roots) > 0 {
		pid := roots[len(roots)-1]
		roots = roots[:len(roots)-1]
		if set[pid] {
			continue
		}
		set[pid] = true
		roots = append(roots, children[pid]...)
	}
	if marker != "" {
		for _, pid := range markedProcs(procs, []byte(marker+"\x00"), since) {
			set[pid] = true
		}
	}
	return livePids(set, procs), false
}

// claimable: an adopted orphan is ours unless its environment names
// another container (a parallel run's escapee belongs to that run).
func claimable(pid int, marker string) bool {
	env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		return true
	}
	if !bytes.Contains(env, []byte(containerEnv+"=")) {
		return true // env -i: nothing says whose it is
	}
	return bytes.Contains(env, []byte(marker+"\x00"))
}

// markedProcs lists the processes whose environment holds marker, among
// those started at or after since (clock ticks after boot; 0: all) — a
// container's processes cannot be older than its agent, and reading every
// process's environment is the costly part.
func markedProcs(procs []procInfo, marker []byte, since uint64) []int {
	var pids []int
	self := os.Getpid()
	for _, p := range procs {
		if p.pid == self || p.state == 'Z' || p.start < since {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.pid), "environ"))
		if err == nil && bytes.Contains(env, marker) {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

func livePids(set map[int]bool, procs []procInfo) []int {
	state := map[int]byte{}
	for _, p := range procs {
		state[p.pid] = p.state
	}
	self := os.Getpid()
	var pids []int
	for pid := range set {
		if s, ok := state[pid]; ok && s != 'Z' && s != 'X' && pid != self {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids
}

// reapAdopted collects the exit status of adopted orphans that died, so
// that escaped processes do not linger as zombies of the engine. It never
// waits for an agent leader (its exec.Cmd does) or the engine's other
// children.
func reapAdopted() {
	for _, p := range adoptedChildren() {
		if p.state == 'Z' {
			var ws syscall.WaitStatus
			syscall.Wait4(p.pid, &ws, syscall.WNOHANG, nil)
		}
	}
}

// adoptedChildren lists the engine's adopted orphans (zombies included)
// from /proc/self/task/*/children: a few small reads instead of a walk of
// every process.
func adoptedChildren() []procInfo {
	tasks, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		return nil
	}
	var out []procInfo
	for _, task := range tasks {
		data, err := os.ReadFile(task)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			st, err := procStat(pid)
			if err != nil {
				continue
			}
			p := procInfo{pid: pid, ppid: st.ppid, pgrp: st.pgrp, state: st.state}
			if adopted(p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// groupExists reports whether any process (a zombie too) is in the group.
func groupExists(pgid int) bool {
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

// Leftovers is what StopLeftovers found and stopped.
type Leftovers struct {
	// Mechanism is how they were found: cgroup (the session's cgroup), or
	// marker (the environment marker: a run without a cgroup).
	Mechanism string
	Pids      []int
}

// SessionAgents lists the live agent processes of a session that no
// engine may own any more: everything in the session's cgroup, and every
// process carrying the run directory's environment marker (with its
// process group). Linux only.
func SessionAgents(projectDir, session, runDir string) Leftovers {
	var l Leftovers
	set := map[int]bool{}
	if dir := SessionCgroup(projectDir, session); dir != "" {
		if _, err := os.Stat(dir); err == nil {
			l.Mechanism = ContainCgroup
			for _, pid := range cgroupPids(dir) {
				set[pid] = true
			}
		}
	}
	procs := allProcs()
	marked := markedProcs(procs, []byte("AGENT_SESSIONS_RUN_DIR="+runDir+"\x00"), 0)
	groups := map[int]bool{}
	for _, pid := range marked {
		set[pid] = true
		if st, err := procStat(pid); err == nil && st.pgrp > 1 && st.pgrp != syscall.Getpgrp() {
			groups[st.pgrp] = true
		}
	}
	for _, p := range procs {
		if groups[p.pgrp] {
			set[p.pid] = true
		}
	}
	if l.Mechanism == "" && len(set) > 0 {
		l.Mechanism = "marker"
	}
	l.Pids = livePids(set, procs)
	return l
}

// StopLeftovers stops a crashed run's agents (SIGTERM, grace, SIGKILL —
// with a cgroup, cgroup.kill of the session's whole tree) and removes the
// session's emptied cgroups. Call it only when no engine runs the session
// (under its lock, or after its engine was stopped).
func StopLeftovers(projectDir, session, runDir string, grace time.Duration) Leftovers {
	found := SessionAgents(projectDir, session, runDir)
	seen := map[int]bool{}
	for _, pid := range found.Pids {
		seen[pid] = true
	}
	deadline := time.Now().Add(grace)
	termed := map[int]bool{}
	dir := SessionCgroup(projectDir, session)
	for cur := found; len(cur.Pids) > 0; cur = SessionAgents(projectDir, session, runDir) {
		past := !time.Now().Before(deadline)
		for _, pid := range cur.Pids {
			seen[pid] = true
			switch {
			case past:
				syscall.Kill(pid, syscall.SIGKILL)
			case !termed[pid]:
				termed[pid] = true
				syscall.Kill(pid, syscall.SIGTERM)
				syscall.Kill(pid, syscall.SIGCONT)
			}
		}
		if past && dir != "" {
			killCgroup(dir, 5*time.Second)
		}
		if time.Now().After(deadline.Add(5 * time.Second)) {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if dir != "" {
		removeCgroupTree(dir)
	}
	found.Pids = found.Pids[:0]
	for pid := range seen {
		found.Pids = append(found.Pids, pid)
	}
	slices.Sort(found.Pids)
	return found
}
