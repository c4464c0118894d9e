package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/agent-sessions/agent-sessions/state"
)

// The launch contract between whoever starts a session in tmux (the
// start_session tool, or a person) and the engine inside it. It lives on
// the engine's side so `run` depends on nothing above the engine.

// StartErrorFileEnv names the file where an engine started by
// start_session writes why it could not start, so the tool can report the
// engine's own words even though its tmux pane closed with it.
const StartErrorFileEnv = "AGENT_SESSIONS_START_ERROR_FILE"

// Handoff is what the starter hands the engine in a file
// (`run --handoff FILE`) rather than on tmux's command line: the server's
// environment, the context and the inputs. tmux refuses a command of more
// than about 16 KB ("command too long"), which a long context or a large
// environment exceeds; a file also keeps secrets in the environment out of
// `ps`. The file is private (0600) and the engine removes it once read.
type Handoff struct {
	Env     []string `json:"env"`
	Context string   `json:"context,omitempty"`
	Inputs  []string `json:"inputs,omitempty"`
	// WorktreeReady: the starter made the worktree; WorktreeNote is what
	// the engine logs about it (the setup's output).
	WorktreeReady bool   `json:"worktree_ready,omitempty"`
	WorktreeNote  string `json:"worktree_note,omitempty"`
}

// WriteHandoff writes a private handoff file and returns its path.
func WriteHandoff(h Handoff) (string, error) {
	f, err := os.CreateTemp("", "agent-sessions-handoff-*.json")
	if err != nil {
		return "", fmt.Errorf("write the engine's handoff file: %w", err)
	}
	err = json.NewEncoder(f).Encode(h)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write the engine's handoff file: %w", err)
	}
	return f.Name(), nil
}

// ReadHandoff reads and removes a handoff file and applies its environment
// to this process, over what tmux gave it. Its errors wrap ErrInvalid.
func ReadHandoff(path string) (Handoff, error) {
	var h Handoff
	data, err := state.ReadRegularFile(path, state.HandoffLimit)
	if err != nil {
		return h, fmt.Errorf("%w: --handoff: %w (start_session writes this file; to run by hand, use --context and --input)", ErrInvalid, err)
	}
	os.Remove(path)
	if err := json.Unmarshal(data, &h); err != nil {
		return h, fmt.Errorf("%w: --handoff %s: not a handoff file: %w", ErrInvalid, path, err)
	}
	for _, kv := range h.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			os.Setenv(k, v)
		}
	}
	return h, nil
}

// StartFailure is what an engine writes to its start-error file: the kind
// of its error (a name of one of the sentinels in errors.go, "" for none)
// and its words.
type StartFailure struct {
	Kind    string `json:"kind,omitempty"`
	Message string `json:"message"`
}

// kinds names the sentinels a start failure can carry across processes.
var kinds = []struct {
	name string
	err  error
}{
	{"invalid", ErrInvalid},
	{"not_found", ErrNotFound},
	{"conflict_running", ErrConflictRunning},
	{"conflict_complete", ErrConflictComplete},
	{"conflict_crashed", ErrConflictCrashed},
	{"agent_unavailable", ErrAgentUnavailable},
	{"dependency_missing", ErrDependencyMissing},
}

// ReportStartFailure writes err (in the words msg) to the start-error file
// named in the environment, if any: the engine's tmux pane closes with it,
// so the words would otherwise be lost.
func ReportStartFailure(err error, msg string) {
	path := os.Getenv(StartErrorFileEnv)
	if path == "" {
		return
	}
	f := StartFailure{Message: msg}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			f.Kind = k.name
			break
		}
	}
	data, _ := json.Marshal(f)
	os.WriteFile(path, data, 0o600)
}

// ReadStartFailure reads a start-error file: nil when the engine wrote
// none. The error wraps the sentinel the engine's error wrapped.
func ReadStartFailure(path string) error {
	data, err := os.ReadFile(path)
	var f StartFailure
	if err != nil || len(data) == 0 || json.Unmarshal(data, &f) != nil || f.Message == "" {
		return nil
	}
	for _, k := range kinds {
		if k.name == f.Kind {
			return &startFailure{msg: f.Message, kind: k.err}
		}
	}
	return &startFailure{msg: f.Message}
}

// startFailure is an engine's start failure read back in another process.
type startFailure struct {
	msg  string
	kind error
}

func (e *startFailure) Error() string { return e.msg }
func (e *startFailure) Unwrap() error { return e.kind }
