package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestLintBuiltins: a project with nothing of its own lints clean (the
// built-ins), exit 0.
func TestLintBuiltins(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runBinary(t, engineEnv(false), "lint", "--project", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"checked 8 definition(s): 0 problem(s)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}

// TestLintListsEveryProblem: a project with several broken definitions
// exits 2 and lists each problem with its file and line.
func TestLintListsEveryProblem(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "typo", "completion: plateau\nmax_iteratons: 3\n", "go\n")
	writeStage(t, project, "badvar", "completion: fixed-n\n", "ok ${SESSION}\nthen ${SESION}\n")
	writeFile(t, filepath.Join(project, ".claude", "stages", "noprompt", "stage.yaml"), "completion: fixed-n\n")
	writeStage(t, project, "good", "completion: fixed-n\n", "fine ${ITERATION}\n")
	writeFile(t, filepath.Join(project, ".claude", "pipelines", "pl.yaml"),
		"stages:\n  - name: a\n    prompt: \"uses ${INPUTS.b}\"\n  - name: b\n    stage: ghost\n")
	writeFile(t, filepath.Join(project, "scripts", "pipelines", "broken.yaml"), "stages: [\n")

	code, stdout, stderr := runBinary(t, engineEnv(false), "lint", "--project", project)
	if code != 2 {
		t.Fatalf("exit %d, want 2\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	stages := filepath.Join(project, ".claude", "stages")
	want := []string{
		filepath.Join(stages, "typo", "stage.yaml") + `:2: stage: unknown field "max_iteratons"`,
		`did you mean "max_iterations"?`,
		filepath.Join(stages, "badvar", "prompt.md") + `:2: unknown variable ${SESION}; did you mean ${SESSION}?`,
		filepath.Join(stages, "noprompt", "prompt.md") + ": prompt file missing",
		filepath.Join(project, ".claude", "pipelines", "pl.yaml") + `:3: ${INPUTS.b} refers to stage "b", which is not an earlier stage`,
		filepath.Join(project, ".claude", "pipelines", "pl.yaml") + `:4: stages[1] (b): no stage "ghost"`,
		filepath.Join(project, "scripts", "pipelines", "broken.yaml") + ":",
		"invalid YAML",
		": 6 problem(s)\n",
	}
	for _, w := range want {
		if !strings.Contains(stdout, w) {
			t.Errorf("lint output lacks %q:\n%s", w, stdout)
		}
	}
	if strings.Contains(stdout, filepath.Join(stages, "good")) {
		t.Errorf("lint reports the good stage:\n%s", stdout)
	}

	// Naming definitions lints only those.
	code, stdout, _ = runBinary(t, engineEnv(false), "lint", "--project", project, "good", "demo")
	if code != 0 || !strings.Contains(stdout, "checked 2 definition(s): 0 problem(s)") {
		t.Errorf("lint good demo: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = runBinary(t, engineEnv(false), "lint", "--project", project, "typo", "nothing-by-this-name")
	if code != 2 || !strings.Contains(stdout, `max_iteratons`) || !strings.Contains(stdout, `no stage or pipeline named "nothing-by-this-name"`) {
		t.Errorf("lint typo nothing-by-this-name: exit %d\n%s", code, stdout)
	}
}
