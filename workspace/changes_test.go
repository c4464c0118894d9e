package workspace

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestChangesCommit(t *testing.T) {
	t.Parallel()
	dir := newRepo(t)
	ws := NewLocal(dir)
	before := ws.Before(bg)
	if !before.Repo || before.Head == "" {
		t.Fatalf("Before = %+v, want a repo with a head", before)
	}
	head := commitFile(t, dir, "a.txt", "one\ntwo\n", "add a")
	c := ws.After(bg, before)
	if c == nil {
		t.Fatal("After = nil in a git repository")
	}
	if c.HeadBefore != before.Head || c.HeadAfter != head {
		t.Errorf("heads %s..%s, want %s..%s", c.HeadBefore, c.HeadAfter, before.Head, head)
	}
	if c.CommitCount != 1 || len(c.Commits) != 1 || c.Commits[0].SHA != head || c.Commits[0].Subject != "add a" {
		t.Errorf("commits %d %+v, want 1: %s add a", c.CommitCount, c.Commits, head)
	}
	if c.FilesChanged != 1 || c.Insertions != 2 || c.Deletions != 0 || c.Dirty || c.Note != "" {
		t.Errorf("record %+v, want 1 file +2 −0, clean, no note", c)
	}
}

func TestChangesUncommitted(t *testing.T) {
	t.Parallel()
	dir := newRepo(t)
	ws := NewLocal(dir)
	before := ws.Before(bg)
	write(t, filepath.Join(dir, "README.md"), "changed\nmore\n")
	write(t, filepath.Join(dir, "new", "file.txt"), "x\n")
	c := ws.After(bg, before)
	if c.CommitCount != 0 || len(c.Commits) != 0 || c.HeadAfter != before.Head {
		t.Errorf("commits %d, head %s, want none and %s", c.CommitCount, c.HeadAfter, before.Head)
	}
	if !c.Dirty || c.FilesChanged != 2 || c.Untracked != 1 || c.Insertions != 2 || c.Deletions != 1 {
		t.Errorf("record %+v, want dirty, 2 files (1 untracked), +2 −1", c)
	}
}

func TestChangesNone(t *testing.T) {
	t.Parallel()
	dir := newRepo(t)
	ws := NewLocal(dir)
	before := ws.Before(bg)
	// The engine's own files are never part of the record.
	for _, p := range []string{".claude/pipeline-runs/s/state.json", ".claude/locks/s.lock", ".claude/worktrees/s/x"} {
		write(t, filepath.Join(dir, p), "{}\n")
	}
	c := ws.After(bg, before)
	if c == nil || c.Commits == nil {
		t.Fatalf("After = %+v, want a record with an empty commit list", c)
	}
	if c.CommitCount != 0 || c.FilesChanged != 0 || c.Insertions != 0 || c.Dirty || c.Note != "" || c.HeadAfter != before.Head {
		t.Errorf("record %+v, want no change", c)
	}
}

// A project in a subdirectory of a repository: the engine's files are
// excluded relative to the project, the changes are the repository's.
func TestChangesSubdirProject(t *testing.T) {
	t.Parallel()
	repo := newRepo(t)
	dir := filepath.Join(repo, "svc")
	write(t, filepath.Join(dir, ".claude/locks/s.lock"), "{}\n")
	ws := NewLocal(dir)
	before := ws.Before(bg)
	write(t, filepath.Join(repo, "top.txt"), "t\n")
	c := ws.After(bg, before)
	if !c.Dirty || c.FilesChanged != 1 || c.Untracked != 1 {
		t.Errorf("record %+v, want top.txt alone as an untracked change", c)
	}
}

func TestChangesUnbornBranch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	testGit(t, dir, "init", "-q")
	ws := NewLocal(dir)
	before := ws.Before(bg)
	if !before.Repo || before.Head != "" || before.Note != "" {
		t.Fatalf("Before = %+v, want a repo with no head", before)
	}
	head := commitFile(t, dir, "a.txt", "1\n2\n3\n", "first")
	c := ws.After(bg, before)
	if c.HeadBefore != "" || c.HeadAfter != head || c.CommitCount != 1 || c.Insertions != 3 || c.Note != "" {
		t.Errorf("record %+v, want the first commit, +3", c)
	}
}

