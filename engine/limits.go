package engine

import (
	"fmt"
	"strings"
	"time"
)

// GraceEnv names the variable that sets how long agents (and a forced
// engine) get between SIGTERM and SIGKILL.
const GraceEnv = "AGENT_SESSIONS_KILL_GRACE"

// GraceFromEnv reads GraceEnv from env: 0 when unset, else a positive Go
// duration. A bare number ("10") is refused rather than guessed at: seconds
// or nanoseconds, a guess either way kills agents too soon or never.
func GraceFromEnv(env []string) (time.Duration, error) {
	v := EnvValue(env, GraceEnv)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%w: %s=%q is not a positive duration with a unit; write e.g. %s=%ss or 30s", ErrInvalid, GraceEnv, v, GraceEnv, strings.TrimSpace(v))
	}
	return d, nil
}

// EnvValue is key's value in env, "" when it has none. When key appears
// more than once the last entry wins, as it does for a process exec'd
// with env.
func EnvValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if val, ok := strings.CutPrefix(kv, key+"="); ok {
			v = val
		}
	}
	return v
}

// pathMax is Linux's PATH_MAX: no path the engine opens may be longer
// (ENAMETOOLONG), NUL included.
const pathMax = 4096

// pathRoom is how much longer than the project directory the engine's
// deepest file gets: .claude/pipeline-runs/<session>/stage-NN-<stage>/
// iterations/NNN/ and a temp file's name, with room for long stage names.
const pathRoom = 512

// CheckPathRoom refuses a project directory whose path leaves no room for
// the engine's files under it: the engine would die at its first file,
// after start_session had handed it over.
func CheckPathRoom(dir string) error {
	if len(dir)+pathRoom >= pathMax {
		return fmt.Errorf("%w: the project directory's path is too long (%d bytes): the session's files under it need up to %d more, past the system limit of %d; use a project directory with a shorter path", ErrInvalid, len(dir), pathRoom, pathMax-1)
	}
	return nil
}
