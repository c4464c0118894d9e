package sessions

import (
	"errors"
	"testing"

	"github.com/agent-sessions/agent-sessions/state"
)

// settle's reads against scripted facts: what a look at a session finds
// when an engine moves between the lock probe and the reads of the run.
func TestSettle(t *testing.T) {
	t.Parallel()
	running := &state.State{Status: state.StatusRunning, EventSeq: 4}
	held := state.LockStatus{Exists: true, Held: true, Via: "socket"}
	noState := errors.New("no state")
	cases := []struct {
		name      string
		reads     []Info // what each read finds, in turn
		probe     state.LockStatus
		load      *state.State // nil: the load fails
		wantHeld  bool
		wantReads int
	}{
		// The flake of TestReliabilityConcurrentStartsOneName: the probe
		// came before another start's engine took the lock, the look at
		// the run dir after it made it (no state yet). Crashed, it said.
		{"a start's run dir, locked after the probe", []Info{{HasRunDir: true}}, held, nil, true, 1},
		{"a start's state, locked after the probe", []Info{{HasRunDir: true, State: running}}, held, running, true, 1},
		{"a run dir without state, no engine: crashed", []Info{{HasRunDir: true}}, state.LockStatus{}, nil, false, 1},
		{"running, no engine, unchanged: crashed", []Info{{HasRunDir: true, State: running}}, state.LockStatus{}, running, false, 1},
		{"state appears, read again", []Info{{HasRunDir: true}, {HasRunDir: true, State: running, Lock: held}}, state.LockStatus{}, running, true, 2},
		{"an engine that ended, read again", []Info{{HasRunDir: true, State: running}, {HasRunDir: true, State: &state.State{Status: state.StatusComplete, EventSeq: 9}}},
			state.LockStatus{}, &state.State{Status: state.StatusComplete, EventSeq: 9}, false, 2},
		{"nothing there", []Info{{}}, held, nil, false, 1},
	}
	for _, tc := range cases {
		reads := 0
		info := settle(func() Info {
			reads++
			return tc.reads[min(reads, len(tc.reads))-1]
		}, func() state.LockStatus { return tc.probe }, func() (state.State, error) {
			if tc.load == nil {
				return state.State{}, noState
			}
			return *tc.load, nil
		})
		if info.Lock.Held != tc.wantHeld || reads != tc.wantReads {
			t.Errorf("%s: held %v after %d reads, want held %v after %d", tc.name, info.Lock.Held, reads, tc.wantHeld, tc.wantReads)
		}
	}
}
