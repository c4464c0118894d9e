package engine

import (
	"strings"
	"testing"
)

// TestLintSandbox: lint reports a claude stage that would run as root
// without IS_SANDBOX=1 (every iteration would exit 1), and nothing else.
func TestLintSandbox(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "cl", "completion: fixed-n\nprovider: claude\n", "go\n")
	writeStage(t, project, "mk", "completion: fixed-n\nprovider: mock\n", "go\n")
	for _, tt := range []struct {
		euid int
		env  []string
		want int
	}{
		{0, []string{"PATH=/bin"}, 1},
		{0, []string{"IS_SANDBOX=1"}, 0},
		{0, []string{"IS_SANDBOX=1", "IS_SANDBOX=0"}, 1}, // the last one wins, as in exec
		{1000, nil, 0},
	} {
		res := LintAs(project, []string{"cl", "mk"}, tt.euid, tt.env)
		if len(res.Problems) != tt.want {
			t.Errorf("euid %d env %q: problems %v, want %d", tt.euid, tt.env, res.Problems, tt.want)
			continue
		}
		if tt.want == 1 {
			p := res.Problems[0]
			if got := p.String(); p.File != "stage cl" || !strings.Contains(got, "stage cl: stage cl runs claude as root without IS_SANDBOX=1; as root, Claude Code refuses") || !strings.Contains(got, "-e IS_SANDBOX=1") {
				t.Errorf("problem = %q", got)
			}
		}
	}
}

// TestProblemLocations: a problem never prints an empty location (": :"
// before); a stage's plan problems name its file.
func TestProblemLocations(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		p    Problem
		want string
	}{
		{Problem{File: "f.yaml", Line: 3, Msg: "m"}, "f.yaml:3: m"},
		{Problem{File: "f.yaml", Msg: "m"}, "f.yaml: m"},
		{Problem{Line: 3, Msg: "m"}, "line 3: m"},
		{Problem{Msg: "m"}, "m"},
	} {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.p, got, tt.want)
		}
	}
	_, err := NewCatalog(t.TempDir()).CompileStage("s", "demo", Options{Provider: ProviderCommand})
	if err == nil || !strings.HasPrefix(err.Error(), "builtin:stages/demo/stage.yaml: stage demo: provider command needs command:") {
		t.Errorf("CompileStage(demo, provider command) = %v, want the problem located in the stage's file", err)
	}
}
