package tools_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tools"
)

// Hostile input through the MCP tools (issue 6): names, project
// directories, input paths and prompt text a careless or malicious caller
// may send. Each is refused with invalid_argument naming what is wrong and
// how to fix it, with nothing created, or (prompt text) delivered byte for
// byte with nothing evaluated. TestBadInput (input_test.go) covers wrong
// argument types and a first set of names.

// TestHostileSessionNames: every tool refuses names that are paths, shell
// syntax, whitespace, non-ASCII or huge, saying so and suggesting a valid
// name; start_session creates nothing, even without dry_run.
func TestHostileSessionNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.connect(modernVersion)
	names := []string{
		"../x", "..", "a/b", "a;b", "$(id)", "`id`", "a b", "a\tb", "ünï", strings.Repeat("n", 10<<10), "",
		"-x", "-", "name\n", "\nname", "Name", "a.b", "a:b", "=loop-a", "loop-a;kill-server", strings.Repeat("a", 49),
		"a\x00b", "\u200ba", "a\u00a0b", "a" + strings.Repeat("-", 48),
	}
	before := projectFiles(t, e.project)
	for _, name := range names {
		for _, dry := range []bool{false, true} {
			te := c.fail("start_session", map[string]any{"session": name, "stage": "demo", "provider": "mock", "dry_run": dry}, tools.CodeInvalidArgument)
			if !strings.Contains(te.Message, state.SessionRule) {
				t.Errorf("start_session %q: message %q does not state the rule", name, te.Message)
			}
			if len(te.Message) > 600 {
				t.Errorf("start_session of a %d-byte name: %d-byte message", len(name), len(te.Message))
			}
			suggested := state.SuggestSession(name)
			if err := state.ValidateSession(suggested); err != nil {
				t.Errorf("suggestion %q for %q is invalid: %v", suggested, name, err)
			}
			if name != "" && !strings.Contains(te.Message, fmt.Sprintf("invalid session name %q", truncated(name, 60))) {
				t.Errorf("start_session %q: message %q does not quote the name", name, te.Message)
			}
			if name != "" && !strings.Contains(te.Message, fmt.Sprintf("try %q", suggested)) {
				t.Errorf("start_session %q: message %q does not suggest %q", name, te.Message, suggested)
			}
			if !hasOption(te.Options, "start_session", map[string]any{"session": suggested}) {
				t.Errorf("start_session %q: options %+v lack the suggested name %q", name, te.Options, suggested)
			}
		}
		for _, tool := range []string{"monitor", "attach_hint", "kill"} {
			te := c.fail(tool, map[string]any{"session": name}, tools.CodeInvalidArgument)
			if !strings.Contains(te.Message, state.SessionRule) {
				t.Errorf("%s %q: message %q does not state the rule", tool, name, te.Message)
			}
		}
		for _, kind := range []string{"state", "progress", "log"} {
			uri := "sessions://session/" + url.PathEscape(name) + "/" + kind
			if text, err := c.readResource(uri); err == nil {
				t.Errorf("read %s: %q, want an error", uri, truncated(text, 200))
			}
		}
	}
	if got := projectFiles(t, e.project); !slices.Equal(got, before) {
		t.Errorf("bad names changed the project:\nbefore %q\nafter  %q", before, got)
	}
	if got := e.rec.Created(); len(got) != 0 {
		t.Errorf("bad names created tmux sessions %q", got)
	}
	// Still serving, and a valid name still works.
	var res tools.StartResult
	c.ok("start_session", map[string]any{"session": "fine-1", "stage": "demo", "provider": "mock", "dry_run": true}, &res)
	if !strings.HasSuffix(res.RunDir, "/fine-1") {
		t.Errorf("run dir %q, want one of fine-1", res.RunDir)
	}
}

