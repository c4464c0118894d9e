package state

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Event types of events.jsonl (SPEC §5).
const (
	EventSessionStart     = "session_start"
	EventSessionResume    = "session_resume"
	EventStageStart       = "stage_start"
	EventIterationStart   = "iteration_start"
	EventIterationDone    = "iteration_complete"
	EventStageComplete    = "stage_complete"
	EventSessionComplete  = "session_complete"
	EventSessionFailed    = "session_failed"
	EventSessionKilled    = "session_killed"
	EventStaleLockRemoved = "stale_lock_removed"
	// SPEC §15: parks, questions and answers.
	EventSessionParked   = "session_parked"
	EventSessionUnparked = "session_unparked"
	EventSessionWaiting  = "session_waiting"
	EventSessionAnswered = "session_answered"
)

// Event is one line of events.jsonl.
type Event struct {
	Seq        int64           `json:"seq"`
	TS         time.Time       `json:"ts"`
	Type       string          `json:"type"`
	Session    string          `json:"session"`
	Stage      string          `json:"stage"`
	StageIndex int             `json:"stage_index"`
	Iteration  int             `json:"iteration"`
	Data       json.RawMessage `json:"data,omitempty"`
}

// SessionStartData is the data of a session_start event: everything a state
// is initialised from, so events.jsonl alone can rebuild state.json.
type SessionStartData struct {
	Type        string          `json:"type"`
	Stage       string          `json:"stage,omitempty"`
	Pipeline    string          `json:"pipeline,omitempty"`
	ProjectDir  string          `json:"project_dir"`
	TmuxSession string          `json:"tmux_session"`
	Provider    string          `json:"provider"`
	Model       string          `json:"model"`
	Stages      []StagePlan     `json:"stages"`
	MaxCostUSD  float64         `json:"max_cost_usd,omitempty"`
	Spec        json.RawMessage `json:"spec"`
}

// StagePlan is what the state needs to know about a stage up front.
type StagePlan struct {
	Name          string `json:"name"`
	MaxIterations int    `json:"max_iterations"`
	Parallel      bool   `json:"parallel,omitempty"`
}

// ResumeData is the data of a session_resume event.
type ResumeData struct {
	// MaxIterations, when set, replaces the current stage's limit.
	MaxIterations int `json:"max_iterations,omitempty"`
	// Recovered says what had to be repaired before resuming.
	Recovered string `json:"recovered,omitempty"`
	// MaxCostUSD, when set, replaces the session's spending cap.
	MaxCostUSD float64 `json:"max_cost_usd,omitempty"`
}

// ParkData is the data of a session_parked event: until when, why, and
// what the attempt that ran into the limit cost (it is not an iteration,
// but its spend is real).
type ParkData struct {
	Until        time.Time `json:"until"`
	Reason       string    `json:"reason"`
	Kind         string    `json:"kind,omitempty"` // the failure kind that parked it, if any
	Provider     string    `json:"provider,omitempty"`
	CostUSD      float64   `json:"cost_usd,omitempty"`
	InputTokens  int64     `json:"input_tokens,omitempty"`
	OutputTokens int64     `json:"output_tokens,omitempty"`
}

// UnparkData is the data of a session_unparked event: how long the park
// counts towards max_park (the daily budget's does not).
type UnparkData struct {
	Seconds float64 `json:"seconds"`
}

// AnswerData is the data of a session_answered event.
type AnswerData struct {
	Answer string `json:"answer"`
}

// ReasonData is the data of stage_complete, session_complete,
// session_failed and session_killed events.
type ReasonData struct {
	Reason string `json:"reason"`
	Error  string `json:"error,omitempty"`
}

// MustData marshals v for an event's Data. Only types of this package and
// plain maps are passed, so a failure is a programming error.
func MustData(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("state: marshal event data: %v", err))
	}
	return b
}

// ReadEvents reads every event of an events.jsonl. Lines that do not parse
// (a torn last line after a crash, a hand-edited line) are skipped and
// counted.
func ReadEvents(path string) ([]Event, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	return DecodeEvents(f)
}

// DecodeEvents parses events.jsonl content from r.
func DecodeEvents(r io.Reader) ([]Event, int, error) {
	var events []Event
	skipped := 0
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			var ev Event
			if jerr := json.Unmarshal(line, &ev); jerr != nil || ev.Type == "" {
				skipped++
			} else {
				events = append(events, ev)
			}
		}
		if err == io.EOF {
			return events, skipped, nil
		}
		if err != nil {
			return events, skipped, err
		}
	}
}

