package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultGrace is how long an agent's process group gets between SIGTERM
// and SIGKILL.
const DefaultGrace = 10 * time.Second

// Exit codes recorded for agents that did not exit on their own.
const (
	ExitTimeout = 124 // like timeout(1)
	ExitKilled  = 137
	ExitNoStart = 127
)

// procSpec is one agent process to run.
type procSpec struct {
	Argv    []string
	Dir     string
	Env     []string
	Stdin   string
	Stdout  io.Writer
	Stderr  io.Writer
	Timeout time.Duration
	Grace   time.Duration
	// Started is called with the process group id once the agent runs.
	Started func(pgid int)
	// Finished, when closed, says the agent's work is over (claude printed
	// its result): whatever it still waits for (a background shell) must
	// not hold the iteration, so after FinishGrace its container is ended
	// and the run counts as a clean exit.
	Finished    <-chan struct{}
	FinishGrace time.Duration
	// Container holds the agent and all it starts; nil means its process
	// group only.
	Container *Container
}

// procResult is how an agent process ended.
type procResult struct {
	ExitCode int
	TimedOut bool  // stopped by the per-iteration timeout
	Stopped  bool  // stopped because ctx was cancelled (session killed)
	Ended    bool  // ended by the engine after Finished (exit code 0)
	Err      error // could not start
	// Contained is how many processes the container had to stop.
	Contained int
}

// runProcess is the engine's one exec chokepoint. The agent runs with an
// argv (never a shell) in its own process group and in its Container (a
// cgroup where there is one), so it and everything it spawns — even what
// left the group — can be ended together; Pdeathsig kills it should the
// engine die by SIGKILL. When the agent's leader exits, what it left
// behind is stopped too: no agent process outlives its iteration.
// Cancelling ctx or the timeout stops the container: SIGTERM, up to Grace,
// then SIGKILL.
func runProcess(ctx context.Context, p procSpec) procResult {
	if len(p.Argv) == 0 {
		return procResult{ExitCode: ExitNoStart, Err: errors.New("empty agent command")}
	}
	if p.Grace <= 0 {
		p.Grace = DefaultGrace
	}
	c := p.Container
	if c == nil {
		c, _ = Scope{Mechanism: ContainPgroup}.NewContainer("")
	}
	defer c.Close()
	cmd := agentCommand(p, c)
	pipes, err := newAgentPipes()
	if err != nil {
		return procResult{ExitCode: ExitNoStart, Err: err}
	}
	cmd.Stdout, cmd.Stderr = pipes.outW, pipes.errW
	// Pdeathsig fires when the *thread* that forked the child exits, so the
	// fork happens on a thread locked to this goroutine, which lives until
	// the agent has been waited for.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		pipes.closeAll()
		return procResult{ExitCode: ExitNoStart, Err: err}
	}
	pipes.closeWriters()
	pgid := cmd.Process.Pid
	c.started(pgid)
	if p.Started != nil {
		p.Started(pgid)
	}
	copies := pipes.copyTo(p.Stdout, p.Stderr)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	res, waitErr := awaitAgent(ctx, c, p, waited)
	// The leader is gone; nothing it started may outlive the iteration.
	leftover := 0
	if len(c.Pids()) > 0 {
		before := c.Stopped()
		leftover = c.Stop(p.Grace) - before
	}
	res.Contained = c.Stopped()
	pipes.drain(copies)
	if leftover > 0 {
		// Said in the transcript (after the copies, so it is the last line):
		// the agent left these running and they were ended with it.
		fmt.Fprintf(p.Stderr, "■ stopped %d process(es) the agent left running (containment: %s)\n", leftover, c.Mechanism())
	}
	res.ExitCode = exitCode(cmd, waitErr)
	switch {
	case res.TimedOut:
		res.ExitCode = ExitTimeout
	case res.Stopped && res.ExitCode == 0:
		res.ExitCode = ExitKilled
	case res.Ended:
		res.ExitCode = 0
	}
	return res
}

// agentCommand is the agent's command: its argv (never a shell), in its
// own process group, prepared for its container.
func agentCommand(p procSpec, c *Container) *exec.Cmd {
	cmd := exec.Command(p.Argv[0], p.Argv[1:]...)
	cmd.Dir = p.Dir
	cmd.Env = p.Env
	if c.scope.RunDir != "" {
		// The marker lets the fallbacks find an escaped child that kept its
		// environment.
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(slices.Clip(cmd.Env), c.Env())
	}
	cmd.Stdin = strings.NewReader(p.Stdin)
	// Should a process that left the group keep the stdin pipe open, Wait
	// must not hang on it.
	cmd.WaitDelay = 2 * time.Second
	cmd.SysProcAttr = agentProcAttr()
	c.prepare(cmd.SysProcAttr)
	return cmd
}

