package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// testBuiltin is a stand-in for the embedded built-ins.
func testBuiltin() fstest.MapFS {
	return fstest.MapFS{
		"stages/shared/stage.yaml":       {Data: []byte("description: builtin shared\ncompletion: fixed-n\n")},
		"stages/shared/prompt.md":        {Data: []byte("builtin shared prompt\n")},
		"stages/only-builtin/stage.yaml": {Data: []byte("description: builtin only\ncompletion: plateau\n")},
		"stages/only-builtin/prompt.md":  {Data: []byte("builtin only prompt\n")},
		"pipelines/shared.yaml":          {Data: []byte("description: builtin pipeline\nstages:\n  - name: a\n    prompt: hi\n")},
		"pipelines/only-builtin.yaml":    {Data: []byte("description: builtin only pipeline\nstages:\n  - name: a\n    prompt: hi\n")},
	}
}

func TestCatalogStageLookupOrder(t *testing.T) {
	project := t.TempDir()
	stage := func(root, name, desc string) string {
		dir := filepath.Join(project, root, name)
		writeFile(t, filepath.Join(dir, "stage.yaml"), "description: "+desc+"\ncompletion: fixed-n\n")
		writeFile(t, filepath.Join(dir, "prompt.md"), desc+" prompt\n")
		return dir
	}
	claudeShared := stage(".claude/stages", "shared", "claude shared")
	stage("scripts/loops", "shared", "loops shared")
	stage("scripts/loops", "loops-only", "loops only")
	// The original layout: loop.yaml and prompts/<prompt>.md.
	writeFile(t, filepath.Join(project, "scripts/loops/old/loop.yaml"), "description: old layout\ncompletion: fixed-n\nprompt: main\n")
	writeFile(t, filepath.Join(project, "scripts/loops/old/prompts/main.md"), "old layout prompt\n")

	c := &Catalog{ProjectDir: project, Builtin: testBuiltin()}
	tests := []struct {
		name, wantDesc, wantSource, wantPrompt string
	}{
		{"shared", "claude shared", SourceProjectStages, "claude shared prompt\n"},
		{"loops-only", "loops only", SourceProjectLoops, "loops only prompt\n"},
		{"only-builtin", "builtin only", SourceBuiltin, "builtin only prompt\n"},
		{"old", "old layout", SourceProjectLoops, "old layout prompt\n"},
	}
	for _, tt := range tests {
		s, err := c.Stage(tt.name)
		if err != nil {
			t.Errorf("Stage(%s): %v", tt.name, err)
			continue
		}
		if s.Description != tt.wantDesc || s.Source != tt.wantSource || s.PromptText != tt.wantPrompt || s.Name != tt.name {
			t.Errorf("Stage(%s) = %q from %s (prompt %q), want %q from %s", tt.name, s.Description, s.Source, s.PromptText, tt.wantDesc, tt.wantSource)
		}
	}
	// Without the .claude/stages copy, scripts/loops shadows the built-in.
	os.RemoveAll(claudeShared)
	if s, err := c.Stage("shared"); err != nil || s.Source != SourceProjectLoops {
		t.Errorf("Stage(shared) after removing .claude/stages/shared = %v, %v; want scripts/loops", s, err)
	}
	os.RemoveAll(filepath.Join(project, "scripts/loops/shared"))
	if s, err := c.Stage("shared"); err != nil || s.Source != SourceBuiltin {
		t.Errorf("Stage(shared) with no project copy = %v, %v; want builtin", s, err)
	}

	_, err := c.Stage("nowhere")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "only-builtin") || !strings.Contains(err.Error(), "agent-sessions lint") {
		t.Errorf("Stage(nowhere) = %v, want ErrNotFound naming the built-ins and how to list", err)
	}
	if _, err := c.Stage("../x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Stage(../x) = %v, want ErrInvalid", err)
	}
}

