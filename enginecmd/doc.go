// Package enginecmd owns the subcommands that are the engine's own: `run`
// (what tmux executes for a session: its flags, the start_session handoff,
// signals) and `lint`. It imports nothing above the engine — not tools —
// so the engine process depends on no MCP code. Each command prints its
// own words; main maps how it ended onto an exit code.
package enginecmd