// Apply folds one event into a state. The live engine and Rebuild both use
// it, so there is one definition of what each event means. It costs O(1) in
// the length of the session (history is capped at HistoryLimit).
func Apply(st *State, ev Event) error {
	ts := ev.TS
	stage := func() *StageState {
		if ev.StageIndex >= 0 && ev.StageIndex < len(st.Stages) {
			return &st.Stages[ev.StageIndex]
		}
		return nil
	}
	switch ev.Type {
	case EventSessionStart:
		var d SessionStartData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return fmt.Errorf("event %d (%s): %w", ev.Seq, ev.Type, err)
		}
		// A start without a session name would leave a state that names no
		// session (found by FuzzLoadState: a damaged log replayed by Open).
		if ev.Session == "" {
			return fmt.Errorf("event %d (%s) names no session", ev.Seq, ev.Type)
		}
		*st = State{
			SchemaVersion: SchemaVersion,
			Session:       ev.Session,
			Type:          d.Type,
			Stage:         d.Stage,
			Pipeline:      d.Pipeline,
			StartedAt:     ts,
			Status:        StatusRunning,
			ProjectDir:    d.ProjectDir,
			TmuxSession:   d.TmuxSession,
			Provider:      d.Provider,
			Model:         d.Model,
			MaxCostUSD:    d.MaxCostUSD,
			Spec:          d.Spec,
		}
		for _, p := range d.Stages {
			st.Stages = append(st.Stages, StageState{Name: p.Name, Status: StagePending, MaxIterations: p.MaxIterations, Parallel: p.Parallel})
		}
		if len(st.Stages) > 0 {
			st.MaxIterations = st.Stages[0].MaxIterations
		}
	case EventSessionResume:
		t := ts
		st.ResumedAt = &t
		st.Status = StatusRunning
		st.ParkedUntil, st.ParkedAt, st.ParkedReason = nil, nil, ""
		st.CompletedAt = nil
		st.CompletionReason = ""
		st.Error = ""
		st.IterationStarted = nil
		if s := stage(); s != nil && s.Status != StageComplete {
			s.Status = StageRunning
			s.CompletedAt = nil
			s.Reason = ""
		}
		var d ResumeData
		if len(ev.Data) > 0 && json.Unmarshal(ev.Data, &d) == nil && d.MaxIterations > 0 {
			if s := stage(); s != nil {
				s.MaxIterations = d.MaxIterations
			}
			st.MaxIterations = d.MaxIterations
		}
		if d.MaxCostUSD > 0 {
			st.MaxCostUSD = d.MaxCostUSD
		}
	case EventStageStart:
		s := stage()
		if s == nil {
			return fmt.Errorf("event %d: stage index %d out of range", ev.Seq, ev.StageIndex)
		}
		st.CurrentStage = ev.StageIndex
		st.Iteration = 0
		st.IterationCompleted = 0
		st.MaxIterations = s.MaxIterations
		s.Status = StageRunning
		t := ts
		s.StartedAt = &t
	case EventIterationStart:
		if ev.Iteration > st.Iteration {
			st.Iteration = ev.Iteration
		}
		t := ts
		st.IterationStarted = &t
		if s := stage(); s != nil {
			s.Status = StageRunning
		}
	case EventIterationDone:
		var h HistoryEntry
		if err := json.Unmarshal(ev.Data, &h); err != nil {
			return fmt.Errorf("event %d (%s): %w", ev.Seq, ev.Type, err)
		}
		st.addChanges(&h)
		st.History = append(st.History, h)
		if n := len(st.History); n > HistoryLimit {
			st.History = append(st.History[:0:0], st.History[n-HistoryLimit:]...)
		}
		s := stage()
		if s != nil && s.Parallel {
			if !slices.Contains(s.Completed, ev.Iteration) {
				s.Completed = append(s.Completed, ev.Iteration)
			}
			s.Failed = slices.DeleteFunc(s.Failed, func(it int) bool { return it == ev.Iteration })
			if h.ExitCode != 0 || h.Decision == "error" {
				s.Failed = append(s.Failed, ev.Iteration)
			}
			// A failed run that is run again counts as its last attempt did.
			st.FailedIterations += len(s.Failed) - s.FailedIterations
			s.FailedIterations = len(s.Failed)
			st.IterationCompleted = len(s.Completed)
			if st.IterationCompleted >= st.Iteration {
				st.IterationStarted = nil
			}
		} else {
			st.IterationCompleted = ev.Iteration
			st.IterationStarted = nil
			if h.ExitCode != 0 {
				st.FailedIterations++
				if s != nil {
					s.FailedIterations++
				}
			}
		}
		if s != nil {
			s.Iterations = st.IterationCompleted
		}
		st.Cost.USD += h.CostUSD
		st.Cost.InputTokens += h.InputTokens
		st.Cost.OutputTokens += h.OutputToks
		st.ParkStreak = 0
		if a := st.Answer; a != nil && (ev.StageIndex != a.StageIndex || ev.Iteration > a.Iteration) {
			// The iteration that received the answer as ${ANSWER} is done.
			st.Answer = nil
		}
	case EventSessionParked, EventSessionUnparked, EventSessionWaiting, EventSessionAnswered:
		if err := applyGuard(st, ev); err != nil {
			return err
		}
	case EventStageComplete:
		var d ReasonData
		_ = json.Unmarshal(ev.Data, &d)
		if s := stage(); s != nil {
			s.Status = StageComplete
			t := ts
			s.CompletedAt = &t
			s.Reason = d.Reason
		}
	case EventSessionComplete, EventSessionFailed, EventSessionKilled:
		var d ReasonData
		_ = json.Unmarshal(ev.Data, &d)
		t := ts
		st.CompletedAt = &t
		st.CompletionReason = d.Reason
		st.IterationStarted = nil
		st.ParkedUntil, st.ParkedAt, st.ParkedReason = nil, nil, ""
		switch ev.Type {
		case EventSessionComplete:
			st.Status = StatusComplete
		case EventSessionFailed:
			st.Status = StatusFailed
			st.Error = d.Error
			if s := stage(); s != nil && s.Status != StageComplete {
				s.Status = StageFailed
				s.Reason = d.Reason
			}
		case EventSessionKilled:
			st.Status = StatusKilled
			st.Error = d.Error
			if s := stage(); s != nil && s.Status != StageComplete {
				s.Status = StageKilled
				s.Reason = d.Reason
			}
		}
	case EventStaleLockRemoved:
		// Recorded for the audit trail; the state does not change.
	default:
		// Unknown types come from newer builds; ignore them so an older
		// reader can still rebuild what it understands.
	}
	if ev.Seq > st.EventSeq {
		st.EventSeq = ev.Seq
	}
	return nil
}

