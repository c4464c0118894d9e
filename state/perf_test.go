package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestSnapshotIsExactlyMarshal: the cached encoder writes byte for byte
// what json.Marshal of the state gives, after every kind of event, across
// the history cap (entries dropped at the front), with text that
// encoding/json escapes, a spec given with whitespace, and a resume.
func TestSnapshotIsExactlyMarshal(t *testing.T) {
	l := NewLayout(t.TempDir(), "s")
	start := startData()
	start.Spec = json.RawMessage("{\n  \"prompt\": \"<b>a & b</b> \\u00e9 ${X}\",\n  \"n\": [1, 2]\n}")
	s, err := Create(l, nil, start)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		want, err := json.Marshal(&s.st)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(l.StateFile())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append(want, '\n')) {
			t.Fatalf("after %s: state.json differs from json.Marshal\n got %s\nwant %s", what, got, want)
		}
	}
	check("create")
	s.Record(Event{Type: EventStageStart, StageIndex: 0})
	check("stage_start")
	for it := 1; it <= HistoryLimit+30; it++ {
		s.Record(Event{Type: EventIterationStart, StageIndex: 0, Iteration: it})
		h := HistoryEntry{Iteration: it, Decision: "continue", Reasoning: fmt.Sprintf("<step %d> & \"quotes\" é\n", it), CostUSD: 0.25}
		if err := s.Record(Event{Type: EventIterationDone, StageIndex: 0, Iteration: it, Data: MustData(h)}); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("iteration %d", it))
	}
	s.Record(Event{Type: EventSessionFailed, StageIndex: 0, Data: MustData(ReasonData{Reason: "agent_error", Error: "<boom>"})})
	check("session_failed")
	s2, _, err := Open(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	s = s2
	s.Record(Event{Type: EventSessionResume, StageIndex: 0, Data: MustData(ResumeData{MaxIterations: 900})})
	check("resume")
	if got := len(s.st.History); got != HistoryLimit {
		t.Errorf("history has %d entries, want %d", got, HistoryLimit)
	}
}

// fullState is a state with every field set, so a comparison covers them
// all.
func fullState(t *testing.T) State {
	t.Helper()
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	st := State{
		SchemaVersion: SchemaVersion, Session: "s", Type: "pipeline", Stage: "st", Pipeline: "p", StartedAt: ts, ResumedAt: &ts,
		Status: StatusFailed, Iteration: 7, IterationCompleted: 6, IterationStarted: &ts, CurrentStage: 1, MaxIterations: 9,
		Stages:      []StageState{{Name: "one", Status: StageComplete, Iterations: 3, MaxIterations: 3, StartedAt: &ts, CompletedAt: &ts, Reason: "fixed-n"}, {Name: "two", Status: StageFailed, Parallel: true, Completed: []int{1}, Failed: []int{2}}},
		CompletedAt: &ts, CompletionReason: "agent_error", Error: `it said "history": no`, ProjectDir: "/x", TmuxSession: "pipeline-s",
		Provider: "mock", Model: "opus", Cost: Cost{USD: 1.5, InputTokens: 10, OutputTokens: 2}, EventSeq: 42,
		MaxCostUSD: 5, ParkedUntil: &ts, ParkedReason: "usage_limit", ParkedAt: &ts, ParkedSeconds: 3, ParkStreak: 1,
		Question: &Question{Question: `"history": ?`, Options: []string{"a"}, AskedAt: ts}, Answer: &Answer{Answer: "b", AnsweredAt: ts},
		FailedIterations: 1, Changes: &ChangeTotals{Commits: 3, HeadStart: "a1", Head: "b2", Iterations: 2, Dirty: true},
		History: []HistoryEntry{{Iteration: 6, Stage: "two", StageIndex: 1, Reasoning: `"history": [`}},
		Spec:    json.RawMessage(`{"history":"not this one"}`),
	}
	v := reflect.ValueOf(st)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("fullState leaves %s unset", v.Type().Field(i).Name)
		}
	}
	return st
}

// writeOrdered writes st as indented JSON with its keys in the given
// order (the layout of an older build).
func writeOrdered(t *testing.T, path string, st State, order []string) {
	t.Helper()
	raw, _ := json.Marshal(st)
	var fields map[string]json.RawMessage
	json.Unmarshal(raw, &fields)
	var b strings.Builder
	b.WriteString("{\n")
	for i, k := range order {
		v, ok := fields[k]
		if !ok {
			t.Fatalf("no field %s", k)
		}
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "  %q: %s", k, v)
	}
	b.WriteString("\n}\n")
	if len(order) != len(fields) {
		t.Fatalf("order names %d fields, state has %d", len(order), len(fields))
	}
	var out bytes.Buffer
	json.Indent(&out, []byte(b.String()), "", "  ")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLoadSummaryIsLoadWithoutHistoryAndSpec: for this build's layout, the