func TestChangesNotARepo(t *testing.T) {
	t.Parallel()
	ws := NewLocal(t.TempDir())
	before := ws.Before(bg)
	if before.Repo || before.Warning != "" {
		t.Errorf("Before = %+v, want no repo and no warning", before)
	}
	if c := ws.After(bg, before); c != nil {
		t.Errorf("After = %+v, want nil", c)
	}
}

// Not parallel: it empties PATH.
func TestChangesGitMissing(t *testing.T) {
	dir := newRepo(t)
	t.Setenv("PATH", t.TempDir())
	ws := NewLocal(dir)
	first := ws.Before(bg)
	if first.Repo || !strings.Contains(first.Warning, "git is not installed") {
		t.Errorf("first Before = %+v, want no record and a warning", first)
	}
	if second := ws.Before(bg); second.Warning != "" {
		t.Errorf("second Before warned again: %q", second.Warning)
	}
	if c := ws.After(bg, first); c != nil {
		t.Errorf("After = %+v, want nil", c)
	}
}

// A git that cannot answer in time gives a record with a note, not an error.
func TestChangesTimeoutIsANote(t *testing.T) {
	t.Parallel()
	dir := newRepo(t)
	ws := NewLocal(dir)
	before := ws.Before(bg)
	ws.Timeout = time.Nanosecond
	c := ws.After(bg, before)
	if c == nil || !strings.Contains(c.Note, "no answer within") {
		t.Errorf("After = %+v, want a record whose note says git timed out", c)
	}
}

// More commits than are listed: all are counted, CommitsListed are listed.
func TestChangesManyCommits(t *testing.T) {
	t.Parallel()
	dir := newRepo(t)
	ws := NewLocal(dir)
	before := ws.Before(bg)
	var b strings.Builder
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&b, "commit refs/heads/main\ncommitter t <t@e> %d +0000\ndata 4\nc%02d\n", 1700000000+i, i)
		if i == 0 {
			fmt.Fprintf(&b, "from %s\n", before.Head)
		}
		b.WriteString("\n")
	}
	fastImport(t, dir, b.String())
	c := ws.After(bg, before)
	if c.CommitCount != 60 || len(c.Commits) != 50 || c.Commits[0].Subject != "c59" {
		t.Errorf("got %d commits, %d listed, first %+v; want 60, 50, c59", c.CommitCount, len(c.Commits), c.Commits[0])
	}
}

func fastImport(t *testing.T, dir, stream string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stream")
	write(t, path, stream)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := gitCmd(dir, "fast-import", "--quiet", "--force")
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fast-import: %v\n%s", err, out)
	}
	testGit(t, dir, "reset", "-q", "--hard")
}

// A 50 MB generated file, committed: counted (one file, its lines), not
// stored — the record stays a few hundred bytes.
func TestChangesBigFile(t *testing.T) {
	t.Parallel()
	dir := newRepo(t)
	ws := NewLocal(dir)
	before := ws.Before(bg)
	line := "a generated line of text\n"
	n := 50 << 20 / len(line)
	write(t, filepath.Join(dir, "big.txt"), strings.Repeat(line, n))
	testGit(t, dir, "add", "big.txt")
	testGit(t, dir, "commit", "-q", "-m", "generated")
	start := time.Now()
	c := ws.After(bg, before)
	t.Logf("change record of a 50 MB commit: %s", time.Since(start))
	if c.CommitCount != 1 || c.FilesChanged != 1 || c.Insertions != n || c.Dirty || c.Note != "" {
		t.Errorf("record %+v, want 1 commit, 1 file, +%d, clean", c, n)
	}
}

// A repository git refuses (here: a format from the future; in the wild,
// "dubious ownership"): one warning with git's reason, no record.
func TestChangesRepoRefused(t *testing.T) {
	t.Parallel()
	dir := newRepo(t)
	testGit(t, dir, "config", "core.repositoryformatversion", "99")
	ws := NewLocal(dir)
	first := ws.Before(bg)
	if first.Repo || !strings.Contains(first.Warning, "repo version") {
		t.Errorf("first Before = %+v, want no record and git's reason", first)
	}
	if second := ws.Before(bg); second.Repo || second.Warning != "" {
		t.Errorf("second Before = %+v, want no record, no second warning", second)
	}
}
