package skill

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// What `agent-sessions install` does on this machine, in its steps: which
// binary to register, where the skill goes, the .mcp.json registration and
// the words that tell a person what was done and what is left to them.

// ErrTemporaryBinary is Binary's answer for a binary `go run` built into a
// temporary directory, with no lasting one on PATH: registering it would
// leave Claude Code a path that vanishes.
var ErrTemporaryBinary = errors.New("this binary was built by `go run` into a temporary directory that will vanish")

// DefaultDir is where the skill goes unless told: ~/.claude/skills/sessions.
func DefaultDir() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("%w; pass --skill-dir", err)
	}
	return filepath.Join(home, ".claude", "skills", "sessions"), nil
}

// Binary is the agent-sessions binary to register: command when given,
// else this binary — or, when `go run` built this one, the one on PATH.
func Binary(command string) (string, error) {
	if command != "" {
		return command, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	if !strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return exe, nil
	}
	found, err := exec.LookPath("agent-sessions")
	if err != nil {
		return "", fmt.Errorf("%w;\n  install a lasting one first (CGO_ENABLED=0 go build -o ~/.local/bin/agent-sessions . or CGO_ENABLED=0 go install .), then run it: agent-sessions install", ErrTemporaryBinary)
	}
	return found, nil
}

// Describe tells out what Install did.
func (r InstallResult) Describe(out io.Writer) {
	if r.Unchanged {
		fmt.Fprintf(out, "skill: %s is already up to date\n", r.Dir)
		return
	}
	fmt.Fprintf(out, "skill: wrote %d files to %s\n", len(r.Written), r.Dir)
	if r.MovedAside != "" {
		fmt.Fprintf(out, "skill: the previous version differed and was moved aside to %s\n", r.MovedAside)
	}
}

// Register registers exe as the stdio MCP server name in projectDir's
// .mcp.json (merged: other servers are kept) and tells out.
func Register(out io.Writer, projectDir, name, exe string) error {
	path := filepath.Join(projectDir, ".mcp.json")
	backup, err := MergeMCPConfig(path, name, ServerEntry{Type: "stdio", Command: exe, Args: []string{"serve"}})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "mcp: registered %q in %s\n", name, path)
	if backup != "" {
		fmt.Fprintf(out, "mcp: the previous file was kept as %s\n", backup)
	}
	return nil
}

// WriteHints tells out what install leaves to the person: registering the
// server name (binary exe) for every project, and the optional Stop hook.
func WriteHints(out io.Writer, name, exe string) {
	fmt.Fprintf(out, "\nTo register the server for yourself in every project, run:\n  claude mcp add --scope user %s -- %s serve\n", name, exe)
	fmt.Fprintf(out, "\nOptional Stop hook (reminds you of sessions still running), in ~/.claude/settings.json:\n")
	hook := map[string]any{"hooks": map[string]any{"Stop": []any{map[string]any{"hooks": []any{map[string]any{"type": "command", "command": exe + " reminder --hook"}}}}}}
	text, _ := json.MarshalIndent(hook, "  ", "  ")
	fmt.Fprintf(out, "  %s\n", text)
}
