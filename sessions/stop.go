package sessions

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
)

// Killed is what Kill did to a session.
type Killed struct {
	// Killed: something ran and was stopped; false means a no-op.
	Killed bool
	// Final is the session as it is after the kill (Info as given when
	// nothing was done).
	Final Info
	// Containment is how its agents are contained (cgroup, subreaper,
	// pgroup, marker or none).
	Containment string
	// EngineSignal ended the engine: SIGTERM, SIGKILL or "" (none ran).
	EngineSignal string
	// Steps is what was done, in order.
	Steps []string
	// AgentsStopped counts the agent processes Kill itself had to stop;
	// StoppedProcesses those that were running when it began and are gone.
	AgentsStopped    int
	StoppedProcesses int
	// ProcessesLeft are agent processes still running after the kill.
	ProcessesLeft []int
	// FinalOutputFile is where the last screen was saved ("" without a
	// run directory).
	FinalOutputFile string
	// BeadsRemaining: beads-empty stages, the ready beads left.
	BeadsRemaining *int
	// BranchCommits: a worktree session, commits its branch holds that its
	// base lacks.
	BranchCommits *int
}

// Kill stops a session found by Find: an engine or a leftover tmux
// session, and any agent process of it still running. A session where
// nothing runs is left as it is (Killed false).
func (l *Local) Kill(ctx context.Context, info Info) Killed {
	res := Killed{Final: info, Steps: []string{}}
	before := engine.SessionAgents(info.ProjectDir, info.Name, info.Layout.RunDir())
	res.Containment = containmentOf(info, before)
	switch {
	case info.Live.Status.Active():
		res.Killed = true
		res.EngineSignal = l.stop(ctx, info, &res.Steps, &res.AgentsStopped)
	case len(before.Pids) == 0:
		res.BranchCommits = worktreeCommits(info)
		return res
	default:
		// No engine, but its agents live on (the engine was kill -9'd).
		res.Killed = true
		l.stopLeftovers(info, &res.Steps, &res.AgentsStopped)
		markKilled(info, &res.Steps)
	}
	res.StoppedProcesses, res.ProcessesLeft = stoppedSince(info, before)
	res.StoppedProcesses = max(res.StoppedProcesses, res.AgentsStopped)
	if len(res.ProcessesLeft) > 0 {
		res.Steps = append(res.Steps, fmt.Sprintf("%d agent process(es) still running: %v", len(res.ProcessesLeft), res.ProcessesLeft))
	}
	res.Final = l.Inspect(info.ProjectDir, info.Name, nil, Full)
	if info.HasRunDir {
		res.FinalOutputFile = info.Layout.FinalOutput()
	}
	res.BranchCommits = worktreeCommits(res.Final)
	if st := res.Final.State; st != nil {
		if plan, err := engine.PlanFromSpec(st.Spec); err == nil && st.CurrentStage < len(plan.Stages) &&
			plan.Stages[st.CurrentStage].Completion == engine.CompletionBeadsEmpty {
			bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if n, err := engine.BeadsReady(bctx, res.Final.ProjectDir, "loop/"+res.Final.Name); err == nil {
				res.BeadsRemaining = &n
			}
			cancel()
		}
	}
	return res
}

// worktreeCommits is branchCommits for a session with a worktree.
func worktreeCommits(info Info) *int {
	if info.State == nil || WorktreeOf(info.State).Dir == "" {
		return nil
	}
	return branchCommits(info.ProjectDir, info.Name)
}

// Stop stops everything of a session (an engine, a zombie's tmux session)
// and returns what it did.
func (l *Local) Stop(ctx context.Context, info Info) []string {
	var steps []string
	n := 0
	l.stop(ctx, info, &steps, &n)
	return steps
}

// stop stops everything of a session, most graceful first:
//  1. save the last screen;
//  2. SIGTERM the engine (it kills its agents' process group and records
//     killed), SIGKILL after the grace;
//  3. close the tmux session (SIGHUP) if it is still there;
//  4. stop any agent process still carrying the run directory's marker;
//  5. if the engine could not record killed itself, record it.
func (l *Local) stop(ctx context.Context, info Info, steps *[]string, agentsStopped *int) (engineSignal string) {
	if info.TmuxErr != nil {
		*steps = append(*steps, "tmux did not answer (its server may be stopped or hung): the screen was not saved and the tmux session, if any, was left; the engine is stopped by signal")
	}
	if info.Tmux != nil {
		if screen, err := l.Tmux.CapturePane(ctx, info.Tmux.Name, 2000); err == nil && info.HasRunDir {
			if err := state.WriteFileAtomic(info.Layout.FinalOutput(), []byte(screen+"\n"), 0o644); err == nil {
				*steps = append(*steps, "saved the last screen to final-output.txt in the run dir")
			}
		}
	}
	if info.Lock.Held {
		engineSignal = l.stopEngine(ctx, info, steps)
	}
	if info.Tmux != nil {
		l.closeTmux(ctx, info.TmuxName(), steps)
	}
	l.stopLeftovers(info, steps, agentsStopped)
	markKilled(info, steps)
	return engineSignal
}

