package state

import (
	"errors"
	"os"
	"testing"
)

// A run directory removed under a live store — and made again at once, as
// a log writer or an agent might, possibly with the same inode number — is
// noticed: Record refuses to write into it, Rehome records the state there
// again and numbering goes on.
func TestRunDirRemovedAndRemade(t *testing.T) {
	for _, remade := range []bool{false, true} {
		s, l := newStore(t)
		complete(t, s, 0, 1)
		if err := s.CheckRunDir(); err != nil {
			t.Fatalf("CheckRunDir on an intact run dir: %v", err)
		}
		if err := os.RemoveAll(l.RunDir()); err != nil {
			t.Fatal(err)
		}
		if remade {
			if err := os.MkdirAll(l.RunDir(), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CheckRunDir(); !errors.Is(err, ErrRunDirRemoved) {
			t.Errorf("remade %v: CheckRunDir = %v, want ErrRunDirRemoved", remade, err)
		}
		if err := s.Record(Event{Type: EventIterationStart, Iteration: 2}); !errors.Is(err, ErrRunDirRemoved) {
			t.Errorf("remade %v: Record = %v, want ErrRunDirRemoved", remade, err)
		}
		if _, err := os.Stat(l.EventsFile()); !os.IsNotExist(err) {
			t.Errorf("remade %v: Record wrote into the removed run dir (%v)", remade, err)
		}
		if err := s.Rehome(); err != nil {
			t.Fatal(err)
		}
		complete(t, s, 0, 2)
		st, _, err := Load(l)
		if err != nil || st.IterationCompleted != 2 || len(st.History) != 2 {
			t.Errorf("remade %v: after Rehome: %+v, %v", remade, st, err)
		}
		evs, _, _ := ReadEvents(l.EventsFile())
		if len(evs) != 2 || evs[0].Seq != st.EventSeq-1 {
			t.Errorf("remade %v: events after Rehome: %+v (state event_seq %d)", remade, evs, st.EventSeq)
		}
	}
}
