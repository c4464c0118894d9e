package tools

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/state"
)

// Wait kinds of monitor.
const (
	WaitNone      = sessions.WaitNone
	WaitIteration = sessions.WaitIteration
	WaitComplete  = sessions.WaitComplete
)

// Limits of monitor's output. Claude reads the whole answer, so by
// default it is a glance (budget 2.5 KB); a caller who asks for lines gets
// exactly those lines.
const (
	excerptLimit      = 400
	progressTailLimit = 400
)

// MonitorArgs are monitor's arguments.
type MonitorArgs struct {
	Session        string `json:"session" jsonschema:"session name"`
	Lines          int    `json:"lines,omitempty" jsonschema:"exactly this many last lines of output (default: up to 15 lines, about 1 KB; at most 2000)"`
	Wait           string `json:"wait,omitempty" jsonschema:"none (default): answer now; iteration: block until the next iteration completes; complete: block until the session ends"`
	TimeoutSeconds int    `json:"timeout_seconds,omitempty" jsonschema:"how long a wait may block (default 300, at most 600); the answer then says the wait timed out"`
	ProjectDir     string `json:"project_dir,omitempty" jsonschema:"project of the session (default: the server's, else where its tmux session runs)"`
}

// IterationSummary describes the last completed iteration.
type IterationSummary struct {
	Iteration     int     `json:"iteration" jsonschema:"iteration number within its stage"`
	Stage         string  `json:"stage,omitempty" jsonschema:"multi-stage sessions: its stage"`
	Decision      string  `json:"decision" jsonschema:"continue, stop or error"`
	Reason        string  `json:"reason,omitempty" jsonschema:"why the stage stopped, when it did"`
	Plateau       bool    `json:"plateau,omitempty" jsonschema:"the agent voted that work has plateaued"`
	Reasoning     string  `json:"reasoning,omitempty" jsonschema:"the agent's REASONING line"`
	ExitCode      int     `json:"exit_code,omitempty" jsonschema:"agent exit code when not 0 (124 = timed out)"`
	DurationS     float64 `json:"duration_seconds" jsonschema:"how long the agent ran"`
	CostUSD       float64 `json:"cost_usd,omitempty" jsonschema:"what the iteration cost"`
	Warning       string  `json:"warning,omitempty" jsonschema:"anything that went wrong"`
	OutputExcerpt string  `json:"output_excerpt,omitempty" jsonschema:"the end of the agent's final text (its output.md in the run dir holds all of it)"`
}

// CostSummary is the spend so far.
type CostSummary struct {
	USD          float64 `json:"usd" jsonschema:"US dollars reported by the agents"`
	InputTokens  int64   `json:"input_tokens" jsonschema:"input tokens (including cache reads and writes)"`
	OutputTokens int64   `json:"output_tokens" jsonschema:"output tokens"`
}

// WaitOutcome says how a wait ended.
type WaitOutcome struct {
	Kind     string  `json:"kind" jsonschema:"the wait asked for"`
	Met      bool    `json:"met" jsonschema:"what was waited for happened"`
	TimedOut bool    `json:"timed_out,omitempty" jsonschema:"the timeout passed first"`
	Seconds  float64 `json:"seconds" jsonschema:"how long it waited"`
	// Paused: the wait returned because the session stopped running
	// agents meanwhile, for a question or a limit (SPEC §15).
	Paused state.Status `json:"paused,omitempty" jsonschema:"waiting (its agent asks the user something, see question: nothing moves until reply) or parked (it began waiting out a limit during the wait, until parked_until): the wait returned for it"`
	// EngineDied: the engine stopped without recording an end (crashed,
	// or its tmux session left as a zombie); a complete-wait is not met.
	EngineDied bool `json:"engine_died,omitempty" jsonschema:"the engine died without recording how the session ended (crashed); resume it with start_session mode resume"`
}

