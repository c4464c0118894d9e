package engine

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/workspace"
)

// gitIn runs git for a test's setup, with no user or system config.
var gitIn = testkit.Git

func readResult(t *testing.T, project, session, stage string, it int) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(readFile(t, state.NewLayout(project, session).Iteration(0, stage, it).Result)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func resultChanges(t *testing.T, project string, it int) state.Changes {
	t.Helper()
	raw, ok := readResult(t, project, "g", "s", it)["changes"]
	if !ok {
		t.Fatalf("iteration %d: result.json has no changes", it)
	}
	var c state.Changes
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestChangeRecord runs an agent that, iteration by iteration, changes
// nothing, commits, commits a 50 MB generated file and leaves an
// uncommitted edit, and checks each iteration's change record in
// result.json, the iteration_complete events and state.json's totals.
func TestChangeRecord(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	gitIn(t, project, "init", "-q")
	writeStage(t, project, "s", commandStage("fixed-n", "git-agent", "max_iterations: 4"), "go\n")
	gitIn(t, project, "add", ".")
	gitIn(t, project, "commit", "-q", "-m", "stages")
	start := gitIn(t, project, "rev-parse", "HEAD")

	res, out := runSession(t, context.Background(), RunOptions{Session: "g", Stage: "s", ProjectDir: project, Foreground: true,
		Env: agentEnv("GIT_AGENT_DO=none commit big dirty")})
	if res.Status != state.StatusComplete {
		t.Fatalf("session %s: %s\n%s", res.Status, res.Err, out)
	}
	head := gitIn(t, project, "rev-parse", "HEAD")

	none := resultChanges(t, project, 1)
	if none.HeadBefore != start || none.HeadAfter != start || none.CommitCount != 0 || none.FilesChanged != 0 || none.Dirty || none.Note != "" {
		t.Errorf("iteration 1 (no change): %+v", none)
	}
	commit := resultChanges(t, project, 2)
	if commit.CommitCount != 1 || len(commit.Commits) != 1 || commit.Commits[0].Subject != "iteration 2" ||
		commit.FilesChanged != 1 || commit.Insertions != 2 || commit.Dirty {
		t.Errorf("iteration 2 (a commit): %+v", commit)
	}
	big := resultChanges(t, project, 3)
	if big.CommitCount != 1 || big.FilesChanged != 1 || big.Insertions < 2_000_000 || big.HeadAfter != head || big.Dirty {
		t.Errorf("iteration 3 (a 50 MB file): %+v", big)
	}
	if n := len(readFile(t, state.NewLayout(project, "g").Iteration(0, "s", 3).Result)); n > 4096 {
		t.Errorf("result.json of the 50 MB commit is %d bytes: the file must be counted, not stored", n)
	}
	dirty := resultChanges(t, project, 4)
	if dirty.CommitCount != 0 || !dirty.Dirty || dirty.Untracked != 1 || dirty.FilesChanged != 1 {
		t.Errorf("iteration 4 (an uncommitted edit): %+v", dirty)
	}
	if !strings.Contains(out, "git: 1 commit, 1 file +2 −0") || !strings.Contains(out, "uncommitted changes") {
		t.Errorf("the transcript does not summarise the changes:\n%s", out)
	}

	// The event carries the commit list; state.json the counts and totals.
	for _, ev := range readEvents(t, project, "g") {
		if ev.Type != state.EventIterationDone || ev.Iteration != 2 {
			continue
		}
		var h state.HistoryEntry
		if err := json.Unmarshal(ev.Data, &h); err != nil {
			t.Fatal(err)
		}
		if h.Changes == nil || len(h.Changes.Commits) != 1 || h.Changes.Commits[0].SHA != commit.Commits[0].SHA {
			t.Errorf("iteration_complete 2 changes = %+v, want the commit listed", h.Changes)
		}
	}
	st := loadState(t, project, "g")
	want := state.ChangeTotals{Commits: 2, HeadStart: start, Head: head, Iterations: 4, Dirty: true}
	if st.Changes == nil || *st.Changes != want {
		t.Errorf("state.json changes = %+v, want %+v", st.Changes, want)
	}
	if h := st.History[1].Changes; h == nil || h.CommitCount != 1 || h.Commits != nil {
		t.Errorf("state.json history[1].changes = %+v, want the count without the list", h)
	}
}

// A project that is not a git repository: no change record, no warning.
func TestChangeRecordNotGit(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "s", commandStage("fixed-n", "echo-agent", "max_iterations: 1"), "go\n")
	res, out := runSession(t, context.Background(), RunOptions{Session: "g", Stage: "s", ProjectDir: project, Foreground: true})
	if res.Status != state.StatusComplete {
		t.Fatalf("session %s: %s\n%s", res.Status, res.Err, out)
	}
	if _, ok := readResult(t, project, "g", "s", 1)["changes"]; ok {
		t.Error("result.json has changes outside a git repository")
	}
	if st := loadState(t, project, "g"); st.Changes != nil || st.History[0].Changes != nil {
		t.Errorf("state.json has changes outside a git repository: %+v", st.Changes)
	}
	if strings.Contains(out, "git") {
		t.Errorf("the transcript mentions git:\n%s", out)
	}
}

// fakeWorkspace is a Workspace of function fields.
type fakeWorkspace struct {
	dir    string
	before func(context.Context) workspace.Snapshot
	after  func(context.Context, workspace.Snapshot) *state.Changes
}

func (f fakeWorkspace) Dir() string                                   { return f.dir }
func (f fakeWorkspace) Before(ctx context.Context) workspace.Snapshot { return f.before(ctx) }
func (f fakeWorkspace) After(ctx context.Context, s workspace.Snapshot) *state.Changes {
	return f.after(ctx, s)
}

// The runner runs agents in its Workspace's directory (the control files
// stay in the project), warns once with what Before says, and records
// what After reports.
func TestRunnerUsesWorkspace(t *testing.T) {
	t.Parallel()
	project, elsewhere := t.TempDir(), t.TempDir()
	writeStage(t, project, "s", commandStage("fixed-n", "git-agent", "max_iterations: 2"), "go\n")
	gitIn(t, elsewhere, "init", "-q")
	real := workspace.NewLocal(elsewhere)
	calls := 0
	ws := fakeWorkspace{dir: elsewhere,
		before: func(ctx context.Context) workspace.Snapshot {
			calls++
			s := real.Before(ctx)
			if calls == 1 {
				s.Warning = "a warning from the workspace"
			}
			return s
		},
		after: real.After,
	}
	res, out := runSession(t, context.Background(), RunOptions{Session: "g", Stage: "s", ProjectDir: project, Foreground: true, Workspace: ws})
	if res.Status != state.StatusComplete {
		t.Fatalf("session %s: %s\n%s", res.Status, res.Err, out)
	}
	// git-agent commits in its working directory; the project is no
	// repository, so the commits can only be in the workspace's.
	if got := gitIn(t, elsewhere, "rev-list", "--count", "HEAD"); got != "2" {
		t.Errorf("the workspace holds %s commits, want 2", got)
	}
	if c := resultChanges(t, project, 2); c.CommitCount != 1 || c.Commits[0].Subject != "iteration 2" {
		t.Errorf("iteration 2 changes = %+v, want the workspace's commit", c)
	}
	if n := strings.Count(out, "a warning from the workspace"); n != 1 {
		t.Errorf("the warning is in the transcript %d times, want once:\n%s", n, out)
	}
}