// truncated is ValidateSession's cut of a long name in its message.
func truncated(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// TestHostileProjectDir: a project_dir that is a file, or a symlink to
// nowhere, is refused clearly; a symlink to a directory elsewhere is
// followed, and the session runs in (and reports) the real directory.
func TestHostileProjectDir(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("quick", quickStage)
	c := e.connect(modernVersion)
	base := t.TempDir()
	if p, err := filepath.EvalSymlinks(base); err == nil {
		base = p
	}

	file := filepath.Join(base, "a-file")
	writeFile(t, file, "not a directory\n")
	te := c.fail("start_session", map[string]any{"session": "f", "stage": "demo", "project_dir": file}, tools.CodeInvalidArgument)
	if !strings.Contains(te.Message, file) || !strings.Contains(te.Message, "is a file, not a directory") {
		t.Errorf("project_dir a file: message %q", te.Message)
	}
	c.fail("list", map[string]any{"project_dir": file}, tools.CodeInvalidArgument)
	c.fail("cleanup", map[string]any{"project_dir": file}, tools.CodeInvalidArgument)

	dangling := filepath.Join(base, "dangling")
	if err := os.Symlink(filepath.Join(base, "no-such-dir"), dangling); err != nil {
		t.Fatal(err)
	}
	te = c.fail("start_session", map[string]any{"session": "d", "stage": "demo", "project_dir": dangling}, tools.CodeInvalidArgument)
	if !strings.Contains(te.Message, dangling) || !strings.Contains(te.Message, "does not exist") {
		t.Errorf("project_dir a dangling symlink: message %q", te.Message)
	}

	loop := filepath.Join(base, "loop")
	if err := os.Symlink(loop, loop); err != nil {
		t.Fatal(err)
	}
	te = c.fail("start_session", map[string]any{"session": "l", "stage": "demo", "project_dir": loop}, tools.CodeInvalidArgument)
	if !strings.Contains(te.Message, loop) {
		t.Errorf("project_dir a symlink loop: message %q", te.Message)
	}

	// A symlink to the test project: resolved, and everything lives in the
	// real directory.
	link := filepath.Join(base, "link-to-project")
	if err := os.Symlink(e.project, link); err != nil {
		t.Fatal(err)
	}
	var dry tools.StartResult
	c.ok("start_session", map[string]any{"session": "via-link", "stage": "quick", "project_dir": link, "dry_run": true}, &dry)
	if !strings.HasPrefix(dry.RunDir, e.project+string(filepath.Separator)) {
		t.Errorf("dry run through a symlink: run dir %q, want it in %q", dry.RunDir, e.project)
	}
	res := c.start(map[string]any{"session": "via-link", "stage": "quick", "project_dir": link})
	if want := state.NewLayout(e.project, "via-link").RunDir(); res.RunDir != want {
		t.Errorf("run_dir = %q, want it in the resolved %q", res.RunDir, e.project)
	}
	if m := c.monitorWait("via-link", "complete", 60); m.Status != state.LiveComplete {
		t.Fatalf("session through a symlinked project: %q (%s)", m.Status, m.Why)
	}
	if st := e.loadState("via-link"); st.ProjectDir != e.project || st.Status != state.StatusComplete {
		t.Errorf("state: project %q status %q", st.ProjectDir, st.Status)
	}
	if _, err := os.Lstat(filepath.Join(base, ".claude")); err == nil {
		t.Errorf("files were written next to the symlink, in %s", base)
	}
	l := c.list(map[string]any{"project_dir": link})
	if _, ok := summary(l, "via-link"); !ok || l.ProjectDir != e.project {
		t.Errorf("list through the symlink: project %q, sessions %+v", l.ProjectDir, l.Sessions)
	}
}

// TestHostileInputs: input files must be files inside the project, after
// symlinks are resolved; the error names the input and the rule. Files
// inside the project are accepted (also through a symlink inside it).
func TestHostileInputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := filepath.Join(e.project, ".claude", "stages", "in")
	writeFile(t, filepath.Join(dir, "stage.yaml"), "completion: fixed-n\nprovider: mock\nmax_iterations: 1\ndelay: 0\n")
	writeFile(t, filepath.Join(dir, "prompt.md"), "Read these:\n${INPUTS}\n")
	c := e.connect(modernVersion)

	outside := filepath.Join(t.TempDir(), "secret.md")
	writeFile(t, outside, "SECRET outside the project\n")
	sibling := filepath.Join(filepath.Dir(e.project), "sibling-secret.md")
	writeFile(t, sibling, "SECRET next to the project\n")
	t.Cleanup(func() { os.Remove(sibling) })
	writeFile(t, filepath.Join(e.project, "docs", "plan.md"), "PLAN inside\n")
	if err := os.Symlink(outside, filepath.Join(e.project, "escape.md")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(e.project, "docs", "plan.md"), filepath.Join(e.project, "alias.md")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(e.project, "escape-dir")); err != nil {
		t.Fatal(err)
	}
	before := projectFiles(t, e.project)

	tests := []struct {
		input string
		want  []string
	}{
		{outside, []string{outside, "is outside the project directory", "copy it into the project"}},
		{"../" + filepath.Base(sibling), []string{"../" + filepath.Base(sibling), "is outside the project directory"}},
		{"docs/../../" + filepath.Base(sibling), []string{"is outside the project directory"}},
		{"escape.md", []string{"escape.md", "is outside the project directory"}},
		{"escape-dir/secret.md", []string{"escape-dir/secret.md", "is outside the project directory"}},
		{"/etc/passwd", []string{"/etc/passwd", "is outside the project directory"}},
		{"docs", []string{"docs", "is a directory, not a file", "give a path to a file inside"}},
		{".", []string{"is a directory, not a file"}},
		{"missing.md", []string{"missing.md", "no such file", "give a path to a file inside " + e.project}},
		{"", []string{"an input path is empty", "give a path to a file inside"}},
	}
	for _, tt := range tests {
		for _, dry := range []bool{true, false} {
			te := c.fail("start_session", map[string]any{"session": "in", "stage": "in", "inputs": []any{"docs/plan.md", tt.input}, "dry_run": dry},
				tools.CodeInvalidArgument)
			for _, w := range tt.want {
				if !strings.Contains(te.Message, w) {
					t.Errorf("input %q: message %q lacks %q", tt.input, te.Message, w)
				}
			}
			if strings.Contains(te.Message, "SECRET") {
				t.Errorf("input %q: the message shows the file's content: %q", tt.input, te.Message)
			}
		}
	}
	if got := projectFiles(t, e.project); !slices.Equal(got, before) {
		t.Errorf("refused inputs changed the project:\nbefore %q\nafter  %q", before, got)
	}
	if got := e.rec.Created(); len(got) != 0 {
		t.Errorf("refused inputs created tmux sessions %q", got)
	}

	// Inside the project, directly or through a symlink that stays inside.
	var res tools.StartResult
	c.ok("start_session", map[string]any{"session": "in", "stage": "in", "inputs": []any{"docs/plan.md", "alias.md", filepath.Join(e.project, "docs", "plan.md")}, "dry_run": true}, &res)
	if strings.Count(res.FirstPrompt, "PLAN inside") != 3 || strings.Contains(res.FirstPrompt, "SECRET") {
		t.Errorf("first prompt with three inputs inside the project:\n%s", res.FirstPrompt)
	}
}

