package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/workspace"
)

// engineDirs are the project's directories that belong to the engine, not
// to the agent's work: if git saw them, an agent's ordinary `git add -A`,
// `stash`, `reset --hard` or `clean -fd` would commit, stash, rewind or
// delete the session's own log, state and lock under the running engine.
// They are the owners' paths relative to the project (state: run dirs and
// locks; workspace: worktrees), as git patterns.
var engineDirs = []string{
	gitDirPattern(state.RunsDir("")),
	gitDirPattern(state.LocksDir("")),
	gitDirPattern(workspace.WorktreesDir("")),
}

// gitDirPattern is a project-relative directory as a git pattern that
// matches only a directory ("a/b/").
func gitDirPattern(rel string) string { return filepath.ToSlash(rel) + "/" }

// engineDirsText lists engineDirs in a sentence ("a, b and c").
func engineDirsText() string {
	n := len(engineDirs)
	return strings.Join(engineDirs[:n-1], ", ") + " and " + engineDirs[n-1]
}

// excludeHeader introduces the lines ExcludeEngineFiles adds, so a person
// reading info/exclude knows where they came from.
const excludeHeader = "# agent-sessions: the engine's own files (run dirs, locks, worktrees)"

// gitTimeout bounds the one git call: a hung git must not hold up a start.
const gitTimeout = 10 * time.Second

// ExcludeEngineFiles keeps the engine's directories out of git when dir is
// in a git work tree (the main one, a linked worktree, or a subdirectory of
// either): it appends anchored patterns to the repository's info/exclude,
// which every worktree of the repository shares and nobody commits. It
// adds only the lines missing, never rewrites a line already there, and
// serialises with other engines by an flock on the info directory. It
// returns the patterns added; outside git, or without git, it does nothing.
func ExcludeEngineFiles(ctx context.Context, dir string) ([]string, error) {
	if !workspace.InRepo(dir) {
		// Outside git no run of git is needed to know it: an engine in a
		// plain directory starts without one.
		return nil, nil
	}
	common, prefix, ok := gitLocation(ctx, dir)
	if !ok {
		return nil, nil
	}
	info := filepath.Join(common, "info")
	if err := os.MkdirAll(info, 0o755); err != nil {
		return nil, fmt.Errorf("keep the engine's files out of git: %w", err)
	}
	unlock, err := flockDir(info)
	if err != nil {
		return nil, fmt.Errorf("keep the engine's files out of git: %w", err)
	}
	defer unlock()
	path := filepath.Join(info, "exclude")
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("keep the engine's files out of git: %w", err)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(old), "\n") {
		have[strings.TrimSpace(line)] = true
	}
	var add []string
	for _, d := range engineDirs {
		if p := "/" + prefix + d; !have[p] {
			add = append(add, p)
		}
	}
	if len(add) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	if len(old) > 0 && old[len(old)-1] != '\n' {
		b.WriteByte('\n') // end the user's last line, never change it
	}
	if !have[excludeHeader] {
		b.WriteString(excludeHeader + "\n")
	}
	b.WriteString(strings.Join(add, "\n") + "\n")
	// One O_APPEND write: what was there stays byte for byte.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err == nil {
		_, err = f.Write(b.Bytes())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return nil, fmt.Errorf("keep the engine's files out of git: %w", err)
	}
	return add, nil
}

// gitLocation asks git (argv, no shell) for the repository's common dir
// (shared by its worktrees) and dir's path inside its work tree, prefix
// ending in "/" or empty. ok is
// false when dir is not in a git work tree or git is not installed.
func gitLocation(ctx context.Context, dir string) (common, prefix string, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, gitTimeout)
	defer cancel()
	// --git-common-dir is relative to dir unless made absolute; git
	// before 2.31 has no --path-format, so the path is joined here.
	cmd := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "--git-common-dir", "--show-prefix")
	cmd.Env = gitEnv(os.Environ())
	out, err := cmd.Output()
	if err != nil {
		return "", "", false
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) < 1 || lines[0] == "" {
		return "", "", false
	}
	if len(lines) > 1 {
		prefix = lines[1]
	}
	common = lines[0]
	if !filepath.IsAbs(common) {
		common = filepath.Join(dir, common)
	}
	return common, prefix, true
}

// gitEnv drops the variables that would point git at another repository
// than the one dir is in (a hook's or a wrapper's GIT_DIR).
func gitEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_INDEX_FILE", "GIT_PREFIX":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// flockDir takes an exclusive flock on a directory (blocking: the holder
// is another engine doing the same few-microsecond append).
func flockDir(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
