package workspace

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// assertNothingLeft checks a failed create left no worktree, no branch
// and no meta file behind.
func assertNothingLeft(t *testing.T, repo, session string) {
	t.Helper()
	dir := filepath.Join(repo, ".claude", "worktrees", session)
	if exists(dir) {
		t.Errorf("%s was left behind", dir)
	}
	if exists(dir + ".json") {
		t.Errorf("%s.json was left behind", dir)
	}
	if out := testGit(t, repo, "branch", "--list", BranchPrefix+session); out != "" {
		t.Errorf("branch %s was left behind", out)
	}
	if out := testGit(t, repo, "worktree", "list", "--porcelain"); strings.Count(out, "worktree ") != 1 {
		t.Errorf("worktrees left registered:\n%s", out)
	}
}

// mainStatus is the main checkout's status outside .claude (where the
// engine's own files live; the engine keeps them out of git).
func mainStatus(t *testing.T, repo string) string {
	return testGit(t, repo, "status", "--porcelain", "--", ".", ":(exclude).claude")
}

func TestWorktreesTwoSessions(t *testing.T) {
	t.Parallel()
	repo := newRepo(t)
	write(t, filepath.Join(repo, "wip.txt"), "the user's own uncommitted work\n")
	head, status := testGit(t, repo, "rev-parse", "HEAD"), mainStatus(t, repo)

	a, err := CreateWorktree(bg, repo, "alpha", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := CreateWorktree(bg, repo, "beta", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Branch != "agent-sessions/alpha" || a.Base != head || a.BaseRef != "main" || a.Reused {
		t.Errorf("alpha = %+v, want a new branch agent-sessions/alpha from main at %s", a, head)
	}
	if want := filepath.Join(repo, ".claude", "worktrees", "beta"); !samePath(b.Dir, want) || !samePath(b.AgentDir, want) {
		t.Errorf("beta dir %s (agents in %s), want %s", b.Dir, b.AgentDir, want)
	}
	snap := a.Workspace().Before(bg)
	ca := commitFile(t, a.Dir, "a.txt", "a\n", "alpha's work")
	if c := a.Workspace().After(bg, snap); c == nil || c.CommitCount != 1 || c.HeadAfter != ca || c.Dirty {
		t.Errorf("alpha's change record = %+v, want its one commit, clean", c)
	}
	commitFile(t, b.Dir, "b1.txt", "b\n", "beta's work 1")
	cb := commitFile(t, b.Dir, "b2.txt", "b\n", "beta's work 2")

	if got := testGit(t, repo, "rev-parse", "agent-sessions/alpha"); got != ca {
		t.Errorf("alpha's branch at %s, want its commit %s", got, ca)
	}
	if got := testGit(t, repo, "rev-list", "--count", "agent-sessions/beta", "^main"); got != "2" {
		t.Errorf("beta's branch holds %s commits, want 2 (tip %s)", got, cb)
	}
	if exists(filepath.Join(a.Dir, "b1.txt")) || exists(filepath.Join(b.Dir, "a.txt")) {
		t.Error("one session's files are in the other's worktree")
	}
	if got := testGit(t, repo, "rev-parse", "HEAD"); got != head {
		t.Errorf("main checkout's HEAD moved: %s, want %s", got, head)
	}
	if got := mainStatus(t, repo); got != status {
		t.Errorf("main checkout's status changed:\n%s\nwant:\n%s", got, status)
	}

	inv, err := Inventory(bg, repo)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv) != 2 || inv[0].Session != "alpha" || inv[0].Unmerged != 1 || inv[1].Unmerged != 2 ||
		inv[0].Dirty || inv[0].Base != "main" || inv[1].Branch != "agent-sessions/beta" || !inv[1].Registered {
		t.Errorf("Inventory = %+v", inv)
	}
}

// A project in a subdirectory: the worktree holds the whole repository,
// the agents run in the project's directory inside it.
func TestWorktreeSubdirProject(t *testing.T) {
	t.Parallel()
	repo := newRepo(t)
	commitFile(t, repo, "svc/main.go", "package main\n", "svc")
	wt, err := CreateWorktree(bg, filepath.Join(repo, "svc"), "s", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !samePath(wt.Dir, filepath.Join(repo, "svc", ".claude", "worktrees", "s")) || !exists(filepath.Join(wt.AgentDir, "main.go")) {
		t.Errorf("worktree %s, agents in %s: want svc/.claude/worktrees/s, agents in its svc", wt.Dir, wt.AgentDir)
	}
}

func TestWorktreeInclude(t *testing.T) {
	t.Parallel()
	repo := newRepo(t)
	commitFile(t, repo, ".gitignore", ".env\n*.local\nbuild/\nlink.local\n", "ignore")
	commitFile(t, repo, IncludeFile, ".env\nconf/*.local\nbuild/\nwip.txt\nlink.local\n", "include")
	write(t, filepath.Join(repo, ".env"), "SECRET=1\n")
	os.Chmod(filepath.Join(repo, ".env"), 0o600)
	write(t, filepath.Join(repo, "conf", "db.local"), "db\n")
	write(t, filepath.Join(repo, "other.local"), "not matched by the include\n")
	write(t, filepath.Join(repo, "wip.txt"), "untracked but not ignored: work in progress\n")
	write(t, filepath.Join(repo, "build", "out.bin"), "built\n")
	if err := os.Symlink("/etc/passwd", filepath.Join(repo, "link.local")); err != nil {
		t.Fatal(err)
	}
	// A FIFO the include matches: refused, and reading it never blocks.
	if err := syscall.Mkfifo(filepath.Join(repo, "build", "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	wt, err := CreateWorktree(bg, repo, "inc", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(wt.Dir, ".env"))
	if err != nil || string(got) != "SECRET=1\n" {
		t.Fatalf(".env in the worktree: %q, %v", got, err)
	}
	if fi, _ := os.Stat(filepath.Join(wt.Dir, ".env")); fi.Mode().Perm() != 0o600 {
		t.Errorf(".env mode %v, want 0600 kept", fi.Mode().Perm())
	}
	for _, p := range []string{"conf/db.local", "build/out.bin"} {
		if !exists(filepath.Join(wt.Dir, p)) {
			t.Errorf("%s not copied", p)
		}
	}
	for _, p := range []string{"other.local", "wip.txt", "link.local", "build/pipe"} {
		if exists(filepath.Join(wt.Dir, p)) {
			t.Errorf("%s copied; only regular, ignored files the include matches are", p)
		}
	}
	if len(wt.Copied) != 3 {
		t.Errorf("Copied = %v, want 3 files", wt.Copied)
	}
}

func TestWorktreeBadInput(t *testing.T) {
	t.Parallel()
	repo := newRepo(t)
	for _, tt := range []struct{ name, project, session, base, want string }{
		{"unknown base_ref", repo, "s", "no-such-branch", `base_ref "no-such-branch" is not a branch, tag or commit`},
		{"option as base_ref", repo, "s", "--orphan", "cannot start with '-'"},
		{"bad session name", repo, "Bad_Name", "", "Bad_Name"},
		{"not a repository", t.TempDir(), "s", "", "not a git repository"},
	} {
		_, err := CreateWorktree(bg, tt.project, tt.session, tt.base, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to say %q", tt.name, err, tt.want)
		}
	}
	assertNothingLeft(t, repo, "s")

	unborn := t.TempDir()
	testGit(t, unborn, "init", "-q")
	if _, err := CreateWorktree(bg, unborn, "s", "", nil); err == nil || !strings.Contains(err.Error(), "no commit yet") {
		t.Errorf("unborn repository: err = %v", err)
	}
	if _, err := CreateWorktree(bg, t.TempDir(), "s", "", nil); !errors.Is(err, ErrNotRepo) {
		t.Errorf("not a repository: err = %v, want ErrNotRepo", err)
	}
}

func TestWorktreeSetup(t *testing.T) {
	t.Parallel()
	repo := newRepo(t)
	wt, err := CreateWorktree(bg, repo, "ok", "", []string{"sh", "-c", "echo installing; pwd > where.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(wt.SetupOutput, "installing") {
		t.Errorf("setup output %q", wt.SetupOutput)
	}
	if got, _ := os.ReadFile(filepath.Join(wt.Dir, "where.txt")); !samePath(strings.TrimSpace(string(got)), wt.Dir) {
		t.Errorf("setup ran in %q, want %s", got, wt.Dir)
	}
}

func TestWorktreeSetupFails(t *testing.T) {
	t.Parallel()
	repo := newRepo(t)
	_, err := CreateWorktree(bg, repo, "s", "", []string{"sh", "-c", "touch made-by-setup; echo 'npm ERR! boom' >&2; exit 3"})
	if err == nil || !strings.Contains(err.Error(), "npm ERR! boom") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("err = %v, want setup's message and exit status", err)
	}
	assertNothingLeft(t, repo, "s")
	_, err = CreateWorktree(bg, repo, "s", "", []string{"no-such-setup-program"})
	if err == nil || !strings.Contains(err.Error(), "no-such-setup-program not found") {
		t.Errorf("missing program: err = %v", err)
	}
	assertNothingLeft(t, repo, "s")
}

// A setup that hangs — with a child of its own holding the output open —
// is stopped at the deadline, and nothing is left.
func TestWorktreeSetupHangs(t *testing.T) {
	t.Parallel()
	repo := newRepo(t)
	ctx, cancel := context.WithTimeout(bg, time.Second)
	defer cancel()
	_, err := CreateWorktree(ctx, repo, "s", "", []string{"sh", "-c", "sleep 300 & sleep 300"})
	if err == nil || !strings.Contains(err.Error(), "did not finish within") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	assertNothingLeft(t, repo, "s")
}

func TestWorktreeExistingBranch(t *testing.T) {
	t.Parallel()
	repo := newRepo(t)
	// A branch of that name with history of its own: refused, untouched.
	testGit(t, repo, "branch", "agent-sessions/taken")
	testGit(t, repo, "checkout", "-q", "agent-sessions/taken")
	own := commitFile(t, repo, "x.txt", "x\n", "someone's work")
	testGit(t, repo, "checkout", "-q", "main")
	_, err := CreateWorktree(bg, repo, "taken", "", nil)
	if err == nil || !strings.Contains(err.Error(), "already holds 1 commit(s) not in main") {
		t.Fatalf("err = %v, want a refusal naming the commit count", err)
	}
	if got := testGit(t, repo, "rev-parse", "agent-sessions/taken"); got != own {
		t.Errorf("the branch moved to %s, want it left at %s", got, own)
	}
	// A branch with no commit of its own (all merged): taken up again.
	testGit(t, repo, "branch", "agent-sessions/merged", "HEAD~0")
	commitFile(t, repo, "y.txt", "y\n", "main moves on")
	wt, err := CreateWorktree(bg, repo, "merged", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !wt.Reused || testGit(t, repo, "rev-parse", "agent-sessions/merged") != testGit(t, repo, "rev-parse", "main") {
		t.Errorf("worktree %+v: want the merged branch taken up at main", wt)
	}
	// A failed setup on a taken-up branch puts the branch back.
	testGit(t, repo, "branch", "agent-sessions/back", "HEAD~1")
	before := testGit(t, repo, "rev-parse", "agent-sessions/back")
	if _, err := CreateWorktree(bg, repo, "back", "", []string{"false"}); err == nil {
		t.Fatal("a failing setup succeeded")
	}
	if got := testGit(t, repo, "rev-parse", "agent-sessions/back"); got != before {
		t.Errorf("branch left at %s, want it back at %s", got, before)
	}
}

func TestWorktreeResume(t *testing.T) {
	t.Parallel()
	repo := newRepo(t)
	wt, err := CreateWorktree(bg, repo, "r", "", []string{"sh", "-c", "echo once >> setup.log"})
	if err != nil {
		t.Fatal(err)
	}
	work := commitFile(t, wt.Dir, "w.txt", "w\n", "work")
	again, err := CreateWorktree(bg, repo, "r", "", []string{"sh", "-c", "echo once >> setup.log"})
	if err != nil || !again.Reused || again.Base != wt.Base {
		t.Fatalf("second create = %+v, %v; want the same worktree reused", again, err)
	}
	if got, _ := os.ReadFile(filepath.Join(wt.Dir, "setup.log")); string(got) != "once\n" {
		t.Errorf("setup ran again on reuse: %q", got)
	}
	// The directory deleted under the session: Reuse makes it again from
	// the branch, with the session's commits.
	if err := os.RemoveAll(wt.Dir); err != nil {
		t.Fatal(err)
	}
	back, err := Reuse(bg, repo, "r")
	if err != nil {
		t.Fatal(err)
	}
	if !back.Reused || testGit(t, back.Dir, "rev-parse", "HEAD") != work || back.BaseRef != "main" {
		t.Errorf("Reuse = %+v, want the worktree back at %s", back, work)
	}
	if _, err := Reuse(bg, repo, "never-started"); err == nil || !strings.Contains(err.Error(), "branch agent-sessions/never-started is gone") {
		t.Errorf("Reuse of a session without a worktree: %v", err)
	}
}

func TestRemoveWorktree(t *testing.T) {
	t.Parallel()
	repo := newRepo(t)
	wt, err := CreateWorktree(bg, repo, "rm", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	tip := commitFile(t, wt.Dir, "done.txt", "d\n", "done")
	write(t, filepath.Join(wt.Dir, "scratch.txt"), "uncommitted\n")
	inv, _ := Inventory(bg, repo)
	if len(inv) != 1 || !inv[0].Dirty || inv[0].Unmerged != 1 {
		t.Errorf("Inventory = %+v, want one dirty worktree with 1 unmerged commit", inv)
	}
	if err := RemoveWorktree(bg, repo, "rm"); !errors.Is(err, ErrDirty) {
		t.Fatalf("removing a dirty worktree: %v, want ErrDirty", err)
	}
	if !exists(filepath.Join(wt.Dir, "scratch.txt")) {
		t.Fatal("the dirty worktree's file is gone")
	}
	os.Remove(filepath.Join(wt.Dir, "scratch.txt"))
	if err := RemoveWorktree(bg, repo, "rm"); err != nil {
		t.Fatal(err)
	}
	if exists(wt.Dir) {
		t.Error("the clean worktree is still there")
	}
	if got := testGit(t, repo, "rev-parse", "agent-sessions/rm"); got != tip {
		t.Errorf("the branch is at %q, want it kept at %s", got, tip)
	}
	if inv, _ := Inventory(bg, repo); len(inv) != 0 {
		t.Errorf("Inventory after removal = %+v", inv)
	}
	if err := RemoveWorktree(bg, repo, "rm"); err == nil || !strings.Contains(err.Error(), "has no worktree") {
		t.Errorf("removing it again: %v", err)
	}
}

// Sessions started at the same moment on one repository each get their
// worktree: git's own locks serialise what must be.
func TestWorktreesCreatedConcurrently(t *testing.T) {
	t.Parallel()
	repo := newRepo(t)
	errs := make(chan error, 4)
	for i := range 4 {
		go func() {
			_, err := CreateWorktree(bg, repo, "c"+strconv.Itoa(i), "", nil)
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if inv, err := Inventory(bg, repo); err != nil || len(inv) != 4 {
		t.Errorf("Inventory = %+v, %v; want 4 worktrees", inv, err)
	}
}
