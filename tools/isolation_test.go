package tools_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"github.com/agent-sessions/agent-sessions/tools"
)

// gitIn runs git in dir with no user or system configuration.
var gitIn = testkit.Git

// gitRepo makes the test project a repository with one commit (the
// stages), a gitignored .env and a .worktreeinclude naming it.
func gitRepo(e *testEnv) {
	writeFile(e.t, filepath.Join(e.project, ".gitignore"), ".env\n")
	writeFile(e.t, filepath.Join(e.project, ".worktreeinclude"), ".env\n")
	writeFile(e.t, filepath.Join(e.project, ".env"), "SECRET=1\n")
	gitIn(e.t, e.project, "init", "-q", "-b", "main")
	gitIn(e.t, e.project, "add", ".")
	gitIn(e.t, e.project, "commit", "-q", "-m", "stages")
}

// TestWorktreeTwoSessions: two sessions with worktrees on one repository
// both complete, each branch holds its own commits, the main checkout's
// HEAD and status are untouched, and .worktreeinclude is honoured.
func TestWorktreeTwoSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("g", commandStage("fixed-n", 2, "git-agent"))
	writeFile(t, filepath.Join(e.project, ".claude", "stages", "g", "prompt.md"), "work in ${WORKTREE} on ${BRANCH}\n")
	gitRepo(e)
	head := gitIn(t, e.project, "rev-parse", "HEAD")
	c := e.connect(versions[0])
	for _, s := range []string{"wa", "wb"} {
		r := c.start(map[string]any{"session": s, "stage": "g", "isolation": "worktree"})
		want := filepath.Join(e.project, ".claude", "worktrees", s)
		if r.Worktree != want || r.Branch != "agent-sessions/"+s {
			t.Fatalf("start %s: worktree %q branch %q, want %s on agent-sessions/%s", s, r.Worktree, r.Branch, want, s)
		}
	}
	for _, s := range []string{"wa", "wb"} {
		c.monitorWait(s, "complete", 60)
		if n := gitIn(t, e.project, "rev-list", "--count", "main..agent-sessions/"+s); n != "2" {
			t.Errorf("branch of %s holds %s commits, want 2", s, n)
		}
		wt := filepath.Join(e.project, ".claude", "worktrees", s)
		if data, err := os.ReadFile(filepath.Join(wt, ".env")); err != nil || string(data) != "SECRET=1\n" {
			t.Errorf("%s: .env in the worktree = %q, %v; want it copied", s, data, err)
		}
		if p, err := os.ReadFile(e.layout(s).Iteration(0, "g", 1).Prompt); err != nil || !strings.Contains(string(p), "work in "+wt+" on agent-sessions/"+s) {
			t.Errorf("%s: prompt = %q, %v; want ${WORKTREE} and ${BRANCH} filled in", s, p, err)
		}
		st := e.loadState(s)
		if !strings.Contains(string(st.Spec), `"worktree":"`+wt+`"`) {
			t.Errorf("%s: spec does not record the worktree: %s", s, st.Spec)
		}
	}
	if got := gitIn(t, e.project, "rev-parse", "HEAD"); got != head {
		t.Errorf("main checkout HEAD moved: %s → %s", head, got)
	}
	if st := gitIn(t, e.project, "status", "--porcelain"); st != "" {
		t.Errorf("main checkout status not clean:\n%s", st)
	}
}

