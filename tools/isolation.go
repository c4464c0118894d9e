package tools

import (
	"context"
	"fmt"

	"github.com/agent-sessions/agent-sessions/sessions"
)

// SetupTimeoutEnv bounds worktree_setup below its 10-minute default.
const SetupTimeoutEnv = sessions.SetupTimeoutEnv

// WorktreeItem is a session worktree cleanup found.
type WorktreeItem struct {
	Session  string `json:"session" jsonschema:"session name"`
	Dir      string `json:"dir" jsonschema:"the worktree"`
	Branch   string `json:"branch,omitempty" jsonschema:"its branch (never deleted)"`
	Unmerged int    `json:"unmerged" jsonschema:"commits on the branch that the branch it came from lacks: merge them before deleting the branch yourself"`
	Dirty    bool   `json:"dirty,omitempty" jsonschema:"uncommitted changes: it is never removed"`
}

// cleanupWorktrees reports the worktrees of sessions that are not running
// and, with remove, removes the clean ones (act decides dry or real).
func (d *Deps) cleanupWorktrees(ctx context.Context, project string, infos []sessions.Info, remove bool,
	act func(bool, string, string, func() (string, error)), res *CleanupResult) {
	wts, err := d.host().Worktrees(ctx, project, infos)
	if err != nil {
		res.Warnings = append(res.Warnings, "worktrees: "+err.Error())
		return
	}
	for _, w := range wts {
		res.Worktrees = append(res.Worktrees, WorktreeItem{Session: w.Session, Dir: w.Dir, Branch: w.Branch, Unmerged: w.Unmerged, Dirty: w.Dirty})
		if w.Dirty {
			continue
		}
		act(remove, "remove_worktree", w.Session, func() (string, error) {
			if err := d.host().RemoveWorktree(ctx, project, w.Session); err != nil {
				return "", err
			}
			return fmt.Sprintf("removed %s; branch %s kept (%d unmerged commit(s))", w.Dir, w.Branch, w.Unmerged), nil
		})
	}
}
