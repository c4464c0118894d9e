package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// RepoRoot is the repository's root directory, found from this file's own
// path, so a test in any package (whatever its working directory) reaches
// testdata/ and can build the binary.
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("testkit: runtime.Caller failed")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// AgentsDir is the absolute path of testdata/agents (the fake agents).
func AgentsDir() string { return filepath.Join(RepoRoot(), "testdata", "agents") }

// AgentPath is the absolute path of one fake agent.
func AgentPath(name string) string { return filepath.Join(AgentsDir(), name) }

// BuildBinary builds the agent-sessions binary into a new temporary
// directory and returns its path and that directory (the caller removes it
// when its tests are done). The tests that drive the binary — as a user, as
// tmux runs it, as a remote host runs it — call it once, in TestMain.
func BuildBinary() (path, dir string, err error) {
	dir, err = os.MkdirTemp("", "agent-sessions-bin-")
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, "agent-sessions")
	// Without the symbol table and DWARF (-s -w): the binary runs the same,
	// links faster, and is a third smaller to copy to a test's ssh host.
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", path, ".")
	cmd.Dir = RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return path, dir, nil
}

// CommandStage is the YAML of a stage run by one fake agent (a name in
// testdata/agents) with no delay, each of extra a further line.
func CommandStage(completion, agent string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "completion: %s\nprovider: command\ncommand: [%q]\ndelay: 0\n", completion, AgentPath(agent))
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	return b.String()
}

// WriteStage writes .claude/stages/<name>/{stage.yaml,prompt.md} in project.
func WriteStage(t testing.TB, project, name, yaml, prompt string) {
	t.Helper()
	dir := filepath.Join(project, ".claude", "stages", name)
	WriteFile(t, filepath.Join(dir, "stage.yaml"), yaml)
	WriteFile(t, filepath.Join(dir, "prompt.md"), prompt)
}