// TestHostilePromptText: context full of shell syntax reaches the agent
// byte for byte, through start_session, tmux and the engine, and nothing
// in it is run. Arguments ending in ';' are the hard case: tmux reads them
// as its own command separator.
func TestHostilePromptText(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := filepath.Join(e.project, ".claude", "stages", "echo")
	writeFile(t, filepath.Join(dir, "stage.yaml"), commandStage("fixed-n", 1, "echo-agent"))
	writeFile(t, filepath.Join(dir, "prompt.md"), "Session ${SESSION}.\nContext: <<${CONTEXT}>>\nEnd")
	prompts := t.TempDir()
	e.setEnv("FAKE_AGENT_PROMPT_DIR=" + prompts)
	c := e.connect(modernVersion)

	canary := t.TempDir()
	p := func(name string) string { return filepath.Join(canary, name) }
	contexts := map[string]string{
		"shell": fmt.Sprintf("$(touch %s) `touch %s`; echo x | tee %s && touch %s || true > %s\n"+
			"${HOME} $HOME ${SESSION} $${CONTEXT} $$ $1 'single' \"double\" \\\" \\\\ \\n\n"+
			"tab\there\r\nünïcödé 日本語 🚀 \u200b #{session_name} %%1 -t =loop-x ~ * ? [a] {b} !x",
			p("dollar"), p("tick"), p("pipe"), p("and"), p("redirect")),
		"semicolon": "end with a semicolon;",
		"escaped":   `end with an escaped one\;`,
		"only":      ";",
		"flag":      "-t",
		"dashes":    "--resume",
		"spaces":    "  leading and trailing  ",
	}
	var sessions []string
	for name := range contexts {
		sessions = append(sessions, name)
	}
	slices.Sort(sessions)
	for _, name := range sessions {
		ctx := contexts[name]
		c.start(map[string]any{"session": name, "stage": "echo", "context": ctx})
		if m := c.monitorWait(name, "complete", 60); m.Status != state.LiveComplete {
			t.Fatalf("%s: status %q (%s)", name, m.Status, m.Why)
		}
		want := "Session " + name + ".\nContext: <<" + ctx + ">>\nEnd"
		got, err := os.ReadFile(filepath.Join(prompts, "prompt-"+name+"-echo-1.txt"))
		if err != nil {
			t.Fatalf("%s: the agent saved no prompt: %v", name, err)
		}
		if string(got) != want {
			t.Errorf("%s: the agent read\n%q\nwant\n%q", name, got, want)
		}
		if saved, _ := os.ReadFile(e.layout(name).Iteration(0, "echo", 1).Prompt); string(saved) != want {
			t.Errorf("%s: prompt.md is\n%q\nwant\n%q", name, saved, want)
		}
		if st := e.loadState(name); st.Status != state.StatusComplete {
			t.Errorf("%s: status %q, error %q", name, st.Status, st.Error)
		}
	}
	if entries, _ := os.ReadDir(canary); len(entries) != 0 {
		t.Errorf("a shell ran part of the context: %s holds %v", canary, entries)
	}
}

