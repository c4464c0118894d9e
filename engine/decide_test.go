package engine

import "testing"

// TestDecide is the termination strategies of SPEC §8 as a table over one
// iteration's outcome.
func TestDecide(t *testing.T) {
	fixed := StagePlan{Completion: CompletionFixedN}
	plateau := StagePlan{Completion: CompletionPlateau}
	plateauMin3 := StagePlan{Completion: CompletionPlateau, MinIterations: 3}
	beads := StagePlan{Completion: CompletionBeadsEmpty}
	items := StagePlan{Completion: CompletionAllItems}
	ok := decideInput{succeeded: true}
	tests := []struct {
		name         string
		sp           StagePlan
		it, max      int
		in           decideInput
		wantDecision string
		wantReason   string
	}{
		{"fixed-n before max", fixed, 2, 3, ok, DecisionContinue, ""},
		{"fixed-n at max", fixed, 3, 3, ok, DecisionStop, CompletionFixedN},
		{"fixed-n ignores plateau votes", fixed, 2, 3, decideInput{succeeded: true, vote: true, prevVote: true}, DecisionContinue, ""},
		{"fixed-n ignores the completion signal", fixed, 1, 3, decideInput{succeeded: true, completionSignal: true}, DecisionContinue, ""},
		{"fixed-n failed at max still ends", fixed, 3, 3, decideInput{failures: 1}, DecisionStop, CompletionFixedN},
		{"plateau one vote", plateau, 2, 9, decideInput{succeeded: true, vote: true}, DecisionContinue, ""},
		{"plateau previous vote only", plateau, 2, 9, decideInput{succeeded: true, prevVote: true}, DecisionContinue, ""},
		{"plateau two votes", plateau, 2, 9, decideInput{succeeded: true, vote: true, prevVote: true}, DecisionStop, CompletionPlateau},
		{"plateau two votes below min", plateauMin3, 2, 9, decideInput{succeeded: true, vote: true, prevVote: true}, DecisionContinue, ""},
		{"plateau two votes at min", plateauMin3, 3, 9, decideInput{succeeded: true, vote: true, prevVote: true}, DecisionStop, CompletionPlateau},
		{"plateau at max", plateau, 9, 9, ok, DecisionStop, ReasonMaxIterations},
		{"plateau vote of a failed iteration", plateau, 2, 9, decideInput{vote: true, prevVote: true, failures: 1}, DecisionContinue, ""},
		{"beads-empty signal", beads, 1, 9, decideInput{succeeded: true, completionSignal: true}, DecisionStop, ReasonSignal},
		{"beads-empty signal beats empty", beads, 1, 9, decideInput{succeeded: true, completionSignal: true, beadsEmpty: true}, DecisionStop, ReasonSignal},
		{"beads-empty empty", beads, 1, 9, decideInput{succeeded: true, beadsEmpty: true}, DecisionStop, CompletionBeadsEmpty},
		{"beads-empty beads left", beads, 1, 9, ok, DecisionContinue, ""},
		{"beads-empty at max", beads, 9, 9, ok, DecisionStop, ReasonMaxIterations},
		{"beads-empty signal of a failed iteration", beads, 1, 9, decideInput{completionSignal: true, failures: 1}, DecisionContinue, ""},
		{"all-items before the last", items, 2, 3, ok, DecisionContinue, ""},
		{"all-items last", items, 3, 3, ok, DecisionStop, CompletionAllItems},
		{"status error beats everything", plateau, 2, 9, decideInput{succeeded: true, vote: true, prevVote: true, statusDecision: DecisionError}, DecisionError, ReasonAgentError},
		{"status error at max", fixed, 3, 3, decideInput{succeeded: true, statusDecision: DecisionError}, DecisionError, ReasonAgentError},
		{"two failures", fixed, 2, 9, decideInput{failures: 2}, DecisionContinue, ""},
		{"three failures", fixed, 3, 9, decideInput{failures: 3}, DecisionError, ReasonAgentFailures},
		{"three failures at max", fixed, 3, 3, decideInput{failures: 3}, DecisionError, ReasonAgentFailures},
		{"parallel runs never stop the stage", fixed, 3, 3, decideInput{failures: 3, parallel: true}, DecisionContinue, ""},
		{"parallel status error", fixed, 1, 3, decideInput{succeeded: true, statusDecision: DecisionError, parallel: true}, DecisionError, ReasonAgentError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, r := decide(tt.sp, tt.it, tt.max, tt.in)
			if d != tt.wantDecision || r != tt.wantReason {
				t.Errorf("decide = %s/%q, want %s/%q", d, r, tt.wantDecision, tt.wantReason)
			}
		})
	}
}
