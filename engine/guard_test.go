package engine

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// bgSession runs a session in the background; the returned function waits
// for it and returns its result and transcript.
func bgSession(t *testing.T, ctx context.Context, o RunOptions) func() (Result, string) {
	t.Helper()
	type ended struct {
		res Result
		out string
		err error
	}
	done := make(chan ended, 1)
	go func() {
		res, out, err := tryRunSession(ctx, o)
		done <- ended{res, out, err}
	}()
	return func() (Result, string) {
		t.Helper()
		select {
		case e := <-done:
			if e.err != nil {
				t.Fatalf("Run(%s): %v\n%s", o.Session, e.err, e.out)
			}
			return e.res, e.out
		case <-time.After(60 * time.Second):
			t.Fatalf("session %s did not end", o.Session)
		}
		return Result{}, ""
	}
}

// waitStatus polls state.json until the session's status is want.
func waitStatus(t *testing.T, project, session, want string) state.State {
	t.Helper()
	l := state.NewLayout(project, session)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if st, _, err := state.Load(l); err == nil && st.Status == want {
			return st
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, _, err := state.Load(l)
	t.Fatalf("session %s never became %s (now %s, %v)", session, want, st.Status, err)
	return st
}

func eventTypes(evs []state.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	return out
}

func hasEvent(evs []state.Event, typ string) bool {
	for _, ev := range evs {
		if ev.Type == typ {
			return true
		}
	}
	return false
}

// guardOptions is a session of stage name in project with host state of
// its own, a fast answer poll and cfg.
func guardOptions(t *testing.T, project, session, stage string, cfg Config, env ...string) RunOptions {
	return RunOptions{Session: session, Stage: stage, ProjectDir: project, Env: agentEnv(env...),
		Config: &cfg, HostDir: filepath.Join(project, "host"), AnswerPoll: 10 * time.Millisecond}
}

// TestAskWaitReply: an agent asks; the session waits (no agent runs); the
// answer arrives through answer.json; the next prompt has it as ${ANSWER};
// the progress file records both; kill while waiting and resume keep the
// question.
func TestAskWaitReply(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	prompts := t.TempDir()
	writeStage(t, project, "asker", commandStage("fixed-n", "status-agent", "max_iterations: 3"),
		"iteration ${ITERATION}; answer: [${ANSWER}]\n")
	o := guardOptions(t, project, "ask", "asker", Config{}, "STATUS_DECISION=ask", "STATUS_AT=1",
		"STATUS_QUESTION=Postgres or SQLite?", `STATUS_OPTIONS=["postgres","sqlite"]`, "FAKE_AGENT_PROMPT_DIR="+prompts)

	ctx, cancel := context.WithCancel(context.Background())
	wait := bgSession(t, ctx, o)
	st := waitStatus(t, project, "ask", state.StatusWaiting)
	if st.Question == nil || st.Question.Question != "Postgres or SQLite?" || len(st.Question.Options) != 2 || st.Question.Iteration != 1 {
		t.Fatalf("question in state: %+v", st.Question)
	}
	// Killed while waiting: the question survives for the resume.
	cancel()
	res, _ := wait()
	if res.Status != state.StatusKilled {
		t.Fatalf("killed while waiting: %+v", res)
	}
	if st := loadState(t, project, "ask"); st.Question == nil || st.IterationCompleted != 1 {
		t.Fatalf("after the kill: question %+v, iteration_completed %d", st.Question, st.IterationCompleted)
	}

	o.Mode = ModeResume
	wait = bgSession(t, context.Background(), o)
	st = waitStatus(t, project, "ask", state.StatusWaiting)
	if _, err := os.Stat(filepath.Join(prompts, "prompt-ask-asker-2.txt")); err == nil {
		t.Fatal("an agent ran while the session waited for an answer")
	}
	l := state.NewLayout(project, "ask")
	// An answer to another question is not taken.
	state.WriteAnswer(l, state.AnswerFile{StageIndex: 0, Iteration: 7, Answer: "wrong"})
	time.Sleep(50 * time.Millisecond)
	if st := loadState(t, project, "ask"); st.Status != state.StatusWaiting {
		t.Fatalf("an answer to another question was taken: %s", st.Status)
	}
	if err := state.WriteAnswer(l, state.AnswerFile{StageIndex: 0, Iteration: 1, Answer: "postgres, version 16"}); err != nil {
		t.Fatal(err)
	}
	res, out := wait()
	if res.Status != state.StatusComplete {
		t.Fatalf("after the answer: %+v\n%s", res, out)
	}
	p2 := readFile(t, filepath.Join(prompts, "prompt-ask-asker-2.txt"))
	if !strings.Contains(p2, "answer: [postgres, version 16]") {
		t.Errorf("iteration 2's prompt lacks the answer: %q", p2)
	}
	if p3 := readFile(t, filepath.Join(prompts, "prompt-ask-asker-3.txt")); !strings.Contains(p3, "answer: []") {
		t.Errorf("the answer reached iteration 3 too: %q", p3)
	}
	progress := readFile(t, l.ProgressFile())
	if !strings.Contains(progress, "Postgres or SQLite?") || !strings.Contains(progress, "postgres, version 16") {
		t.Errorf("progress file lacks question and answer:\n%s", progress)
	}
	if _, err := os.Stat(l.AnswerPath()); err == nil {
		t.Error("answer.json left behind")
	}
	evs := readEvents(t, project, "ask")
	if !hasEvent(evs, state.EventSessionWaiting) || !hasEvent(evs, state.EventSessionAnswered) {
		t.Errorf("events: %v", eventTypes(evs))
	}
	if got := completedIterations(evs); !equalInts(got, seq(3)) {
		t.Errorf("iterations %v, want 1..3", got)
	}
}

// TestAskIgnored: a question without text, or on the last iteration, is
// a warning, not a wait.
func TestAskIgnored(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "asker", commandStage("fixed-n", "status-agent", "max_iterations: 1"), "go\n")
	o := guardOptions(t, project, "ask-last", "asker", Config{}, "STATUS_DECISION=ask", "STATUS_QUESTION=anything?")
	res, _ := runSession(t, context.Background(), o)
	if res.Status != state.StatusComplete {
		t.Fatalf("%+v", res)
	}
	if st := loadState(t, project, "ask-last"); st.Question != nil || !strings.Contains(st.History[0].Warning, "last iteration") {
		t.Errorf("question %+v, warning %q", st.Question, st.History[0].Warning)
	}
	o = guardOptions(t, project, "ask-empty", "asker", Config{}, "STATUS_DECISION=ask", "STATUS_REASON=no question")
	runSession(t, context.Background(), o)
	if st := loadState(t, project, "ask-empty"); !strings.Contains(st.History[0].Warning, "without a \"question\"") {
		t.Errorf("warning %q", st.History[0].Warning)
	}
}