// TestHostileNUL: a NUL byte, which no path, argument or prompt can carry,
// is refused before anything is created, naming the argument.
func TestHostileNUL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("quick", quickStage)
	writeFile(t, filepath.Join(e.project, "in.md"), "x\n")
	c := e.connect(modernVersion)
	before := projectFiles(t, e.project)
	for _, tt := range []struct {
		arg   string
		value any
		want  string
	}{
		{"context", "before\x00after", "context contains a NUL byte (at byte 6)"},
		{"model", "opus\x00", "model contains a NUL byte"},
		{"project_dir", e.project + "\x00/x", "project_dir contains a NUL byte"},
		{"inputs", []any{"in.md", "in.md\x00"}, "inputs[1] contains a NUL byte"},
	} {
		for _, dry := range []bool{true, false} {
			args := map[string]any{"session": "nul", "stage": "quick", tt.arg: tt.value, "dry_run": dry}
			te := c.fail("start_session", args, tools.CodeInvalidArgument)
			if !strings.Contains(te.Message, tt.want) || !strings.Contains(te.Message, "remove it") {
				t.Errorf("%s (dry_run %v): message %q lacks %q", tt.arg, dry, te.Message, tt.want)
			}
		}
	}
	if got := projectFiles(t, e.project); !slices.Equal(got, before) {
		t.Errorf("refused NULs changed the project:\nbefore %q\nafter  %q", before, got)
	}
	if got := e.rec.Created(); len(got) != 0 {
		t.Errorf("refused NULs created tmux sessions %q", got)
	}
}

