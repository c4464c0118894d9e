package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-sessions/agent-sessions/state"
)

// TestRunRejectsBadInput runs `agent-sessions run` on broken definitions and
// arguments: each must exit 2 with a message that names the problem and the
// fix, and create no run directory.
func TestRunRejectsBadInput(t *testing.T) {
	t.Parallel()
	noAgents := "/usr/bin:/bin" // neither claude nor bd
	tests := []struct {
		name  string
		setup func(t *testing.T, project string)
		args  []string
		path  string // PATH of the engine; "" keeps the test's own with the fakes first
		want  []string
	}{
		{name: "malformed YAML",
			setup: func(t *testing.T, p string) {
				writeStage(t, p, "s", "completion: [fixed-n\nmax_iterations: 2\n", "go\n")
			},
			args: []string{"--stage", "s"},
			want: []string{"problem(s)", filepath.Join(".claude", "stages", "s", "stage.yaml") + ":", "invalid YAML", "fix the YAML"}},
		{name: "unknown field",
			setup: func(t *testing.T, p string) {
				writeStage(t, p, "s", commandStage("fixed-n", "echo-agent", "max_iteration: 2"), "go\n")
			},
			args: []string{"--stage", "s"},
			want: []string{"stage.yaml:5:", `unknown field "max_iteration"`, "(allowed: name,", `did you mean "max_iterations"?`}},
		{name: "unknown variable",
			setup: func(t *testing.T, p string) {
				writeStage(t, p, "s", commandStage("fixed-n", "echo-agent"), "line 1\nHome is ${HOME}\n")
			},
			args: []string{"--stage", "s"},
			want: []string{"prompt.md:2:", "unknown variable ${HOME}", "write $${HOME} for a literal ${HOME}"}},
		{name: "unknown stage",
			args: []string{"--stage", "no-such-stage"},
			want: []string{`no stage "no-such-stage"`, filepath.Join(".claude", "stages"), "built-ins (", "improve-plan", "agent-sessions lint"}},
		{name: "unknown pipeline",
			args: []string{"--pipeline", "no-such-pipeline"},
			want: []string{`no pipeline "no-such-pipeline"`, "quick-refine", "pass a path to a YAML file"}},
		{name: "pipeline with an unknown stage",
			setup: func(t *testing.T, p string) {
				writeFile(t, filepath.Join(p, ".claude", "pipelines", "pl.yaml"), "stages:\n  - name: a\n    prompt: hi\n  - name: b\n    stage: ghost\n")
			},
			args: []string{"--pipeline", "pl"},
			want: []string{"pl.yaml:4:", "stages[1] (b)", `no stage "ghost"`, "agent-sessions lint"}},
		{name: "bad session name",
			args: []string{"--session", "Bad Name!", "--stage", "demo"},
			want: []string{`invalid session name "Bad Name!"`, "lowercase letters, digits and hyphens", `try "bad-name"`}},
		{name: "stage and pipeline",
			args: []string{"--stage", "demo", "--pipeline", "quick-refine"},
			want: []string{"give exactly one of a stage (--stage) or a pipeline (--pipeline)"}},
		{name: "resume and force",
			args: []string{"--stage", "demo", "--resume", "--force"},
			want: []string{"--resume and --force exclude each other"}},
		{name: "resume of nothing",
			args: []string{"--stage", "demo", "--resume"},
			want: []string{"no session v to resume", "start it without --resume"}},
		{name: "missing agent CLI",
			setup: func(t *testing.T, p string) { writeStage(t, p, "s", "completion: fixed-n\ndelay: 0\n", "go\n") },
			args:  []string{"--stage", "s"}, path: noAgents,
			want: []string{"claude (needed by stage s, provider claude) was not found on PATH", "npm install -g @anthropic-ai/claude-code"}},
		{name: "missing command",
			setup: func(t *testing.T, p string) {
				writeStage(t, p, "s", "completion: fixed-n\nprovider: command\ncommand: [/nonexistent/agent]\n", "go\n")
			},
			args: []string{"--stage", "s"},
			want: []string{"/nonexistent/agent (needed by stage s, provider command) was not found", "fix command: in the stage (or --agent-cmd)"}},
		{name: "command provider without a command",
			setup: func(t *testing.T, p string) {
				writeStage(t, p, "s", "completion: fixed-n\nprovider: command\n", "go\n")
			},
			args: []string{"--stage", "s"},
			want: []string{"provider command needs command: (an argv list) in the stage or pipeline, or --agent-cmd"}},
		{name: "beads stage without bd",
			setup: func(t *testing.T, p string) {
				writeStage(t, p, "s", commandStage("beads-empty", "work-agent"), "go\n")
			},
			args: []string{"--stage", "s"}, path: noAgents,
			want: []string{"stage s (completion beads-empty) needs the beads CLI `bd`, which is not on PATH", "install it from"}},
		{name: "bad flag",
			args: []string{"--stage", "demo", "--bogus"},
			want: []string{"flag provided but not defined: -bogus"}},
		{name: "project is not a directory",
			setup: func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "file"), "x") },
			args:  []string{"--stage", "demo", "--project", "file"},
			want:  []string{"is a file, not a directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			project := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, project)
			}
			env := engineEnv(true)
			if tt.path != "" {
				env = withPath(env, tt.path)
			}
			args := append([]string{"run", "--session", "v", "--project", project, "--foreground"}, tt.args...)
			for i, a := range args {
				if a == "file" {
					args[i] = filepath.Join(project, "file")
				}
			}
			code, stdout, stderr := runBinary(t, env, args...)
			if code != 2 {
				t.Fatalf("exit code %d, want 2\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			l := state.NewLayout(project, "v")
			for _, p := range []string{state.RunsDir(project), l.LockFile()} {
				if pathExists(p) {
					t.Errorf("%s was created", p)
				}
			}
		})
	}
}

