package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// Guardrail reasons and decisions (SPEC §15).
const (
	ReasonBudget      = "budget"
	ReasonMaxRuntime  = "max_runtime"
	ReasonMaxPark     = "max_park"
	ReasonDailyBudget = "daily_budget"
	// DecisionAsk is status.json's question to the user.
	DecisionAsk = "ask"
	// DecisionPark marks an attempt that ran into a usage or rate limit:
	// it is not recorded as an iteration, the same iteration runs again.
	DecisionPark = "park"
)

// Backoff bounds for parks without a reset time (rate limits, overload).
const (
	DefaultBackoffBase = time.Minute
	MaxBackoff         = 30 * time.Minute
	// BackoffBaseEnv shortens the first backoff (tests; default 1m).
	BackoffBaseEnv = "AGENT_SESSIONS_BACKOFF_BASE"
	// DefaultAnswerPoll is how often a waiting engine looks for answer.json.
	DefaultAnswerPoll = 500 * time.Millisecond
)

// GateAction is what a Gate decides before an iteration.
type GateAction int

// Gate actions.
const (
	GateGo   GateAction = iota // run the iteration
	GateStop                   // end the session complete, with Reason
	GatePark                   // run no agent until Until, for Reason
	GateWait                   // run no agent until Question is answered
)

// Verdict is a Gate's decision.
type Verdict struct {
	Action   GateAction
	Reason   string
	Until    time.Time
	Question *state.Question
	// Shared is set when the park came from another session's host-wide
	// park (it need not be written again).
	Shared bool
}

// GateInput is what a Gate looks at.
type GateInput struct {
	State state.State
	Stage StagePlan
	Now   time.Time
}

// Gate is consulted before every iteration: go, stop with a reason, park
// until a time, or wait for an answer.
type Gate interface {
	Before(in GateInput) Verdict
}

// Guardrails is the Gate of SPEC §15: the session's budget and runtime,
// its open question, the host's daily budget and provider parks.
type Guardrails struct {
	// HostDir holds host-wide parks and the spend ledger ("" : none).
	HostDir        string
	DailyBudgetUSD float64
}

// Before implements Gate.
func (g Guardrails) Before(in GateInput) Verdict {
	st, sp := in.State, in.Stage
	if sp.MaxCostUSD > 0 && st.Cost.USD >= sp.MaxCostUSD {
		return Verdict{Action: GateStop, Reason: ReasonBudget}
	}
	if sp.MaxRuntime > 0 && in.Now.Sub(st.StartedAt) >= sp.MaxRuntime {
		return Verdict{Action: GateStop, Reason: ReasonMaxRuntime}
	}
	if st.Question != nil {
		return Verdict{Action: GateWait, Question: st.Question}
	}
	if g.HostDir == "" {
		return Verdict{Action: GateGo}
	}
	if g.DailyBudgetUSD > 0 {
		if spent, err := state.SpendOn(g.HostDir, in.Now); err == nil && spent >= g.DailyBudgetUSD {
			return Verdict{Action: GatePark, Reason: ReasonDailyBudget, Until: state.NextLocalDay(in.Now), Shared: true}
		}
	}
	if p, ok := state.ParkActive(g.HostDir, sp.Provider, in.Now); ok {
		reason := p.Reason
		if p.BySession != "" && p.BySession != st.Session {
			reason += " (" + sp.Provider + ", hit by session " + p.BySession + ")"
		}
		return Verdict{Action: GatePark, Reason: reason, Until: p.Until, Shared: true}
	}
	return Verdict{Action: GateGo}
}

// parkCause is why an attempt parks the session instead of failing.
type parkCause struct {
	until  time.Time
	reason string // the failure kind: usage_limit, rate_limit, overloaded
	shared bool   // already host-wide (a gate park), nothing to write
	cost   state.ParkData
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) gate() Gate {
	if r.Gate != nil {
		return r.Gate
	}
	return Guardrails{HostDir: r.HostDir, DailyBudgetUSD: r.DailyBudgetUSD}
}

