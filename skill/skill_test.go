package skill_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/skill"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tools"
)

// toolSchemas returns, per tool of the registry, its input properties.
func toolSchemas(t *testing.T) (map[string]map[string]bool, map[string]bool) {
	t.Helper()
	inputs := map[string]map[string]bool{}
	outputs := map[string]bool{}
	for _, st := range tools.All(&tools.Deps{}) {
		var in struct {
			Properties map[string]any `json:"properties"`
		}
		if err := json.Unmarshal(st.Tool.RawInputSchema, &in); err != nil {
			t.Fatalf("%s input schema: %v", st.Tool.Name, err)
		}
		inputs[st.Tool.Name] = map[string]bool{}
		for k := range in.Properties {
			inputs[st.Tool.Name][k] = true
		}
		// The tool as clients see it (raw or typed output schema alike).
		var wire struct {
			OutputSchema json.RawMessage `json:"outputSchema"`
		}
		data, err := json.Marshal(st.Tool)
		if err != nil {
			t.Fatalf("%s: %v", st.Tool.Name, err)
		}
		json.Unmarshal(data, &wire)
		collectKeys(wire.OutputSchema, outputs)
	}
	return inputs, outputs
}

// collectKeys gathers every property name of a JSON schema, recursively.
func collectKeys(raw []byte, into map[string]bool) {
	var v any
	json.Unmarshal(raw, &v)
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if props, ok := x["properties"].(map[string]any); ok {
				for k, p := range props {
					into[k] = true
					walk(p)
				}
			}
			for _, k := range []string{"items", "additionalProperties", "$defs", "definitions", "anyOf", "oneOf", "allOf"} {
				if sub, ok := x[k]; ok {
					walk(sub)
				}
			}
			if defs, ok := x["$defs"].(map[string]any); ok {
				for _, d := range defs {
					walk(d)
				}
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
}

// jsonNames lists the JSON field names of struct types.
func jsonNames(into map[string]bool, values ...any) {
	for _, v := range values {
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			if name != "" && name != "-" {
				into[name] = true
			}
		}
	}
}

type doc struct{ name, text string }

func skillDocs(t *testing.T) []doc {
	t.Helper()
	var docs []doc
	for _, f := range skill.Files() {
		data, err := skill.FS.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc{f, string(data)})
	}
	if len(docs) < 11 {
		t.Fatalf("skill has %d files, want SKILL.md, 7 workflows and 3 references", len(docs))
	}
	return docs
}