// awaitAgent waits for the agent's leader to exit — or stops the container
// when ctx is cancelled or the timeout passes, or ends it once it said it
// finished — and returns how it ended and Wait's error.
func awaitAgent(ctx context.Context, c *Container, p procSpec, waited <-chan error) (procResult, error) {
	var timeout <-chan time.Time
	if p.Timeout > 0 {
		t := time.NewTimer(p.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var res procResult
	var waitErr error
	select {
	case waitErr = <-waited:
	case <-ctx.Done():
		res.Stopped = true
		c.Stop(p.Grace)
		waitErr = <-waited
	case <-timeout:
		res.TimedOut = true
		c.Stop(p.Grace)
		waitErr = <-waited
	case <-p.Finished:
		res.Ended, waitErr = endFinished(ctx, c, p, waited)
	}
	return res, waitErr
}

// agentPipes carry an agent's stdout and stderr to the engine: pipes of
// our own rather than exec's, so that the readers can be stopped when
// something the agent left behind keeps them open.
type agentPipes struct{ outR, outW, errR, errW *os.File }

func newAgentPipes() (*agentPipes, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	return &agentPipes{outR: outR, outW: outW, errR: errR, errW: errW}, nil
}

// closeWriters closes the engine's copies of the write ends once the agent
// has its own.
func (a *agentPipes) closeWriters() {
	a.outW.Close()
	a.errW.Close()
}

func (a *agentPipes) closeAll() {
	a.closeWriters()
	a.outR.Close()
	a.errR.Close()
}

// copyTo copies the agent's output until the pipes close or drain stops
// the readers.
func (a *agentPipes) copyTo(stdout, stderr io.Writer) *sync.WaitGroup {
	var copies sync.WaitGroup
	copies.Add(2)
	go func() { defer copies.Done(); io.Copy(stdout, a.outR) }()
	go func() { defer copies.Done(); io.Copy(stderr, a.errR) }()
	return &copies
}

// drain gives anything still holding the pipes (it cannot be ours any
// more) a moment, then stops the readers.
func (a *agentPipes) drain(copies *sync.WaitGroup) {
	deadline := time.Now().Add(2 * time.Second)
	a.outR.SetReadDeadline(deadline)
	a.errR.SetReadDeadline(deadline)
	copies.Wait()
	a.outR.Close()
	a.errR.Close()
}

// endFinished gives an agent whose work is over FinishGrace to exit on its
// own, then ends its group. It reports whether the engine had to end it.
func endFinished(ctx context.Context, c *Container, p procSpec, waited <-chan error) (bool, error) {
	t := time.NewTimer(p.FinishGrace)
	defer t.Stop()
	select {
	case err := <-waited:
		return false, err
	case <-ctx.Done():
	case <-t.C:
	}
	c.Stop(p.Grace)
	return true, <-waited
}

// stopGroup sends SIGTERM to the group, waits up to grace for the leader
// (when waited is given) and every member to be gone, then SIGKILLs what is
// left. It returns the leader's Wait error when it collected it.
func stopGroup(pgid int, grace time.Duration, waited <-chan error) error {
	syscall.Kill(-pgid, syscall.SIGTERM)
	// A stopped process does not act on SIGTERM until continued.
	syscall.Kill(-pgid, syscall.SIGCONT)
	var waitErr error
	leaderDone := waited == nil
	deadline := time.After(grace)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if leaderDone && !groupAlive(pgid) {
			return waitErr
		}
		select {
		case waitErr = <-waited:
			leaderDone = true
			waited = nil
		case <-tick.C:
		case <-deadline:
			syscall.Kill(-pgid, syscall.SIGKILL)
			if !leaderDone {
				waitErr = <-waited
			}
			// SIGKILL cannot be ignored; wait (briefly) until the kernel
			// has taken every member down.
			for end := time.Now().Add(5 * time.Second); groupAlive(pgid) && time.Now().Before(end); {
				time.Sleep(10 * time.Millisecond)
			}
			return waitErr
		}
	}
}

// groupAlive reports whether any process of the group is still running.
// Zombies do not count: they are already dead, merely not yet reaped by
// their (new) parent, and kill(2) would still report them.
// Without /proc (macOS, the BSDs) the group lives as long as kill(2) finds
// it.
func groupAlive(pgid int) bool {
	return groupExists(pgid) && len(liveGroupMembers(pgid)) > 0
}

// liveGroupMembers lists the non-zombie processes of a process group from
// /proc; where /proc cannot be read, the group itself.
func liveGroupMembers(pgid int) []int {
	procs := allProcs()
	if procs == nil {
		return []int{pgid} // /proc unreadable: assume the group lives
	}
	var pids []int
	for _, p := range procs {
		if p.pgrp == pgid && p.state != 'Z' && p.state != 'X' {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

type procStatus struct {
	state byte
	ppid  int
	pgrp  int
	start uint64 // clock ticks after boot
}

func procStat(pid int) (procStatus, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStatus{}, err
	}
	// The command name is in parentheses and may contain spaces or ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return procStatus{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+2:])
	if len(fields) < 3 {
		return procStatus{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return procStatus{}, err
	}
	pgrp, err := strconv.Atoi(fields[2])
	if err != nil {
		return procStatus{}, err
	}
	st := procStatus{state: fields[0][0], ppid: ppid, pgrp: pgrp}
	if len(fields) > 19 {
		st.start, _ = strconv.ParseUint(fields[19], 10, 64)
	}
	return st, nil
}

// StopProcessGroup stops a process group left behind by a crashed engine:
// SIGTERM, grace, SIGKILL. It does nothing when the group is gone.
func StopProcessGroup(pgid int, grace time.Duration) {
	if pgid <= 1 || !groupAlive(pgid) {
		return
	}
	stopGroup(pgid, grace, nil)
}

func exitCode(cmd *exec.Cmd, waitErr error) int {
	if cmd.ProcessState == nil {
		if waitErr != nil {
			return ExitKilled
		}
		return 0
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return cmd.ProcessState.ExitCode()
}
