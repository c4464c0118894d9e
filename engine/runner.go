package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/workspace"
)

// Decisions recorded per iteration.
const (
	DecisionContinue = "continue"
	DecisionStop     = "stop"
	DecisionError    = "error"
)

// Completion reasons beyond the strategy names.
const (
	ReasonMaxIterations   = "max_iterations"
	ReasonSignal          = "completion_signal"
	ReasonStagesComplete  = "all_stages_complete"
	ReasonAgentFailures   = "agent_failures"
	ReasonAgentError      = "agent_error"
	ReasonKilled          = "killed"
	ReasonEngineError     = "engine_error"
	ReasonDependency      = "dependency_failed"
	maxConsecutiveFailure = 3
)

// inputsLimit bounds how much text ${INPUTS} expands to; past it the
// remaining outputs are listed by path for the agent to read.
const inputsLimit = 256 << 10

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
		r.Workspace = workspace.NewLocal(r.Plan.ProjectDir)
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
	err = state.DiskFull(err, r.Plan.ProjectDir)
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
	next := 1
	failures := 0
	prevVote := false
	if st.CurrentStage == i {
		next = st.IterationCompleted + 1
		failures = trailingFailures(st.History, i)
		if last, ok := st.LastEntry(i); ok && last.Iteration == st.IterationCompleted {
			switch last.Decision {
			case DecisionStop:
				// Resuming after a crash between deciding to stop and
				// recording it: the stage is done.
				return r.completeStage(i, last.Reason)
			case DecisionError:
				// The session failed on this iteration (or crashed while
				// recording that); resuming is the user's retry, so go on
				// with the next iteration and a fresh failure streak.
				failures = 0
			}
			prevVote = last.Plateau
		}
	}
	for it := next; ; it++ {
		if ctx.Err() != nil {
			return killedBy(ctx)
		}
		if it > max {
			return r.completeStage(i, maxReason(sp))
		}
		if end, ok := r.guard(ctx, i, it); !ok {
			return end
		}
		if sp.Completion == CompletionBeadsEmpty && sp.CheckBefore {
			n, err := r.Beads(ctx, r.Workspace.Dir(), "loop/"+r.Plan.Session)
			if err != nil {
				if ctx.Err() != nil {
					return killedBy(ctx)
				}
				return stageEnd{status: state.StatusFailed, reason: ReasonDependency, err: err.Error()}
			}
			if n == 0 {
				r.printf("■ no ready beads labelled loop/%s\n", r.Plan.Session)
				return r.completeStage(i, CompletionBeadsEmpty)
			}
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

// allFailed reports a stage whose every iteration failed: it ends failed
// whatever its length (with max_iterations < 3 the three-in-a-row rule
// never fires, and such a stage read complete). The error carries the last
// failure, which usually names the cause.
func (r *Runner) allFailed(i int) (stageEnd, bool) {
	st := r.Store.State()
	ss := st.Stages[i]
	if ss.Iterations == 0 || ss.FailedIterations < ss.Iterations {
		return stageEnd{}, false
	}
	msg := fmt.Sprintf("all %d iterations of stage %s failed", ss.Iterations, ss.Name)
	if ss.Iterations == 1 {
		msg = fmt.Sprintf("the only iteration of stage %s failed", ss.Name)
	}
	if last, ok := st.LastEntry(i); ok && last.Warning != "" {
		msg += "; the last: " + last.Warning
	}
	return stageEnd{status: state.StatusFailed, reason: ReasonAgentFailures, err: msg}, true
}

func maxReason(sp StagePlan) string {
	switch sp.Completion {
	case CompletionFixedN, CompletionAllItems:
		return sp.Completion
	}
	return ReasonMaxIterations
}

func trailingFailures(history []state.HistoryEntry, stage int) int {
	n := 0
	for k := len(history) - 1; k >= 0; k-- {
		if history[k].StageIndex != stage {
			continue
		}
		if history[k].ExitCode == 0 {
			break
		}
		n++
	}
	return n
}

func (r *Runner) runParallel(ctx context.Context, i int, st state.State) stageEnd {
	sp := r.Plan.Stages[i]
	max := st.Stages[i].MaxIterations
	done := map[int]bool{}
	for _, it := range st.Stages[i].Completed {
		done[it] = true
	}
	// Runs that failed before a resume are run again.
	for _, it := range st.Stages[i].Failed {
		delete(done, it)
	}
	var pending []int
	for it := 1; it <= max; it++ {
		if !done[it] {
			pending = append(pending, it)
		}
	}
	if len(pending) > 0 {
		if end, ok := r.guard(ctx, i, pending[0]); !ok {
			return end
		}
	}
	r.printf("■ stage %s: %d runs in parallel (at most %d at once), %d already done\n", sp.Name, len(pending), MaxParallel, len(done))
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failed   int
		errEnd   *stageEnd
		engErr   error
		stopped  bool
		finished int
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
				engErr = err
				cancel()
			case wasStopped:
				stopped = true
			default:
				finished++
				if entry.ExitCode != 0 {
					failed++
				}
				if entry.Decision == DecisionError && errEnd == nil {
					errEnd = &stageEnd{status: state.StatusFailed, reason: entry.Reason, err: entry.Warning}
					cancel()
				}
			}
		}(it)
	}
	wg.Wait()
	switch {
	case engErr != nil:
		return r.failEngine(engErr)
	case ctx.Err() != nil:
		return killedBy(ctx)
	case errEnd != nil:
		return *errEnd
	case stopped:
		return killedBy(ctx)
	}
	total := len(done) + finished
	if failed >= maxConsecutiveFailure || (failed > 0 && failed == finished) {
		return stageEnd{status: state.StatusFailed, reason: ReasonAgentFailures,
			err: fmt.Sprintf("%d of %d parallel runs of stage %s failed", failed, total, sp.Name)}
	}
	return r.completeStage(i, maxReason(sp))
}

