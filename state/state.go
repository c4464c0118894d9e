package state

import (
	"encoding/json"
	"errors"
	"fmt"
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
	SchemaVersion      int            `json:"schema_version"`
	Session            string         `json:"session"`
	Type               string         `json:"type"` // "loop" or "pipeline"
	Stage              string         `json:"stage,omitempty"`
	Pipeline           string         `json:"pipeline,omitempty"`
	StartedAt          time.Time      `json:"started_at"`
	ResumedAt          *time.Time     `json:"resumed_at"`
	Status             string         `json:"status"`
	Iteration          int            `json:"iteration"`
	IterationCompleted int            `json:"iteration_completed"`
	IterationStarted   *time.Time     `json:"iteration_started"`
	CurrentStage       int            `json:"current_stage"` // 0-based index into Stages
	MaxIterations      int            `json:"max_iterations"`
	Stages             []StageState   `json:"stages"`
	History            []HistoryEntry `json:"history"`
	CompletedAt        *time.Time     `json:"completed_at"`
	CompletionReason   string         `json:"completion_reason"`
	Error              string         `json:"error"`
	ProjectDir         string         `json:"project_dir"`
	TmuxSession        string         `json:"tmux_session"`
	Provider           string         `json:"provider"`
	Model              string         `json:"model"`
	Cost               Cost           `json:"cost"`
	// EventSeq is the sequence number of the last event applied; events
	// with a higher number are newer than this snapshot.
	EventSeq int64 `json:"event_seq"`
	// Spec is everything needed to resume, written by the engine.
	Spec json.RawMessage `json:"spec"`
}

// StageState is one stage of a session.
type StageState struct {
	Name          string     `json:"name"`
	Status        string     `json:"status"`
	Iterations    int        `json:"iterations"` // completed iterations
	MaxIterations int        `json:"max_iterations"`
	Parallel      bool       `json:"parallel,omitempty"`
	Completed     []int      `json:"completed,omitempty"` // parallel stages: which runs have finished
	Failed        []int      `json:"failed,omitempty"`    // parallel stages: finished runs that failed (a resume runs them again)
	StartedAt     *time.Time `json:"started_at"`
	CompletedAt   *time.Time `json:"completed_at"`
	Reason        string     `json:"reason"`
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
	cause := err
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
