// Package state owns everything a session leaves on disk: the run-directory
// layout, state.json (replaced atomically), events.jsonl (append-only, the
// commit log every snapshot can be rebuilt from), progress files, the session
// lock (an abstract unix socket no one can delete, plus an flock on the lock
// file, both held for the engine's whole life; ProbeLock is the one question
// "is an engine alive") and the liveness classifier that names a session
// from its lock, its state and its tmux session. ReadRegularFile is the one
// way any package reads a file from outside the engine (definitions,
// prompts, status.json, inputs, handoff): regular files of bounded size
// only, never a blocking open.
//
// The package imports nothing else from this module. Its one writer of a
// session's files is Store; readers use Load, ReadEvents and ProbeLock, which
// never modify anything.
package state