// agentStatus is the optional status.json an agent writes.
type agentStatus struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	Summary  string `json:"summary"`
	// Question and Options come with decision ask (SPEC §15).
	Question string   `json:"question"`
	Options  []string `json:"options"`
}

func readStatus(path string) (agentStatus, string) {
	// The agent writes this file: it may be anything, of any size.
	data, err := state.ReadRegularFile(path, state.StatusLimit)
	if errors.Is(err, os.ErrNotExist) {
		return agentStatus{}, ""
	}
	if err != nil {
		return agentStatus{}, "status.json unreadable: " + err.Error()
	}
	var s agentStatus
	if err := json.Unmarshal(data, &s); err != nil {
		return agentStatus{}, "status.json is not valid JSON (ignored): " + err.Error()
	}
	switch s.Decision {
	case "", DecisionContinue, DecisionStop, DecisionError:
	case DecisionAsk:
		return checkQuestion(s)
	default:
		w := fmt.Sprintf("status.json decision %q is not continue, stop, error or ask (ignored)", s.Decision)
		s.Decision = ""
		return s, w
	}
	return s, ""
}

// iterationResult is result.json.
type iterationResult struct {
	Session         string    `json:"session"`
	Stage           string    `json:"stage"`
	StageIndex      int       `json:"stage_index"`
	Iteration       int       `json:"iteration"`
	Provider        string    `json:"provider"`
	Model           string    `json:"model"`
	StartedAt       time.Time `json:"started_at"`
	CompletedAt     time.Time `json:"completed_at"`
	DurationMS      int64     `json:"duration_ms"`
	ExitCode        int       `json:"exit_code"`
	TimedOut        bool      `json:"timed_out"`
	Decision        string    `json:"decision"`
	Reason          string    `json:"reason"`
	Plateau         bool      `json:"plateau"`
	Reasoning       string    `json:"reasoning"`
	CompletionFound bool      `json:"completion_signal"`
	StatusDecision  string    `json:"status_decision,omitempty"`
	CostUSD         float64   `json:"cost_usd"`
	InputTokens     int64     `json:"input_tokens"`
	OutputTokens    int64     `json:"output_tokens"`
	OutputBytes     int64     `json:"output_bytes"`
	OutputTruncated bool      `json:"output_truncated"`
	Warning         string    `json:"warning,omitempty"`
	// Changes is the iteration's change record (git projects only).
	Changes *state.Changes `json:"changes,omitempty"`
	// Failure classifies the agent's failure (kind, message, reset time).
	Failure *state.Failure `json:"failure,omitempty"`
}