// layout of the previous build (indented, history in the middle) and a
// corrupt file, LoadSummary gives what Load gives, minus History and Spec.
func TestLoadSummaryIsLoadWithoutHistoryAndSpec(t *testing.T) {
	st := fullState(t)
	oldOrder := []string{"schema_version", "session", "type", "stage", "pipeline", "started_at", "resumed_at", "status", "iteration",
		"iteration_completed", "iteration_started", "current_stage", "max_iterations", "stages", "history", "completed_at",
		"completion_reason", "error", "project_dir", "tmux_session", "provider", "model", "cost",
		"max_cost_usd", "parked_until", "parked_reason", "parked_at", "parked_seconds", "park_streak", "question", "answer",
		"changes", "failed_iterations", "event_seq", "spec"}
	large := st
	large.Spec = MustData(map[string]string{"prompt": strings.Repeat("a long prompt ", 3000)})
	for i := range HistoryLimit {
		large.History = append(large.History, HistoryEntry{Iteration: i, Reasoning: strings.Repeat("r", 300)})
	}
	encoded := func(st State) func(string) {
		return func(path string) {
			var e snapshotEncoder
			data, err := e.encode(&st)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	layouts := map[string]struct {
		st    State
		write func(path string)
	}{
		"this build":         {st, encoded(st)},
		"this build, large":  {large, encoded(large)}, // more than headChunk: only the head is read
		"older build":        {st, func(path string) { writeOrdered(t, path, st, oldOrder) }},
		"older build, large": {large, func(path string) { writeOrdered(t, path, large, oldOrder) }},
	}
	for name, tt := range layouts {
		st := tt.st
		write := tt.write
		t.Run(name, func(t *testing.T) {
			l := NewLayout(t.TempDir(), "s")
			os.MkdirAll(l.RunDir(), 0o755)
			write(l.StateFile())
			full, _, err := Load(l)
			if err != nil {
				t.Fatal(err)
			}
			var spec bytes.Buffer
			json.Compact(&spec, full.Spec)
			full.Spec = spec.Bytes()
			if !reflect.DeepEqual(full, st) {
				t.Fatalf("Load = %+v\nwant %+v", full, st)
			}
			if _, err := readSummary(l.StateFile()); strings.HasPrefix(name, "this build") && err != nil {
				t.Errorf("this build's layout did not take the fast path: %v", err)
			}
			sum, res, err := LoadSummary(l)
			if err != nil || res.Rebuilt {
				t.Fatalf("LoadSummary: %v %+v", err, res)
			}
			want := st
			want.History, want.Spec = nil, nil
			if !reflect.DeepEqual(sum, want) {
				t.Errorf("LoadSummary = %+v\nwant %+v", sum, want)
			}
		})
	}
	t.Run("cut short", func(t *testing.T) {
		s, l := newStore(t)
		complete(t, s, 0, 1)
		os.WriteFile(l.StateFile(), []byte(`{"schema_version":1,"session":"s","status":"running","event_seq":3,"history":[{"itera`), 0o644)
		sum, res, err := LoadSummary(l)
		if err != nil || !res.Rebuilt {
			t.Fatalf("LoadSummary of a file cut short: %v %+v, want a rebuild", err, res)
		}
		if sum.IterationCompleted != 1 || sum.History != nil || sum.Spec != nil {
			t.Errorf("rebuilt summary: completed %d, history %v, spec %s", sum.IterationCompleted, sum.History, sum.Spec)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, _, err := LoadSummary(NewLayout(t.TempDir(), "s")); err == nil {
			t.Error("LoadSummary of nothing succeeded")
		}
	})
}

// TestHeldLockIsRunningWhateverElse: the reminder watcher's poll reads no
// state of a session whose lock is held (tools' statusOnly), which is only
// right while a held lock makes Classify say running whatever the state
// and tmux say.
func TestHeldLockIsRunningWhateverElse(t *testing.T) {
	now := time.Now()
	old := now.Add(-3 * time.Hour)
	states := []*State{nil, {Status: StatusRunning, StartedAt: now}, {Status: StatusComplete, StartedAt: old, CompletedAt: &now},
		{Status: StatusFailed, StartedAt: old}, {Status: StatusKilled, StartedAt: old}}
	tmuxes := []*TmuxFacts{nil, {Name: "loop-s", Created: now}, {Name: "loop-s", Created: old, PaneDead: true}}
	for _, st := range states {
		for _, tm := range tmuxes {
			for _, runDir := range []bool{false, true} {
				f := Facts{HasRunDir: runDir, State: st, Tmux: tm, Lock: LockStatus{Exists: true, Held: true}, Now: now}
				if got := Classify(f).Status; got != LiveRunning {
					t.Errorf("Classify(held lock, state %+v, tmux %+v, run dir %v) = %s, want running", st, tm, runDir, got)
				}
				f.State = nil
				if got := Classify(f).Status; got != LiveRunning {
					t.Errorf("Classify(held lock, no state read) = %s, want running", got)
				}
			}
		}
	}
}