// MonitorResult is monitor's result: compact, since Claude reads all of it.
type MonitorResult struct {
	Session            string            `json:"session" jsonschema:"session name"`
	Status             state.Status      `json:"status" jsonschema:"classifier status: running, starting, complete, failed, killed, crashed, orphan, zombie or stale_lock"`
	Why                string            `json:"why,omitempty" jsonschema:"why it has that status, when the status alone does not say"`
	Type               string            `json:"type,omitempty" jsonschema:"loop or pipeline"`
	Definition         string            `json:"definition,omitempty" jsonschema:"stage or pipeline name"`
	Stage              string            `json:"stage,omitempty" jsonschema:"multi-stage sessions: current stage"`
	StageNumber        int               `json:"stage_number,omitempty" jsonschema:"multi-stage sessions: current stage, 1-based"`
	StageCount         int               `json:"stage_count,omitempty" jsonschema:"multi-stage sessions: number of stages"`
	Iteration          int               `json:"iteration,omitempty" jsonschema:"the iteration an agent is working on, while one is"`
	IterationCompleted int               `json:"iteration_completed" jsonschema:"iterations of the stage completed"`
	MaxIterations      int               `json:"max_iterations,omitempty" jsonschema:"iteration limit of the stage"`
	CompletionReason   string            `json:"completion_reason,omitempty" jsonschema:"why it ended"`
	Error              string            `json:"error,omitempty" jsonschema:"what it failed with"`
	Age                string            `json:"age,omitempty" jsonschema:"how long it has been running (or ran)"`
	Stale              bool              `json:"stale,omitempty" jsonschema:"running for more than 2 hours"`
	RecentOutput       string            `json:"recent_output,omitempty" jsonschema:"the last lines of output"`
	OutputSource       string            `json:"output_source,omitempty" jsonschema:"where recent_output came from: pane (the live tmux screen) or session.log (the transcript)"`
	LastIteration      *IterationSummary `json:"last_iteration,omitempty" jsonschema:"the last completed iteration"`
	ProgressTail       string            `json:"progress_tail,omitempty" jsonschema:"the end of the current progress file"`
	BeadsRemaining     *int              `json:"beads_remaining,omitempty" jsonschema:"beads-empty stages: ready beads left for this session"`
	Cost               *CostSummary      `json:"cost,omitempty" jsonschema:"spend so far, when the agents report it"`
	Changes            *ChangesSummary   `json:"changes,omitempty" jsonschema:"git projects: commits so far and the last iteration's change record"`
	Worktree           string            `json:"worktree,omitempty" jsonschema:"isolation worktree: where the agents work"`
	Branch             string            `json:"branch,omitempty" jsonschema:"isolation worktree: the session's branch"`
	FailedIterations   int               `json:"failed_iterations,omitempty" jsonschema:"iterations whose agent failed (present only when some did)"`
	MaxCostUSD         float64           `json:"max_cost_usd,omitempty" jsonschema:"its spending cap in US dollars, beside cost (absent: none)"`
	Question           string            `json:"question,omitempty" jsonschema:"waiting: the agent's question — put it to the user, then reply with their answer"`
	AnswerOptions      []string          `json:"answer_options,omitempty" jsonschema:"waiting: the answers the agent offered (the user may give another)"`
	ParkedUntil        string            `json:"parked_until,omitempty" jsonschema:"parked: when it goes on by itself (RFC 3339)"`
	ParkedReason       string            `json:"parked_reason,omitempty" jsonschema:"parked: why (usage_limit, rate_limit, overloaded, daily_budget)"`
	Warnings           []string          `json:"warnings,omitempty" jsonschema:"things that need attention"`
	Waited             *WaitOutcome      `json:"waited,omitempty" jsonschema:"how the wait ended, when one was asked for"`
	Containment        string            `json:"containment,omitempty" jsonschema:"how the engine contains its agents and all they start: cgroup (one cgroup v2 per agent, killed whole), subreaper (process-tree walk) or pgroup (process group and environment marker)"`
	ContainmentDetail  string            `json:"containment_detail,omitempty" jsonschema:"the session's cgroup, or why a weaker mechanism is in use"`
	RunDir             string            `json:"run_dir,omitempty" jsonschema:"run directory: state.json, session.log, stage-NN-name/iterations/NNN/output.md"`
	NextSteps          []Option          `json:"next_steps,omitempty" jsonschema:"calls to make next, with complete arguments"`

	// For the text and the tests, not sent: the status says it.
	Alive bool `json:"-"`
}

// Monitor is the monitor tool.
func Monitor(d *Deps) server.ServerTool {
	tool := mcp.NewTool("monitor",
		mcp.WithToolTitle("Monitor a session"),
		mcp.WithDescription("Peek at a session without attaching: status, stage and iteration, age (flagged stale past 2 hours), the recent output (live pane while running, session.log once finished), the last iteration's result and output excerpt, the progress file's tail, beads remaining for work stages, cost, and warnings. wait: iteration or complete blocks until that happens (or timeout_seconds), sending progress notifications when the call carries a progress token."),
		inputSchema[MonitorArgs](map[string]propPatch{
			"lines":           {Min: num(1), Max: num(2000)},
			"wait":            {Enum: []any{WaitNone, WaitIteration, WaitComplete}, Default: WaitNone},
			"timeout_seconds": {Default: 300, Min: num(1), Max: num(600)},
		}),
		outputSchema[MonitorResult](),
		annotations("Monitor a session", true, false, true, false),
	)
	return server.ServerTool{Tool: tool, Handler: typed(func(ctx context.Context, req mcp.CallToolRequest, a MonitorArgs) (MonitorResult, string, error) {
		return d.monitor(ctx, req, a, progressSender(ctx, req))
	})}
}