// TestWorktreeBadInput: each bad isolation input is a clear error before
// the session runs, with nothing left: no run dir, worktree or branch.
func TestWorktreeBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("g", commandStage("fixed-n", 1, "git-agent"))
	c := e.connect(versions[0])
	te := c.fail("start_session", map[string]any{"session": "nr", "stage": "g", "isolation": "worktree"}, tools.CodeInvalidArgument)
	if !strings.Contains(te.Message, "not a git repository") || !strings.Contains(te.Message, "git init") {
		t.Errorf("not a repo: %q", te.Message)
	}
	gitRepo(e)
	// A branch agent-sessions/ob with a commit of its own.
	gitIn(t, e.project, "branch", "agent-sessions/ob")
	other := filepath.Join(t.TempDir(), "x")
	gitIn(t, e.project, "worktree", "add", "-q", other, "agent-sessions/ob")
	gitIn(t, other, "commit", "-q", "--allow-empty", "-m", "earlier work")
	gitIn(t, e.project, "worktree", "remove", other)
	te = c.fail("start_session", map[string]any{"session": "ob", "stage": "g", "isolation": "worktree"}, tools.CodeInvalidArgument)
	if !strings.Contains(te.Message, "already holds 1 commit") {
		t.Errorf("existing branch: %q", te.Message)
	}
	if _, err := os.Lstat(e.layout("ob").RunDir()); err == nil {
		t.Error("existing branch: a run dir was made")
	}
	if got := gitIn(t, e.project, "log", "-1", "--format=%s", "agent-sessions/ob"); got != "earlier work" {
		t.Errorf("the existing branch was changed: tip %q", got)
	}
	cases := []struct {
		session string
		args    map[string]any
		want    string
	}{
		{"ub", map[string]any{"base_ref": "no-such-branch"}, `base_ref "no-such-branch" is not a branch`},
		{"bi", map[string]any{"isolation": "separate"}, `isolation "separate"`},
		{"fs", map[string]any{"worktree_setup": []string{"sh", "-c", "echo setup broke; exit 3"}}, "setup broke"},
		{"hs", map[string]any{"worktree_setup": []string{"sleep", "60"}}, "did not finish within"},
	}
	e.setEnv(tools.SetupTimeoutEnv + "=1s")
	for _, tc := range cases {
		args := map[string]any{"session": tc.session, "stage": "g", "isolation": "worktree"}
		for k, v := range tc.args {
			args[k] = v
		}
		te := c.fail("start_session", args, tools.CodeInvalidArgument)
		if !strings.Contains(te.Message, tc.want) {
			t.Errorf("%s: message %q, want %q", tc.session, te.Message, tc.want)
		}
		nothingMade(t, e, tc.session)
	}
	nothingMade(t, e, "nr")
}

func nothingMade(t *testing.T, e *testEnv, s string) {
	t.Helper()
	for _, p := range []string{e.layout(s).RunDir(), filepath.Join(e.project, ".claude", "worktrees", s)} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s: %s was left behind", s, p)
		}
	}
	if _, err := os.Stat(filepath.Join(e.project, ".git")); err == nil {
		if out := gitIn(t, e.project, "branch", "--list", "agent-sessions/"+s); out != "" {
			t.Errorf("%s: branch left behind: %s", s, out)
		}
	}
}

// TestWorktreeResumeKillCleanup: resume after kill -9 continues in the
// same worktree; kill keeps a worktree and says where and how many commits
// its branch holds; cleanup reports ended sessions' worktrees and removes
// only the clean ones, keeping every branch.
func TestWorktreeResumeKillCleanup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("g", fmt.Sprintf("completion: fixed-n\nprovider: command\ncommand: [%q]\nmax_iterations: 3\ndelay: 3\n", agentPath("git-agent")))
	e.stage("z", commandStage("fixed-n", 1, "sleep-agent"))
	gitRepo(e)
	e.setEnv("SLEEP_SECONDS=60")
	c := e.connect(versions[0])
	wt := filepath.Join(e.project, ".claude", "worktrees", "rs")
	c.start(map[string]any{"session": "rs", "stage": "g", "isolation": "worktree"})
	c.monitorWait("rs", "iteration", 60)
	pid := e.enginePID("rs")
	if pid <= 0 {
		// kill(0) would signal this test's own process group.
		t.Fatalf("rs: no engine pid in the lock file")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the engine dies and its tmux session closes", func() bool { return processDead(pid) && e.tmuxGone("loop-rs") })
	r := c.start(map[string]any{"session": "rs", "mode": "resume"})
	if r.Worktree != wt {
		t.Errorf("resume: worktree %q, want %s", r.Worktree, wt)
	}
	c.monitorWait("rs", "complete", 60)
	if got := gitIn(t, e.project, "log", "-1", "--format=%s", "agent-sessions/rs"); got != "iteration 3" {
		t.Errorf("branch tip after resume = %q, want iteration 3", got)
	}
	if _, err := os.Stat(filepath.Join(e.project, "work-3.txt")); err == nil {
		t.Error("the resumed agent worked in the main checkout")
	}

	c.start(map[string]any{"session": "kz", "stage": "z", "isolation": "worktree"})
	var m tools.MonitorResult
	text := c.ok("monitor", map[string]any{"session": "kz"}, &m)
	if m.Branch != "agent-sessions/kz" || !strings.Contains(text, "Worktree: "+filepath.Join(e.project, ".claude", "worktrees", "kz")) {
		t.Errorf("monitor: branch %q, text %q", m.Branch, text)
	}
	if rem, err := e.deps.ReminderText(e.ctx, e.project); err != nil || !strings.Contains(rem, "on branch agent-sessions/kz") {
		t.Errorf("reminder = %q, %v; want it to name the branch", rem, err)
	}
	if s, ok := summary(c.list(nil), "kz"); !ok || s.Branch != "agent-sessions/kz" {
		t.Errorf("list summary = %+v", s)
	}
	var k tools.KillResult
	c.ok("kill", map[string]any{"session": "kz"}, &k)
	kzDir := filepath.Join(e.project, ".claude", "worktrees", "kz")
	if k.Worktree != kzDir || k.Branch != "agent-sessions/kz" || k.BranchCommits == nil || *k.BranchCommits != 0 {
		t.Errorf("kill: worktree %q branch %q commits %v", k.Worktree, k.Branch, k.BranchCommits)
	}
	writeFile(t, filepath.Join(kzDir, "wip.txt"), "unfinished\n")

	var dry tools.CleanupResult
	c.ok("cleanup", map[string]any{"remove_worktrees": true}, &dry)
	if len(dry.Worktrees) != 2 || dry.Worktrees[0].Session != "kz" || !dry.Worktrees[0].Dirty || dry.Worktrees[1].Unmerged != 3 {
		t.Fatalf("cleanup dry run worktrees = %+v", dry.Worktrees)
	}
	var real tools.CleanupResult
	c.ok("cleanup", map[string]any{"remove_worktrees": true, "dry_run": false}, &real)
	if _, err := os.Stat(wt); err == nil {
		t.Error("the clean worktree of rs was not removed")
	}
	if _, err := os.Stat(filepath.Join(kzDir, "wip.txt")); err != nil {
		t.Errorf("the dirty worktree of kz was not kept: %v", err)
	}
	for _, b := range []string{"agent-sessions/rs", "agent-sessions/kz"} {
		gitIn(t, e.project, "rev-parse", "--verify", b)
	}
}