// TestHostParkParksOtherSessions: a provider park written host-wide by one
// session parks another about to spawn that provider; it runs when the park
// ends, with nothing counted as a failure. A park of another provider does
// not hold it.
func TestHostParkParksOtherSessions(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	log := filepath.Join(t.TempDir(), "agent.log")
	writeStage(t, project, "s", commandStage("fixed-n", "echo-agent", "max_iterations: 2"), "hi\n")
	o := guardOptions(t, project, "parked", "s", Config{}, "FAKE_AGENT_LOG="+log)
	until := time.Now().Add(1500 * time.Millisecond)
	if err := state.WritePark(o.HostDir, state.Park{Provider: "codex", Until: until.Add(time.Hour), Reason: "usage_limit"}); err != nil {
		t.Fatal(err)
	}
	if err := state.WritePark(o.HostDir, state.Park{Provider: ProviderCommand, Until: until, Reason: "usage_limit", BySession: "other"}); err != nil {
		t.Fatal(err)
	}
	wait := bgSession(t, context.Background(), o)
	st := waitStatus(t, project, "parked", state.StatusParked)
	if st.ParkedUntil == nil || !st.ParkedUntil.Equal(until) || !strings.Contains(st.ParkedReason, "usage_limit") || !strings.Contains(st.ParkedReason, "other") {
		t.Fatalf("parked state: until %v (want %v), reason %q", st.ParkedUntil, until, st.ParkedReason)
	}
	if runs := agentRuns(t, log); len(runs) != 0 {
		t.Fatalf("an agent ran while parked: %v", runs)
	}
	res, out := wait()
	if res.Status != state.StatusComplete {
		t.Fatalf("%+v\n%s", res, out)
	}
	st = loadState(t, project, "parked")
	if failedCount(st) != 0 || st.ParkedUntil != nil || st.ParkedSeconds <= 0 {
		t.Errorf("after the park: failed %d, parked_until %v, parked_seconds %v", failedCount(st), st.ParkedUntil, st.ParkedSeconds)
	}
	evs := readEvents(t, project, "parked")
	if !hasEvent(evs, state.EventSessionParked) || !hasEvent(evs, state.EventSessionUnparked) {
		t.Errorf("events %v", eventTypes(evs))
	}
}