// progressSender returns a function sending notifications/progress for the
// request, or nil when the client gave no progress token.
func progressSender(ctx context.Context, req mcp.CallToolRequest) func(progress, total float64, msg string) {
	if req.Params.Meta == nil || req.Params.Meta.ProgressToken == nil {
		return nil
	}
	token := req.Params.Meta.ProgressToken
	srv := server.ServerFromContext(ctx)
	if srv == nil {
		return nil
	}
	return func(progress, total float64, msg string) {
		params := map[string]any{"progressToken": token, "progress": progress, "message": msg}
		if total > 0 {
			params["total"] = total
		}
		srv.SendNotificationToClient(ctx, string(mcp.MethodNotificationProgress), params)
	}
}

func (d *Deps) monitor(ctx context.Context, _ mcp.CallToolRequest, a MonitorArgs, progress func(float64, float64, string)) (MonitorResult, string, error) {
	if a.Lines < 0 || a.Lines > 2000 {
		return MonitorResult{}, "", invalidf("lines must be between 1 and 2000, got %d", a.Lines)
	}
	if a.Wait == "" {
		a.Wait = WaitNone
	}
	if a.Wait != WaitNone && a.Wait != WaitIteration && a.Wait != WaitComplete {
		return MonitorResult{}, "", invalidf("wait %q: use none, iteration or complete", a.Wait)
	}
	if a.TimeoutSeconds == 0 {
		a.TimeoutSeconds = 300
	}
	if a.TimeoutSeconds < 1 || a.TimeoutSeconds > 600 {
		return MonitorResult{}, "", invalidf("timeout_seconds must be between 1 and 600, got %d", a.TimeoutSeconds)
	}
	info, err := d.resolve(ctx, a.Session, a.ProjectDir)
	if err != nil {
		return MonitorResult{}, "", err
	}
	var waited *WaitOutcome
	busy := false
	if a.Wait != WaitNone {
		release, ok := d.takeWaitSlot()
		if !ok {
			busy, a.Wait = true, WaitNone
		} else {
			defer release()
		}
	}
	if a.Wait != WaitNone {
		var w sessions.Waited
		info, w, err = d.host().Wait(ctx, info, a.Wait, time.Duration(a.TimeoutSeconds)*time.Second, progress)
		if err != nil {
			return MonitorResult{}, "", toolError(err)
		}
		waited = &WaitOutcome{Kind: w.Kind, Met: w.Met, TimedOut: w.TimedOut, Seconds: w.Seconds, Paused: w.Paused, EngineDied: w.EngineDied}
	}
	res := snapshot(info, d.host().Look(ctx, info, a.Lines))
	res.Waited = waited
	if busy {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d monitor waits are already pending, the most at once, so this call did not wait and answers now; call again later, or once a pending wait returns", d.maxWaits()))
	}
	return res, monitorText(res), nil
}

// DefaultMaxWaits is how many monitor waits may be pending at once. The
// stdio server runs calls on 64 workers and a wait holds its worker for up
// to 10 minutes: with at most 32 waits, kill and every other short call
// always find a free worker instead of queueing behind waits.
const DefaultMaxWaits = 32

func (d *Deps) maxWaits() int {
	if d.MaxWaits > 0 {
		return d.MaxWaits
	}
	return DefaultMaxWaits
}

// takeWaitSlot reserves one of the wait slots; ok is false when all are
// taken. release gives it back.
func (d *Deps) takeWaitSlot() (release func(), ok bool) {
	d.waitsOnce.Do(func() { d.waits = make(chan struct{}, d.maxWaits()) })
	select {
	case d.waits <- struct{}{}:
		return func() { <-d.waits }, true
	default:
		return nil, false
	}
}

