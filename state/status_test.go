package state

import (
	"encoding/json"
	"testing"
)

func TestStatusQuestions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s                       Status
		alive, active, finished bool
	}{
		{LiveRunning, true, true, false},
		{LiveStarting, true, true, false},
		{LiveWaiting, true, true, false},
		{LiveParked, true, true, false},
		{LiveZombie, false, true, false},
		{LiveOrphan, false, true, false},
		{LiveCrashed, false, false, false},
		{LiveComplete, false, false, true},
		{LiveFailed, false, false, true},
		{LiveKilled, false, false, true},
		{LiveStaleLock, false, false, false},
		{"", false, false, false},
	} {
		if got := [3]bool{tc.s.Alive(), tc.s.Active(), tc.s.Finished()}; got != [3]bool{tc.alive, tc.active, tc.finished} {
			t.Errorf("%q: alive, active, finished = %v, want %v", tc.s, got, [3]bool{tc.alive, tc.active, tc.finished})
		}
	}
}

func TestStatusOrders(t *testing.T) {
	t.Parallel()
	rank := []Status{LiveWaiting, LiveParked, LiveRunning, LiveStarting, LiveZombie, LiveOrphan, LiveCrashed, LiveFailed, LiveKilled, LiveComplete, "unknown"}
	for i := 1; i < len(rank); i++ {
		if rank[i-1].Rank() >= rank[i].Rank() {
			t.Errorf("Rank: %s (%d) should come before %s (%d)", rank[i-1], rank[i-1].Rank(), rank[i], rank[i].Rank())
		}
	}
	type s struct {
		st    Status
		stale bool
	}
	attention := []s{{LiveWaiting, false}, {LiveCrashed, false}, {LiveZombie, false}, {LiveOrphan, false}, {LiveFailed, false},
		{LiveStaleLock, false}, {LiveRunning, true}, {LiveParked, false}, {LiveRunning, false}, {LiveKilled, false}, {LiveComplete, false}}
	for i := 1; i < len(attention); i++ {
		a, b := attention[i-1], attention[i]
		if a.st.Attention(a.stale) >= b.st.Attention(b.stale) {
			t.Errorf("Attention: %+v should come before %+v", a, b)
		}
	}
	if LiveStarting.Attention(false) != LiveRunning.Attention(false) {
		t.Errorf("starting and running should rank alike in attention")
	}
}

// TestStatusJSON: the type changes nothing a reader of the JSON sees.
func TestStatusJSON(t *testing.T) {
	t.Parallel()
	data, err := json.Marshal(Liveness{Status: LiveZombie, Why: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), `{"status":"zombie","stale":false,"stale_lock":false,"why":"w"}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
