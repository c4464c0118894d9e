// Package testkit is the one shared test kit of the repository: a fake
// Anthropic Messages API served on 127.0.0.1, the locator (and installer) of
// the pinned real Claude Code CLI, the hermetic environment to run that CLI
// in, a real OpenSSH server per test (sshd.go), and the helpers every
// package's tests share — the repository's fake agents and the binary built
// once (repo.go), files, stages and git (files.go), polls and processes
// (wait.go), a watch that a file is whole at every moment (watch.go), tmux
// socket cleanup, a concurrent buffer and benchmark medians. It is test
// support only: production code never imports it, and it imports nothing of
// ours (so any package's own tests may use it).
//
// The facts it is built on (what Claude Code 2.1.332 calls and sends) are in
// SPEC §13; the fake answers the streaming POST /v1/messages the CLI uses and
// records every request body so a test can assert on what the model was
// handed (for example the tool_result blocks of the next request).
package testkit
