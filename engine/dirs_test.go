package engine

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/workspace"
)

// TestInputsNamedWhereAgentsReadThem: a worktree session's inputs were
// mapped into its worktree; ${INPUTS} names them relative to the agents'
// directory, not by their path under the project's .claude/worktrees, and
// an input the worktree lacks (read in the project) relative to the
// project.
func TestInputsNamedWhereAgentsReadThem(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	wt := filepath.Join(project, ".claude", "worktrees", "s")
	inWorktree, inProject := filepath.Join(wt, "docs", "notes.md"), filepath.Join(project, "untracked.md")
	writeFile(t, inWorktree, "the notes\n")
	writeFile(t, inProject, "the draft\n")
	plan := &Plan{Session: "s", ProjectDir: project, Worktree: wt, Inputs: []string{inWorktree, inProject},
		Stages: []StagePlan{{Name: "one", Prompt: "${INPUTS}"}}}
	r := &Runner{Plan: plan, Workspace: workspace.NewLocal(wt), layout: state.NewLayout(project, "s"), inputs: map[string]string{}}
	got, err := r.stageInputs(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## input: docs/notes.md (" + inWorktree + ")", "## input: untracked.md (" + inProject + ")"} {
		if !strings.Contains(got, want) {
			t.Errorf("${INPUTS} lacks %q:\n%s", want, got)
		}
	}
	if r.controlDir() != project || r.agentDir() != wt {
		t.Errorf("control dir %s, agents' dir %s; want %s and %s", r.controlDir(), r.agentDir(), project, wt)
	}
}

// TestEngineDirsFromTheirOwners: the patterns kept out of git are the
// owners' directories (state.RunsDir, state.LocksDir,
// workspace.WorktreesDir), said as before.
func TestEngineDirsFromTheirOwners(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	for i, dir := range []string{state.RunsDir(project), state.LocksDir(project), workspace.WorktreesDir(project)} {
		if got := filepath.Join(project, engineDirs[i]); got != dir {
			t.Errorf("engineDirs[%d] = %s, want %s under the project", i, engineDirs[i], dir)
		}
	}
	if got, want := engineDirsText(), ".claude/pipeline-runs/, .claude/locks/ and .claude/worktrees/"; got != want {
		t.Errorf("engineDirsText = %q, want %q", got, want)
	}
}