// snapshot builds monitor's answer from one inspection and one look.
func snapshot(info sessions.Info, v sessions.View) MonitorResult {
	sum := summarize(info)
	res := MonitorResult{
		Session: info.Name, Status: sum.Status, Alive: info.Lock.Held, Type: sum.Type, Definition: sum.Definition,
		IterationCompleted: sum.IterationCompleted, MaxIterations: sum.MaxIterations, CompletionReason: sum.CompletionReason,
		Error: sum.Error, Age: sum.Age, Stale: sum.Stale, RunDir: sum.RunDir,
		MaxCostUSD: sum.MaxCostUSD, ParkedUntil: sum.ParkedUntil, ParkedReason: sum.ParkedReason,
	}
	if info.State != nil && info.State.Question != nil {
		res.Question, res.AnswerOptions = info.State.Question.Question, info.State.Question.Options
	}
	switch sum.Status {
	case state.LiveRunning, state.LiveComplete, state.LiveKilled, state.LiveFailed:
	default:
		res.Why = sum.Why
	}
	if sum.StageCount > 1 {
		res.Stage, res.StageNumber, res.StageCount = sum.StageName, sum.StageNumber, sum.StageCount
	}
	if w := sessionWarning(sum); w != "" && sum.Status != state.LiveCrashed {
		res.Warnings = append(res.Warnings, w)
	}
	if info.TmuxErr != nil {
		res.Warnings = append(res.Warnings, "tmux did not answer (its server may be stopped or hung): no live pane; the status comes from the lock and state files")
	}
	if sc := v.Containment; sc != nil {
		res.Containment, res.ContainmentDetail = sc.Mechanism, first(sc.Cgroup, sc.Why)
	}
	if v.AgentsLeft > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the engine is gone but %d of its agent processes still run; kill, resume or cleanup mark_crashed stops them", v.AgentsLeft))
	}
	if info.Rebuilt {
		res.Warnings = append(res.Warnings, "state.json was missing or corrupt; this view was rebuilt from events.jsonl (the engine rewrites it on resume)")
	}
	res.RecentOutput, res.OutputSource = v.RecentOutput, v.OutputSource
	res.NextSteps = monitorNext(sum)
	if info.State != nil {
		snapshotState(&res, info, v)
	}
	return res
}

// snapshotState adds what the session's state says: the iteration in
// flight, cost, worktree, the last iteration, progress and beads.
func snapshotState(res *MonitorResult, info sessions.Info, v sessions.View) {
	st := info.State
	if info.Lock.Held && st.IterationStarted != nil {
		res.Iteration = st.Iteration
	}
	if st.Cost.USD > 0 || st.Cost.InputTokens > 0 {
		res.Cost = &CostSummary{USD: st.Cost.USD, InputTokens: st.Cost.InputTokens, OutputTokens: st.Cost.OutputTokens}
	}
	res.FailedIterations = st.FailedIterations
	if wt := sessions.WorktreeOf(st); wt.Dir != "" {
		res.Worktree, res.Branch = wt.Dir, wt.Branch
	}
	if n := len(st.History); n > 0 {
		h := st.History[n-1]
		res.LastIteration = lastIteration(h, len(st.Stages) > 1, v.LastOutput)
		res.Changes = changesSummary(st, v.LastChanges)
		if h.Warning != "" && h.Decision == engine.DecisionError {
			res.Warnings = append(res.Warnings, "last iteration: "+h.Warning)
		}
	}
	if v.ProgressTail != "" {
		res.ProgressTail, _ = sessions.TailText(v.ProgressTail, progressTailLimit)
	}
	switch {
	case v.Beads != nil:
		res.BeadsRemaining = v.Beads
	case v.BeadsErr != nil:
		res.Warnings = append(res.Warnings, "could not count beads: "+sessions.Truncate(v.BeadsErr.Error(), 300))
	}
}

func lastIteration(h state.HistoryEntry, multi bool, output string) *IterationSummary {
	li := &IterationSummary{Iteration: h.Iteration, Decision: h.Decision, Reason: h.Reason, Plateau: h.Plateau,
		Reasoning: sessions.Truncate(h.Reasoning, 200), ExitCode: h.ExitCode, DurationS: float64(h.DurationMS/100) / 10, CostUSD: h.CostUSD, Warning: sessions.Truncate(h.Warning, 300)}
	if multi {
		li.Stage = h.Stage
	}
	if output != "" {
		li.OutputExcerpt, _ = sessions.TailText(output, excerptLimit)
	}
	return li
}

// monitorNext are the calls that follow a look at a session.
func monitorNext(s Summary) []Option {
	name := map[string]any{"session": s.Session}
	switch s.Status {
	case state.LiveRunning, state.LiveStarting:
		return []Option{
			{Tool: "monitor", Arguments: map[string]any{"session": s.Session, "wait": WaitIteration}, Description: "wait for the next iteration"},
			{Tool: "kill", Arguments: name, Description: "stop it"},
		}
	case state.LiveCrashed, state.LiveFailed, state.LiveKilled:
		return []Option{{Tool: "start_session", Arguments: map[string]any{"session": s.Session, "mode": "resume"}, Description: "continue where it stopped"}}
	case state.LiveZombie, state.LiveOrphan:
		return []Option{{Tool: "kill", Arguments: name, Description: "close its tmux session"}}
	}
	return nil
}

