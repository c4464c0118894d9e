package workspace

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// worktreeGit runs a `git worktree …` command holding the repository's
// worktree lock. git 2.39 does not serialise these itself: a `worktree
// add` that reads .git/worktrees while another is writing its entry fails
// with "failed to read .git/worktrees/<x>/commondir" (measured: 4 runs in
// 30 of four concurrent creates failed). Other git calls need no lock.
func (r repo) worktreeGit(ctx context.Context, args ...string) (gitResult, error) {
	unlock, err := r.lock(ctx)
	if err != nil {
		return gitResult{}, err
	}
	defer unlock()
	return r.git(ctx, append([]string{"worktree"}, args...)...)
}

// lock takes an exclusive flock on the repository's common git directory
// itself (a directory can be flocked; no file is added to the repository).
// It waits at most gitTimeout, and less when ctx says so.
func (r repo) lock(ctx context.Context) (func(), error) {
	res, err := r.git(ctx, "rev-parse", "--git-common-dir")
	if err != nil {
		return nil, err
	}
	dir := strings.TrimSpace(string(res.out))
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(r.root, dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock the repository's worktrees: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, gitTimeout)
	defer cancel()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the flock
		}
		if err != syscall.EWOULDBLOCK && err != syscall.EINTR {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("another worktree operation on %s held its lock past %s", r.root, gitTimeout)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