// TestParkKillAndMaxPark: kill while parked ends the session at once; a
// park longer than max_park fails it, saying when to resume.
func TestParkKillAndMaxPark(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "s", commandStage("fixed-n", "echo-agent", "max_iterations: 2"), "hi\n")
	writeStage(t, project, "short", commandStage("fixed-n", "echo-agent", "max_iterations: 2", "max_park: 30m"), "hi\n")
	o := guardOptions(t, project, "kp", "s", Config{})
	if err := state.WritePark(o.HostDir, state.Park{Provider: ProviderCommand, Until: time.Now().Add(time.Hour), Reason: "rate_limit"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := bgSession(t, ctx, o)
	waitStatus(t, project, "kp", state.StatusParked)
	cancel()
	if res, _ := wait(); res.Status != state.StatusKilled {
		t.Fatalf("killed while parked: %+v", res)
	}
	if st := loadState(t, project, "kp"); st.Status != state.StatusKilled || st.ParkedUntil != nil {
		t.Errorf("after the kill: %s, parked_until %v", st.Status, st.ParkedUntil)
	}

	o = guardOptions(t, project, "mp", "short", Config{})
	o.HostDir = filepath.Join(project, "host") // the same host: the hour-long park holds
	res, _ := runSession(t, context.Background(), o)
	if res.Status != state.StatusFailed || res.Reason != ReasonMaxPark || !strings.Contains(res.Err, "max_park 30m0s") {
		t.Fatalf("a park past max_park: %+v", res)
	}
}

// TestDailyBudgetParks: when this host spent its daily budget today, a
// session parks until the local day turns.
func TestDailyBudgetParks(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "s", commandStage("fixed-n", "echo-agent", "max_iterations: 1"), "hi\n")
	o := guardOptions(t, project, "daily", "s", Config{DailyBudgetUSD: 2})
	state.AddSpend(o.HostDir, state.SpendEntry{TS: time.Now(), Session: "earlier", USD: 2.5})
	ctx, cancel := context.WithCancel(context.Background())
	wait := bgSession(t, ctx, o)
	st := waitStatus(t, project, "daily", state.StatusParked)
	if st.ParkedReason != ReasonDailyBudget || st.ParkedUntil == nil || !st.ParkedUntil.Equal(state.NextLocalDay(time.Now()).UTC()) {
		t.Errorf("daily budget park: %q until %v", st.ParkedReason, st.ParkedUntil)
	}
	cancel()
	wait()
}

// costlyProvider is an agent that reports a cost per run and records the
// claude argv each run would have had.
type costlyProvider struct {
	cost  float64
	mu    sync.Mutex
	argvs []string
}

func (p *costlyProvider) Argv(sp StagePlan) []string { return claudeArgv(sp) }

func (p *costlyProvider) Run(ctx context.Context, c Call) Outcome {
	p.mu.Lock()
	p.argvs = append(p.argvs, strings.Join(claudeArgv(c.Stage), " "))
	p.mu.Unlock()
	c.Output.Write([]byte("spent\n"))
	return Outcome{CostUSD: p.cost}
}

