package workspace

import (
	"path/filepath"
	"testing"
)

// An engine takes a change record after every iteration, for hours: the
// record costs as few git processes as it can. HEAD after comes from the
// status run, and the commit count from the commit list while that is
// shorter than CommitsListed. Not parallel: it counts the package's git
// runs.
func TestChangesGitRuns(t *testing.T) {
	dir := newRepo(t)
	ws := NewLocal(dir)
	count := func(f func()) int64 {
		t.Helper()
		start := gitRuns.Load()
		f()
		return gitRuns.Load() - start
	}
	var before Snapshot
	if n := count(func() { before = ws.Before(bg) }); n != 1 {
		t.Errorf("Before ran git %d times, want 1", n)
	}
	write(t, filepath.Join(dir, "README.md"), "changed\n")
	if n := count(func() { ws.After(bg, before) }); n != 2 {
		t.Errorf("After without commits ran git %d times, want 2 (status, diff)", n)
	}
	head := commitFile(t, dir, "a.txt", "one\n", "add a")
	if n := count(func() {
		rec := ws.After(bg, before)
		if rec.CommitCount != 1 || len(rec.Commits) != 1 || rec.HeadAfter != head {
			t.Errorf("record %+v, want 1 commit, head %s", rec, head)
		}
	}); n != 3 {
		t.Errorf("After of one commit ran git %d times, want 3 (status, log, diff)", n)
	}
	// HEAD moved back: nothing in the range, counted from the empty list.
	atA := ws.Before(bg)
	testGit(t, dir, "reset", "-q", "--hard", "HEAD~1")
	if n := count(func() {
		rec := ws.After(bg, atA)
		if rec.CommitCount != 0 || len(rec.Commits) != 0 || rec.HeadAfter != before.Head || rec.Note != "" {
			t.Errorf("record %+v, want no commits, head %s, no note", rec, before.Head)
		}
	}); n != 3 {
		t.Errorf("After of a HEAD moved back ran git %d times, want 3 (status, log, diff)", n)
	}
}

// HEAD after is read from git status's header: an unborn branch (no commit
// before or after) and a detached HEAD read as rev-parse would.
func TestChangesHeadFromStatus(t *testing.T) {
	t.Parallel()
	t.Run("unborn", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		testGit(t, dir, "init", "-q")
		ws := NewLocal(dir)
		before := ws.Before(bg)
		write(t, filepath.Join(dir, "new.txt"), "x\n")
		c := ws.After(bg, before)
		if c.HeadBefore != "" || c.HeadAfter != "" || c.CommitCount != 0 || !c.Dirty || c.Untracked != 1 || c.FilesChanged != 1 || c.Note != "" {
			t.Errorf("record %+v, want no heads, dirty, 1 untracked file, no note", c)
		}
	})
	t.Run("detached", func(t *testing.T) {
		t.Parallel()
		dir := newRepo(t)
		ws := NewLocal(dir)
		before := ws.Before(bg)
		head := commitFile(t, dir, "a.txt", "one\n", "add a")
		testGit(t, dir, "checkout", "-q", "--detach")
		c := ws.After(bg, before)
		if c.HeadAfter != head || c.CommitCount != 1 || c.Dirty || c.Note != "" {
			t.Errorf("record %+v, want head %s, 1 commit, clean, no note", c, head)
		}
	})
}
