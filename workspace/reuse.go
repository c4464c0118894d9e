package workspace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/agent-sessions/agent-sessions/state"
)

// Reuse returns session's worktree for a resume. A worktree whose
// directory was deleted is made again from the session's branch (its
// commits are all there; uncommitted work that was in the directory is
// gone with it), with the .worktreeinclude files copied in again but
// without running the setup again.
func Reuse(ctx context.Context, project, session string) (*Worktree, error) {
	if err := state.ValidateSession(session); err != nil {
		return nil, err
	}
	r, err := openRepo(ctx, project)
	if err != nil {
		return nil, err
	}
	wt := r.newWorktree(session)
	w, ok, err := r.find(ctx, wt.Dir)
	if err != nil {
		return nil, err
	}
	if ok && !w.prunable {
		if w.branch != wt.Branch {
			return nil, fmt.Errorf("worktree %s is on %q, not on the session's branch %s: check it out there (git -C %s switch %s), then resume", wt.Dir, w.branch, wt.Branch, wt.Dir, wt.Branch)
		}
		return r.reuse(ctx, wt)
	}
	tip, err := r.resolve(ctx, "refs/heads/"+wt.Branch)
	if err != nil {
		return nil, err
	}
	if tip == "" {
		return nil, fmt.Errorf("session %s has no worktree and its branch %s is gone: start it afresh (mode force)", session, wt.Branch)
	}
	if _, err := os.Lstat(wt.Dir); err == nil {
		return nil, fmt.Errorf("%s exists but is not a worktree of %s: move it away, then resume", wt.Dir, r.root)
	}
	if ok {
		// Registered, directory gone: forget the registration first.
		if _, err := r.worktreeGit(ctx, "prune"); err != nil {
			return nil, err
		}
	}
	var undo undoList
	if _, err := r.worktreeGit(ctx, "add", wt.Dir, wt.Branch); err != nil {
		return nil, fmt.Errorf("make the worktree again from %s: %w", wt.Branch, err)
	}
	undo = append(undo, func(ctx context.Context) { r.worktreeGit(ctx, "remove", "--force", wt.Dir) })
	if wt.Copied, err = copyIncluded(ctx, r, wt.Dir); err != nil {
		undo.run(ctx)
		return nil, err
	}
	r.readMeta(wt)
	wt.Reused = true
	return wt, nil
}

// reuse fills in an existing worktree from its meta file.
func (r repo) reuse(ctx context.Context, wt *Worktree) (*Worktree, error) {
	r.readMeta(wt)
	wt.Reused = true
	return wt, nil
}

// readMeta reads what CreateWorktree recorded about a worktree's base; a
// missing or unreadable file leaves BaseRef and Base empty.
func (r repo) readMeta(wt *Worktree) {
	data, err := os.ReadFile(metaFile(r.project, wt.Session))
	if err != nil {
		return
	}
	var m Worktree
	if json.Unmarshal(data, &m) == nil {
		wt.BaseRef, wt.Base = m.BaseRef, m.Base
	}
}

// ErrDirty means a worktree has uncommitted changes, so it is kept.
var ErrDirty = errors.New("the worktree has uncommitted changes")
