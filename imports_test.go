package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// allowedImports is the layout's dependency direction (README "Layout"):
// for each package of ours, the packages of ours it may import. mcp-go is
// for the MCP surface (tools, main) and the remote transport (remote, an MCP
// client of the far side's serve) only; internal/testkit is for tests only.
// A new package or edge is a design decision: add it here and to the README.
// main only wires: what it may import is the commands' packages and the
// concrete pieces it builds for them.
var allowedImports = map[string][]string{
	".":                {"cli", "engine", "enginecmd", "remote", "state", "tmux", "tools"},
	"cli":              {"engine", "remote", "skill", "tools"},
	"enginecmd":        {"engine", "state"},
	"tools":            {"engine", "remote", "sessions", "skill", "state", "tmux", "workspace"},
	"sessions":         {"engine", "state", "tmux", "workspace"},
	"engine":           {"engine/builtin", "state", "workspace"},
	"engine/builtin":   {},
	"workspace":        {"state"},
	"remote":           {"state"},
	"skill":            {},
	"state":            {},
	"tmux":             {},
	"internal/testkit": {},
}

var mcpAllowed = []string{".", "tools", "remote"}

// TestImportDirection checks the production imports of every package of ours
// (tests may import anything, e.g. internal/testkit) against allowedImports.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	const module = "github.com/agent-sessions/agent-sessions"
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{join .Imports \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, imports, _ := strings.Cut(line, "\t")
		pkg := strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
		if pkg == "" {
			pkg = "."
		}
		allowed, known := allowedImports[pkg]
		if !known {
			t.Errorf("package %s is not in the layout (imports_test.go allowedImports, README Layout)", pkg)
			continue
		}
		for _, imp := range strings.Fields(imports) {
			switch {
			case strings.HasPrefix(imp, module+"/"):
				dep := strings.TrimPrefix(imp, module+"/")
				if !slices.Contains(allowed, dep) {
					t.Errorf("%s imports %s: not in the layout's direction", pkg, dep)
				}
			case strings.HasPrefix(imp, "github.com/mark3labs/mcp-go") && !slices.Contains(mcpAllowed, pkg):
				t.Errorf("%s imports %s: mcp-go belongs to tools, main and remote", pkg, imp)
			}
		}
	}
}

// TestEngineCommandImportsNoTools checks that the engine process (`run`,
// package enginecmd) depends on nothing of the MCP layer, not even
// indirectly: the launch contract is the engine's, so tools can change
// without touching what tmux executes.
func TestEngineCommandImportsNoTools(t *testing.T) {
	t.Parallel()
	const module = "github.com/agent-sessions/agent-sessions"
	out, err := exec.Command("go", "list", "-deps", "./enginecmd").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == module+"/tools" || dep == module+"/cli" || strings.HasPrefix(dep, "github.com/mark3labs/mcp-go") {
			t.Errorf("enginecmd depends on %s: the engine process must not need the MCP layer", dep)
		}
	}
}
