package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// SchemaVersion is the version of state.json and events.jsonl written by
// this build.
const SchemaVersion = 1

// HistoryLimit is how many iterations state.json keeps; events.jsonl keeps
// all of them. Bounding it keeps every state write O(1) in the session's age.
const HistoryLimit = 100

// Session statuses written to state.json.
const (
	StatusRunning  = "running"
	StatusComplete = "complete"
	StatusFailed   = "failed"
	StatusKilled   = "killed"
	// StatusWaiting: the engine waits for an answer to an agent's question
	// (SPEC §15); no agent runs.
	StatusWaiting = "waiting"
	// StatusParked: a usage or rate limit (or the daily budget) holds the
	// session until parked_until; no agent runs, the engine keeps its lock.
	StatusParked = "parked"
)

// Stage statuses.
const (
	StagePending  = "pending"
	StageRunning  = "running"
	StageComplete = "complete"
	StageFailed   = "failed"
	StageKilled   = "killed"
)

// State is the content of state.json. It keeps every field of the original
// bash engine's state file and adds what resuming and monitoring need.
type State struct {
	SchemaVersion      int          `json:"schema_version"`
	Session            string       `json:"session"`
	Type               string       `json:"type"` // "loop" or "pipeline"
	Stage              string       `json:"stage,omitempty"`
	Pipeline           string       `json:"pipeline,omitempty"`
	StartedAt          time.Time    `json:"started_at"`
	ResumedAt          *time.Time   `json:"resumed_at"`
	Status             string       `json:"status"`
	Iteration          int          `json:"iteration"`
	IterationCompleted int          `json:"iteration_completed"`
	IterationStarted   *time.Time   `json:"iteration_started"`
	CurrentStage       int          `json:"current_stage"` // 0-based index into Stages
	MaxIterations      int          `json:"max_iterations"`
	Stages             []StageState `json:"stages"`
	CompletedAt        *time.Time   `json:"completed_at"`
	CompletionReason   string       `json:"completion_reason"`
	Error              string       `json:"error"`
	ProjectDir         string       `json:"project_dir"`
	TmuxSession        string       `json:"tmux_session"`
	Provider           string       `json:"provider"`
	Model              string       `json:"model"`
	Cost               Cost         `json:"cost"`
	// MaxCostUSD is the session's spending cap (0: none), kept in the head
	// so list can show spend beside it without reading the spec.
	MaxCostUSD float64 `json:"max_cost_usd,omitempty"`
	// ParkedUntil, ParkedReason and ParkedAt describe the park in force
	// (status parked); ParkedSeconds sums the parks that ended, for
	// max_park; ParkStreak counts parks since the last completed
	// iteration, for the backoff.
	ParkedUntil   *time.Time `json:"parked_until,omitempty"`
	ParkedReason  string     `json:"parked_reason,omitempty"`
	ParkedAt      *time.Time `json:"parked_at,omitempty"`
	ParkedSeconds float64    `json:"parked_seconds,omitempty"`
	ParkStreak    int        `json:"park_streak,omitempty"`
	// Question is the agent's question waiting for an answer; Answer is
	// the answer given, kept until the iteration that receives it as
	// ${ANSWER} completes.
	Question *Question `json:"question,omitempty"`
	Answer   *Answer   `json:"answer,omitempty"`
	// Changes sums the iterations' change records (git projects only).
	Changes *ChangeTotals `json:"changes,omitempty"`
	// FailedIterations counts the iterations whose agent failed, over all
	// stages, so a session that completed despite some says so.
	FailedIterations int `json:"failed_iterations,omitempty"`
	// EventSeq is the sequence number of the last event applied; events
	// with a higher number are newer than this snapshot. It is the last
	// field of the head (see LoadSummary).
	EventSeq int64 `json:"event_seq"`

	// History and Spec must stay the last two fields, in this order: they
	// are most of the file (100 entries and the whole plan), so state.json
	// writes them last and LoadSummary reads only what precedes them.

	History []HistoryEntry `json:"history"`
	// Spec is everything needed to resume, written by the engine.
	Spec json.RawMessage `json:"spec"`
}

