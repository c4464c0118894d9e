package workspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// IncludeFile names, at the repository's top level, the gitignored files
// a new worktree gets a copy of (gitignore patterns: `.env`, `config/*.local`).
const IncludeFile = ".worktreeinclude"

// Bounds of the include copy: a pattern that matches a dependency tree by
// mistake is refused with a clear error rather than copied for minutes.
const (
	includeMaxFiles = 1000
	includeMaxBytes = 256 << 20
)

// copyIncluded copies into dir the files of the main checkout that
// .worktreeinclude matches and that git ignores (an untracked file that is
// not ignored is work in progress, not configuration: it is not copied).
// Matching is git's own: `ls-files --others --ignored --exclude-from`, then
// `check-ignore` against the repository's ignore rules. Only regular files
// are copied; the engine's own directories never are.
func copyIncluded(ctx context.Context, r repo, dir string) ([]string, error) {
	include := filepath.Join(r.root, IncludeFile)
	if fi, err := os.Lstat(include); err != nil || !fi.Mode().IsRegular() {
		return nil, nil
	}
	res, err := r.git(ctx, "ls-files", "-z", "--others", "--ignored", "--exclude-from="+include)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", IncludeFile, err)
	}
	var candidates []string
	for _, p := range strings.Split(string(res.out), "\x00") {
		if p != "" && !strings.HasSuffix(p, "/") && !enginePath(p) {
			candidates = append(candidates, p)
		}
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	if len(candidates) > includeMaxFiles || res.truncated {
		return nil, fmt.Errorf("%s matches more than %d files: narrow its patterns (it is meant for files like .env)", IncludeFile, includeMaxFiles)
	}
	ignored, err := r.checkIgnore(ctx, candidates)
	if err != nil {
		return nil, err
	}
	var copied []string
	var total int64
	for _, p := range ignored {
		n, err := copyRegular(filepath.Join(r.root, p), filepath.Join(dir, p), includeMaxBytes-total)
		if errors.Is(err, errNotRegular) || errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: copy %s: %w", IncludeFile, p, err)
		}
		total += n
		copied = append(copied, p)
	}
	return copied, nil
}

// enginePath reports whether a path (relative to the repository's top)
// lies in the engine's own directories, wherever the project sits.
func enginePath(p string) bool {
	for _, d := range []string{".claude/worktrees/", ".claude/pipeline-runs/", ".claude/locks/"} {
		if strings.HasPrefix(p, d) || strings.Contains(p, "/"+d) {
			return true
		}
	}
	return false
}

// checkIgnore returns those of paths the repository's ignore rules match.
func (r repo) checkIgnore(ctx context.Context, paths []string) ([]string, error) {
	stdin := []byte(strings.Join(paths, "\x00") + "\x00")
	res, err := gitStdin(ctx, r.root, gitTimeout, outputLimit, stdin, "check-ignore", "-z", "--stdin")
	if exitCode(err) == 1 {
		return nil, nil // none is ignored
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", IncludeFile, err)
	}
	var out []string
	for _, p := range bytes.Split(res.out, []byte{0}) {
		if len(p) > 0 {
			out = append(out, string(p))
		}
	}
	return out, nil
}

var errNotRegular = errors.New("not a regular file")

// copyRegular copies src to a new file dst, when src is a regular file of
// at most room bytes. O_NOFOLLOW and O_NONBLOCK: a symlink is not followed
// and a FIFO does not block the open; both are then refused by the stat.
func copyRegular(src, dst string, room int64) (int64, error) {
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return 0, errNotRegular
	}
	if err != nil {
		return 0, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, errNotRegular
	}
	if fi.Size() > room {
		return 0, fmt.Errorf("the files %s matches exceed %d MiB in all: narrow its patterns", IncludeFile, includeMaxBytes>>20)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return 0, err // fs.ErrExist: the base commit has that file; it is kept
	}
	n, err := io.Copy(out, io.LimitReader(in, room))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}
