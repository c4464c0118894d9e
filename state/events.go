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
// it, so there is one definition of what each event means: each event type
// has its own fold in appliers. It costs O(1) in the length of the session
// (history is capped at HistoryLimit).
func Apply(st *State, ev Event) error {
	// Unknown types come from newer builds; they are ignored so an older
	// reader can still rebuild what it understands.
	if fold, ok := appliers[ev.Type]; ok {
		if err := fold(st, ev); err != nil {
			return err
		}
	}
	if ev.Seq > st.EventSeq {
		st.EventSeq = ev.Seq
	}
	return nil
}

// appliers is what each event type means to a state.
var appliers = map[string]func(*State, Event) error{
	EventSessionStart:     applyStart,
	EventSessionResume:    applyResume,
	EventStageStart:       applyStageStart,
	EventIterationStart:   applyIterationStart,
	EventIterationDone:    applyIterationDone,
	EventStageComplete:    applyStageComplete,
	EventSessionComplete:  applySessionEnd,
	EventSessionFailed:    applySessionEnd,
	EventSessionKilled:    applySessionEnd,
	EventSessionParked:    applyParked,
	EventSessionUnparked:  applyUnparked,
	EventSessionWaiting:   applyWaiting,
	EventSessionAnswered:  applyAnswered,
	EventStaleLockRemoved: applyNothing,
}

// eventStage is the stage an event names, or nil when its index is out of
// range (a damaged log).
func eventStage(st *State, ev Event) *StageState {
	if ev.StageIndex >= 0 && ev.StageIndex < len(st.Stages) {
		return &st.Stages[ev.StageIndex]
	}
	return nil
}

// decodeData unmarshals an event's data, naming the event when it cannot.
func decodeData(ev Event, v any) error {
	if err := json.Unmarshal(ev.Data, v); err != nil {
		return fmt.Errorf("event %d (%s): %w", ev.Seq, ev.Type, err)
	}
	return nil
}

// applyNothing is for events recorded for the audit trail only
// (stale_lock_removed): the state does not change.
func applyNothing(*State, Event) error { return nil }

