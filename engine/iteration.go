package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// This file is one iteration: its files and prompt, the agent's run in
// its container, the verdict on it and its records (result.json, the
// iteration_complete event, the transcript line).

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

// iterRun is one iteration being run: where it is in the plan, its files,
// and how the transcript labels it.
type iterRun struct {
	i, it, max int
	sp         StagePlan
	files      state.IterationFiles
	parallel   bool
	label      string // the transcript prefix of a parallel run ("" otherwise)
}

// agentRun is what one agent run produced, before it is judged.
type agentRun struct {
	out     Outcome
	sig     Signals
	sinkErr error
	started time.Time
	elapsed time.Duration
	changes *state.Changes
	// stopped: the session is being killed; the iteration is not judged.
	stopped bool
}

// judged is an iteration's verdict: its history entry, what status.json
// said, and whether the session now asks the user a question.
type judged struct {
	entry  state.HistoryEntry
	status agentStatus
	ask    bool
}

// iteration runs one iteration and records it. It returns stopped when the
// session was killed while the agent ran (the iteration is then not
// recorded as complete, so a resume runs it again). Its steps:
// beginIteration (files, prompt), the agent's run in its container
// (runAgent), then park, or judge and recordIteration.
func (r *Runner) iteration(ctx context.Context, i, it, max int, prevVote bool, failures int, parallel bool) (state.HistoryEntry, bool, error) {
	sp := r.Plan.Stages[i]
	ir := iterRun{i: i, it: it, max: max, sp: sp, files: r.layout.Iteration(i, sp.Name, it), parallel: parallel}
	if parallel {
		ir.label = fmt.Sprintf("[%s #%d] ", sp.Name, it)
	}
	prompt, err := r.beginIteration(ir)
	if err != nil {
		return state.HistoryEntry{}, false, err
	}
	sink, err := newOutputSink(ir.files.Output, sp.OutputParse)
	if err != nil {
		return state.HistoryEntry{}, false, fmt.Errorf("create output: %w", err)
	}
	transcript := r.iterationTranscript(ir)
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
	run := r.runAgent(ctx, ir, provider, sink, Call{Prompt: prompt, Transcript: transcript, Container: ctr})
	if run.stopped {
		r.printf("%s■ iteration %d stopped: the session is being killed\n", ir.label, it)
		return state.HistoryEntry{}, true, nil
	}
	if kind, ok := parkKind(run.out); ok && !parallel {
		return r.parkedAttempt(sp, i, it, ir.files, run.out, kind, run.started, run.elapsed)
	}
	j := r.judge(ctx, ir, run, prevVote, failures)
	if err := r.recordIteration(ir, run, j); err != nil {
		return state.HistoryEntry{}, false, err
	}
	return j.entry, false, nil
}