// iteration runs one iteration and records it. It returns stopped when the
// session was killed while the agent ran (the iteration is then not
// recorded as complete, so a resume runs it again).
func (r *Runner) iteration(ctx context.Context, i, it, max int, prevVote bool, failures int, parallel bool) (state.HistoryEntry, bool, error) {
	sp := r.Plan.Stages[i]
	files := r.layout.Iteration(i, sp.Name, it)
	if _, err := os.Stat(files.Dir); err == nil {
		// A previous attempt crashed mid-iteration: keep its files aside.
		if _, err := state.MoveAside(files.Dir, "attempt-"+time.Now().UTC().Format("20060102T150405.000")); err != nil {
			return state.HistoryEntry{}, false, err
		}
	}
	if err := os.MkdirAll(files.Dir, 0o755); err != nil {
		return state.HistoryEntry{}, false, fmt.Errorf("create %s: %w", files.Dir, err)
	}
	if err := r.record(state.Event{Type: state.EventIterationStart, StageIndex: i, Stage: sp.Name, Iteration: it}); err != nil {
		return state.HistoryEntry{}, false, err
	}
	vars, err := r.vars(i, it, max, files)
	if err != nil {
		return state.HistoryEntry{}, false, err
	}
	prompt := Render(sp.Prompt, vars)
	if err := writeWhole(files.Prompt, []byte(prompt)); err != nil {
		return state.HistoryEntry{}, false, fmt.Errorf("write prompt: %w", err)
	}
	sink, err := newOutputSink(files.Output, sp.OutputParse)
	if err != nil {
		return state.HistoryEntry{}, false, fmt.Errorf("create output: %w", err)
	}
	var transcript io.Writer = r.Out
	label := ""
	if parallel {
		label = fmt.Sprintf("[%s #%d] ", sp.Name, it)
		transcript = &prefixWriter{w: r.Out, prefix: label, mu: &r.mu}
	}
	capped := newCappedWriter(transcript, TranscriptLimit, fmt.Sprintf("\n%s[agent-sessions: the rest of this iteration's output is not shown here; it is in %s]\n", label, files.Output))
	r.printf("\n━━ %s · stage %s (%d/%d) · iteration %d/%d · %s/%s · %s ━━\n",
		r.Plan.Session, sp.Name, i+1, len(r.Plan.Stages), it, max, sp.Provider, sp.Model, time.Now().Format("15:04:05"))

	provider, err := r.NewProvider(sp.Provider)
	if err != nil {
		sink.Close()
		return state.HistoryEntry{}, false, err
	}
	ctr, err := r.Scope.NewContainer(fmt.Sprintf("s%d-i%d", i+1, it))
	if err != nil {
		sink.Close()
		return state.HistoryEntry{}, false, err
	}
	defer ctr.Close()
	snap := r.Workspace.Before(ctx)
	if snap.Warning != "" {
		r.printf("%s! %s\n", label, snap.Warning)
	}
	sp.budgetLeft = r.budgetLeft(sp)
	started := time.Now()
	out := provider.Run(ctx, Call{
		Stage: sp, Prompt: prompt, Dir: r.Workspace.Dir(), Iteration: it,
		Env:          AgentEnv(r.Env, r.agentVars(i, it, files)),
		Output:       sink,
		Transcript:   capped,
		Timeout:      time.Duration(sp.Timeout) * time.Second,
		Grace:        r.Grace,
		ProgressFile: r.progressFile(i),
		Container:    ctr,
	})
	elapsed := time.Since(started)
	sig, sinkErr := sink.Close()
	if out.Stopped || (ctx.Err() != nil && out.ExitCode != 0) {
		r.printf("%s■ iteration %d stopped: the session is being killed\n", label, it)
		return state.HistoryEntry{}, true, nil
	}
	changes := r.Workspace.After(ctx, snap)
	if kind, ok := parkKind(out); ok && !parallel {
		return r.parkedAttempt(sp, i, it, files, out, kind, started, elapsed)
	}
	status, warning := readStatus(files.Status)
	warnings := []string{}
	if warning != "" {
		warnings = append(warnings, warning)
	}
	if out.Problem != "" {
		warnings = append(warnings, out.Problem)
	}
	if sinkErr != nil {
		warnings = append(warnings, "output.md incomplete: "+sinkErr.Error())
	}
	if sig.OutputCapped {
		warnings = append(warnings, fmt.Sprintf("output was %d bytes; output.md keeps its head and tail", sig.OutputBytes))
	}
	entry := state.HistoryEntry{
		Iteration: it, Stage: sp.Name, StageIndex: i, Timestamp: time.Now().UTC(),
		Reasoning: truncate(sig.Reasoning, 500), ExitCode: out.ExitCode, DurationMS: elapsed.Milliseconds(),
		CostUSD: out.CostUSD, InputTokens: out.InputTokens, OutputToks: out.OutputTokens,
		Changes: changes,
		Failure: out.Failure,
	}
	if status.Reason != "" && entry.Reasoning == "" {
		entry.Reasoning = truncate(status.Reason, 500)
	}
	succeeded := out.ExitCode == 0
	entry.Plateau = succeeded && (sig.Plateau || status.Decision == DecisionStop)
	if succeeded {
		failures = 0
	} else {
		failures++
	}

	beadsEmpty := false
	if succeeded && sp.Completion == CompletionBeadsEmpty && !sp.CheckBefore && !sig.Complete && !parallel {
		n, err := r.Beads(ctx, r.Workspace.Dir(), "loop/"+r.Plan.Session)
		if err != nil {
			warnings = append(warnings, "bd ready failed: "+err.Error())
		}
		beadsEmpty = err == nil && n == 0
	}
	entry.Decision, entry.Reason = decide(sp, it, max, decideInput{
		succeeded: succeeded, failures: failures, vote: entry.Plateau, prevVote: prevVote,
		statusDecision: status.Decision, statusReason: status.Reason,
		completionSignal: sig.Complete, beadsEmpty: beadsEmpty, parallel: parallel,
	})
	if entry.Decision == DecisionError && entry.Reason == ReasonAgentFailures {
		warnings = append(warnings, fmt.Sprintf("%d consecutive agent failures", failures))
	}
	if entry.Decision == DecisionError && entry.Reason == ReasonAgentError {
		warnings = append([]string{"the agent reported an error: " + first(status.Reason, status.Summary, "(no reason given)")}, warnings...)
	}
	ask := status.Decision == DecisionAsk && entry.Decision == DecisionContinue && !parallel
	if status.Decision == DecisionAsk && !ask && entry.Decision != DecisionError {
		warnings = append(warnings, askIgnored(parallel))
	}
	entry.Warning = truncate(strings.Join(warnings, "; "), 1000)

	res := iterationResult{
		Session: r.Plan.Session, Stage: sp.Name, StageIndex: i, Iteration: it, Provider: sp.Provider, Model: sp.Model,
		StartedAt: started.UTC(), CompletedAt: entry.Timestamp, DurationMS: entry.DurationMS, ExitCode: out.ExitCode,
		TimedOut: out.TimedOut, Decision: entry.Decision, Reason: entry.Reason, Plateau: entry.Plateau,
		Reasoning: entry.Reasoning, CompletionFound: sig.Complete, StatusDecision: status.Decision,
		CostUSD: out.CostUSD, InputTokens: out.InputTokens, OutputTokens: out.OutputTokens,
		OutputBytes: sig.OutputBytes, OutputTruncated: sig.OutputCapped, Warning: entry.Warning,
		Changes: changes,
		Failure: entry.Failure,
	}
	resJSON, _ := json.MarshalIndent(res, "", "  ")
	if err := writeWhole(files.Result, append(resJSON, '\n')); err != nil {
		return state.HistoryEntry{}, false, fmt.Errorf("write result: %w", err)
	}
	if err := r.record(state.Event{Type: state.EventIterationDone, StageIndex: i, Stage: sp.Name, Iteration: it, Data: state.MustData(entry)}); err != nil {
		return state.HistoryEntry{}, false, err
	}
	r.addSpend(entry.CostUSD)
	if ask {
		if err := r.askAfter(i, it, status); err != nil {
			return state.HistoryEntry{}, false, err
		}
	}
	r.printf("%s%s iteration %d %s · %.1fs · exit %d%s%s%s\n", label, mark(entry), it, entry.Decision, elapsed.Seconds(), out.ExitCode,
		voteText(sp, entry), changesText(changes), warnText(entry.Warning))
	return entry, false, nil
}

