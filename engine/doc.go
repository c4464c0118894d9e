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
//
// Where each behaviour lives:
//   - session.go: Run, `agent-sessions run` — prepare, lock, open or
//     create the session, announce, drive the Runner; resume.go reopens a
//     stopped session and what a resume may change; stop.go stops a live
//     engine (--force, kill) and a crashed run's agents; sessionlog.go is
//     session.log; launch.go the handoff and start-error files.
//   - runner.go: the Runner — stage after stage, sequential and parallel,
//     and how the session ends; iteration.go one iteration (files, the
//     agent's run, the verdict, result.json); termination.go what ends a
//     stage (decide, SPEC §8; status.json); vars.go what a prompt and an
//     agent are told (SPEC §6, §7); gate.go the guardrails.
//   - The Runner keeps two directories apart: the control directory
//     (Plan.ProjectDir: run directory, lock, worktrees, host records) and
//     the agents' directory (the Workspace's: cwd, bd, inputs), which
//     differ under isolation worktree (isolation.go, workspace.go).
//   - process.go and provider.go: the exec chokepoint and the providers;
//     streamjson.go reads claude's stream-json; output.go the output file.
//   - definition.go, yamlnode.go, catalog.go, plan.go, lint.go, render.go:
//     definitions, where they are found, compiling them, checking them.
package engine
