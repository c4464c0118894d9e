package engine

import (
	"strings"
	"testing"
)

// TestIsolationDefinition: stages and pipelines may ask for a worktree;
// a bad value is a problem at its line; start options override.
func TestIsolationDefinition(t *testing.T) {
	t.Parallel()
	s, err := ParseStage("stage.yaml", []byte("completion: fixed-n\nisolation: worktree\nbase_ref: main\nworktree_setup: [npm, ci]\n"))
	if err != nil || s.Isolation != IsolationWorktree || s.BaseRef != "main" || strings.Join(s.WorktreeSetup, " ") != "npm ci" {
		t.Fatalf("stage = %+v, %v", s, err)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"completion: fixed-n\nisolation: sandbox\n", `stage.yaml:2: isolation "sandbox": use none`},
		{"completion: fixed-n\nbase_ref: main\n", "stage.yaml:2: base_ref and worktree_setup need isolation worktree"},
	} {
		if _, err := ParseStage("stage.yaml", []byte(bad.yaml)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.yaml, err, bad.want)
		}
	}
	p, err := ParsePipeline("p.yaml", []byte("name: p\nisolation: worktree\nstages:\n  - name: a\n    stage: work\n"))
	if err != nil || p.Isolation != IsolationWorktree {
		t.Fatalf("pipeline = %+v, %v", p, err)
	}
	project := t.TempDir()
	writeStage(t, project, "w", commandStage("fixed-n", "echo-agent", "isolation: worktree", "base_ref: dev"), "go ${BRANCH} ${WORKTREE}\n")
	plan, err := NewCatalog(project).CompileStage("s", "w", Options{})
	if err == nil {
		err = applyIsolation(plan, Options{})
	}
	if err != nil || plan.Isolation != IsolationWorktree || plan.BaseRef != "dev" {
		t.Fatalf("plan isolation %q base %q: %v", plan.Isolation, plan.BaseRef, err)
	}
	if err := applyIsolation(plan, Options{Isolation: IsolationNone}); err != nil || plan.Isolation != "" || plan.BaseRef != "" {
		t.Errorf("isolation none over the definition: %q %q %v", plan.Isolation, plan.BaseRef, err)
	}
}
