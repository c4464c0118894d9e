package skill

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryOfGoRun: a binary `go run` (or `go test`) built in a temporary
// directory is never registered; the lasting one on PATH is, and without
// one the answer says how to make it.
func TestBinaryOfGoRun(t *testing.T) {
	if got, err := Binary("/opt/bin/agent-sessions"); err != nil || got != "/opt/bin/agent-sessions" {
		t.Errorf("Binary(given) = %q, %v; want the given path", got, err)
	}
	exe, err := os.Executable()
	if err != nil || !strings.Contains(exe, string(filepath.Separator)+"go-build") {
		t.Skipf("this test binary (%s) is not in a go-build directory", exe)
	}
	empty := t.TempDir()
	t.Setenv("PATH", empty)
	if _, err := Binary(""); !errors.Is(err, ErrTemporaryBinary) || !strings.Contains(err.Error(), "install a lasting one first") {
		t.Errorf("Binary of go run without one on PATH: %v, want ErrTemporaryBinary with the fix", err)
	}
	lasting := filepath.Join(empty, "agent-sessions")
	if err := os.WriteFile(lasting, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := Binary(""); err != nil || got != lasting {
		t.Errorf("Binary of go run with one on PATH = %q, %v; want %q", got, err, lasting)
	}
}

func TestDescribeAndRegister(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	InstallResult{Dir: "/s", Written: []string{"a", "b"}, MovedAside: "/s.bak/x"}.Describe(&out)
	InstallResult{Dir: "/s", Unchanged: true}.Describe(&out)
	want := "skill: wrote 2 files to /s\nskill: the previous version differed and was moved aside to /s.bak/x\nskill: /s is already up to date\n"
	if got := out.String(); got != want {
		t.Errorf("Describe wrote\n%s\nwant\n%s", got, want)
	}
	dir := t.TempDir()
	out.Reset()
	if err := Register(&out, dir, "srv", "/bin/x"); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		MCPServers map[string]ServerEntry `json:"mcpServers"`
	}
	data, _ := os.ReadFile(filepath.Join(dir, ".mcp.json"))
	if err := json.Unmarshal(data, &doc); err != nil || doc.MCPServers["srv"].Command != "/bin/x" {
		t.Errorf(".mcp.json %s (%v): want srv registered as /bin/x", data, err)
	}
	if !strings.Contains(out.String(), `mcp: registered "srv" in `+filepath.Join(dir, ".mcp.json")) {
		t.Errorf("Register said %q", out.String())
	}
}