// stopEngine signals the engine holding the session's lock and says how
// it ended.
func (l *Local) stopEngine(ctx context.Context, info Info, steps *[]string) string {
	pid := 0
	if info.Lock.Info != nil {
		pid = info.Lock.Info.PID
	}
	sig, err := engine.StopEngineSignal(ctx, info.Layout, l.GraceOrDefault())
	switch {
	case err != nil:
		*steps = append(*steps, "the engine did not stop: "+err.Error())
	case sig == "SIGKILL":
		*steps = append(*steps, fmt.Sprintf("the engine (pid %d) did not stop within %s of SIGTERM and was killed with SIGKILL; its agents are stopped below", pid, l.GraceOrDefault()))
	case sig == "SIGTERM":
		*steps = append(*steps, fmt.Sprintf("stopped the engine (pid %d) with SIGTERM; it stopped its agents and released its lock", pid))
	}
	return sig
}

// closeTmux gives a tmux session a moment to close with its engine, then
// closes it.
func (l *Local) closeTmux(ctx context.Context, name string, steps *[]string) {
	if l.tmuxCloses(ctx, name) {
		*steps = append(*steps, "tmux session "+name+" closed with its engine")
		return
	}
	if err := l.Tmux.KillSession(ctx, name); err == nil {
		*steps = append(*steps, "closed tmux session "+name)
	} else if !errors.Is(err, tmux.ErrSessionNotFound) {
		*steps = append(*steps, "closing tmux session "+name+" failed: "+err.Error())
	}
}

// tmuxCloses gives a tmux session whose engine is gone up to 2 s to close
// by itself, and reports whether it did.
func (l *Local) tmuxCloses(ctx context.Context, name string) bool {
	for end := time.Now().Add(2 * time.Second); ; time.Sleep(25 * time.Millisecond) {
		if ok, _ := l.Tmux.HasSession(ctx, name); !ok {
			return true
		}
		if time.Now().After(end) || ctx.Err() != nil {
			return false
		}
	}
}

// CloseTmux closes a tmux session (an orphan's, or one whose pane is dead).
func (l *Local) CloseTmux(ctx context.Context, name string) error {
	return l.Tmux.KillSession(ctx, name)
}

// stopLeftovers ends agent processes no engine owns any more: the
// session's cgroup killed whole, or (without one) those carrying the run
// directory's environment marker.
func (l *Local) stopLeftovers(info Info, steps *[]string, agentsStopped *int) {
	// Leftovers had their chance at SIGTERM from their engine already (or
	// their engine is long dead): at most 5 s more.
	left := engine.StopLeftovers(info.ProjectDir, info.Name, info.Layout.RunDir(), min(l.GraceOrDefault(), 5*time.Second))
	if n := len(left.Pids); n > 0 {
		*agentsStopped += n
		*steps = append(*steps, fmt.Sprintf("stopped %d leftover agent process(es), found by %s", n, left.Mechanism))
	}
}

// AgentsLeft counts the session's agent processes still running.
func (l *Local) AgentsLeft(info Info) int {
	return len(engine.SessionAgents(info.ProjectDir, info.Name, info.Layout.RunDir()).Pids)
}

// containmentOf says how a session's agents are contained: what its engine
// recorded, else how its processes can be found.
func containmentOf(info Info, agents engine.Leftovers) string {
	if s, ok := engine.ReadContainment(info.Layout); ok {
		return s.Mechanism
	}
	if agents.Mechanism != "" {
		return agents.Mechanism
	}
	return "none"
}

// stoppedSince counts the agent processes alive before the kill that are
// gone now, and lists any still running.
func stoppedSince(info Info, before engine.Leftovers) (stopped int, left []int) {
	after := engine.SessionAgents(info.ProjectDir, info.Name, info.Layout.RunDir())
	still := map[int]bool{}
	for _, p := range after.Pids {
		still[p] = true
	}
	for _, p := range before.Pids {
		if !still[p] {
			stopped++
		}
	}
	return stopped, after.Pids
}