var (
	backticked = regexp.MustCompile("`([^`\n]+)`")
	snake      = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)+$`)
	// `tool` … `{json}` on one line: a call with its arguments.
	callPattern = regexp.MustCompile("`([a-z_]+)`[^`\n]{0,40}`(\\{[^`\n]*\\})`")
	jsonBlock   = regexp.MustCompile("(?s)```json\n(.*?)```")
)

// The skill may only name tools, arguments and fields that exist.
func TestSkillNamesOnlyRealToolsAndArguments(t *testing.T) {
	inputs, outputs := toolSchemas(t)
	allArgs := map[string]bool{}
	for _, props := range inputs {
		for k := range props {
			allArgs[k] = true
		}
	}
	known := map[string]bool{}
	for name := range inputs {
		known[name] = true
	}
	for k := range allArgs {
		known[k] = true
	}
	for k := range outputs {
		known[k] = true
	}
	jsonNames(known, state.State{}, state.StageState{}, state.HistoryEntry{}, state.LockInfo{}, state.Event{}, state.Cost{},
		tools.ToolError{}, tools.Option{})
	for _, c := range []string{tools.CodeInvalidArgument, tools.CodeNotFound, tools.CodeConflictRunning, tools.CodeConflictCrashed,
		tools.CodeConflictComplete, tools.CodeTmuxUnavailable, tools.CodeAgentUnavailable, tools.CodeDependencyMissing, tools.CodeInternal,
		tools.CodeHostUnreachable, "ssh_args", // hosts.yaml's field (references/hosts.md)
		state.EventSessionStart, state.EventSessionResume, state.EventStageStart, state.EventIterationStart, state.EventIterationDone,
		state.EventStageComplete, state.EventSessionComplete, state.EventSessionFailed, state.EventSessionKilled, state.EventStaleLockRemoved,
		engine.ReasonMaxIterations, engine.ReasonSignal, engine.ReasonStagesComplete, engine.ReasonAgentFailures, engine.ReasonAgentError,
		engine.ReasonEngineError, engine.ReasonDependency,
		// cleanup's action names
		"kill_orphan", "kill_zombie", "kill_stale", "mark_crashed", "remove_stale_lock", "remove_worktree",
		// result.json and status.json fields, stage.yaml fields
		"output_bytes", "output_truncated", "completion_signal", "status_decision", "timed_out", "check_before", "output_parse",
		"min_iterations", "max_iterations", "duration_ms", "cost_usd", "input_tokens", "output_tokens", "exit_code",
		"total_cost_usd", "stop_hook_active",
	} {
		known[c] = true
	}

	for _, d := range skillDocs(t) {
		for _, m := range backticked.FindAllStringSubmatch(d.text, -1) {
			tok := m[1]
			if snake.MatchString(tok) && !known[tok] {
				t.Errorf("%s names `%s`, which is no tool, argument, result field or state field", d.name, tok)
			}
		}
		for _, m := range callPattern.FindAllStringSubmatch(d.text, -1) {
			tool, raw := m[1], m[2]
			props, ok := inputs[tool]
			if !ok {
				continue // `field` then JSON on the same line, not a call
			}
			var args map[string]any
			if err := json.Unmarshal([]byte(raw), &args); err != nil {
				continue // an abbreviated example such as {"session": "x", ...}
			}
			for k := range args {
				if !props[k] {
					t.Errorf("%s calls `%s` with argument %q, which it does not take (it takes %v)", d.name, tool, k, keys(props))
				}
			}
		}
		for _, m := range jsonBlock.FindAllStringSubmatch(d.text, -1) {
			var v map[string]any
			if err := json.Unmarshal([]byte(m[1]), &v); err != nil {
				t.Errorf("%s: a json block does not parse: %v\n%s", d.name, err, m[1])
				continue
			}
			if _, ok := v["questions"]; ok {
				checkQuestions(t, d.name, v)
				continue
			}
			for k := range v {
				if !allArgs[k] {
					t.Errorf("%s: json block has key %q, which is no tool argument", d.name, k)
				}
			}
		}
	}
}

// AskUserQuestion allows 1–4 questions of 2–4 options each.
func checkQuestions(t *testing.T, file string, v map[string]any) {
	t.Helper()
	qs, _ := v["questions"].([]any)
	if len(qs) < 1 || len(qs) > 4 {
		t.Errorf("%s: AskUserQuestion with %d questions (1–4 allowed)", file, len(qs))
	}
	for _, q := range qs {
		qm, _ := q.(map[string]any)
		opts, _ := qm["options"].([]any)
		if len(opts) < 2 || len(opts) > 4 {
			t.Errorf("%s: AskUserQuestion %q has %d options (2–4 allowed)", file, qm["question"], len(opts))
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Every tool of the registry is taught: in SKILL.md and in a workflow.
func TestSkillCoversEveryTool(t *testing.T) {
	docs := skillDocs(t)
	for _, st := range tools.All(&tools.Deps{}) {
		name := "`" + st.Tool.Name + "`"
		inSkill, inWorkflow := false, false
		for _, d := range docs {
			if !strings.Contains(d.text, name) {
				continue
			}
			if d.name == "SKILL.md" {
				inSkill = true
			}
			if strings.HasPrefix(d.name, "workflows/") {
				inWorkflow = true
			}
		}
		if !inSkill || !inWorkflow {
			t.Errorf("tool %s: in SKILL.md %v, in a workflow %v; want both", st.Tool.Name, inSkill, inWorkflow)
		}
	}
	for _, uri := range []string{tools.ReminderURI, tools.CatalogURI} {
		data, _ := skill.FS.ReadFile("SKILL.md")
		if !strings.Contains(string(data), uri) {
			t.Errorf("SKILL.md does not mention %s", uri)
		}
	}
}

// Every file SKILL.md points to exists, and every file exists in an index.
func TestSkillIndexMatchesFiles(t *testing.T) {
	data, err := skill.FS.ReadFile("SKILL.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if !strings.HasPrefix(text, "---\nname: sessions\ndescription: ") {
		t.Errorf("SKILL.md front matter must start with name: sessions and a description")
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\| *((?:references|workflows)/[a-z-]+\.md|[a-z-]+\.md) *\|`).FindAllStringSubmatch(text, -1) {
		f := m[1]
		if !strings.Contains(f, "/") {
			f = "workflows/" + f
		}
		named[f] = true
	}
	for _, m := range regexp.MustCompile(`(?:workflows|references)/[a-z-]+\.md`).FindAllString(text, -1) {
		named[m] = true
	}
	for f := range named {
		if _, err := skill.FS.ReadFile(f); err != nil {
			t.Errorf("SKILL.md names %s, which does not exist", f)
		}
	}
	for _, f := range skill.Files() {
		if f != "SKILL.md" && !named[f] {
			t.Errorf("%s is not in SKILL.md's indexes", f)
		}
	}
	for _, w := range []string{"start", "monitor", "attach", "list", "kill", "cleanup", "reply"} {
		if !named["workflows/"+w+".md"] {
			t.Errorf("workflows/%s.md missing from the index", w)
		}
	}
	for _, r := range []string{"tmux", "state-files", "hosts"} {
		if !named["references/"+r+".md"] {
			t.Errorf("references/%s.md missing from the index", r)
		}
	}
}

