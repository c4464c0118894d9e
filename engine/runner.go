package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/workspace"
)

// Runner drives one session's plan, stage by stage and iteration by
// iteration, recording every step through its Store. It continues from
// whatever the store says is done, which is how resume works.
type Runner struct {
	Plan  *Plan
	Store *state.Store
	// Out is the transcript: the pane and session.log.
	Out io.Writer
	// Env is the base environment of agents (os.Environ()).
	Env []string
	// Grace is the SIGTERM→SIGKILL wait for agents.
	Grace time.Duration
	// Beads counts the ready beads of a label; nil means BeadsReady.
	Beads func(ctx context.Context, dir, label string) (int, error)
	// NewProvider returns a provider by name; nil means NewProvider.
	NewProvider func(name string) (Provider, error)
	// Guardrails (SPEC §15). Gate is consulted before every iteration
	// (nil: Guardrails over HostDir and DailyBudgetUSD); HostDir holds
	// the host-wide parks and spend ledger ("" : none); Notifier tells
	// the user when the session waits or parks (nil: nobody).
	Gate           Gate
	HostDir        string
	DailyBudgetUSD float64
	DefaultMaxPark time.Duration
	Notifier       *Notifier
	// Now, BackoffBase and AnswerPoll are injectable for tests.
	Now         func() time.Time
	BackoffBase time.Duration
	AnswerPoll  time.Duration
	// Workspace is where agents run and what they changed; nil means the
	// project directory (workspace.NewLocal).
	Workspace Workspace
	// Scope contains the agents (one Container per iteration); the zero
	// value means each agent's process group only.
	Scope Scope

	layout state.Layout
	inputs map[string]string // memoised ${INPUTS…} per stage
	mu     sync.Mutex        // serialises transcript banners of parallel runs
}

// Result is how a session run ended.
type Result struct {
	Status string // state.StatusComplete, StatusFailed or StatusKilled
	Reason string
	Err    string
}

type stageEnd struct {
	status string // complete, failed, killed
	reason string
	err    string
	final  bool // a guardrail ended the session, whatever stages remain
}

// Run runs the plan from where the store stands to the end of the session,
// and records how it ended. ctx being cancelled means the session is being
// killed; context.Cause(ctx) names why.
func (r *Runner) Run(ctx context.Context) Result {
	r.layout = r.Store.Layout()
	r.inputs = map[string]string{}
	if r.Beads == nil {
		r.Beads = func(ctx context.Context, dir, label string) (int, error) {
			lines, err := BeadsReadyList(ctx, dir, label, r.Env)
			return len(lines), err
		}
	}
	if r.NewProvider == nil {
		r.NewProvider = NewProvider
	}
	if r.Workspace == nil {
		r.Workspace = workspace.NewLocal(r.controlDir())
	}
	st := r.Store.State()
	reason := ""
	for i := st.CurrentStage; i < len(r.Plan.Stages); i++ {
		end := r.runStage(ctx, i)
		if end.final && end.status == state.StatusComplete {
			return r.finish(state.EventSessionComplete, i, end)
		}
		switch end.status {
		case state.StatusKilled:
			return r.finish(state.EventSessionKilled, i, end)
		case state.StatusFailed:
			return r.finish(state.EventSessionFailed, i, end)
		}
		reason = end.reason
	}
	if r.Plan.Multi() {
		reason = ReasonStagesComplete
	}
	return r.finish(state.EventSessionComplete, len(r.Plan.Stages)-1, stageEnd{status: state.StatusComplete, reason: reason})
}

func (r *Runner) finish(evType string, stageIdx int, end stageEnd) Result {
	if err := r.Store.CheckRunDir(); err != nil {
		// Someone removed the run directory: whatever ended the session,
		// that is why it ended. Make the directory again, only to say so.
		r.printf("✗ %v\n", err)
		if rerr := r.Store.Rehome(); rerr != nil {
			r.printf("✗ could not record the end of the session: %v\n", rerr)
			return Result{Status: state.StatusFailed, Reason: ReasonEngineError, Err: err.Error()}
		}
		st := r.Store.State()
		evType = state.EventSessionFailed
		end = stageEnd{status: state.StatusFailed, reason: ReasonEngineError, err: fmt.Sprintf(
			"%v; the engine stopped its agent and made the directory again to record this. state.json holds what the engine knew; "+
				"the iteration files, progress notes and events from before the removal are gone. "+
				"Resume to go on at stage %d, iteration %d, or start over with mode force",
			err, st.CurrentStage+1, st.IterationCompleted+1)}
	}
	if end.status == state.StatusKilled && end.err == "" {
		end.err = "killed"
	}
	data := state.ReasonData{Reason: end.reason, Error: end.err}
	if evType == state.EventSessionComplete {
		data.Error = ""
	}
	ev := state.Event{Type: evType, StageIndex: stageIdx, Stage: r.Plan.Stages[stageIdx].Name, Data: state.MustData(data)}
	if err := r.Store.Record(ev); err != nil && !errors.Is(err, state.ErrReserveUsed) {
		r.printf("✗ could not record the end of the session: %v\n", err)
		return Result{Status: state.StatusFailed, Reason: ReasonEngineError, Err: err.Error()}
	}
	return Result{Status: end.status, Reason: end.reason, Err: data.Error}
}

