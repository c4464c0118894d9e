package workspace

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// WorktreeInfo is one session worktree of a project, for cleanup.
type WorktreeInfo struct {
	Session string `json:"session"`
	Dir     string `json:"dir"`
	Branch  string `json:"branch,omitempty"` // "" when detached or not a worktree
	Head    string `json:"head,omitempty"`
	// Base is what Unmerged counts against: the branch the worktree came
	// from when it still exists, else the commit it was made at, else the
	// main checkout's HEAD.
	Base     string `json:"base,omitempty"`
	Unmerged int    `json:"unmerged"` // commits on Branch that Base does not have
	Dirty    bool   `json:"dirty"`    // uncommitted changes (untracked files included)
	// Registered is false for a directory git does not know as a worktree;
	// Missing is a registered worktree whose directory is gone.
	Registered bool   `json:"registered"`
	Missing    bool   `json:"missing,omitempty"`
	Note       string `json:"note,omitempty"` // what could not be found out
}

// Inventory lists the session worktrees of project: every directory in
// .claude/worktrees and every registered worktree there whose directory
// is gone, sorted by session. A project that is not a git repository, or
// has no worktrees, has none.
func Inventory(ctx context.Context, project string) ([]WorktreeInfo, error) {
	r, err := openRepo(ctx, project)
	if err != nil {
		return nil, err
	}
	wts, err := r.worktrees(ctx)
	if err != nil {
		return nil, err
	}
	root := WorktreesDir(r.project)
	found := map[string]WorktreeInfo{}
	for _, w := range wts {
		if filepath.Dir(w.path) == root {
			found[filepath.Base(w.path)] = WorktreeInfo{Session: filepath.Base(w.path), Dir: w.path, Branch: w.branch, Head: w.head,
				Registered: true, Missing: w.prunable}
		}
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if _, ok := found[e.Name()]; !ok && e.IsDir() {
			found[e.Name()] = WorktreeInfo{Session: e.Name(), Dir: filepath.Join(root, e.Name()),
				Note: "not a worktree git knows: left as it is"}
		}
	}
	out := make([]WorktreeInfo, 0, len(found))
	for _, info := range found {
		if info.Registered {
			r.describe(ctx, &info)
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Session < out[j].Session })
	return out, nil
}

// describe fills in a registered worktree's unmerged count and dirtiness.
func (r repo) describe(ctx context.Context, info *WorktreeInfo) {
	var notes []string
	wt := &Worktree{Session: info.Session}
	r.readMeta(wt)
	for _, cand := range []string{wt.BaseRef, wt.Base, "HEAD"} {
		if cand == "" {
			continue
		}
		if sha, err := r.resolve(ctx, cand); err == nil && sha != "" {
			info.Base = cand
			break
		}
	}
	if info.Head != "" && info.Base != "" {
		n, err := r.count(ctx, info.Head, "^"+info.Base)
		if err != nil {
			notes = append(notes, "unmerged: "+err.Error())
		}
		info.Unmerged = n
	}
	if !info.Missing {
		dirty, err := isDirty(ctx, info.Dir)
		if err != nil {
			notes = append(notes, "status: "+err.Error())
			dirty = true // unknown counts as dirty: it is then kept
		}
		info.Dirty = dirty
	}
	info.Note = strings.Join(notes, "; ")
}

// isDirty reports whether a worktree has uncommitted changes or untracked
// files. Only whether git prints anything matters, so little is read.
func isDirty(ctx context.Context, dir string) (bool, error) {
	res, err := git(ctx, dir, gitTimeout, 4<<10, "status", "--porcelain", "-z", "--untracked-files=normal")
	if err != nil {
		return false, err
	}
	return len(res.out) > 0, nil
}

// RemoveWorktree removes session's worktree when it is clean (`git
// worktree remove`, never --force): a dirty one is kept and ErrDirty
// returned. The branch is never deleted: its commits stay reachable.
func RemoveWorktree(ctx context.Context, project, session string) error {
	r, err := openRepo(ctx, project)
	if err != nil {
		return err
	}
	wt := r.newWorktree(session)
	w, ok, err := r.find(ctx, wt.Dir)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("session %s has no worktree in %s", session, r.project)
	}
	if !w.prunable {
		dirty, err := isDirty(ctx, wt.Dir)
		if err != nil {
			return fmt.Errorf("worktree %s kept: could not tell whether it is clean: %w", wt.Dir, err)
		}
		if dirty {
			return fmt.Errorf("worktree %s kept: %w — commit or stash them there (git -C %s status), then remove it", wt.Dir, ErrDirty, wt.Dir)
		}
		if _, err := r.worktreeGit(ctx, "remove", wt.Dir); err != nil {
			return fmt.Errorf("worktree %s kept: %w", wt.Dir, err)
		}
	} else if _, err := r.worktreeGit(ctx, "prune"); err != nil {
		return err
	}
	os.Remove(metaFile(r.project, session))
	return nil
}