// No route may send Claude to the shell to drive sessions.
func TestSkillHasNoShellRecipes(t *testing.T) {
	for _, d := range skillDocs(t) {
		for _, bad := range []string{"```bash", "```sh\n", "tmux new-session", "run.sh", "| jq", "rm .claude/locks"} {
			if strings.Contains(d.text, bad) {
				t.Errorf("%s contains %q: routes must go through the MCP tools", d.name, bad)
			}
		}
	}
}

func TestInstallWritesEveryFileAndKeepsEdits(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "skills", "sessions")
	res, err := skill.Install(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(res.Written), len(skill.Files()); got != want {
		t.Fatalf("wrote %d files, want %d", got, want)
	}
	for _, f := range skill.Files() {
		want, _ := skill.FS.ReadFile(f)
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s not written as embedded (%v)", f, err)
		}
	}
	if res, err := skill.Install(dir); err != nil || !res.Unchanged {
		t.Errorf("second install = %+v, %v; want unchanged", res, err)
	}
	edited := filepath.Join(dir, "SKILL.md")
	os.WriteFile(edited, []byte("my notes"), 0o644)
	res, err = skill.Install(dir)
	if err != nil || res.MovedAside == "" {
		t.Fatalf("install over an edited skill = %+v, %v; want the old one moved aside", res, err)
	}
	if got, _ := os.ReadFile(filepath.Join(res.MovedAside, "SKILL.md")); string(got) != "my notes" {
		t.Errorf("the user's edit was lost: %q", got)
	}
	// Claude Code loads every skills/*/SKILL.md: the copy must not sit
	// beside the new skill, or there would be two skills named sessions.
	skills := filepath.Dir(dir)
	if rel, err := filepath.Rel(skills, res.MovedAside); err != nil || !strings.HasPrefix(rel, "..") {
		t.Errorf("moved aside to %s, inside the skills directory %s", res.MovedAside, skills)
	}
	if loaded, _ := filepath.Glob(filepath.Join(skills, "*", "SKILL.md")); len(loaded) != 1 {
		t.Errorf("skills Claude Code would load: %q, want one", loaded)
	}
}

func TestMergeMCPConfigKeepsOtherServers(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".mcp.json")
	orig := `{"mcpServers": {"other": {"command": "x", "args": ["y"], "env": {"K": "V"}}}, "extra": [1, 2]}`
	os.WriteFile(path, []byte(orig), 0o644)
	backup, err := skill.MergeMCPConfig(path, "agent-sessions", skill.ServerEntry{Type: "stdio", Command: "/bin/agent-sessions", Args: []string{"serve"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(backup); string(got) != orig {
		t.Errorf("backup = %q, want the original", got)
	}
	var cfg struct {
		MCPServers map[string]skill.ServerEntry `json:"mcpServers"`
		Extra      []int                        `json:"extra"`
	}
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("merged file is not JSON: %v\n%s", err, data)
	}
	if cfg.MCPServers["other"].Command != "x" || cfg.MCPServers["other"].Env["K"] != "V" || len(cfg.Extra) != 2 {
		t.Errorf("other entries lost: %s", data)
	}
	if e := cfg.MCPServers["agent-sessions"]; e.Command != "/bin/agent-sessions" || !slices.Equal(e.Args, []string{"serve"}) || e.Type != "stdio" {
		t.Errorf("entry = %+v", e)
	}
	// Idempotent: a second merge changes nothing and makes no backup.
	if backup, err := skill.MergeMCPConfig(path, "agent-sessions", skill.ServerEntry{Type: "stdio", Command: "/bin/agent-sessions", Args: []string{"serve"}}); err != nil || backup != "" {
		t.Errorf("second merge: backup %q, err %v", backup, err)
	}
}

func TestMergeMCPConfigRefusesInvalidFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".mcp.json")
	os.WriteFile(path, []byte(`{"mcpServers": {`), 0o644)
	if _, err := skill.MergeMCPConfig(path, "agent-sessions", skill.ServerEntry{Command: "x"}); err == nil || !strings.Contains(err.Error(), "not a valid JSON") {
		t.Fatalf("err = %v, want a clear refusal", err)
	}
	if got, _ := os.ReadFile(path); string(got) != `{"mcpServers": {` {
		t.Errorf("an invalid file was changed: %q", got)
	}
}
