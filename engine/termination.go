package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/agent-sessions/agent-sessions/state"
)

// This file is the termination strategies of SPEC §8: what an iteration's
// outcome decides (decide, a pure function), what the agent's status.json
// says, and when a stage whose runs failed ends failed.

// Decisions recorded per iteration.
const (
	DecisionContinue = "continue"
	DecisionStop     = "stop"
	DecisionError    = "error"
)

// Completion reasons beyond the strategy names.
const (
	ReasonMaxIterations   = "max_iterations"
	ReasonSignal          = "completion_signal"
	ReasonStagesComplete  = "all_stages_complete"
	ReasonAgentFailures   = "agent_failures"
	ReasonAgentError      = "agent_error"
	ReasonKilled          = "killed"
	ReasonEngineError     = "engine_error"
	ReasonDependency      = "dependency_failed"
	maxConsecutiveFailure = 3
)

// decideInput is what a termination decision looks at.
type decideInput struct {
	succeeded        bool
	failures         int // consecutive failures including this iteration
	vote             bool
	prevVote         bool
	statusDecision   string
	statusReason     string
	completionSignal bool
	beadsEmpty       bool
	parallel         bool
}

// decide is the termination strategy (SPEC §8) as a pure function of one
// iteration's outcome.
func decide(sp StagePlan, it, max int, in decideInput) (decision, reason string) {
	if in.statusDecision == DecisionError {
		return DecisionError, ReasonAgentError
	}
	if !in.succeeded && in.failures >= maxConsecutiveFailure && !in.parallel {
		return DecisionError, ReasonAgentFailures
	}
	if in.parallel {
		return DecisionContinue, ""
	}
	if in.succeeded {
		switch sp.Completion {
		case CompletionPlateau:
			if in.vote && in.prevVote && it >= sp.MinIterations {
				return DecisionStop, CompletionPlateau
			}
		case CompletionBeadsEmpty:
			if in.completionSignal {
				return DecisionStop, ReasonSignal
			}
			if in.beadsEmpty {
				return DecisionStop, CompletionBeadsEmpty
			}
		}
	}
	if it >= max {
		return DecisionStop, maxReason(sp)
	}
	return DecisionContinue, ""
}

// allFailed reports a stage whose every iteration failed: it ends failed
// whatever its length (with max_iterations < 3 the three-in-a-row rule
// never fires, and such a stage read complete). The error carries the last
// failure, which usually names the cause.
func (r *Runner) allFailed(i int) (stageEnd, bool) {
	st := r.Store.State()
	ss := st.Stages[i]
	if ss.Iterations == 0 || ss.FailedIterations < ss.Iterations {
		return stageEnd{}, false
	}
	msg := fmt.Sprintf("all %d iterations of stage %s failed", ss.Iterations, ss.Name)
	if ss.Iterations == 1 {
		msg = fmt.Sprintf("the only iteration of stage %s failed", ss.Name)
	}
	if last, ok := st.LastEntry(i); ok && last.Warning != "" {
		msg += "; the last: " + last.Warning
	}
	return stageEnd{status: state.StatusFailed, reason: ReasonAgentFailures, err: msg}, true
}

func maxReason(sp StagePlan) string {
	switch sp.Completion {
	case CompletionFixedN, CompletionAllItems:
		return sp.Completion
	}
	return ReasonMaxIterations
}

func trailingFailures(history []state.HistoryEntry, stage int) int {
	n := 0
	for k := len(history) - 1; k >= 0; k-- {
		if history[k].StageIndex != stage {
			continue
		}
		if history[k].ExitCode == 0 {
			break
		}
		n++
	}
	return n
}

// agentStatus is the optional status.json an agent writes.
type agentStatus struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	Summary  string `json:"summary"`
	// Question and Options come with decision ask (SPEC §15).
	Question string   `json:"question"`
	Options  []string `json:"options"`
}

func readStatus(path string) (agentStatus, string) {
	// The agent writes this file: it may be anything, of any size.
	data, err := state.ReadRegularFile(path, state.StatusLimit)
	if errors.Is(err, os.ErrNotExist) {
		return agentStatus{}, ""
	}
	if err != nil {
		return agentStatus{}, "status.json unreadable: " + err.Error()
	}
	var s agentStatus
	if err := json.Unmarshal(data, &s); err != nil {
		return agentStatus{}, "status.json is not valid JSON (ignored): " + err.Error()
	}
	switch s.Decision {
	case "", DecisionContinue, DecisionStop, DecisionError:
	case DecisionAsk:
		return checkQuestion(s)
	default:
		w := fmt.Sprintf("status.json decision %q is not continue, stop, error or ask (ignored)", s.Decision)
		s.Decision = ""
		return s, w
	}
	return s, ""
}