// controlDir is the project directory the session belongs to: its run
// directory, lock and worktrees live under it, a full disk is reported
// against it, and the host-wide records (parks, spend, notifications) name
// it. It need not be where the agents work (agentDir).
func (r *Runner) controlDir() string { return r.Plan.ProjectDir }

// agentDir is where the agents work — their working directory, bd's
// directory, the root of the inputs they read: the workspace's directory,
// the session's worktree under isolation worktree, else the project.
func (r *Runner) agentDir() string { return r.Workspace.Dir() }

func (r *Runner) printf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.Out, format, args...)
}

func (r *Runner) record(ev state.Event) error {
	if err := r.Store.Record(ev); err != nil {
		return fmt.Errorf("record %s: %w", ev.Type, err)
	}
	return nil
}

func (r *Runner) failEngine(err error) stageEnd {
	err = state.DiskFull(err, r.controlDir())
	return stageEnd{status: state.StatusFailed, reason: ReasonEngineError, err: err.Error()}
}

func killedBy(ctx context.Context) stageEnd {
	cause := "killed"
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		cause = c.Error()
	}
	return stageEnd{status: state.StatusKilled, reason: ReasonKilled, err: cause}
}

func (r *Runner) progressFile(i int) string {
	return r.layout.Progress(len(r.Plan.Stages), i, r.Plan.Stages[i].Name)
}

func (r *Runner) runStage(ctx context.Context, i int) stageEnd {
	sp := r.Plan.Stages[i]
	st := r.Store.State()
	ss := st.Stages[i]
	if ss.Status == state.StageComplete {
		return stageEnd{status: state.StatusComplete, reason: ss.Reason}
	}
	fresh := ss.Status == state.StagePending
	if fresh {
		if err := r.record(state.Event{Type: state.EventStageStart, StageIndex: i, Stage: sp.Name}); err != nil {
			return r.failEngine(err)
		}
	}
	if r.Plan.Multi() {
		if err := state.InitProgress(r.progressFile(i), fmt.Sprintf("%s — stage %d/%d %s", r.Plan.Session, i+1, len(r.Plan.Stages), sp.Name)); err != nil {
			return r.failEngine(err)
		}
	}
	st = r.Store.State()
	if sp.Parallel {
		return r.runParallel(ctx, i, st)
	}
	return r.runSequential(ctx, i, st)
}

func (r *Runner) completeStage(i int, reason string) stageEnd {
	sp := r.Plan.Stages[i]
	if end, failed := r.allFailed(i); failed {
		return end
	}
	if err := r.record(state.Event{Type: state.EventStageComplete, StageIndex: i, Stage: sp.Name, Data: state.MustData(state.ReasonData{Reason: reason})}); err != nil {
		return r.failEngine(err)
	}
	r.printf("■ stage %s complete: %s\n", sp.Name, reason)
	return stageEnd{status: state.StatusComplete, reason: reason}
}

func (r *Runner) runSequential(ctx context.Context, i int, st state.State) stageEnd {
	sp := r.Plan.Stages[i]
	max := st.Stages[i].MaxIterations
	pos, stopReason, stopped := resumePosition(st, i)
	if stopped {
		// Resuming after a crash between deciding to stop and recording
		// it: the stage is done.
		return r.completeStage(i, stopReason)
	}
	failures, prevVote := pos.failures, pos.prevVote
	for it := pos.next; ; it++ {
		if ctx.Err() != nil {
			return killedBy(ctx)
		}
		if it > max {
			return r.completeStage(i, maxReason(sp))
		}
		if end, ok := r.guard(ctx, i, it); !ok {
			return end
		}
		if end, done := r.beadsBefore(ctx, i); done {
			return end
		}
		entry, stopped, err := r.iteration(ctx, i, it, max, prevVote, failures, false)
		if err != nil {
			return r.failEngine(err)
		}
		if stopped {
			return killedBy(ctx)
		}
		if entry.Decision == DecisionPark {
			if end, ok := r.park(ctx, i, it, r.parkAfter(entry)); !ok {
				return end
			}
			it-- // the same iteration runs again
			continue
		}
		if entry.ExitCode != 0 {
			failures++
		} else {
			failures = 0
		}
		prevVote = entry.Plateau
		switch entry.Decision {
		case DecisionStop:
			return r.completeStage(i, entry.Reason)
		case DecisionError:
			return stageEnd{status: state.StatusFailed, reason: entry.Reason, err: entry.Warning}
		}
		if err := sleepCtx(ctx, time.Duration(sp.Delay*float64(time.Second))); err != nil {
			return killedBy(ctx)
		}
	}
}

// seqPosition is where a sequential stage stands: the next iteration, the
// streak of failed iterations before it and the last plateau vote.
type seqPosition struct {
	next, failures int
	prevVote       bool
}