// TestBudgetStopsSession: spend is checked before every iteration; at the
// cap the session completes with reason budget, having spent at most one
// iteration past it, and claude is told what is left.
func TestBudgetStopsSession(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "paid", "completion: fixed-n\nprovider: mock\nmax_iterations: 10\ndelay: 0\nmax_cost_usd: 1\n", "work\n")
	notified := filepath.Join(t.TempDir(), "notify.jsonl")
	cfg := Config{Notify: []string{agentPath("notify-sink"), notified}}
	o := guardOptions(t, project, "paid", "paid", cfg)
	agent := &costlyProvider{cost: 0.4}
	o.NewProvider = func(string) (Provider, error) { return agent, nil }
	res, out := runSession(t, context.Background(), o)
	if res.Status != state.StatusComplete || res.Reason != ReasonBudget {
		t.Fatalf("%+v\n%s", res, out)
	}
	st := loadState(t, project, "paid")
	if st.IterationCompleted != 3 || st.Cost.USD > 1+0.4+1e-9 || st.MaxCostUSD != 1 {
		t.Errorf("iterations %d, spent %v of cap %v", st.IterationCompleted, st.Cost.USD, st.MaxCostUSD)
	}
	for k, want := range []string{"--max-budget-usd 1", "--max-budget-usd 0.6", "--max-budget-usd 0.2"} {
		if k >= len(agent.argvs) || !strings.HasSuffix(agent.argvs[k], want) {
			t.Errorf("claude call %d: %v, want %s", k+1, agent.argvs, want)
		}
	}
	spent, _ := state.SpendOn(o.HostDir, time.Now())
	if math.Abs(spent-1.2) > 1e-9 {
		t.Errorf("host ledger says %v spent today, want 1.2", spent)
	}
	evs := readNotifications(t, notified)
	if len(evs) != 1 || evs[0].Event != NotifyBudget || evs[0].Session != "paid" || evs[0].Host == "" || math.Abs(evs[0].CostUSD-1.2) > 1e-9 {
		t.Errorf("notifications: %+v", evs)
	}
	// Resumed with a higher cap, it goes on to the new cap.
	o.Mode = ModeResume
	o.Compile.MaxCostUSD = ptr(2.0)
	res, _ = runSession(t, context.Background(), o)
	if st := loadState(t, project, "paid"); res.Reason != ReasonBudget || st.IterationCompleted != 5 || st.MaxCostUSD != 2 {
		t.Errorf("resumed with cap 2: %+v, %d iterations, cap %v", res, st.IterationCompleted, st.MaxCostUSD)
	}
}

func ptr[T any](v T) *T { return &v }

// TestMaxRuntimeStopsSession: past max_runtime no iteration starts.
func TestMaxRuntimeStopsSession(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "slow", commandStage("fixed-n", "sleep-agent", "max_iterations: 50", "max_runtime: 300ms"), "hi\n")
	o := guardOptions(t, project, "slow", "slow", Config{}, "SLEEP_SECONDS=0.4")
	res, out := runSession(t, context.Background(), o)
	if res.Status != state.StatusComplete || res.Reason != ReasonMaxRuntime {
		t.Fatalf("%+v\n%s", res, out)
	}
	if st := loadState(t, project, "slow"); st.IterationCompleted < 1 || st.IterationCompleted >= 50 {
		t.Errorf("iterations %d", st.IterationCompleted)
	}
	// Resumed with a longer max_runtime it goes on.
	o.Mode = ModeResume
	o.Compile.MaxRuntime = time.Hour
	o.Compile.Max = 2
	res, out = runSession(t, context.Background(), o)
	if res.Status != state.StatusComplete || res.Reason == ReasonMaxRuntime {
		t.Fatalf("resumed with a longer max_runtime: %+v\n%s", res, out)
	}
}

// TestNotifyCommand: the notify command gets one JSON object per event on
// stdin; a broken command is logged and changes nothing.
func TestNotifyCommand(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "s", commandStage("fixed-n", "status-agent", "max_iterations: 2"), "hi\n")
	notified := filepath.Join(t.TempDir(), "notify.jsonl")
	cfg := Config{Notify: []string{agentPath("notify-sink"), notified}}
	o := guardOptions(t, project, "nt", "s", cfg, "STATUS_DECISION=ask", "STATUS_AT=1", "STATUS_QUESTION=ok?")
	wait := bgSession(t, context.Background(), o)
	waitStatus(t, project, "nt", state.StatusWaiting)
	state.WriteAnswer(state.NewLayout(project, "nt"), state.AnswerFile{Iteration: 1, Answer: "yes"})
	if res, _ := wait(); res.Status != state.StatusComplete {
		t.Fatalf("%+v", res)
	}
	evs := readNotifications(t, notified)
	if len(evs) != 2 || evs[0].Event != NotifyWaiting || evs[0].Question != "ok?" || evs[1].Event != NotifyComplete || evs[1].ProjectDir != project {
		t.Errorf("notifications: %+v", evs)
	}

	for _, broken := range [][]string{{filepath.Join(project, "no-such-notifier")}, {agentPath("fail-agent")}} {
		o := guardOptions(t, project, "nb", "s", Config{Notify: broken})
		o.Mode = ModeForce
		res, out := runSession(t, context.Background(), o)
		if res.Status != state.StatusComplete || !strings.Contains(out, "notify command") {
			t.Errorf("broken notify %v: %+v\n%s", broken, res, out)
		}
	}
}