// StageState is one stage of a session.
type StageState struct {
	Name          string `json:"name"`
	Status        string `json:"status"`
	Iterations    int    `json:"iterations"` // completed iterations
	MaxIterations int    `json:"max_iterations"`
	Parallel      bool   `json:"parallel,omitempty"`
	Completed     []int  `json:"completed,omitempty"` // parallel stages: which runs have finished
	Failed        []int  `json:"failed,omitempty"`    // parallel stages: finished runs that failed (a resume runs them again)
	// FailedIterations counts this stage's iterations whose agent failed.
	FailedIterations int        `json:"failed_iterations,omitempty"`
	StartedAt        *time.Time `json:"started_at"`
	CompletedAt      *time.Time `json:"completed_at"`
	Reason           string     `json:"reason"`
}

// HistoryEntry records one completed iteration.
type HistoryEntry struct {
	Iteration   int       `json:"iteration"`
	Stage       string    `json:"stage"`
	StageIndex  int       `json:"stage_index"`
	Timestamp   time.Time `json:"timestamp"`
	Plateau     bool      `json:"plateau"`
	Reasoning   string    `json:"reasoning"`
	Decision    string    `json:"decision"` // continue, stop or error
	Reason      string    `json:"reason,omitempty"`
	ExitCode    int       `json:"exit_code"`
	DurationMS  int64     `json:"duration_ms"`
	CostUSD     float64   `json:"cost_usd,omitempty"`
	InputTokens int64     `json:"input_tokens,omitempty"`
	OutputToks  int64     `json:"output_tokens,omitempty"`
	Warning     string    `json:"warning,omitempty"`
	// Changes is the iteration's change record in a git project; in
	// state.json without the commit list.
	Changes *Changes `json:"changes,omitempty"`
	// Failure says how the agent failed, when it did and the provider knew.
	Failure *Failure `json:"failure,omitempty"`
}

// Failure kinds: how an agent invocation failed (SPEC §13). The guardrails
// park on usage_limit and rate_limit; the others are iteration failures.
const (
	FailureAPIError   = "api_error"        // the model API refused the request (4xx/5xx)
	FailureUsageLimit = "usage_limit"      // a subscriber's usage limit was reached
	FailureRateLimit  = "rate_limit"       // 429: too many requests for now
	FailureOverloaded = "overloaded"       // 529 (or 5xx): the API is overloaded
	FailureBudget     = "budget_exhausted" // --max-budget-usd was spent
	FailureAuth       = "auth"             // 401/403: the credentials were refused
	FailureTimeout    = "timeout"          // the iteration timeout stopped the agent
	FailureStart      = "start"            // the agent could not be started
	FailureExit       = "exit"             // the agent exited non-zero (or ended without a result)
)

// Failure is a classified agent failure, recorded in result.json and the
// iteration_complete event.
type Failure struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	// Status is the API's HTTP status when there was one.
	Status int `json:"status,omitempty"`
	// ResetsAt is when a usage or rate limit lifts, when the provider said.
	ResetsAt *time.Time `json:"resets_at,omitempty"`
	// RetryAfterSeconds is the provider's suggested wait, when it gave one.
	RetryAfterSeconds float64 `json:"retry_after_seconds,omitempty"`
}

// Question is an agent's question to the user (status.json decision ask).
type Question struct {
	Question   string    `json:"question"`
	Options    []string  `json:"options,omitempty"`
	StageIndex int       `json:"stage_index"`
	Iteration  int       `json:"iteration"` // the iteration that asked
	AskedAt    time.Time `json:"asked_at"`
}

// Answer is the user's answer to a Question.
type Answer struct {
	Question   string    `json:"question"`
	Answer     string    `json:"answer"`
	StageIndex int       `json:"stage_index"`
	Iteration  int       `json:"iteration"` // the iteration that asked
	AnsweredAt time.Time `json:"answered_at"`
}