func applyStart(st *State, ev Event) error {
	var d SessionStartData
	if err := decodeData(ev, &d); err != nil {
		return err
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
		StartedAt:     ev.TS,
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
	return nil
}

func applyResume(st *State, ev Event) error {
	t := ev.TS
	st.ResumedAt = &t
	st.Status = StatusRunning
	st.ParkedUntil, st.ParkedAt, st.ParkedReason = nil, nil, ""
	st.CompletedAt = nil
	st.CompletionReason = ""
	st.Error = ""
	st.IterationStarted = nil
	s := eventStage(st, ev)
	if s != nil && s.Status != StageComplete {
		s.Status = StageRunning
		s.CompletedAt = nil
		s.Reason = ""
	}
	// The data is optional and only ever raises limits: an unreadable one
	// resumes with the limits the session had.
	var d ResumeData
	if len(ev.Data) > 0 && json.Unmarshal(ev.Data, &d) == nil && d.MaxIterations > 0 {
		if s != nil {
			s.MaxIterations = d.MaxIterations
		}
		st.MaxIterations = d.MaxIterations
	}
	if d.MaxCostUSD > 0 {
		st.MaxCostUSD = d.MaxCostUSD
	}
	return nil
}

func applyStageStart(st *State, ev Event) error {
	s := eventStage(st, ev)
	if s == nil {
		return fmt.Errorf("event %d: stage index %d out of range", ev.Seq, ev.StageIndex)
	}
	st.CurrentStage = ev.StageIndex
	st.Iteration = 0
	st.IterationCompleted = 0
	st.MaxIterations = s.MaxIterations
	s.Status = StageRunning
	t := ev.TS
	s.StartedAt = &t
	return nil
}

func applyIterationStart(st *State, ev Event) error {
	if ev.Iteration > st.Iteration {
		st.Iteration = ev.Iteration
	}
	t := ev.TS
	st.IterationStarted = &t
	if s := eventStage(st, ev); s != nil {
		s.Status = StageRunning
	}
	return nil
}

func applyIterationDone(st *State, ev Event) error {
	var h HistoryEntry
	if err := decodeData(ev, &h); err != nil {
		return err
	}
	st.addChanges(&h)
	st.History = append(st.History, h)
	if n := len(st.History); n > HistoryLimit {
		st.History = append(st.History[:0:0], st.History[n-HistoryLimit:]...)
	}
	s := eventStage(st, ev)
	if s != nil && s.Parallel {
		countParallelRun(st, s, ev.Iteration, h)
	} else {
		countSequentialRun(st, s, ev.Iteration, h)
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
	return nil
}

// countParallelRun counts a finished run of a parallel stage: runs finish
// in any order, and a failed run may be run again after a resume.
func countParallelRun(st *State, s *StageState, it int, h HistoryEntry) {
	if !slices.Contains(s.Completed, it) {
		s.Completed = append(s.Completed, it)
	}
	s.Failed = slices.DeleteFunc(s.Failed, func(f int) bool { return f == it })
	if h.ExitCode != 0 || h.Decision == "error" {
		s.Failed = append(s.Failed, it)
	}
	// A failed run that is run again counts as its last attempt did.
	st.FailedIterations += len(s.Failed) - s.FailedIterations
	s.FailedIterations = len(s.Failed)
	st.IterationCompleted = len(s.Completed)
	if st.IterationCompleted >= st.Iteration {
		st.IterationStarted = nil
	}
}

// countSequentialRun counts a finished iteration of a sequential stage (s
// is nil when the event's stage index is out of range).
func countSequentialRun(st *State, s *StageState, it int, h HistoryEntry) {
	st.IterationCompleted = it
	st.IterationStarted = nil
	if h.ExitCode != 0 {
		st.FailedIterations++
		if s != nil {
			s.FailedIterations++
		}
	}
}

func applyStageComplete(st *State, ev Event) error {
	// The reason is informative: a stage_complete without one still
	// completes the stage.
	var d ReasonData
	_ = json.Unmarshal(ev.Data, &d)
	if s := eventStage(st, ev); s != nil {
		s.Status = StageComplete
		t := ev.TS
		s.CompletedAt = &t
		s.Reason = d.Reason
	}
	return nil
}

// applySessionEnd folds session_complete, session_failed and
// session_killed; a failed or killed session marks the stage it ended in.
func applySessionEnd(st *State, ev Event) error {
	var d ReasonData
	_ = json.Unmarshal(ev.Data, &d)
	t := ev.TS
	st.CompletedAt = &t
	st.CompletionReason = d.Reason
	st.IterationStarted = nil
	st.ParkedUntil, st.ParkedAt, st.ParkedReason = nil, nil, ""
	if ev.Type == EventSessionComplete {
		st.Status = StatusComplete
		return nil
	}
	st.Status = StatusFailed
	stageStatus := StageFailed
	if ev.Type == EventSessionKilled {
		st.Status, stageStatus = StatusKilled, StageKilled
	}
	st.Error = d.Error
	if s := eventStage(st, ev); s != nil && s.Status != StageComplete {
		s.Status = stageStatus
		s.Reason = d.Reason
	}
	return nil
}

// The events of parks and questions (SPEC §15).

func applyParked(st *State, ev Event) error {
	var d ParkData
	if err := decodeData(ev, &d); err != nil {
		return err
	}
	until, at := d.Until, ev.TS
	st.Status = StatusParked
	st.ParkedUntil, st.ParkedAt, st.ParkedReason = &until, &at, d.Reason
	st.ParkStreak++
	st.IterationStarted = nil
	st.Cost.USD += d.CostUSD
	st.Cost.InputTokens += d.InputTokens
	st.Cost.OutputTokens += d.OutputTokens
	return nil
}

func applyUnparked(st *State, ev Event) error {
	var d UnparkData
	_ = json.Unmarshal(ev.Data, &d)
	if d.Seconds > 0 {
		st.ParkedSeconds += d.Seconds
	}
	st.Status = StatusRunning
	st.ParkedUntil, st.ParkedAt, st.ParkedReason = nil, nil, ""
	return nil
}

func applyWaiting(st *State, ev Event) error {
	var q Question
	if err := decodeData(ev, &q); err != nil {
		return err
	}
	q.StageIndex, q.Iteration = ev.StageIndex, ev.Iteration
	if q.AskedAt.IsZero() {
		q.AskedAt = ev.TS
	}
	st.Status = StatusWaiting
	st.Question = &q
	return nil
}

func applyAnswered(st *State, ev Event) error {
	var d AnswerData
	if err := decodeData(ev, &d); err != nil {
		return err
	}
	a := Answer{Answer: d.Answer, StageIndex: ev.StageIndex, Iteration: ev.Iteration, AnsweredAt: ev.TS}
	if st.Question != nil {
		a.Question = st.Question.Question
	}
	st.Status = StatusRunning
	st.Question = nil
	st.Answer = &a
	return nil
}