// guard consults the gate before an iteration of stage i and carries out
// what it says. ok means the iteration may run; otherwise end says how the
// session ends (a stop ends it whatever stages remain).
func (r *Runner) guard(ctx context.Context, i, it int) (end stageEnd, ok bool) {
	for {
		if ctx.Err() != nil {
			return killedBy(ctx), false
		}
		st := r.Store.State()
		sp := r.Plan.Stages[i]
		v := r.gate().Before(GateInput{State: st, Stage: sp, Now: r.now()})
		switch v.Action {
		case GateGo:
			return stageEnd{}, true
		case GateStop:
			r.printf("■ %s\n", stopText(v.Reason, st, sp))
			return stageEnd{status: state.StatusComplete, reason: v.Reason, final: true}, false
		case GateWait:
			if end, ok := r.waitForAnswer(ctx, i, *v.Question); !ok {
				return end, false
			}
		case GatePark:
			if end, ok := r.park(ctx, i, it, parkCause{until: v.Until, reason: v.Reason, shared: v.Shared}); !ok {
				return end, false
			}
		}
	}
}

func stopText(reason string, st state.State, sp StagePlan) string {
	switch reason {
	case ReasonBudget:
		return fmt.Sprintf("budget reached: $%.4f spent of the $%.2f cap (max_cost_usd); the session ends here", st.Cost.USD, sp.MaxCostUSD)
	case ReasonMaxRuntime:
		return fmt.Sprintf("max_runtime %s reached (started %s); the session ends here", sp.MaxRuntime, st.StartedAt.Local().Format("15:04:05"))
	}
	return "stopping: " + reason
}

// maxPark is how long stage i's session may be parked in all.
func (r *Runner) maxPark(i int) time.Duration {
	if d := r.Plan.Stages[i].MaxPark; d > 0 {
		return d
	}
	if r.DefaultMaxPark > 0 {
		return r.DefaultMaxPark
	}
	return DefaultMaxPark
}

// runtimeLeft is how long the session may still run (ok false: no cap).
func (r *Runner) runtimeLeft(i int) (time.Duration, bool) {
	sp := r.Plan.Stages[i]
	if sp.MaxRuntime <= 0 {
		return 0, false
	}
	return sp.MaxRuntime - r.now().Sub(r.Store.State().StartedAt), true
}

// park records a park, sleeps it out (a kill ends it at once) and records
// the end of it. The engine keeps its lock and starts no agent meanwhile.
func (r *Runner) park(ctx context.Context, i, it int, c parkCause) (stageEnd, bool) {
	sp := r.Plan.Stages[i]
	st := r.Store.State()
	wait := c.until.Sub(r.now())
	limit := r.maxPark(i)
	// The daily budget's park is the user's own pause until tomorrow, not
	// a wall the provider put up: max_park does not count it.
	counted := c.reason != ReasonDailyBudget
	if parked := time.Duration(st.ParkedSeconds * float64(time.Second)); counted && parked+wait > limit {
		return stageEnd{status: state.StatusFailed, reason: ReasonMaxPark, err: fmt.Sprintf(
			"%s until %s would keep the session parked %s in all, past max_park %s; resume it after then (or raise max_park)",
			c.reason, c.until.Local().Format("2006-01-02 15:04:05"), (parked + wait).Round(time.Second), limit)}, false
	}
	// Shared first: the sooner other engines see the wall, the fewer
	// agents they start into it.
	if !c.shared && r.HostDir != "" {
		p := state.Park{Provider: sp.Provider, Until: c.until.UTC(), Reason: c.reason, BySession: r.Plan.Session, ProjectDir: r.controlDir(), Since: r.now().UTC()}
		if err := state.WritePark(r.HostDir, p); err != nil {
			r.printf("■ could not share the park with other sessions on this host: %v\n", err)
		}
	}
	data := c.cost
	data.Until, data.Reason, data.Provider = c.until.UTC(), c.reason, sp.Provider
	if err := r.record(state.Event{Type: state.EventSessionParked, StageIndex: i, Stage: sp.Name, Iteration: it, Data: state.MustData(data)}); err != nil {
		return r.failEngine(err), false
	}
	r.addSpend(data.CostUSD)
	until := c.until
	r.notify(NotifyParked, c.reason, "", &until)
	r.printf("■ parked (%s) until %s; no agent runs meanwhile, then iteration %d runs again\n", c.reason, c.until.Local().Format("2006-01-02 15:04:05"), it)
	if left, capped := r.runtimeLeft(i); capped && left < wait {
		wait = left // the gate then ends the session at max_runtime
	}
	began := r.now()
	if err := sleepCtx(ctx, wait); err != nil {
		return killedBy(ctx), false
	}
	var d state.UnparkData
	if counted {
		d.Seconds = r.now().Sub(began).Seconds()
	}
	if err := r.record(state.Event{Type: state.EventSessionUnparked, StageIndex: i, Stage: sp.Name, Iteration: it, Data: state.MustData(d)}); err != nil {
		return r.failEngine(err), false
	}
	r.printf("■ unparked\n")
	return stageEnd{}, true
}

