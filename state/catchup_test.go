package state

import (
	"os"
	"testing"
)

// TestCatchUpBehindLog: an engine killed after it appended session_complete
// but before it replaced state.json leaves the file saying "running". The
// log is the commit point, so CatchUp (what the classifier asks before it
// calls a session crashed) answers complete, as a resume would.
func TestCatchUpBehindLog(t *testing.T) {
	s, l := newStore(t)
	complete(t, s, 0, 1)
	behind, err := os.ReadFile(l.StateFile())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Record(Event{Type: EventSessionComplete, Data: MustData(ReasonData{Reason: "fixed-n"})}); err != nil {
		t.Fatal(err)
	}
	// The kill -9 window: the log has the end, state.json does not.
	if err := os.WriteFile(l.StateFile(), behind, 0o644); err != nil {
		t.Fatal(err)
	}
	st, _, err := LoadSummary(l)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != StatusRunning {
		t.Fatalf("setup: state.json says %q, want running", st.Status)
	}
	got, moved, err := CatchUp(l, st)
	if err != nil || !moved {
		t.Fatalf("CatchUp: moved %v, err %v; want moved", moved, err)
	}
	if got.Status != StatusComplete || got.CompletionReason != "fixed-n" {
		t.Errorf("caught up: status %q reason %q, want complete fixed-n", got.Status, got.CompletionReason)
	}
	if got.History != nil {
		t.Errorf("a summary caught up grew a history of %d", len(got.History))
	}

	// A state.json that is current is left as it is, without reading the log.
	cur, _, err := Load(l)
	if err != nil {
		t.Fatal(err)
	}
	cur, _, _ = CatchUp(l, cur)
	if again, moved, err := CatchUp(l, cur); err != nil || moved || again.EventSeq != cur.EventSeq {
		t.Errorf("CatchUp of a current state: moved %v, err %v", moved, err)
	}
}

// TestCatchUpKeepsAFullStatesSpec: a full state read before any iteration
// completed has no history, like a summary — but it has its spec, which a
// resume needs. CatchUp once took "no history" for "a summary" and dropped
// the spec too: a session killed before its first iteration was recorded in
// state.json (the log a step ahead) could not be resumed ("state has no
// spec to resume from", seen in TestReliabilityKillNineTrials).
func TestCatchUpKeepsAFullStatesSpec(t *testing.T) {
	s, l := newStore(t)
	behind, err := os.ReadFile(l.StateFile())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Record(Event{Type: EventIterationStart, Iteration: 1}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.StateFile(), behind, 0o644); err != nil {
		t.Fatal(err)
	}
	st, _, err := Load(l)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.History) != 0 || st.Spec == nil {
		t.Fatalf("setup: a full state with %d history entries and spec %v", len(st.History), st.Spec != nil)
	}
	got, moved, err := CatchUp(l, st)
	if err != nil || !moved {
		t.Fatalf("CatchUp: moved %v, err %v; want moved", moved, err)
	}
	if got.Spec == nil || string(got.Spec) != string(st.Spec) {
		t.Errorf("the caught-up state lost its spec (%d bytes before)", len(st.Spec))
	}
	if got.Iteration != 1 {
		t.Errorf("caught up to iteration %d, want 1", got.Iteration)
	}
}