// markKilled records `killed` for a session whose engine died without
// recording its end (a zombie, or an engine that had to be SIGKILLed). It
// takes the session's lock first, so it never races a live engine.
func markKilled(info Info, steps *[]string) {
	if !info.HasRunDir {
		return
	}
	st, _, err := state.Load(info.Layout)
	if err != nil || !state.Active(st.Status) {
		return
	}
	lock, err := state.AcquireLock(context.Background(), info.Layout.LockFile(), info.Name, time.Second, 0)
	if err != nil {
		return
	}
	defer lock.Release()
	store, _, err := state.Open(info.Layout, nil)
	if err != nil {
		*steps = append(*steps, "could not record killed: "+err.Error())
		return
	}
	cur := store.State()
	if !state.Active(cur.Status) {
		return
	}
	err = store.Record(state.Event{Type: state.EventSessionKilled, StageIndex: cur.CurrentStage, Stage: stageName(cur),
		Data: state.MustData(state.ReasonData{Reason: engine.ReasonKilled, Error: "killed by the kill tool (the engine was gone or did not stop)"})})
	if err == nil {
		*steps = append(*steps, "recorded the session as killed (its engine could not)")
	}
}

func stageName(st state.State) string {
	if st.CurrentStage < len(st.Stages) {
		return st.Stages[st.CurrentStage].Name
	}
	return ""
}

// MarkCrashed records a crashed session as failed, under its lock, and
// stops what the crashed engine left running; it says what it did.
func (l *Local) MarkCrashed(info Info) (string, error) {
	lock, err := state.AcquireLock(context.Background(), info.Layout.LockFile(), info.Name, time.Second, 0)
	if err != nil {
		return "", fmt.Errorf("it is locked again (resumed meanwhile?): %w", err)
	}
	defer lock.Release()
	// Under the lock no engine runs it: whatever of it still runs is left
	// over from the crash, and must not go on working unrecorded.
	stopped := ""
	if left := engine.StopLeftovers(info.ProjectDir, info.Name, info.Layout.RunDir(), 5*time.Second); len(left.Pids) > 0 {
		stopped = fmt.Sprintf("stopped %d agent process(es) the crashed engine left running (found by %s); ", len(left.Pids), left.Mechanism)
	}
	store, _, err := state.Open(info.Layout, nil)
	if err != nil {
		return stopped, err
	}
	st := store.State()
	if !state.Active(st.Status) {
		return stopped + "left alone: it is " + st.Status + " now", nil
	}
	err = store.Record(state.Event{Type: state.EventSessionFailed, StageIndex: st.CurrentStage, Stage: stageName(st),
		Data: state.MustData(state.ReasonData{Reason: "crashed", Error: "the engine died while running; marked failed by cleanup (resume continues it)"})})
	if err != nil {
		return "", err
	}
	return stopped + "recorded as failed (reason crashed); start_session with mode resume still continues it", nil
}

// RemoveStaleLock removes a lock file no engine holds and says what became
// of it. A file that is gone already was not "held by a process": an
// earlier action of the same cleanup (MarkCrashed takes the lock and
// releases it, which removes the file) or someone else removed it.
func (l *Local) RemoveStaleLock(path string) (string, error) {
	removed, err := state.RemoveStaleLock(path)
	if err != nil {
		return "", err
	}
	if removed {
		return "removed " + path, nil
	}
	ls, _ := state.ProbeLock(path)
	switch {
	case ls.Held && ls.Info != nil && ls.Info.PID > 0:
		return fmt.Sprintf("left alone: an engine runs the session again (pid %d)", ls.Info.PID), nil
	case ls.Held:
		return "left alone: an engine runs the session again", nil
	case !ls.Exists:
		return "already gone (released by an earlier action, or removed meanwhile)", nil
	}
	return "left alone: it was in use a moment ago; run cleanup again", nil
}

// ArchiveDir is where Archive moves finished run directories, inside
// .claude/pipeline-runs/. Nothing is deleted: delete the archive yourself.
const ArchiveDir = ".archive"

// Archive moves a finished run directory into .archive/ — never deletes.
func (l *Local) Archive(info Info) (string, error) {
	dir := filepath.Join(state.RunsDir(info.ProjectDir), ArchiveDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	target := filepath.Join(dir, info.Name+"."+time.Now().UTC().Format("20060102T150405"))
	if err := os.Rename(info.Layout.RunDir(), target); err != nil {
		return "", err
	}
	removed, _ := state.RemoveStaleLock(info.Layout.LockFile())
	msg := "moved to " + target
	if removed {
		msg += " (and removed its stale lock)"
	}
	return msg, nil
}