// applyGuard folds the events of parks and questions (SPEC §15).
func applyGuard(st *State, ev Event) error {
	ts := ev.TS
	switch ev.Type {
	case EventSessionParked:
		var d ParkData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return fmt.Errorf("event %d (%s): %w", ev.Seq, ev.Type, err)
		}
		until, at := d.Until, ts
		st.Status = StatusParked
		st.ParkedUntil, st.ParkedAt, st.ParkedReason = &until, &at, d.Reason
		st.ParkStreak++
		st.IterationStarted = nil
		st.Cost.USD += d.CostUSD
		st.Cost.InputTokens += d.InputTokens
		st.Cost.OutputTokens += d.OutputTokens
	case EventSessionUnparked:
		var d UnparkData
		_ = json.Unmarshal(ev.Data, &d)
		if d.Seconds > 0 {
			st.ParkedSeconds += d.Seconds
		}
		st.Status = StatusRunning
		st.ParkedUntil, st.ParkedAt, st.ParkedReason = nil, nil, ""
	case EventSessionWaiting:
		var q Question
		if err := json.Unmarshal(ev.Data, &q); err != nil {
			return fmt.Errorf("event %d (%s): %w", ev.Seq, ev.Type, err)
		}
		q.StageIndex, q.Iteration = ev.StageIndex, ev.Iteration
		if q.AskedAt.IsZero() {
			q.AskedAt = ts
		}
		st.Status = StatusWaiting
		st.Question = &q
	case EventSessionAnswered:
		var d AnswerData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return fmt.Errorf("event %d (%s): %w", ev.Seq, ev.Type, err)
		}
		a := Answer{Answer: d.Answer, StageIndex: ev.StageIndex, Iteration: ev.Iteration, AnsweredAt: ts}
		if st.Question != nil {
			a.Question = st.Question.Question
		}
		st.Status = StatusRunning
		st.Question = nil
		st.Answer = &a
	}
	return nil
}
