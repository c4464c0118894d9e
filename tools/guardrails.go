package tools

import (
	"strconv"

	"github.com/agent-sessions/agent-sessions/engine"
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
