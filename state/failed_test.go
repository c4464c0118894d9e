package state

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestFailedIterationsCounted: failed iterations are counted per stage and
// for the session, from the events alone (so a rebuild agrees); a parallel
// run that failed and was run again counts as its last attempt did; and the
// field stays out of state.json while it is 0.
func TestFailedIterationsCounted(t *testing.T) {
	l := NewLayout(t.TempDir(), "s")
	d := startData()
	d.Stages[1].Parallel = true
	s, err := Create(l, nil, d)
	if err != nil {
		t.Fatal(err)
	}
	done := func(stage, it, exit int) {
		t.Helper()
		h := HistoryEntry{Iteration: it, StageIndex: stage, Decision: "continue", ExitCode: exit}
		if exit != 0 {
			h.Failure = &Failure{Kind: FailureExit, Message: "the agent exited with code 1"}
		}
		if err := s.Record(Event{Type: EventIterationDone, StageIndex: stage, Iteration: it, Data: MustData(h)}); err != nil {
			t.Fatal(err)
		}
	}
	s.Record(Event{Type: EventStageStart, StageIndex: 0})
	done(0, 1, 0)
	if raw, _ := json.Marshal(s.State()); strings.Contains(string(raw), "failed_iterations") {
		t.Errorf("failed_iterations present while 0: %s", raw)
	}
	done(0, 2, 1)
	done(0, 3, 1)
	s.Record(Event{Type: EventStageComplete, StageIndex: 0, Data: MustData(ReasonData{Reason: "fixed-n"})})
	s.Record(Event{Type: EventStageStart, StageIndex: 1})
	done(1, 1, 1)
	done(1, 2, 1)
	done(1, 1, 0) // run 1 again after a resume: it succeeded this time
	st := s.State()
	if st.FailedIterations != 3 || st.Stages[0].FailedIterations != 2 || st.Stages[1].FailedIterations != 1 {
		t.Errorf("failed_iterations %d (stages %d, %d), want 3 (2, 1)", st.FailedIterations, st.Stages[0].FailedIterations, st.Stages[1].FailedIterations)
	}
	if h := st.History[1]; h.Failure == nil || h.Failure.Kind != FailureExit {
		t.Errorf("history failure = %+v", h.Failure)
	}
	events, _, err := ReadEvents(l.EventsFile())
	if err != nil {
		t.Fatal(err)
	}
	rebuilt, err := Rebuild(events)
	if err != nil {
		t.Fatal(err)
	}
	if rebuilt.FailedIterations != st.FailedIterations {
		t.Errorf("rebuilt failed_iterations %d, live %d", rebuilt.FailedIterations, st.FailedIterations)
	}
}