// parkAfter turns an attempt that ran into a usage or rate limit into a
// park: until the provider's reset time, else a backoff of 1, 2, 4 … ≤ 30
// minutes (from BackoffBase) over the parks since the last iteration.
func (r *Runner) parkAfter(entry state.HistoryEntry) parkCause {
	now := r.now()
	kind, resetsAt, retryAfter := entry.Reason, (*time.Time)(nil), 0.0
	if f := entry.Failure; f != nil {
		resetsAt, retryAfter = f.ResetsAt, f.RetryAfterSeconds
	}
	c := parkCause{reason: kind, cost: state.ParkData{Kind: kind, CostUSD: entry.CostUSD, InputTokens: entry.InputTokens, OutputTokens: entry.OutputToks}}
	if resetsAt != nil && resetsAt.After(now) {
		c.until = *resetsAt
		return c
	}
	base := r.BackoffBase
	if base <= 0 {
		base = backoffBaseFromEnv()
	}
	streak := min(r.Store.State().ParkStreak, 16)
	wait := min(time.Duration(float64(base)*math.Pow(2, float64(streak))), MaxBackoff)
	if ra := time.Duration(retryAfter * float64(time.Second)); ra > wait {
		wait = min(ra, MaxBackoff)
	}
	c.until = now.Add(wait)
	return c
}

func backoffBaseFromEnv() time.Duration {
	if d, err := time.ParseDuration(os.Getenv(BackoffBaseEnv)); err == nil && d > 0 {
		return d
	}
	return DefaultBackoffBase
}