// writeWhole writes an iteration file, or nothing: a write cut short (a
// full disk) removes the partial file rather than leave half of it.
func writeWhole(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

func mark(e state.HistoryEntry) string {
	switch {
	case e.Decision == DecisionError:
		return "✗"
	case e.ExitCode != 0:
		return "!"
	}
	return "✓"
}

func voteText(sp StagePlan, e state.HistoryEntry) string {
	s := ""
	if sp.Completion == CompletionPlateau {
		s = " · plateau vote: no"
		if e.Plateau {
			s = " · plateau vote: yes"
		}
	}
	if e.Reason != "" {
		s += " · " + e.Reason
	}
	return s
}

func warnText(w string) string {
	if w == "" {
		return ""
	}
	return " · " + truncate(w, 200)
}

// decideInput is what a termination decision looks at.
type decideInput struct {
	succeeded        bool
	failures         int // consecutive failures including this iteration
	vote             bool
	prevVote         bool
	statusDecision   string
	statusReason     string
	completionSignal bool
	beadsEmpty       bool
	parallel         bool
}

// decide is the termination strategy (SPEC §8) as a pure function of one
// iteration's outcome.
func decide(sp StagePlan, it, max int, in decideInput) (decision, reason string) {
	if in.statusDecision == DecisionError {
		return DecisionError, ReasonAgentError
	}
	if !in.succeeded && in.failures >= maxConsecutiveFailure && !in.parallel {
		return DecisionError, ReasonAgentFailures
	}
	if in.parallel {
		return DecisionContinue, ""
	}
	if in.succeeded {
		switch sp.Completion {
		case CompletionPlateau:
			if in.vote && in.prevVote && it >= sp.MinIterations {
				return DecisionStop, CompletionPlateau
			}
		case CompletionBeadsEmpty:
			if in.completionSignal {
				return DecisionStop, ReasonSignal
			}
			if in.beadsEmpty {
				return DecisionStop, CompletionBeadsEmpty
			}
		}
	}
	if it >= max {
		return DecisionStop, maxReason(sp)
	}
	return DecisionContinue, ""
}

// agentVars are the AGENT_SESSIONS_* variables of SPEC §7.
func (r *Runner) agentVars(i, it int, files state.IterationFiles) map[string]string {
	return map[string]string{
		"AGENT_SESSIONS_SESSION":   r.Plan.Session,
		"AGENT_SESSIONS_STAGE":     r.Plan.Stages[i].Name,
		"AGENT_SESSIONS_ITERATION": strconv.Itoa(it),
		"AGENT_SESSIONS_RUN_DIR":   r.layout.RunDir(),
		"AGENT_SESSIONS_OUTPUT":    files.Output,
		"AGENT_SESSIONS_PROGRESS":  r.progressFile(i),
		"AGENT_SESSIONS_STATUS":    files.Status,
		"CLAUDE_LOOP_AGENT":        "1",
		"CLAUDE_LOOP_SESSION":      r.Plan.Session,
	}
}

// vars are the prompt variables of SPEC §6 for one iteration.
func (r *Runner) vars(i, it, max int, files state.IterationFiles) (map[string]string, error) {
	sp := r.Plan.Stages[i]
	v := map[string]string{
		"SESSION":        r.Plan.Session,
		"SESSION_NAME":   r.Plan.Session,
		"ITERATION":      strconv.Itoa(it),
		"INDEX":          strconv.Itoa(it - 1),
		"MAX_ITERATIONS": strconv.Itoa(max),
		"STAGE":          sp.Name,
		"PERSPECTIVE":    "",
		"ITEM":           "",
		"OUTPUT":         files.Output,
		"PROGRESS":       r.progressFile(i),
		"PROGRESS_FILE":  r.progressFile(i),
		"STATUS":         files.Status,
		"RUN_DIR":        r.layout.RunDir(),
		"WORKTREE":       r.worktreeDir(),
		"BRANCH":         r.Plan.Branch,
		"CONTEXT":        r.Plan.Context,
		"ANSWER":         "",
	}
	if r.Store != nil { // a preview (dry run) has no store and no answer
		if a := r.Store.State().Answer; a != nil {
			v["ANSWER"] = a.Answer
		}
	}
	if n := len(sp.Perspectives); n > 0 {
		v["PERSPECTIVE"] = sp.Perspectives[(it-1)%n]
	}
	if it-1 < len(sp.Items) {
		v["ITEM"] = sp.Items[it-1]
	}
	// ${INPUTS}: the previous stage's outputs, or the session's input files
	// for the first stage. Only expanded when the prompt asks for it.
	if strings.Contains(sp.Prompt, "${INPUTS") {
		in, err := r.stageInputs(i)
		if err != nil {
			return nil, err
		}
		v["INPUTS"] = in
		for j := 0; j < i; j++ {
			name := r.Plan.Stages[j].Name
			if strings.Contains(sp.Prompt, "${INPUTS."+name+"}") {
				out, err := r.stageOutputs(j)
				if err != nil {
					return nil, err
				}
				v["INPUTS."+name] = out
			}
		}
	}
	return v, nil
}

func (r *Runner) stageInputs(i int) (string, error) {
	if i > 0 {
		return r.stageOutputs(i - 1)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.inputs["input files"]; ok {
		return s, nil
	}
	var parts []inputPart
	for _, p := range r.Plan.Inputs {
		parts = append(parts, inputPart{title: "input: " + relTo(r.Plan.ProjectDir, p), path: p})
	}
	s := joinInputs(parts)
	r.inputs["input files"] = s
	return s, nil
}

// stageOutputs concatenates the outputs of stage j's completed iterations.
func (r *Runner) stageOutputs(j int) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := "stage " + strconv.Itoa(j)
	if s, ok := r.inputs[key]; ok {
		return s, nil
	}
	st := r.Store.State()
	name := r.Plan.Stages[j].Name
	ss := st.Stages[j]
	its := ss.Completed
	if !ss.Parallel {
		its = nil
		for k := 1; k <= ss.Iterations; k++ {
			its = append(its, k)
		}
	}
	var parts []inputPart
	for _, it := range sortedInts(its) {
		f := r.layout.Iteration(j, name, it)
		parts = append(parts, inputPart{title: fmt.Sprintf("%s · iteration %d", name, it), path: f.Output})
	}
	s := joinInputs(parts)
	r.inputs[key] = s
	return s, nil
}

type inputPart struct{ title, path string }

func joinInputs(parts []inputPart) string {
	var b strings.Builder
	for k, p := range parts {
		// Inputs are the user's files or earlier agents' outputs: never
		// more than what still fits, never a FIFO or device.
		data, err := state.ReadRegularFile(p.path, int64(max(inputsLimit-b.Len(), 0)))
		if err != nil && !errors.Is(err, state.ErrTooLarge) {
			fmt.Fprintf(&b, "## %s\n\n(unreadable: %v)\n\n", p.title, err)
			continue
		}
		if err != nil || b.Len()+len(data) > inputsLimit {
			fmt.Fprintf(&b, "## More inputs, too long to include — read them from disk:\n\n")
			for _, rest := range parts[k:] {
				fmt.Fprintf(&b, "- %s: %s\n", rest.title, rest.path)
			}
			break
		}
		fmt.Fprintf(&b, "## %s (%s)\n\n%s\n\n", p.title, p.path, strings.TrimRight(string(data), "\n"))
	}
	return strings.TrimRight(b.String(), "\n")
}

func relTo(base, p string) string {
	if rel, err := filepath.Rel(base, p); err == nil {
		return rel
	}
	return p
}

func sortedInts(in []int) []int {
	out := append([]int(nil), in...)
	for a := 1; a < len(out); a++ {
		for b := a; b > 0 && out[b] < out[b-1]; b-- {
			out[b], out[b-1] = out[b-1], out[b]
		}
	}
	return out
}

// prefixWriter prefixes every line with a label (parallel runs share the
// pane). Lines are written whole under the shared mutex.
type prefixWriter struct {
	w      io.Writer
	prefix string
	mu     *sync.Mutex
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.mu.Lock()
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.mu.Unlock()
		p.buf = p.buf[i+1:]
	}
	if len(p.buf) > 4096 {
		p.mu.Lock()
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf)
		p.mu.Unlock()
		p.buf = p.buf[:0]
	}
	return len(b), nil
}

// worktreeDir is ${WORKTREE}: the session's worktree, else the directory
// the agents work in (a preview has no workspace yet: the project).
func (r *Runner) worktreeDir() string {
	switch {
	case r.Plan.Worktree != "":
		return r.Plan.Worktree
	case r.Workspace != nil:
		return r.Workspace.Dir()
	}
	return r.Plan.ProjectDir
}