// TestWorktreeSharedDirAndForce: a session started without isolation where
// another runs is warned, naming it; force with isolation starts a fresh
// worktree and keeps the old branch, renamed, with its commits.
func TestWorktreeSharedDirAndForce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("z", commandStage("fixed-n", 1, "sleep-agent"))
	e.stage("g", commandStage("fixed-n", 1, "git-agent"))
	gitRepo(e)
	e.setEnv("SLEEP_SECONDS=60")
	c := e.connect(versions[0])
	c.start(map[string]any{"session": "sa", "stage": "z"})
	r := c.start(map[string]any{"session": "sb", "stage": "z", "dry_run": true})
	if len(r.Warnings) == 0 || !strings.Contains(strings.Join(r.Warnings, "\n"), "session sa is running") || !strings.Contains(strings.Join(r.Warnings, "\n"), "isolation: worktree") {
		t.Errorf("warnings = %q, want one naming sa and suggesting isolation: worktree", r.Warnings)
	}
	if r := c.start(map[string]any{"session": "sb", "stage": "z", "dry_run": true, "isolation": "worktree"}); len(r.Warnings) != 0 {
		t.Errorf("with isolation: warnings = %q", r.Warnings)
	}
	c.ok("kill", map[string]any{"session": "sa"}, &tools.KillResult{})

	c.start(map[string]any{"session": "fo", "stage": "g", "isolation": "worktree"})
	c.monitorWait("fo", "complete", 60)
	old := gitIn(t, e.project, "rev-parse", "agent-sessions/fo")
	f := c.start(map[string]any{"session": "fo", "stage": "g", "isolation": "worktree", "mode": "force"})
	if !strings.HasPrefix(f.BranchAside, "agent-sessions/fo.") {
		t.Fatalf("force: branch_aside %q", f.BranchAside)
	}
	if got := gitIn(t, e.project, "rev-parse", f.BranchAside); got != old {
		t.Errorf("the old branch %s is at %s, want %s", f.BranchAside, got, old)
	}
	c.monitorWait("fo", "complete", 60)
	if n := gitIn(t, e.project, "rev-list", "--count", "main..agent-sessions/fo"); n != "1" {
		t.Errorf("the fresh branch holds %s commits, want 1", n)
	}
}

// TestWorktreeDiscardedWhenTheEngineDoesNotStart: a worktree start_session
// made for an engine that then died at once is taken back, branch and all.
func TestWorktreeDiscardedWhenTheEngineDoesNotStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("g", commandStage("fixed-n", 1, "git-agent"))
	gitRepo(e)
	e.deps.Executable = "/bin/false"
	c := e.connect(versions[0])
	c.fail("start_session", map[string]any{"session": "df", "stage": "g", "isolation": "worktree"}, tools.CodeInternal)
	nothingMade(t, e, "df")
}