// waitForAnswer records that the session waits for an answer to q (unless
// it already says so), then polls answer.json until the answer comes, the
// session is killed or its max_runtime passes.
func (r *Runner) waitForAnswer(ctx context.Context, i int, q state.Question) (stageEnd, bool) {
	if r.Store.State().Status != state.StatusWaiting {
		if err := r.recordQuestion(i, q); err != nil {
			return r.failEngine(err), false
		}
	}
	r.printf("■ waiting for an answer (no agent runs meanwhile): %s\n", q.Question)
	if len(q.Options) > 0 {
		r.printf("■ options: %s\n", strings.Join(q.Options, " · "))
	}
	poll := r.AnswerPoll
	if poll <= 0 {
		poll = DefaultAnswerPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	warned := false
	for {
		a, found, err := state.ReadAnswer(r.layout)
		switch {
		case err != nil && !warned:
			r.printf("■ answer.json unusable (%v); waiting for a good one\n", err)
			warned = true
		case found && a.StageIndex == q.StageIndex && a.Iteration == q.Iteration && strings.TrimSpace(a.Answer) != "":
			return r.takeAnswer(i, q, a)
		}
		if left, capped := r.runtimeLeft(i); capped && left <= 0 {
			return stageEnd{}, true // the gate ends the session at max_runtime
		}
		select {
		case <-ctx.Done():
			return killedBy(ctx), false
		case <-t.C:
		}
	}
}

// recordQuestion records that the session waits for q and tells the user.
func (r *Runner) recordQuestion(i int, q state.Question) error {
	sp := r.Plan.Stages[q.StageIndex]
	if err := r.record(state.Event{Type: state.EventSessionWaiting, StageIndex: q.StageIndex, Stage: sp.Name, Iteration: q.Iteration, Data: state.MustData(q)}); err != nil {
		return err
	}
	r.notify(NotifyWaiting, "", q.Question, nil)
	return nil
}

// takeAnswer records the answer, appends question and answer to the
// progress file (the agents' memory) and removes answer.json.
func (r *Runner) takeAnswer(i int, q state.Question, a state.AnswerFile) (stageEnd, bool) {
	sp := r.Plan.Stages[q.StageIndex]
	ev := state.Event{Type: state.EventSessionAnswered, StageIndex: q.StageIndex, Stage: sp.Name, Iteration: q.Iteration, Data: state.MustData(state.AnswerData{Answer: a.Answer})}
	if err := r.record(ev); err != nil {
		return r.failEngine(err), false
	}
	note := fmt.Sprintf("\n### Question from iteration %d (%s)\n%s\n\n**Answer** (%s): %s\n", q.Iteration, sp.Name, q.Question,
		r.now().Format("2006-01-02 15:04"), a.Answer)
	if err := state.AppendFile(r.progressFile(i), []byte(note)); err != nil {
		r.printf("■ could not add the answer to the progress file: %v\n", err)
	}
	os.Remove(r.layout.AnswerPath())
	r.printf("■ answered: %s\n", truncate(firstLineOf(a.Answer), 200))
	return stageEnd{}, true
}

// askAfter handles an iteration whose status.json asked a question: the
// session then waits before its next iteration (the gate sees the
// question). A stale answer.json from an earlier question goes first.
func (r *Runner) askAfter(i, it int, status agentStatus) error {
	os.Remove(r.layout.AnswerPath())
	q := state.Question{Question: status.Question, Options: status.Options, StageIndex: i, Iteration: it, AskedAt: r.now().UTC()}
	return r.recordQuestion(i, q)
}

// addSpend adds an iteration's cost to the host's ledger for the daily
// budget; a ledger that cannot be written is said, never fatal.
func (r *Runner) addSpend(usd float64) {
	if usd <= 0 || r.HostDir == "" {
		return
	}
	e := state.SpendEntry{TS: r.now(), Session: r.Plan.Session, ProjectDir: r.controlDir(), USD: usd}
	if err := state.AddSpend(r.HostDir, e); err != nil {
		r.printf("■ could not add $%.4f to this host's spend ledger: %v\n", usd, err)
	}
}

// budgetLeft is what remains of stage i's spending cap (0: no cap).
func (r *Runner) budgetLeft(sp StagePlan) float64 {
	if sp.MaxCostUSD <= 0 {
		return 0
	}
	return math.Max(sp.MaxCostUSD-r.Store.State().Cost.USD, 0.0001)
}

// budgetArg formats --max-budget-usd: never 0, which the CLI would read
// as no budget left at all.
func budgetArg(usd float64) string {
	return strconv.FormatFloat(math.Max(math.Round(usd*1e4)/1e4, 0.0001), 'f', -1, 64)
}

func (r *Runner) notify(event, reason, question string, until *time.Time) {
	if r.Notifier == nil {
		return
	}
	st := r.Store.State()
	r.Notifier.Send(NotifyEvent{Event: event, Session: r.Plan.Session, ProjectDir: r.controlDir(), Status: st.Status,
		Reason: reason, Question: question, CostUSD: st.Cost.USD, ParkedUntil: until})
}

// parkKind says whether an outcome ran into a usage or rate limit (or an
// overloaded API): such an attempt parks the session instead of counting as
// a failed iteration (SPEC §15).
func parkKind(out Outcome) (string, bool) {
	if out.Failure == nil {
		return "", false
	}
	switch out.Failure.Kind {
	case state.FailureUsageLimit, state.FailureRateLimit, state.FailureOverloaded:
		return out.Failure.Kind, true
	}
	return "", false
}

// checkQuestion validates a status.json that asks: a question is needed,
// options are optional.
func checkQuestion(s agentStatus) (agentStatus, string) {
	s.Question = strings.TrimSpace(s.Question)
	if s.Question == "" {
		s.Decision = ""
		return s, `status.json decision "ask" without a "question" (ignored)`
	}
	if len(s.Question) > state.AnswerLimit {
		s.Question = truncate(s.Question, state.AnswerLimit)
	}
	if len(s.Options) > 20 {
		s.Options = s.Options[:20]
	}
	return s, ""
}

func askIgnored(parallel bool) string {
	if parallel {
		return "the agent asked a question, but a parallel run cannot wait for an answer (ignored)"
	}
	return "the agent asked a question on the stage's last iteration; no iteration is left to receive the answer (ignored)"
}

// parkedAttempt records an attempt that ran into a usage or rate limit in
// its result.json and hands it back marked DecisionPark; it is not an
// iteration (no iteration_complete), so the same iteration runs again.
func (r *Runner) parkedAttempt(sp StagePlan, i, it int, files state.IterationFiles, out Outcome, kind string, started time.Time, elapsed time.Duration) (state.HistoryEntry, bool, error) {
	entry := state.HistoryEntry{
		Iteration: it, Stage: sp.Name, StageIndex: i, Timestamp: time.Now().UTC(), Decision: DecisionPark, Reason: kind,
		ExitCode: out.ExitCode, DurationMS: elapsed.Milliseconds(), CostUSD: out.CostUSD, InputTokens: out.InputTokens,
		OutputToks: out.OutputTokens, Warning: truncate(out.Problem, 1000), Failure: out.Failure,
	}
	res := iterationResult{
		Session: r.Plan.Session, Stage: sp.Name, StageIndex: i, Iteration: it, Provider: sp.Provider, Model: sp.Model,
		StartedAt: started.UTC(), CompletedAt: entry.Timestamp, DurationMS: entry.DurationMS, ExitCode: out.ExitCode,
		Decision: DecisionPark, Reason: kind, CostUSD: out.CostUSD, InputTokens: out.InputTokens, OutputTokens: out.OutputTokens,
		Warning: entry.Warning, Failure: out.Failure,
	}
	resJSON, _ := json.MarshalIndent(res, "", "  ")
	if err := writeWhole(files.Result, append(resJSON, '\n')); err != nil {
		return state.HistoryEntry{}, false, fmt.Errorf("write result: %w", err)
	}
	r.printf("⏸ iteration %d ran into a limit (%s) · %.1fs · it does not count as a failure\n", it, kind, elapsed.Seconds())
	return entry, false, nil
}

// notifyEnd tells the user how the session ended: "budget" for a session
// its spending cap ended, else its status.
func (r *Runner) notifyEnd(res Result) {
	event := res.Status
	if res.Status == state.StatusComplete && res.Reason == ReasonBudget {
		event = NotifyBudget
	}
	r.notify(event, strings.TrimSpace(res.Reason+" "+res.Err), "", nil)
}

// ResumableComplete reports whether a session that completed for reason
// may be resumed: one a guardrail stopped (budget, max_runtime) goes on
// when resumed with a higher cap.
func ResumableComplete(reason string) bool {
	return reason == ReasonBudget || reason == ReasonMaxRuntime
}
