package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// git runs git in dir (argv, no shell) and returns its output.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.invalid", "-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestAgentGitUseLeavesRunIntact: an agent that commits with `git add -A`,
// stashes and pops, resets hard and cleans, in a repository, a
// subdirectory of one and a linked worktree, touches none of the engine's
// files: the session completes with every event in order, nothing of
// .claude/pipeline-runs or .claude/locks is ever tracked, and the exclude
// lines are added once however often the engine starts.
func TestAgentGitUseLeavesRunIntact(t *testing.T) {
	t.Parallel()
	for _, layout := range []string{"repo", "subdir", "worktree"} {
		t.Run(layout, func(t *testing.T) {
			t.Parallel()
			repo := filepath.Join(t.TempDir(), "repo")
			git(t, filepath.Dir(repo), "init", "-q", repo)
			writeFile(t, filepath.Join(repo, "README"), "user's file\n")
			writeFile(t, filepath.Join(repo, ".git", "info", "exclude"), "# user's own\n*.swp")
			git(t, repo, "add", "-A")
			git(t, repo, "commit", "-q", "-m", "init")
			project := repo
			switch layout {
			case "subdir":
				project = filepath.Join(repo, "sub", "dir")
				writeFile(t, filepath.Join(project, "keep"), "x\n")
				git(t, repo, "add", "-A")
				git(t, repo, "commit", "-q", "-m", "subdir")
			case "worktree":
				project = filepath.Join(t.TempDir(), "wt")
				git(t, repo, "worktree", "add", "-q", project, "-b", "wt")
			}
			writeStage(t, project, "s", commandStage("fixed-n", "gitops-agent", "max_iterations: 3"), "go\n")
			env := engineEnv(true)
			args := []string{"run", "--session", "g", "--stage", "s", "--project", project, "--foreground"}
			if code, stdout, stderr := runBinary(t, env, args...); code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			evs := readEvents(t, project, "g")
			for i, ev := range evs {
				if ev.Seq != int64(i+1) {
					t.Fatalf("event %d has seq %d: events.jsonl was rewound or doubled", i+1, ev.Seq)
				}
			}
			if n := countEvents(state.NewLayout(project, "g").EventsFile(), state.EventIterationDone); n != 3 {
				t.Errorf("%d iteration_complete events, want 3", n)
			}
			if st := loadState(t, project, "g"); st.Status != state.StatusComplete {
				t.Errorf("status %s, want complete (error %q)", st.Status, st.Error)
			}
			for _, f := range strings.Fields(git(t, project, "log", "--all", "--name-only", "--format=")) {
				if strings.Contains(f, ".claude/pipeline-runs/") || strings.Contains(f, ".claude/locks/") {
					t.Errorf("git tracked the engine's file %s", f)
				}
			}
			if got := strings.Count(git(t, project, "log", "--format=%s"), "iteration "); got != 3 {
				t.Errorf("%d agent commits, want 3", got)
			}
			// Starting again: the lines are not added twice. One iteration
			// is enough for a start (the lines are added before any runs).
			writeStage(t, project, "s", commandStage("fixed-n", "gitops-agent", "max_iterations: 1"), "go\n")
			if code, stdout, stderr := runBinary(t, env, "run", "--session", "g", "--stage", "s", "--project", project, "--foreground", "--force"); code != 0 {
				t.Errorf("second start: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			exclude := readFile(t, filepath.Join(repo, ".git", "info", "exclude"))
			if !strings.HasPrefix(exclude, "# user's own\n*.swp\n") {
				t.Errorf("the user's lines were changed:\n%s", exclude)
			}
			prefix := map[string]string{"repo": "/", "subdir": "/sub/dir/", "worktree": "/"}[layout]
			for _, d := range []string{".claude/pipeline-runs/", ".claude/locks/", ".claude/worktrees/"} {
				if n := strings.Count(exclude, "\n"+prefix+d+"\n"); n != 1 {
					t.Errorf("%s%s appears %d times in info/exclude, want once:\n%s", prefix, d, n, exclude)
				}
			}
		})
	}
}

// TestGitExcludeFromFirstStart: the lock and the run dir are ignored while
// the first iteration still runs.
func TestGitExcludeFromFirstStart(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	writeStage(t, repo, "s", commandStage("fixed-n", "sleep-agent", "max_iterations: 1"), "go\n")
	p := startBinary(t, engineEnv(true, "SLEEP_SECONDS=2"), "run", "--session", "f", "--stage", "s", "--project", repo, "--foreground")
	l := state.NewLayout(repo, "f")
	waitFor(t, 20*time.Second, "the engine's lock", func() bool {
		ls, _ := state.ProbeLock(l.LockFile())
		return ls.Held
	})
	status := git(t, repo, "status", "--porcelain", "--untracked-files=all")
	if strings.Contains(status, "pipeline-runs") || strings.Contains(status, "locks") {
		t.Errorf("git sees the engine's files:\n%s", status)
	}
	p.wait(t, 30*time.Second)
}