// Cost is the accumulated spend of a session as the agents reported it.
type Cost struct {
	USD          float64 `json:"usd"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
}

// Clone returns a deep copy of s, safe to hand to another goroutine.
func (s State) Clone() State {
	c := s
	c.Stages = append([]StageState(nil), s.Stages...)
	for i := range c.Stages {
		c.Stages[i].Completed = append([]int(nil), s.Stages[i].Completed...)
		c.Stages[i].Failed = append([]int(nil), s.Stages[i].Failed...)
	}
	if s.Question != nil {
		q := *s.Question
		q.Options = append([]string(nil), q.Options...)
		c.Question = &q
	}
	if s.Answer != nil {
		a := *s.Answer
		c.Answer = &a
	}
	c.History = append([]HistoryEntry(nil), s.History...)
	c.Spec = append(json.RawMessage(nil), s.Spec...)
	return c
}

// LastEntry returns the most recent history entry of stage index idx.
func (s *State) LastEntry(idx int) (HistoryEntry, bool) {
	for i := len(s.History) - 1; i >= 0; i-- {
		if s.History[i].StageIndex == idx {
			return s.History[i], true
		}
	}
	return HistoryEntry{}, false
}

// Terminal reports whether the status is one a session ends in.
func Terminal(status string) bool {
	return status == StatusComplete || status == StatusFailed || status == StatusKilled
}

// Active reports whether a status is one an engine holds a session in:
// running, waiting for an answer, or parked.
func Active(status string) bool {
	return status == StatusRunning || status == StatusWaiting || status == StatusParked
}

// ErrNoState means a session has neither a readable state.json nor an
// events.jsonl to rebuild one from.
var ErrNoState = errors.New("no state")

// LoadResult says how a state was obtained.
type LoadResult struct {
	// Rebuilt is set when state.json was missing or corrupt and the state
	// was rebuilt from events.jsonl.
	Rebuilt bool
	// Cause is why state.json could not be used, when Rebuilt.
	Cause error
	// Skipped counts unreadable lines in events.jsonl that were ignored.
	Skipped int
}

// Load reads a session's state without modifying anything. A missing or
// corrupt state.json is rebuilt in memory from events.jsonl.
func Load(l Layout) (State, LoadResult, error) {
	st, err := readStateFile(l.StateFile())
	if err == nil {
		return st, LoadResult{}, nil
	}
	return rebuildFromEvents(l, err)
}

// LoadSummary reads a session's state without its History and Spec (left
// nil): everything list, the orphan reminder and the classifier look at.
// It is what makes listing dozens of long-running sessions cheap: the
// history and the spec are most of state.json (tens of KB on a long
// session), and state.json writes them last, so the summary is the head of
// the file, decoded without scanning the rest. A file of another layout (an
// older build wrote history in the middle), a corrupt or a missing one is
// read in full, with Load's rebuild from events.jsonl.
func LoadSummary(l Layout) (State, LoadResult, error) {
	st, err := readSummary(l.StateFile())
	if err == nil {
		return st, LoadResult{}, nil
	}
	var res LoadResult
	if !errors.Is(err, errNotHead) {
		st, res, err = rebuildFromEvents(l, err)
	} else if st, err = readStateFile(l.StateFile()); err != nil {
		st, res, err = rebuildFromEvents(l, err)
	}
	st.History, st.Spec = nil, nil
	return st, res, err
}

// headChunk is how much of a large state.json readSummary reads: the head
// is 1-2 KB (a little more per pipeline stage); reading the whole file
// (tens of KB on a long session) cost more than decoding the head.
const headChunk = 16 << 10

// errNotHead means the file does not have this build's layout, or its head
// is unreadable: read it in full.
var errNotHead = errors.New("state.json head unusable")

// readSummary reads the head of state.json (the whole file when small) and
// its last bytes, from one open file (so from one version of it), and
// decodes the head.
func readSummary(path string) (State, error) {
	f, err := os.Open(path)
	if err != nil {
		return State{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return State{}, err
	}
	size := fi.Size()
	n := min(size, headChunk)
	buf := make([]byte, n, n+16)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return State{}, err
	}
	tail := buf
	if size > n {
		tail = buf[n : n+16]
		if _, err := f.ReadAt(tail, size-16); err != nil {
			return State{}, err
		}
	}
	if st, ok := decodeHead(buf, tail); ok {
		return st, nil
	}
	return State{}, errNotHead
}

// decodeHead decodes the fields of state.json before "history", when the
// file has this build's layout: history and spec last, after event_seq.
// prefix is the start of the file, tail its last bytes. A key can only
// appear as `"history":` outside a string (inside one its quotes are
// escaped), and no object nested in the head has that key, so the first
// match is the top-level key.
//
// The rest of the file is not parsed, so damage inside it goes unnoticed
// here (Load, which monitor and resume use, still rebuilds from
// events.jsonl). A file cut short — what a torn write looks like — does
// not end with '}' and is read in full. state.json is only ever replaced
// atomically, so neither happens short of damage from outside.
func decodeHead(prefix, tail []byte) (State, bool) {
	if !bytes.HasSuffix(bytes.TrimRight(tail, " \t\r\n"), []byte("}")) {
		return State{}, false
	}
	i := bytes.Index(prefix, []byte(`"history":`))
	if i < 0 {
		return State{}, false
	}
	head := bytes.TrimRight(prefix[:i], " \t\r\n")
	head, ok := bytes.CutSuffix(head, []byte(","))
	// event_seq is the last field before history; in the older layout it
	// came after history, with other fields the summary needs.
	if !ok || !bytes.Contains(head, []byte(`"event_seq":`)) {
		return State{}, false
	}
	var st State
	if err := json.Unmarshal(append(head[:len(head):len(head)], '}'), &st); err != nil {
		return State{}, false
	}
	if st.Session == "" || st.Status == "" {
		return State{}, false
	}
	return st, true
}

func rebuildFromEvents(l Layout, cause error) (State, LoadResult, error) {
	// Below, state.json's problem (cause) is said but not wrapped: the
	// events' error is the one to test — wrapping a missing state.json's
	// fs.ErrNotExist too would read as "no such session".
	events, skipped, eerr := ReadEvents(l.EventsFile())
	if eerr != nil {
		if errors.Is(eerr, fs.ErrNotExist) && errors.Is(cause, fs.ErrNotExist) {
			return State{}, LoadResult{}, fmt.Errorf("session %s in %s: %w", l.Session, l.ProjectDir, ErrNoState)
		}
		return State{}, LoadResult{}, fmt.Errorf("state.json unusable (%v) and events.jsonl unreadable: %w", cause, eerr)
	}
	rebuilt, err := Rebuild(events)
	if err != nil {
		return State{}, LoadResult{}, fmt.Errorf("state.json unusable (%v) and cannot rebuild from events.jsonl: %w", cause, err)
	}
	return rebuilt, LoadResult{Rebuilt: true, Cause: cause, Skipped: skipped}, nil
}

func readStateFile(path string) (State, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return State{}, err
	}
	return decodeState(path, data)
}

func decodeState(path string, data []byte) (State, error) {
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return State{}, fmt.Errorf("%s is corrupt: %w", path, err)
	}
	if st.Session == "" || st.Status == "" {
		return State{}, fmt.Errorf("%s is corrupt: no session or status", path)
	}
	return st, nil
}

// Rebuild replays events into a state. It is the same reducer the live
// engine uses, so a rebuilt state equals the one that was lost.
func Rebuild(events []Event) (State, error) {
	var st State
	for i, ev := range events {
		if i == 0 && ev.Type != EventSessionStart {
			return State{}, fmt.Errorf("first event is %q, want %q", ev.Type, EventSessionStart)
		}
		if err := Apply(&st, ev); err != nil {
			return State{}, err
		}
	}
	if st.Session == "" {
		return State{}, errors.New("no session_start event")
	}
	return st, nil
}

// CatchUp reconciles st with events.jsonl the way Open does for a resume:
// the log is the commit point and state.json is replaced after it, so an
// engine killed between the two leaves a state.json one step behind (say,
// "running" while the log already says complete). Callers about to judge a
// session crashed ask this first. It reads the log only when its last line
// is newer than st; history is kept only when st had it.
func CatchUp(l Layout, st State) (State, bool, error) {
	last, err := lastEventSeq(l.EventsFile())
	if err != nil || last <= st.EventSeq {
		return st, false, err
	}
	events, _, err := ReadEvents(l.EventsFile())
	if err != nil {
		return st, false, err
	}
	// A summary (LoadSummary) has neither history nor spec, and stays one.
	// A full state before its first completed iteration has no history
	// either, but it has its spec: judging by the history alone dropped the
	// spec, and a resume of the caught-up state had nothing to resume from.
	full := st.History != nil || st.Spec != nil
	out := st.Clone()
	for _, ev := range events {
		if ev.Seq > out.EventSeq {
			if err := Apply(&out, ev); err != nil {
				return st, false, err
			}
		}
	}
	if !full {
		out.History, out.Spec = nil, nil
	}
	return out, true, nil
}

// lastEventSeq reads the sequence number of the last complete line of an
// events log, looking only at its tail.
func lastEventSeq(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return 0, err
	}
	const tail = 16 << 10
	off := max(fi.Size()-tail, 0)
	buf := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	lines := bytes.Split(bytes.TrimRight(buf, "\n"), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		var ev struct {
			Seq int64 `json:"seq"`
		}
		if json.Unmarshal(lines[i], &ev) == nil && ev.Seq > 0 {
			return ev.Seq, nil
		}
	}
	return 0, nil
}
