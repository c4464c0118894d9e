package state

import "testing"

// TestTmuxNameOf: the recorded name wins; without one the name follows the
// number of stages, as the engine names it — a one-stage pipeline runs in
// loop-<session>.
func TestTmuxNameOf(t *testing.T) {
	t.Parallel()
	one, two := []StageState{{Name: "a"}}, []StageState{{Name: "a"}, {Name: "b"}}
	tests := []struct {
		name string
		st   State
		want string
	}{
		{"recorded", State{Session: "s", Type: "pipeline", Stages: two, TmuxSession: "loop-s"}, "loop-s"},
		{"loop", State{Session: "s", Type: "loop", Stages: one}, "loop-s"},
		{"one-stage pipeline", State{Session: "s", Type: "pipeline", Stages: one}, "loop-s"},
		{"pipeline", State{Session: "s", Type: "pipeline", Stages: two}, "pipeline-s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TmuxNameOf(&tt.st); got != tt.want {
				t.Errorf("TmuxNameOf = %s, want %s", got, tt.want)
			}
		})
	}
}
