package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// InitProgress creates a progress file in the original's shape — a title, a
// Verify: line, a Codebase Patterns section and a --- separator before the
// iteration log — unless it already exists (a resumed session keeps its
// accumulated context).
func InitProgress(path, title string) error {
	body := fmt.Sprintf(`# Progress: %s

Verify: (none yet — add the command that checks this project's work, e.g. "Verify: go test ./...")

## Codebase Patterns
(Reusable patterns discovered while working. Agents: add to this list; keep it short.)

---

## Iteration Log
(Agents append one entry per iteration below: what was done, what was learned, what is next.)

`, title)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create progress file: %w", err)
	}
	if _, err := f.WriteString(body); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