func monitorText(r MonitorResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", r.Session, r.Status)
	if r.Definition != "" {
		fmt.Fprintf(&b, " · %s %s", r.Type, r.Definition)
	}
	if r.StageCount > 1 {
		fmt.Fprintf(&b, " · stage %d/%d %s", r.StageNumber, r.StageCount, r.Stage)
	}
	if r.MaxIterations > 0 {
		fmt.Fprintf(&b, " · iteration %d/%d done", r.IterationCompleted, r.MaxIterations)
		if r.Iteration > 0 {
			fmt.Fprintf(&b, " (iteration %d running)", r.Iteration)
		}
	}
	if r.Age != "" {
		fmt.Fprintf(&b, " · age %s", r.Age)
	}
	if r.Cost != nil && r.Cost.USD > 0 {
		fmt.Fprintf(&b, " · $%.4f", r.Cost.USD)
	}
	b.WriteString("\n")
	if r.CompletionReason != "" {
		fmt.Fprintf(&b, "Ended: %s", r.CompletionReason)
		if r.Error != "" {
			fmt.Fprintf(&b, " — %s", r.Error)
		}
		b.WriteString("\n")
	}
	if r.Waited != nil {
		b.WriteString(waitedText(r.Waited, r.Status))
	}
	if li := r.LastIteration; li != nil {
		fmt.Fprintf(&b, "Last iteration %d (%s): %s, exit %d, %.1fs", li.Iteration, li.Stage, li.Decision, li.ExitCode, li.DurationS)
		if li.Plateau {
			b.WriteString(", plateau vote")
		}
		if li.Reasoning != "" {
			fmt.Fprintf(&b, " — %s", li.Reasoning)
		}
		b.WriteString("\n")
	}
	if r.Worktree != "" {
		fmt.Fprintf(&b, "Worktree: %s · branch %s\n", r.Worktree, r.Branch)
	}
	if c := r.Changes; c != nil {
		b.WriteString(changesText(c))
	}
	if r.FailedIterations > 0 {
		fmt.Fprintf(&b, "Failed iterations: %d\n", r.FailedIterations)
	}
	if r.BeadsRemaining != nil {
		fmt.Fprintf(&b, "Beads remaining: %d\n", *r.BeadsRemaining)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "Warning: %s\n", w)
	}
	if r.Why != "" {
		fmt.Fprintf(&b, "Why: %s\n", r.Why)
	}
	if r.ProgressTail != "" {
		fmt.Fprintf(&b, "Progress (end):\n%s\n", r.ProgressTail)
	}
	if r.RecentOutput != "" {
		fmt.Fprintf(&b, "Recent output (%s):\n%s\n", r.OutputSource, r.RecentOutput)
	}
	for _, n := range r.NextSteps {
		fmt.Fprintf(&b, "Next: %s\n", callText(n))
	}
	return strings.TrimRight(b.String(), "\n")
}

// waitedText is the line saying how a wait ended.
func waitedText(w *WaitOutcome, status state.Status) string {
	switch {
	case w.EngineDied && !w.Met:
		return fmt.Sprintf("Waited %.0fs for %s: the engine died first (%s) without recording an end; resume it with start_session mode resume.\n", w.Seconds, w.Kind, status)
	case w.Met:
		return fmt.Sprintf("Waited %.0fs for %s: done.\n", w.Seconds, w.Kind)
	case w.TimedOut:
		return fmt.Sprintf("Waited %.0fs for %s: timed out; call monitor again to keep waiting.\n", w.Seconds, w.Kind)
	}
	return fmt.Sprintf("Waited %.0fs for %s: the session ended first.\n", w.Seconds, w.Kind)
}

// changesText is the line saying what the session's agents committed.
func changesText(c *ChangesSummary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Git: %d commit(s) this session", c.Commits)
	if c.Last != nil {
		fmt.Fprintf(&b, "; last iteration %d commit(s), %d file(s) +%d −%d", c.Last.CommitCount, c.Last.FilesChanged, c.Last.Insertions, c.Last.Deletions)
	}
	if c.Dirty {
		b.WriteString(", uncommitted changes")
	}
	return b.String() + "\n"
}
