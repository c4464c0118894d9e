package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/workspace"
)

// Workspace is where a session's agents run — the project directory, or
// later a worktree — and what they changed there (SPEC §16). The runner
// takes a snapshot before each agent and the change record after it; the
// control files (run dir, lock) stay in the project whatever Dir is.
type Workspace interface {
	// Dir is the agents' working directory.
	Dir() string
	// Before snapshots the workspace before an agent runs.
	Before(ctx context.Context) workspace.Snapshot
	// After is the change record since before: nil when there is none to
	// make (not a git repository). It never fails; a git problem is the
	// record's note.
	After(ctx context.Context, before workspace.Snapshot) *state.Changes
}

// changesText is the transcript's summary of a change record.
func changesText(c *state.Changes) string {
	if c == nil {
		return ""
	}
	var parts []string
	if c.CommitCount > 0 {
		parts = append(parts, plural(c.CommitCount, "commit"))
	}
	parts = append(parts, fmt.Sprintf("%s +%d −%d", plural(c.FilesChanged, "file"), c.Insertions, c.Deletions))
	if c.Dirty {
		parts = append(parts, "uncommitted changes")
	}
	s := " · git: " + strings.Join(parts, ", ")
	if c.Note != "" {
		s += " (" + truncate(c.Note, 120) + ")"
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