// resumePosition is where a sequential stage goes on from: the start, or
// for the current stage of a resumed session what its state says. stopped
// (with the reason) when its last iteration had decided to stop.
func resumePosition(st state.State, i int) (pos seqPosition, stopReason string, stopped bool) {
	pos.next = 1
	if st.CurrentStage != i {
		return pos, "", false
	}
	pos.next = st.IterationCompleted + 1
	pos.failures = trailingFailures(st.History, i)
	last, ok := st.LastEntry(i)
	if !ok || last.Iteration != st.IterationCompleted {
		return pos, "", false
	}
	switch last.Decision {
	case DecisionStop:
		return pos, last.Reason, true
	case DecisionError:
		// The session failed on this iteration (or crashed while recording
		// that); resuming is the user's retry, so go on with the next
		// iteration and a fresh failure streak.
		pos.failures = 0
	}
	pos.prevVote = last.Plateau
	return pos, "", false
}

// beadsBefore is check_before of a beads-empty stage: done (with how the
// stage ends) when no bead is ready, or bd cannot tell.
func (r *Runner) beadsBefore(ctx context.Context, i int) (stageEnd, bool) {
	sp := r.Plan.Stages[i]
	if sp.Completion != CompletionBeadsEmpty || !sp.CheckBefore {
		return stageEnd{}, false
	}
	n, err := r.Beads(ctx, r.agentDir(), "loop/"+r.Plan.Session)
	if err != nil {
		if ctx.Err() != nil {
			return killedBy(ctx), true
		}
		return stageEnd{status: state.StatusFailed, reason: ReasonDependency, err: err.Error()}, true
	}
	if n == 0 {
		r.printf("■ no ready beads labelled loop/%s\n", r.Plan.Session)
		return r.completeStage(i, CompletionBeadsEmpty), true
	}
	return stageEnd{}, false
}

// runParallel runs a parallel stage's runs not yet done, at most
// MaxParallel at once, and ends the stage: failed when enough runs failed,
// else complete.
func (r *Runner) runParallel(ctx context.Context, i int, st state.State) stageEnd {
	sp := r.Plan.Stages[i]
	max := st.Stages[i].MaxIterations
	pending, done := pendingRuns(st.Stages[i], max)
	if len(pending) > 0 {
		if end, ok := r.guard(ctx, i, pending[0]); !ok {
			return end
		}
	}
	r.printf("■ stage %s: %d runs in parallel (at most %d at once), %d already done\n", sp.Name, len(pending), MaxParallel, done)
	t := r.fanOut(ctx, i, max, pending)
	switch {
	case t.engErr != nil:
		return r.failEngine(t.engErr)
	case ctx.Err() != nil:
		return killedBy(ctx)
	case t.errEnd != nil:
		return *t.errEnd
	case t.stopped:
		return killedBy(ctx)
	}
	total := done + t.finished
	if t.failed >= maxConsecutiveFailure || (t.failed > 0 && t.failed == t.finished) {
		return stageEnd{status: state.StatusFailed, reason: ReasonAgentFailures,
			err: fmt.Sprintf("%d of %d parallel runs of stage %s failed", t.failed, total, sp.Name)}
	}
	return r.completeStage(i, maxReason(sp))
}

// pendingRuns lists the runs of a parallel stage still to run, and counts
// those done. Runs that failed before a resume are run again.
func pendingRuns(ss state.StageState, max int) (pending []int, done int) {
	ok := map[int]bool{}
	for _, it := range ss.Completed {
		ok[it] = true
	}
	for _, it := range ss.Failed {
		delete(ok, it)
	}
	for it := 1; it <= max; it++ {
		if !ok[it] {
			pending = append(pending, it)
		}
	}
	return pending, len(ok)
}

// parallelTally is what the runs of a parallel stage came to.
type parallelTally struct {
	finished, failed int
	errEnd           *stageEnd // the first run whose agent reported an error
	engErr           error     // the engine could not run or record a run
	stopped          bool      // a run was stopped: the session is being killed
}

// fanOut runs the pending runs, at most MaxParallel at once. The first
// engine error or agent-reported error cancels the runs still going.
func (r *Runner) fanOut(ctx context.Context, i, max int, pending []int) parallelTally {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		t  parallelTally
	)
	sem := make(chan struct{}, MaxParallel)
	for _, it := range pending {
		select {
		case sem <- struct{}{}:
		case <-runCtx.Done():
		}
		if runCtx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(it int) {
			defer wg.Done()
			defer func() { <-sem }()
			entry, wasStopped, err := r.iteration(runCtx, i, it, max, false, 0, true)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.engErr = err
				cancel()
			case wasStopped:
				t.stopped = true
			default:
				t.finished++
				if entry.ExitCode != 0 {
					t.failed++
				}
				if entry.Decision == DecisionError && t.errEnd == nil {
					t.errEnd = &stageEnd{status: state.StatusFailed, reason: entry.Reason, err: entry.Warning}
					cancel()
				}
			}
		}(it)
	}
	wg.Wait()
	return t
}