// TestCorruptStateWithoutEvents: a run directory whose state.json is
// corrupt and which has no events.jsonl cannot be continued; `run` says so
// and how to get on, and leaves the file where it is.
func TestCorruptStateWithoutEvents(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "s", commandStage("fixed-n", "echo-agent"), "go\n")
	l := state.NewLayout(project, "c")
	writeFile(t, l.StateFile(), "{not json")

	code, _, stderr := runBinary(t, engineEnv(true), "run", "--session", "c", "--stage", "s", "--project", project, "--foreground")
	if code != 2 {
		t.Fatalf("new run: exit %d, want 2\n%s", code, stderr)
	}
	for _, w := range []string{l.RunDir(), "cannot be read", "state.json is corrupt", "--force"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("new run: stderr lacks %q:\n%s", w, stderr)
		}
	}
	code, _, stderr = runBinary(t, engineEnv(true), "run", "--session", "c", "--stage", "s", "--project", project, "--foreground", "--resume")
	if code != 2 {
		t.Fatalf("resume: exit %d, want 2\n%s", code, stderr)
	}
	for _, w := range []string{"state.json is corrupt", "events.jsonl has nothing to rebuild it from", "move " + l.StateFile() + " aside"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("resume: stderr lacks %q:\n%s", w, stderr)
		}
	}
	if got := readFile(t, l.StateFile()); got != "{not json" {
		t.Errorf("state.json was changed to %q", got)
	}
	if entries, _ := os.ReadDir(l.RunDir()); len(entries) != 1 {
		t.Errorf("run dir holds %d entries, want only the corrupt state.json", len(entries))
	}
}

// TestCorruptStateWithEventsIsRebuilt: a failed session whose state.json was
// corrupted is resumed from events.jsonl; the corrupt file is kept aside.
func TestCorruptStateWithEventsIsRebuilt(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "s", commandStage("fixed-n", "fail-agent", "max_iterations: 5"), "go\n")
	args := []string{"run", "--session", "c", "--stage", "s", "--project", project, "--foreground"}
	code, _, stderr := runBinary(t, engineEnv(true, "FAIL_AT=1 2 3"), args...)
	if code != 1 {
		t.Fatalf("first run: exit %d, want 1 (failed)\n%s", code, stderr)
	}
	l := state.NewLayout(project, "c")
	corrupt := `{"session": "c", "status": "fail` // torn
	writeFile(t, l.StateFile(), corrupt)

	code, stdout, stderr := runBinary(t, engineEnv(true, "FAIL_AT=99"), append(args, "--resume")...)
	if code != 0 {
		t.Fatalf("resume: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "state.json rebuilt from events.jsonl") {
		t.Errorf("resume does not say it rebuilt the state:\n%s", stdout)
	}
	matches, _ := filepath.Glob(l.StateFile() + ".corrupt-*")
	if len(matches) != 1 {
		t.Fatalf("corrupt copies: %v, want one", matches)
	}
	if got := readFile(t, matches[0]); got != corrupt {
		t.Errorf("kept-aside copy = %q, want the corrupt content", got)
	}
	st := loadState(t, project, "c")
	var its []int
	for _, h := range st.History {
		its = append(its, h.Iteration)
	}
	if st.Status != state.StatusComplete || fmt.Sprint(its) != "[1 2 3 4 5]" {
		t.Errorf("rebuilt session: status %s, history %v; want complete, 1..5", st.Status, its)
	}
}