// TestNotificationsInOrder: a notify command slow on one event does not let
// the next overtake it (a "complete" arrived before its "waiting" when each
// event had a goroutine of its own).
func TestNotificationsInOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "events.jsonl")
	slow := filepath.Join(dir, "slow-sink")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\nev=$(cat)\ncase \"$ev\" in *'\"waiting\"'*) sleep 0.3 ;; esac\nprintf '%s\\n' \"$ev\" >> \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	n := &Notifier{Command: []string{slow, out}, Log: t.Logf}
	events := []string{NotifyWaiting, NotifyComplete, NotifyParked, NotifyKilled}
	for _, e := range events {
		n.Send(NotifyEvent{Event: e, Session: "s"})
	}
	n.Wait()
	got := readNotifications(t, out)
	var order []string
	for _, ev := range got {
		order = append(order, ev.Event)
	}
	if !slices.Equal(order, events) {
		t.Errorf("delivered %v, want %v", order, events)
	}
}

func readNotifications(t *testing.T, path string) []NotifyEvent {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	var out []NotifyEvent
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var ev NotifyEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("notification %q: %v", line, err)
		}
		out = append(out, ev)
	}
	return out
}

func failedCount(st state.State) int {
	n := 0
	for _, h := range st.History {
		if h.ExitCode != 0 {
			n++
		}
	}
	return n
}

// fakeClaudeProviders runs the claude provider with the fake claude.
func fakeClaudeProviders(name string) (Provider, error) {
	if name == ProviderClaude {
		return claudeProvider{bin: agentPath("claude")}, nil
	}
	return NewProvider(name)
}

// TestUsageLimitParks: a usage limit with a reset time is not a failure:
// the session parks until the reset (shared host-wide), then runs the same
// iteration again and completes with no failure counted.
func TestUsageLimitParks(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "paid", "completion: fixed-n\nprovider: claude\nmax_iterations: 2\ndelay: 0\n", "work\n")
	reset := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	once := filepath.Join(t.TempDir(), "failed-once")
	o := guardOptions(t, project, "ul", "paid", Config{}, "FAKE_CLAUDE_FAIL=usage_limit", "FAKE_CLAUDE_FAIL_ONCE="+once,
		"FAKE_CLAUDE_RESETS_AT="+strconv.FormatInt(reset.Unix(), 10))
	o.NewProvider = fakeClaudeProviders
	wait := bgSession(t, context.Background(), o)
	st := waitStatus(t, project, "ul", state.StatusParked)
	if st.ParkedUntil == nil || !st.ParkedUntil.Equal(reset) || st.ParkedReason != state.FailureUsageLimit || st.IterationCompleted != 0 {
		t.Errorf("parked until %v (%q) after %d iterations, want the reset %v", st.ParkedUntil, st.ParkedReason, st.IterationCompleted, reset)
	}
	if p, ok := state.ParkActive(o.HostDir, ProviderClaude, time.Now()); !ok || p.BySession != "ul" || !p.Until.Equal(reset) {
		t.Errorf("host-wide park = %+v, %v", p, ok)
	}
	res, out := wait()
	if res.Status != state.StatusComplete {
		t.Fatalf("%+v\n%s", res, out)
	}
	st = loadState(t, project, "ul")
	if st.FailedIterations != 0 || st.IterationCompleted != 2 || failedCount(st) != 0 {
		t.Errorf("failed %d, iterations %d", st.FailedIterations, st.IterationCompleted)
	}
	if got := completedIterations(readEvents(t, project, "ul")); !equalInts(got, seq(2)) {
		t.Errorf("iterations %v", got)
	}
	// The attempt that ran into the limit is kept aside, with its result.
	attempts, _ := filepath.Glob(state.NewLayout(project, "ul").Iteration(0, "paid", 1).Dir + ".attempt-*")
	if len(attempts) != 1 || !strings.Contains(readFile(t, filepath.Join(attempts[0], "result.json")), `"decision": "park"`) {
		t.Errorf("attempts kept: %v", attempts)
	}
}

