// Package skill holds the Claude Code skill that teaches Claude the
// workflows (SKILL.md, workflows/, references/), embedded into the binary,
// and installs it together with the MCP server's registration.
package skill

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// FS is the skill as shipped: SKILL.md, workflows/*.md, references/*.md.
//
//go:embed SKILL.md workflows references
var FS embed.FS

// Files lists the skill's files, slash-separated, sorted.
func Files() []string {
	var files []string
	fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".md" {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	return files
}

// InstallResult says what Install did.
type InstallResult struct {
	Dir     string   `json:"dir"`
	Written []string `json:"written"`
	// MovedAside is where a different existing skill was moved first.
	MovedAside string `json:"moved_aside,omitempty"`
	Unchanged  bool   `json:"unchanged"`
}

// Install writes the skill into dir (for example ~/.claude/skills/sessions).
// An existing skill there that differs in any way is moved aside first, so
// edits a user made are never lost: to <parent>.bak/<name>-<timestamp>
// (~/.claude/skills.bak/sessions-…), outside the directory Claude Code
// loads skills from.
func Install(dir string) (InstallResult, error) {
	res := InstallResult{Dir: dir}
	if info, err := os.Stat(dir); err == nil {
		if !info.IsDir() {
			return res, fmt.Errorf("%s exists and is not a directory; move it away or pass another --skill-dir", dir)
		}
		same, err := sameContent(dir)
		if err != nil {
			return res, err
		}
		if same {
			res.Unchanged = true
			return res, nil
		}
		// Outside the skills directory: Claude Code loads every
		// skills/*/SKILL.md, and a copy beside the new one would be a second
		// skill named sessions.
		clean := filepath.Clean(dir)
		backups := filepath.Dir(clean) + ".bak"
		if err := os.MkdirAll(backups, 0o755); err != nil {
			return res, fmt.Errorf("make %s for the existing skill: %w", backups, err)
		}
		aside := filepath.Join(backups, fmt.Sprintf("%s-%s", filepath.Base(clean), time.Now().UTC().Format("20060102T150405")))
		if err := os.Rename(dir, aside); err != nil {
			return res, fmt.Errorf("move the existing skill aside: %w", err)
		}
		res.MovedAside = aside
	}
	for _, f := range Files() {
		data, err := FS.ReadFile(f)
		if err != nil {
			return res, err
		}
		target := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return res, err
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			return res, err
		}
		res.Written = append(res.Written, target)
	}
	return res, nil
}

// sameContent reports whether dir holds exactly the embedded skill.
func sameContent(dir string) (bool, error) {
	want := map[string][]byte{}
	for _, f := range Files() {
		data, _ := FS.ReadFile(f)
		want[filepath.FromSlash(f)] = data
	}
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if w, ok := want[rel]; !ok || !bytes.Equal(w, data) {
			return errDiffers
		}
		n++
		return nil
	})
	if errors.Is(err, errDiffers) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return n == len(want), nil
}

var errDiffers = errors.New("differs")

// ServerEntry is an mcpServers entry of .mcp.json.
type ServerEntry struct {
	Type    string            `json:"type"`
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env,omitempty"`
}

// MergeMCPConfig adds (or replaces) server name in the .mcp.json at path,
// keeping every other server and top-level key. An existing file is copied
// to path.bak-<timestamp> before it is changed; an invalid one is left
// alone and reported. It returns the backup's path ("" when none).
func MergeMCPConfig(path, name string, entry ServerEntry) (string, error) {
	doc := map[string]json.RawMessage{}
	servers := map[string]json.RawMessage{}
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", err
	default:
		if len(bytes.TrimSpace(old)) > 0 {
			if err := json.Unmarshal(old, &doc); err != nil {
				return "", fmt.Errorf("%s is not a valid JSON object (%v); fix it or move it aside, then install again", path, err)
			}
		}
		if raw, ok := doc["mcpServers"]; ok {
			if err := json.Unmarshal(raw, &servers); err != nil {
				return "", fmt.Errorf("%s: mcpServers is not an object (%v); fix it, then install again", path, err)
			}
		}
	}
	e, _ := json.Marshal(entry)
	servers[name] = e
	doc["mcpServers"], _ = json.Marshal(servers)
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return "", err
	}
	out = append(out, '\n')
	if bytes.Equal(out, old) {
		return "", nil
	}
	backup := ""
	if old != nil {
		backup = fmt.Sprintf("%s.bak-%s", path, time.Now().UTC().Format("20060102T150405"))
		if err := os.WriteFile(backup, old, 0o644); err != nil {
			return "", fmt.Errorf("back up %s: %w", path, err)
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return backup, err
	}
	return backup, os.Rename(tmp, path)
}
