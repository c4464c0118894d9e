// Package workspace owns where agents run and what they changed there: the
// per-iteration change record of a git project (SPEC §16) and the git
// worktrees that isolate one session's agents from another's.
//
// It uses the system `git`, always exec'd with an argv (never a shell),
// every call under a timeout and with bounded output: a repository of any
// size, or a hung git, costs the engine at most the timeout. It imports
// only state, for the types the change record is stored as.
package workspace