func TestCatalogPipelineLookupOrder(t *testing.T) {
	project := t.TempDir()
	pipeline := func(rel, desc string) string {
		p := filepath.Join(project, rel)
		writeFile(t, p, "description: "+desc+"\nstages:\n  - name: a\n    prompt: hi\n")
		return p
	}
	claude := pipeline(".claude/pipelines/shared.yaml", "claude shared")
	pipeline("scripts/pipelines/shared.yaml", "scripts shared")
	pipeline("scripts/pipelines/scripts-only.yml", "scripts only")
	custom := pipeline("elsewhere/custom.yaml", "by path")

	c := &Catalog{ProjectDir: project, Builtin: testBuiltin()}
	tests := []struct {
		ref, wantDesc, wantSource, wantName string
	}{
		{"shared", "claude shared", SourceProjectPipelines, "shared"},
		{"shared.yaml", "claude shared", SourceProjectPipelines, "shared"},
		{"scripts-only", "scripts only", SourceScriptsPipelines, "scripts-only"},
		{"only-builtin", "builtin only pipeline", SourceBuiltin, "only-builtin"},
		{"elsewhere/custom.yaml", "by path", SourcePath, "custom"},
		{custom, "by path", SourcePath, "custom"},
		{".claude/pipelines/shared.yaml", "claude shared", SourcePath, "shared"},
	}
	for _, tt := range tests {
		p, err := c.Pipeline(tt.ref)
		if err != nil {
			t.Errorf("Pipeline(%s): %v", tt.ref, err)
			continue
		}
		if p.Description != tt.wantDesc || p.Source != tt.wantSource || p.Name != tt.wantName {
			t.Errorf("Pipeline(%s) = %q %q from %s, want %q %q from %s", tt.ref, p.Name, p.Description, p.Source, tt.wantName, tt.wantDesc, tt.wantSource)
		}
	}
	os.Remove(claude)
	if p, err := c.Pipeline("shared"); err != nil || p.Source != SourceScriptsPipelines {
		t.Errorf("Pipeline(shared) without .claude copy = %v, %v; want scripts/pipelines", p, err)
	}
	os.Remove(filepath.Join(project, "scripts/pipelines/shared.yaml"))
	if p, err := c.Pipeline("shared"); err != nil || p.Source != SourceBuiltin {
		t.Errorf("Pipeline(shared) with no project copy = %v, %v; want builtin", p, err)
	}
	if _, err := c.Pipeline("missing/p.yaml"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Pipeline(missing/p.yaml) = %v, want ErrNotFound", err)
	}
	if _, err := c.Pipeline("nope"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "only-builtin") {
		t.Errorf("Pipeline(nope) = %v, want ErrNotFound naming the built-ins", err)
	}
}

// TestCatalogListShadows checks List shows each name once, from the first
// place it is found, and reports unreadable definitions.
func TestCatalogListShadows(t *testing.T) {
	project := t.TempDir()
	writeStage(t, project, "shared", "description: mine\ncompletion: fixed-n\nmax_iterations: 4\n", "p\n")
	writeStage(t, project, "broken", "completion: sometimes\n", "p\n")
	c := &Catalog{ProjectDir: project, Builtin: testBuiltin()}
	entries, problems := c.List()
	got := map[string]Entry{}
	for _, e := range entries {
		key := e.Kind + "/" + e.Name
		if _, dup := got[key]; dup {
			t.Errorf("%s listed twice", key)
		}
		got[key] = e
	}
	if e := got["stage/shared"]; e.Source != SourceProjectStages || e.Description != "mine" || e.DefaultMax != 4 {
		t.Errorf("stage/shared = %+v, want the project's", e)
	}
	if e := got["stage/only-builtin"]; e.Source != SourceBuiltin || e.DefaultMax != DefaultMaxIterations {
		t.Errorf("stage/only-builtin = %+v", e)
	}
	if _, ok := got["pipeline/shared"]; !ok {
		t.Errorf("pipeline/shared missing from %v", entries)
	}
	if len(problems) != 1 || !strings.Contains(problems[0].String(), "broken") || !strings.Contains(problems[0].String(), `"sometimes" is not a strategy`) {
		t.Errorf("problems = %v, want the broken stage's", problems)
	}
}

// TestBuiltinsCompile checks every embedded stage and pipeline compiles.
func TestBuiltinsCompile(t *testing.T) {
	c := NewCatalog(t.TempDir())
	entries, problems := c.List()
	if len(problems) > 0 {
		t.Fatalf("built-in problems: %v", problems)
	}
	want := map[string]bool{"stage/work": true, "stage/improve-plan": true, "stage/refine-beads": true, "stage/idea-wizard": true, "stage/demo": true,
		"pipeline/quick-refine": true, "pipeline/full-refine": true, "pipeline/deep-refine": true}
	for _, e := range entries {
		delete(want, e.Kind+"/"+e.Name)
		var err error
		if e.Kind == "stage" {
			_, err = c.CompileStage("x", e.Name, Options{})
		} else {
			_, err = c.CompilePipeline("x", e.Name, Options{})
		}
		if err != nil {
			t.Errorf("%s %s: %v", e.Kind, e.Name, err)
		}
	}
	if len(want) > 0 {
		t.Errorf("built-ins missing: %v", want)
	}
}
