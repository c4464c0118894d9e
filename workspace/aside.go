package workspace

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Check tells whether project can have a session worktree from baseRef
// ("" means HEAD) without creating anything: the errors CreateWorktree
// would give for a directory that is not a repository or an unknown ref.
func Check(ctx context.Context, project, baseRef string) error {
	r, err := openRepo(ctx, project)
	if err != nil {
		return err
	}
	_, _, err = r.baseOf(ctx, baseRef)
	return err
}

// Aside is where SetAside put a session's previous worktree and branch.
type Aside struct {
	Dir    string `json:"dir,omitempty"`    // the worktree, moved
	Branch string `json:"branch,omitempty"` // the branch, renamed
}

// SetAside makes way for a fresh worktree of session (a forced start): its
// worktree is moved to <session>.<suffix> beside it (`git worktree move`,
// uncommitted work and all) and its branch renamed to
// agent-sessions/<session>.<suffix>. Nothing is deleted; the zero Aside
// means there was nothing to move.
func SetAside(ctx context.Context, project, session, suffix string) (Aside, error) {
	r, err := openRepo(ctx, project)
	if err != nil {
		return Aside{}, err
	}
	wt := r.newWorktree(session)
	var out Aside
	w, ok, err := r.find(ctx, wt.Dir)
	if err != nil {
		return out, err
	}
	if ok && w.prunable {
		if _, err := r.worktreeGit(ctx, "prune"); err != nil {
			return out, err
		}
	} else if ok {
		dst := wt.Dir + "." + suffix
		if _, err := r.worktreeGit(ctx, "move", wt.Dir, dst); err != nil {
			return out, fmt.Errorf("move the previous worktree %s aside: %w", wt.Dir, err)
		}
		out.Dir = dst
		os.Rename(metaFile(r.project, session), filepath.Join(WorktreesDir(r.project), session+"."+suffix+".meta.json"))
	}
	if tip, err := r.resolve(ctx, "refs/heads/"+wt.Branch); err != nil {
		return out, err
	} else if tip != "" {
		// git branch -m also points the moved worktree's HEAD at the new name.
		to := wt.Branch + "." + suffix
		if _, err := r.git(ctx, "branch", "-m", wt.Branch, to); err != nil {
			return out, fmt.Errorf("rename the previous branch %s aside: %w", wt.Branch, err)
		}
		out.Branch = to
	}
	return out, nil
}

// Discard takes back a worktree CreateWorktree made for a start that then
// failed: removed only while clean, and its branch deleted only while it
// still points at the commit it was made at (it holds no work then).
// Anything else is kept and said.
func Discard(ctx context.Context, project string, wt *Worktree) error {
	if err := RemoveWorktree(ctx, project, wt.Session); err != nil {
		return err
	}
	r, err := openRepo(ctx, project)
	if err != nil {
		return err
	}
	if _, err := r.git(ctx, "update-ref", "-d", "refs/heads/"+wt.Branch, wt.Base); err != nil {
		return fmt.Errorf("branch %s kept: %w", wt.Branch, err)
	}
	return nil
}
