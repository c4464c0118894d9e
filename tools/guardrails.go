package tools

import (
	"fmt"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/state"
)

// checkGuardrails checks start_session's max_cost_usd and max_runtime
// (SPEC §15).
func checkGuardrails(a StartArgs) error {
	if a.MaxCostUSD != 0 {
		if err := engine.CheckDollars("max_cost_usd", a.MaxCostUSD); err != nil {
			return invalidf("max_cost_usd must be a finite, positive amount of US dollars, got %v", a.MaxCostUSD)
		}
	}
	if a.MaxRuntime != "" {
		if _, err := engine.ParseDuration(a.MaxRuntime); err != nil {
			return invalidf("max_runtime: %v", err)
		}
	}
	return nil
}

// guardrailsOf is what SPEC §15 adds to a session's summary: its spending
// cap, its open question (cut to max bytes) and its park.
func guardrailsOf(st *state.State, max int) (maxCost float64, question, parkedUntil, parkedReason string) {
	if st.Question != nil {
		question = sessions.Truncate(st.Question.Question, max)
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
