// Package testkit is the one shared test kit of the repository: a fake
// Anthropic Messages API served on 127.0.0.1, the locator (and installer) of
// the pinned real Claude Code CLI, the hermetic environment to run that CLI
// in, and a real OpenSSH server per test (sshd.go). It is test support only:
// production code never imports it.
//
// The facts it is built on (what Claude Code 2.1.332 calls and sends) are in
// SPEC §13; the fake answers the streaming POST /v1/messages the CLI uses and
// records every request body so a test can assert on what the model was
// handed (for example the tool_result blocks of the next request).
package testkit
