package state

import (
	"testing"
	"time"
)

// The reducer sums change records into the session's totals, keeps each
// history entry's counts without the commit list, and never updates the
// totals in place (a clone handed to another goroutine keeps its own).
func TestChangeTotals(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	done := func(it int, c *Changes) Event {
		return Event{Type: EventIterationDone, TS: ts, Stage: "s", Iteration: it,
			Data: MustData(HistoryEntry{Iteration: it, Stage: "s", Decision: "continue", Changes: c})}
	}
	evs := []Event{
		{Type: EventSessionStart, TS: ts, Session: "c", Data: MustData(SessionStartData{Type: "loop", Stage: "s", Stages: []StagePlan{{Name: "s", MaxIterations: 5}}})},
		{Type: EventStageStart, TS: ts, Stage: "s"},
		done(1, &Changes{HeadBefore: "a", HeadAfter: "b", CommitCount: 2, Commits: []Commit{{"b", "two"}, {"x", "one"}}}),
		done(2, nil),
	}
	st, err := Rebuild(evs)
	if err != nil {
		t.Fatal(err)
	}
	snapshot := st.Clone()
	if err := Apply(&st, done(3, &Changes{HeadBefore: "b", HeadAfter: "c", CommitCount: 1, Commits: []Commit{{"c", "three"}}, Dirty: true})); err != nil {
		t.Fatal(err)
	}
	want := ChangeTotals{Commits: 3, HeadStart: "a", Head: "c", Iterations: 2, Dirty: true}
	if st.Changes == nil || *st.Changes != want {
		t.Errorf("totals = %+v, want %+v", st.Changes, want)
	}
	if got := *snapshot.Changes; got.Commits != 2 || got.Head != "b" {
		t.Errorf("the earlier clone's totals changed to %+v", got)
	}
	if h := st.History[0].Changes; h == nil || h.CommitCount != 2 || h.Commits != nil {
		t.Errorf("history[0].changes = %+v, want the count without the list", h)
	}
	if st.History[1].Changes != nil {
		t.Errorf("an iteration without a record got one: %+v", st.History[1].Changes)
	}
}
