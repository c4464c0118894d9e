package workspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"
)

// ErrGitMissing means no `git` executable was found on PATH.
var ErrGitMissing = errors.New("git is not installed (not found on PATH)")

// ErrNotRepo means a directory is not inside a git repository.
var ErrNotRepo = errors.New("not a git repository")

// outputLimit bounds what one git call's stdout is kept of; past it the
// rest is read and discarded, and the result says it was cut.
const outputLimit = 1 << 20

// stderrLimit bounds the stderr kept for an error message.
const stderrLimit = 4 << 10

// gitRuns counts the git processes this package started: the benchmarks
// report it per change record, a figure no load on the machine changes.
var gitRuns atomic.Int64

// gitResult is one git call's outcome.
type gitResult struct {
	out       []byte
	truncated bool // stdout exceeded the limit
}

// gitEnv is the environment git runs with: the caller's, minus the
// variables that would point git at another repository or index than the
// directory's own (an engine started from a git hook inherits them), and
// with optional locks off so that a `git status` of ours never takes the
// index lock an agent's `git commit` needs at the same moment.
func gitEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
			"GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_PREFIX",
			"GIT_OPTIONAL_LOCKS", "GIT_EXTERNAL_DIFF", "GIT_PAGER", "LC_ALL":
			continue
		}
		env = append(env, kv)
	}
	// LC_ALL=C: messages we match and show are git's own English.
	return append(env, "GIT_OPTIONAL_LOCKS=0", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
}

// cappedBuffer keeps the first limit bytes written and counts the rest.
type cappedBuffer struct {
	buf   bytes.Buffer
	limit int
	over  bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.limit - c.buf.Len(); room < len(p) {
		c.over = true
		if room > 0 {
			c.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return c.buf.Write(p)
}

// git is the package's one exec chokepoint for git: argv only, in dir,
// under timeout, stdout kept up to limit bytes. A non-zero exit is an
// *exitError carrying git's stderr (exitCode tells callers which exit it
// was); ErrGitMissing, a timeout or a signal are other errors.
func git(ctx context.Context, dir string, timeout time.Duration, limit int, args ...string) (gitResult, error) {
	return gitStdin(ctx, dir, timeout, limit, nil, args...)
}

// gitStdin is git with stdin.
func gitStdin(ctx context.Context, dir string, timeout time.Duration, limit int, stdin []byte, args ...string) (gitResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Env = gitEnv()
	stdout := &cappedBuffer{limit: limit}
	stderr := &cappedBuffer{limit: stderrLimit}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A hook or helper git started could hold the pipes open after git is
	// killed; stop waiting for them shortly after.
	cmd.WaitDelay = time.Second
	gitRuns.Add(1)
	err := cmd.Run()
	res := gitResult{out: stdout.buf.Bytes(), truncated: stdout.over}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return res, nil
	case errors.Is(err, exec.ErrNotFound):
		return res, ErrGitMissing
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return res, fmt.Errorf("git %s: no answer within %s", args[0], timeout)
	case ctx.Err() != nil:
		return res, fmt.Errorf("git %s: %w", args[0], context.Cause(ctx))
	case errors.As(err, &exitErr) && exitErr.ExitCode() > 0:
		return res, &exitError{args: args, code: exitErr.ExitCode(), stderr: strings.TrimSpace(stderr.buf.String())}
	}
	return res, fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
}

// exitError is git exiting non-zero, with what it said.
type exitError struct {
	args   []string
	code   int
	stderr string
}

func (e *exitError) Error() string {
	msg := e.stderr
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", e.code)
	}
	return fmt.Sprintf("git %s: %s", strings.Join(e.args, " "), msg)
}

// exitCode returns git's exit code when err is git exiting non-zero, else -1.
func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return -1
}
