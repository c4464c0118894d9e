package tools_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agent-sessions/agent-sessions/tools"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// definition is a tool's full JSON definition as clients receive it,
// normalized (keys sorted, indented) so the golden files diff well.
func definition(t *testing.T, tool mcp.Tool) []byte {
	t.Helper()
	raw, err := json.Marshal(tool)
	if err != nil {
		t.Fatalf("%s: %v", tool.Name, err)
	}
	var all map[string]any
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	def := map[string]any{}
	for _, k := range []string{"name", "title", "description", "inputSchema", "outputSchema", "annotations"} {
		def[k] = all[k]
	}
	out, err := json.MarshalIndent(def, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// TestSchemas snapshots every tool's definition: a schema change shows up
// in review as a change to testdata/schemas/. `go test ./tools -run
// TestSchemas -update` rewrites them.
func TestSchemas(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "schemas")
	var names []string
	for _, st := range tools.All(&tools.Deps{}) {
		names = append(names, st.Tool.Name+".json")
		got := definition(t, st.Tool)
		path := filepath.Join(dir, st.Tool.Name+".json")
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v (run go test ./tools -run TestSchemas -update)", st.Tool.Name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the definition differs from %s (run with -update if the change is intended)\ngot:\n%s", st.Tool.Name, path, got)
		}
	}
	// No golden file outlives its tool.
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, f := range files {
		if !slices.Contains(names, filepath.Base(f)) && !*update {
			t.Errorf("%s: no tool of that name (remove the file)", f)
		}
	}
}

// TestToolDefinitions checks what every tool must say about itself.
func TestToolDefinitions(t *testing.T) {
	t.Parallel()
	readOnly := map[string]bool{"list": true, "monitor": true, "attach_hint": true}
	destructive := map[string]bool{"kill": true, "cleanup": true}
	var names []string
	for _, st := range tools.All(&tools.Deps{}) {
		tool := st.Tool
		names = append(names, tool.Name)
		t.Run(tool.Name, func(t *testing.T) {
			if st.Handler == nil {
				t.Error("no handler")
			}
			if tool.Title == "" || tool.Annotations.Title == "" {
				t.Errorf("title %q, annotations title %q: want both", tool.Title, tool.Annotations.Title)
			}
			if len(tool.Description) < 40 {
				t.Errorf("description %q is too short to route by", tool.Description)
			}
			a := tool.Annotations
			if a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil || a.OpenWorldHint == nil {
				t.Fatalf("annotations %+v: all four hints must be set explicitly", a)
			}
			if got := *a.ReadOnlyHint; got != readOnly[tool.Name] {
				t.Errorf("readOnlyHint = %v, want %v", got, readOnly[tool.Name])
			}
			if got := *a.DestructiveHint; got != destructive[tool.Name] {
				t.Errorf("destructiveHint = %v, want %v", got, destructive[tool.Name])
			}
			var def struct {
				InputSchema struct {
					Type       string                    `json:"type"`
					Properties map[string]map[string]any `json:"properties"`
					Required   []string                  `json:"required"`
				} `json:"inputSchema"`
				OutputSchema struct {
					Type       string         `json:"type"`
					Properties map[string]any `json:"properties"`
				} `json:"outputSchema"`
			}
			if err := json.Unmarshal(definition(t, tool), &def); err != nil {
				t.Fatal(err)
			}
			if def.InputSchema.Type != "object" {
				t.Errorf("input schema type %q, want object", def.InputSchema.Type)
			}
			for name, p := range def.InputSchema.Properties {
				if d, _ := p["description"].(string); d == "" {
					t.Errorf("input property %s has no description", name)
				}
			}
			if def.OutputSchema.Type != "object" || len(def.OutputSchema.Properties) == 0 {
				t.Errorf("output schema: type %q with %d properties, want an object", def.OutputSchema.Type, len(def.OutputSchema.Properties))
			}
		})
	}
	want := []string{"start_session", "monitor", "attach_hint", "list", "kill", "cleanup", "reply"}
	if !slices.Equal(names, want) {
		t.Errorf("tools = %q, want %q", names, want)
	}
}

// The server tells Claude the routing and the orphan rule, under both
// protocol revisions, and lists the same tools as the registry.
func TestServerInstructions(t *testing.T) {
	for _, tool := range tools.All(&tools.Deps{}) {
		if !strings.Contains(tools.Instructions, tool.Tool.Name) {
			t.Errorf("instructions do not mention %s", tool.Tool.Name)
		}
	}
	// Claude Code never lists resource templates: the instructions are
	// where it learns the per-session resources.
	for _, want := range []string{"orphan", "sessions://reminder", "still running", "sessions://catalog",
		"sessions://session/{name}/state", "sessions://session/{name}/progress", "sessions://session/{name}/log", "monitor already covers"} {
		if !strings.Contains(tools.Instructions, want) {
			t.Errorf("instructions do not mention %q", want)
		}
	}
	forVersions(t, func(t *testing.T, v string) {
		e := newEnv(t)
		c := e.connect(v)
		if c.init.Instructions != tools.Instructions {
			t.Errorf("initialize result instructions = %q", c.init.Instructions)
		}
		res, err := c.c.ListTools(context.Background(), mcp.ListToolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var listed []string
		for _, tool := range res.Tools {
			listed = append(listed, tool.Name)
			if tool.Annotations.ReadOnlyHint == nil || tool.Title == "" {
				t.Errorf("%s arrives without annotations or title", tool.Name)
			}
		}
		slices.Sort(listed)
		want := []string{"attach_hint", "cleanup", "kill", "list", "monitor", "reply", "start_session"}
		if !slices.Equal(listed, want) {
			t.Errorf("tools/list = %q, want %q", listed, want)
		}
	})
}