// TestHostileSemicolonPaths: tmux reads any argument ending in ';' as its
// own command separator. A project directory and a model whose names end
// in ';' reach the engine as they are: the session runs in that directory,
// with that model.
func TestHostileSemicolonPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	project := filepath.Join(t.TempDir(), "odd project;")
	if p, err := filepath.EvalSymlinks(filepath.Dir(project)); err == nil {
		project = filepath.Join(p, filepath.Base(project))
	}
	dir := filepath.Join(project, ".claude", "stages", "echo")
	writeFile(t, filepath.Join(dir, "stage.yaml"), commandStage("fixed-n", 1, "echo-agent"))
	writeFile(t, filepath.Join(dir, "prompt.md"), "Session ${SESSION} in ${RUN_DIR}")
	c := e.connect(modernVersion)
	res := c.start(map[string]any{"session": "semi", "stage": "echo", "project_dir": project, "model": "my-model;"})
	if want := state.NewLayout(project, "semi").RunDir(); res.RunDir != want {
		t.Errorf("run_dir = %q, want %q", res.RunDir, want)
	}
	if m := c.call("monitor", map[string]any{"session": "semi", "project_dir": project, "wait": "complete", "timeout_seconds": 60}); m.IsError {
		t.Fatalf("monitor: %s", m.Text)
	}
	l := state.NewLayout(project, "semi")
	st, _, err := state.Load(l)
	if err != nil {
		t.Fatalf("no state in %s: %v", project, err)
	}
	if st.Status != state.StatusComplete || st.ProjectDir != project || st.Model != "my-model;" {
		t.Errorf("state: status %q project %q model %q", st.Status, st.ProjectDir, st.Model)
	}
	want := "iteration=1\nSession semi in " + l.RunDir()
	if out, _ := os.ReadFile(l.Iteration(0, "echo", 1).Output); string(out) != want {
		t.Errorf("output.md = %q, want %q", out, want)
	}
	if _, err := os.Stat(strings.TrimSuffix(project, ";")); err == nil {
		t.Errorf("%s was created: the path lost its ';'", strings.TrimSuffix(project, ";"))
	}
}

// TestHostileStageYAML: a project stage whose numbers are not numbers the
// runner can use (NaN, infinity, overflowing timeouts, a parallel stage of
// a trillion runs) is refused by start_session with the file and line,
// where it used to crash the engine (NaN cannot be stored in state.json).
func TestHostileStageYAML(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.connect(modernVersion)
	for name, tt := range map[string]struct{ yaml, want string }{
		"nan":     {"completion: fixed-n\nprovider: mock\ndelay: nan\n", "stage.yaml:3: delay: expected a number of seconds"},
		"inf":     {"completion: fixed-n\nprovider: mock\ndelay: +Inf\n", "stage.yaml:3: delay: expected a number of seconds"},
		"long":    {"completion: fixed-n\nprovider: mock\ndelay: 1e12\n", "stage.yaml:3: delay: must be at most"},
		"timeout": {"completion: fixed-n\nprovider: mock\ntimeout: 99999999999999\n", "stage.yaml:3: timeout: must be at most"},
		"many":    {"completion: fixed-n\nprovider: mock\nmax_iterations: 1000000000000\n", "stage.yaml:3: max_iterations: must be at most 100000"},
	} {
		e.stage(name, tt.yaml)
		te := c.fail("start_session", map[string]any{"session": name, "stage": name, "dry_run": true}, tools.CodeInvalidArgument)
		if !strings.Contains(te.Message, tt.want) {
			t.Errorf("%s: message %q lacks %q", name, te.Message, tt.want)
		}
	}
	pl := filepath.Join(e.project, ".claude", "pipelines", "wide.yaml")
	writeFile(t, pl, "stages:\n  - name: a\n    prompt: hi\n    provider: mock\n    parallel: true\n    runs: 1000000000000\n")
	te := c.fail("start_session", map[string]any{"session": "wide", "pipeline": "wide", "dry_run": true}, tools.CodeInvalidArgument)
	if !strings.Contains(te.Message, "wide.yaml:6: stages[0].runs: must be at most 100000") {
		t.Errorf("pipeline of a trillion runs: message %q", te.Message)
	}
}
