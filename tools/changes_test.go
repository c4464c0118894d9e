package tools_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/agent-sessions/agent-sessions/tools"
)

// TestChangesShown: in a git project, monitor shows the session's commits
// and the last iteration's change record, list each session's commit count.
func TestChangesShown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("g", commandStage("fixed-n", 2, "git-agent"))
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"commit", "-q", "-m", "stages"}} {
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = e.project
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	c := e.connect(versions[0])
	c.start(map[string]any{"session": "g", "stage": "g"})
	m := c.monitorWait("g", "complete", 60)
	ch := m.Changes
	if ch == nil || ch.Commits != 2 || ch.Dirty || ch.Head == "" || ch.HeadStart == "" || ch.Last == nil {
		t.Fatalf("monitor changes = %+v, want 2 commits, clean, with the last iteration", ch)
	}
	if ch.Last.CommitCount != 1 || len(ch.Last.Commits) != 1 || ch.Last.Commits[0].Subject != "iteration 2" || ch.Last.Insertions != 2 {
		t.Errorf("last iteration's changes = %+v, want the commit of iteration 2", ch.Last)
	}
	text := c.ok("monitor", map[string]any{"session": "g"}, &tools.MonitorResult{})
	if !strings.Contains(text, "Git: 2 commit(s) this session") {
		t.Errorf("monitor text = %q", text)
	}
	s, ok := summary(c.list(nil), "g")
	if !ok || s.Commits == nil || *s.Commits != 2 {
		t.Errorf("list summary = %+v, want commits 2", s)
	}
}