// beginIteration makes the iteration's directory (a crashed attempt's is
// kept aside), records its start and writes its prompt.
func (r *Runner) beginIteration(ir iterRun) (string, error) {
	files := ir.files
	if _, err := os.Stat(files.Dir); err == nil {
		// A previous attempt crashed mid-iteration: keep its files aside.
		if _, err := state.MoveAside(files.Dir, "attempt-"+time.Now().UTC().Format("20060102T150405.000")); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(files.Dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", files.Dir, err)
	}
	if err := r.record(state.Event{Type: state.EventIterationStart, StageIndex: ir.i, Stage: ir.sp.Name, Iteration: ir.it}); err != nil {
		return "", err
	}
	vars, err := r.vars(ir.i, ir.it, ir.max, files)
	if err != nil {
		return "", err
	}
	prompt := Render(ir.sp.Prompt, vars)
	if err := writeWhole(files.Prompt, []byte(prompt)); err != nil {
		return "", fmt.Errorf("write prompt: %w", err)
	}
	return prompt, nil
}

// iterationTranscript is where the agent's output is shown (a parallel
// run's lines labelled, the whole capped at TranscriptLimit); it prints
// the iteration's banner.
func (r *Runner) iterationTranscript(ir iterRun) io.Writer {
	var transcript io.Writer = r.Out
	if ir.parallel {
		transcript = &prefixWriter{w: r.Out, prefix: ir.label, mu: &r.mu}
	}
	capped := newCappedWriter(transcript, TranscriptLimit, fmt.Sprintf("\n%s[agent-sessions: the rest of this iteration's output is not shown here; it is in %s]\n", ir.label, ir.files.Output))
	r.printf("\n━━ %s · stage %s (%d/%d) · iteration %d/%d · %s/%s · %s ━━\n",
		r.Plan.Session, ir.sp.Name, ir.i+1, len(r.Plan.Stages), ir.it, ir.max, ir.sp.Provider, ir.sp.Model, time.Now().Format("15:04:05"))
	return capped
}

// runAgent runs the agent in the workspace, between the workspace's
// snapshot and its change record. c carries the prompt, transcript and
// container; the rest of the call is filled in here.
func (r *Runner) runAgent(ctx context.Context, ir iterRun, provider Provider, sink *outputSink, c Call) agentRun {
	snap := r.Workspace.Before(ctx)
	if snap.Warning != "" {
		r.printf("%s! %s\n", ir.label, snap.Warning)
	}
	c.Stage = ir.sp
	c.Stage.budgetLeft = r.budgetLeft(ir.sp)
	c.Dir, c.Iteration = r.agentDir(), ir.it
	c.Env = AgentEnv(r.Env, r.agentVars(ir.i, ir.it, ir.files))
	c.Output = sink
	c.Timeout = time.Duration(ir.sp.Timeout) * time.Second
	c.Grace = r.Grace
	c.ProgressFile = r.progressFile(ir.i)
	run := agentRun{started: time.Now()}
	run.out = provider.Run(ctx, c)
	run.elapsed = time.Since(run.started)
	run.sig, run.sinkErr = sink.Close()
	if run.out.Stopped || (ctx.Err() != nil && run.out.ExitCode != 0) {
		run.stopped = true
		return run
	}
	run.changes = r.Workspace.After(ctx, snap)
	return run
}

// judge turns an agent's run into the iteration's history entry: its
// status.json, its plateau vote, bd's count of ready beads when the stage
// asks after each iteration, and the termination decision (decide).
// failures is the streak of failed iterations before this one.
func (r *Runner) judge(ctx context.Context, ir iterRun, run agentRun, prevVote bool, failures int) judged {
	status, statusWarning := readStatus(ir.files.Status)
	warnings := run.warnings(statusWarning)
	entry := state.HistoryEntry{
		Iteration: ir.it, Stage: ir.sp.Name, StageIndex: ir.i, Timestamp: time.Now().UTC(),
		Reasoning: truncate(run.sig.Reasoning, 500), ExitCode: run.out.ExitCode, DurationMS: run.elapsed.Milliseconds(),
		CostUSD: run.out.CostUSD, InputTokens: run.out.InputTokens, OutputToks: run.out.OutputTokens,
		Changes: run.changes,
		Failure: run.out.Failure,
	}
	if status.Reason != "" && entry.Reasoning == "" {
		entry.Reasoning = truncate(status.Reason, 500)
	}
	succeeded := run.out.ExitCode == 0
	entry.Plateau = succeeded && (run.sig.Plateau || status.Decision == DecisionStop)
	if succeeded {
		failures = 0
	} else {
		failures++
	}
	beadsEmpty := false
	if succeeded && ir.sp.Completion == CompletionBeadsEmpty && !ir.sp.CheckBefore && !run.sig.Complete && !ir.parallel {
		n, err := r.Beads(ctx, r.agentDir(), "loop/"+r.Plan.Session)
		if err != nil {
			warnings = append(warnings, "bd ready failed: "+err.Error())
		}
		beadsEmpty = err == nil && n == 0
	}
	entry.Decision, entry.Reason = decide(ir.sp, ir.it, ir.max, decideInput{
		succeeded: succeeded, failures: failures, vote: entry.Plateau, prevVote: prevVote,
		statusDecision: status.Decision, statusReason: status.Reason,
		completionSignal: run.sig.Complete, beadsEmpty: beadsEmpty, parallel: ir.parallel,
	})
	j := judged{entry: entry, status: status}
	j.ask = status.Decision == DecisionAsk && entry.Decision == DecisionContinue && !ir.parallel
	j.entry.Warning = truncate(strings.Join(j.decisionWarnings(warnings, failures, ir.parallel), "; "), 1000)
	return j
}

// warnings are what went wrong around the agent's run: status.json's
// problem, the agent's, and the output file's.
func (run agentRun) warnings(statusWarning string) []string {
	warnings := []string{}
	if statusWarning != "" {
		warnings = append(warnings, statusWarning)
	}
	if run.out.Problem != "" {
		warnings = append(warnings, run.out.Problem)
	}
	if run.sinkErr != nil {
		warnings = append(warnings, "output.md incomplete: "+run.sinkErr.Error())
	}
	if run.sig.OutputCapped {
		warnings = append(warnings, fmt.Sprintf("output was %d bytes; output.md keeps its head and tail", run.sig.OutputBytes))
	}
	return warnings
}

// decisionWarnings adds to warnings what the decision needs explained:
// the failure streak, the agent's own error (first), a question that
// cannot be asked.
func (j judged) decisionWarnings(warnings []string, failures int, parallel bool) []string {
	e := j.entry
	if e.Decision == DecisionError && e.Reason == ReasonAgentFailures {
		warnings = append(warnings, fmt.Sprintf("%d consecutive agent failures", failures))
	}
	if e.Decision == DecisionError && e.Reason == ReasonAgentError {
		warnings = append([]string{"the agent reported an error: " + first(j.status.Reason, j.status.Summary, "(no reason given)")}, warnings...)
	}
	if j.status.Decision == DecisionAsk && !j.ask && e.Decision != DecisionError {
		warnings = append(warnings, askIgnored(parallel))
	}
	return warnings
}

// recordIteration writes result.json, records iteration_complete (and the
// question, if the agent asked one), counts the spend and prints the
// iteration's line.
func (r *Runner) recordIteration(ir iterRun, run agentRun, j judged) error {
	entry, sp, out := j.entry, ir.sp, run.out
	res := iterationResult{
		Session: r.Plan.Session, Stage: sp.Name, StageIndex: ir.i, Iteration: ir.it, Provider: sp.Provider, Model: sp.Model,
		StartedAt: run.started.UTC(), CompletedAt: entry.Timestamp, DurationMS: entry.DurationMS, ExitCode: out.ExitCode,
		TimedOut: out.TimedOut, Decision: entry.Decision, Reason: entry.Reason, Plateau: entry.Plateau,
		Reasoning: entry.Reasoning, CompletionFound: run.sig.Complete, StatusDecision: j.status.Decision,
		CostUSD: out.CostUSD, InputTokens: out.InputTokens, OutputTokens: out.OutputTokens,
		OutputBytes: run.sig.OutputBytes, OutputTruncated: run.sig.OutputCapped, Warning: entry.Warning,
		Changes: run.changes,
		Failure: entry.Failure,
	}
	resJSON, _ := json.MarshalIndent(res, "", "  ")
	if err := writeWhole(ir.files.Result, append(resJSON, '\n')); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	if err := r.record(state.Event{Type: state.EventIterationDone, StageIndex: ir.i, Stage: sp.Name, Iteration: ir.it, Data: state.MustData(entry)}); err != nil {
		return err
	}
	r.addSpend(entry.CostUSD)
	if j.ask {
		if err := r.askAfter(ir.i, ir.it, j.status); err != nil {
			return err
		}
	}
	r.printf("%s%s iteration %d %s · %.1fs · exit %d%s%s%s\n", ir.label, mark(entry), ir.it, entry.Decision, run.elapsed.Seconds(), out.ExitCode,
		voteText(sp, entry), changesText(run.changes), warnText(entry.Warning))
	return nil
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