// TestRateLimitBackoff: a 429 without a reset parks for the backoff, the
// iteration runs again; a max_park shorter than the backoff fails it.
func TestRateLimitBackoff(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "paid", "completion: fixed-n\nprovider: claude\nmax_iterations: 1\ndelay: 0\n", "work\n")
	o := guardOptions(t, project, "rl", "paid", Config{}, "FAKE_CLAUDE_FAIL=api", "FAKE_CLAUDE_API_STATUS=429",
		"FAKE_CLAUDE_API_TYPE=rate_limit_error", "FAKE_CLAUDE_FAIL_ONCE="+filepath.Join(t.TempDir(), "once"))
	o.NewProvider = fakeClaudeProviders
	o.BackoffBase = 200 * time.Millisecond
	res, out := runSession(t, context.Background(), o)
	if res.Status != state.StatusComplete || !strings.Contains(out, "parked (rate_limit)") {
		t.Fatalf("%+v\n%s", res, out)
	}
	if st := loadState(t, project, "rl"); st.FailedIterations != 0 || st.ParkedSeconds <= 0 {
		t.Errorf("failed %d, parked %v s", st.FailedIterations, st.ParkedSeconds)
	}
}

// TestClaudeGetsWhatIsLeft: the claude CLI is run with --max-budget-usd
// set to what remains of the cap.
func TestClaudeGetsWhatIsLeft(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	log := filepath.Join(t.TempDir(), "claude.log")
	writeStage(t, project, "paid", "completion: fixed-n\nprovider: claude\nmax_iterations: 5\ndelay: 0\nmax_cost_usd: 0.02\n", "work\n")
	o := guardOptions(t, project, "left", "paid", Config{}, "FAKE_CLAUDE_COST=0.0123", "FAKE_AGENT_LOG="+log)
	o.NewProvider = fakeClaudeProviders
	res, out := runSession(t, context.Background(), o)
	if res.Reason != ReasonBudget {
		t.Fatalf("%+v\n%s", res, out)
	}
	args := agentArgs(t, log)
	if len(args) != 2 || !strings.HasSuffix(args[0], "--max-budget-usd 0.02") || !strings.HasSuffix(args[1], "--max-budget-usd 0.0077") {
		t.Errorf("claude argv: %q", args)
	}
}

// TestGuardrailsBefore: the gate's decisions, most final first.
func TestGuardrailsBefore(t *testing.T) {
	t.Parallel()
	now := time.Now()
	host := t.TempDir()
	g := Guardrails{HostDir: host, DailyBudgetUSD: 10}
	state.WritePark(host, state.Park{Provider: "claude", Until: now.Add(time.Hour), Reason: "usage_limit", BySession: "other"})
	q := &state.Question{Question: "why?"}
	sp := StagePlan{Provider: "claude", MaxCostUSD: 2, MaxRuntime: time.Hour}
	for _, tc := range []struct {
		name   string
		st     state.State
		sp     StagePlan
		action GateAction
		reason string
	}{
		{"budget first", state.State{Cost: state.Cost{USD: 2}, Question: q, StartedAt: now}, sp, GateStop, ReasonBudget},
		{"then max_runtime", state.State{StartedAt: now.Add(-2 * time.Hour), Question: q}, sp, GateStop, ReasonMaxRuntime},
		{"then the question", state.State{StartedAt: now, Question: q}, sp, GateWait, ""},
		{"then the provider's park", state.State{StartedAt: now, Session: "me"}, sp, GatePark, "usage_limit (claude, hit by session other)"},
		{"another provider goes", state.State{StartedAt: now}, StagePlan{Provider: "codex"}, GateGo, ""},
	} {
		v := g.Before(GateInput{State: tc.st, Stage: tc.sp, Now: now})
		if v.Action != tc.action || v.Reason != tc.reason {
			t.Errorf("%s: %+v, want action %d reason %q", tc.name, v, tc.action, tc.reason)
		}
	}
	state.AddSpend(host, state.SpendEntry{TS: now, USD: 10})
	if v := g.Before(GateInput{State: state.State{StartedAt: now}, Stage: StagePlan{Provider: "codex"}, Now: now}); v.Action != GatePark || v.Reason != ReasonDailyBudget {
		t.Errorf("daily budget spent: %+v", v)
	}
}
