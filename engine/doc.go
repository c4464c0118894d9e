// Package engine runs sessions. It owns stage and pipeline definitions
// (YAML), the catalog that finds them, compiling a definition into a Plan,
// prompt rendering, the agent providers and their one exec chokepoint, the
// containment of everything an agent starts (a cgroup per agent, or the
// subreaper and process-group fallbacks; contain.go), the termination
// strategies and the Runner that drives iteration after
// iteration, recording everything through a state.Store; and the overnight
// guardrails the Runner consults before every iteration (gate.go: budgets,
// max_runtime, parks on usage and rate limits, questions to the user), with
// config.yaml and the notify command they report through (config.go,
// notify.go).
//
// A single-stage session (a "loop") is compiled into a one-stage plan: there
// is one code path for loops and pipelines.
package engine
