package tools

import (
	"fmt"
	"strconv"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
)

// guardrailArgs checks start_session's max_cost_usd and max_runtime
// (SPEC §15) and puts them in the engine's options.
func guardrailArgs(a StartArgs, o *engine.Options) error {
	if a.MaxCostUSD != 0 {
		if err := engine.CheckDollars("max_cost_usd", a.MaxCostUSD); err != nil {
			return invalidf("max_cost_usd must be a finite, positive amount of US dollars, got %v", a.MaxCostUSD)
		}
		v := a.MaxCostUSD
		o.MaxCostUSD = &v
	}
	if a.MaxRuntime != "" {
		d, err := engine.ParseDuration(a.MaxRuntime)
		if err != nil {
			return invalidf("max_runtime: %v", err)
		}
		o.MaxRuntime = d
	}
	return nil
}

// guardrailFlags are the engine flags of start_session's guardrails.
func guardrailFlags(a StartArgs) []string {
	var argv []string
	if a.MaxCostUSD != 0 {
		argv = append(argv, "--max-cost-usd", strconv.FormatFloat(a.MaxCostUSD, 'f', -1, 64))
	}
	if a.MaxRuntime != "" {
		argv = append(argv, "--max-runtime", a.MaxRuntime)
	}
	return argv
}

// guardrailsOf is what SPEC §15 adds to a session's summary: its spending
// cap, its open question (cut to max bytes) and its park.
func guardrailsOf(st *state.State, max int) (maxCost float64, question, parkedUntil, parkedReason string) {
	if st.Question != nil {
		question = truncate(st.Question.Question, max)
	}
	if st.ParkedUntil != nil && st.Status == state.StatusParked {
		parkedUntil, parkedReason = st.ParkedUntil.Local().Format(time.RFC3339), st.ParkedReason
	}
	return st.MaxCostUSD, question, parkedUntil, parkedReason
}

// guardrailNote is what the reminder adds about a waiting or parked
// session: the question to put to the user, or when it goes on.
func guardrailNote(s Summary) string {
	switch {
	case s.Status == state.LiveWaiting && s.Question != "":
		return fmt.Sprintf(". **It asks:** %q — ask the user, then `reply {\"session\": %q, \"answer\": …}` with their answer", s.Question, s.Session)
	case s.Status == state.LiveParked:
		return fmt.Sprintf(". Parked (%s) until %s; it goes on by itself", s.ParkedReason, s.ParkedUntil)
	}
	return ""
}
