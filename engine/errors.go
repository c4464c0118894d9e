package engine

import "errors"

// Sentinel errors. Every error the engine returns for a reason the caller
// can fix wraps one of these; the MCP tools map them onto error codes and
// `run` maps them onto exit code 2.
var (
	ErrInvalid           = errors.New("invalid argument")
	ErrNotFound          = errors.New("not found")
	ErrConflictRunning   = errors.New("session is running")
	ErrConflictComplete  = errors.New("session already complete")
	ErrConflictCrashed   = errors.New("session exists and is resumable")
	ErrAgentUnavailable  = errors.New("agent CLI unavailable")
	ErrDependencyMissing = errors.New("dependency missing")
)
