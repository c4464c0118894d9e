package workspace

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// SetupTimeout bounds worktree_setup when ctx has no earlier deadline.
const SetupTimeout = 10 * time.Minute

// setupOutputLimit bounds the setup output kept for the session log.
const setupOutputLimit = 64 << 10

type setupTimeoutKey struct{}

// WithSetupTimeout bounds worktree_setup alone (not the git calls around
// it) below SetupTimeout.
func WithSetupTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, setupTimeoutKey{}, d)
}

// runSetup runs worktree_setup's argv in dir, in its own process group
// (a timeout ends everything it started), and returns what it printed.
func runSetup(ctx context.Context, dir string, argv []string) (string, error) {
	if argv[0] == "" {
		return "", errors.New("worktree_setup: the first element (the program) is empty")
	}
	limit := SetupTimeout
	if d, ok := ctx.Value(setupTimeoutKey{}).(time.Duration); ok && d > 0 {
		limit = d
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if dl, ok := ctx.Deadline(); ok {
		limit = time.Until(dl).Round(10 * time.Millisecond)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	out := &cappedBuffer{limit: setupOutputLimit}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	text := out.buf.String()
	if out.over {
		text += fmt.Sprintf("\n[worktree_setup printed more than %d KiB; the rest is not kept]", setupOutputLimit>>10)
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return text, nil
	case ctx.Err() != nil:
		err = fmt.Errorf("worktree_setup %q did not finish within %s and was stopped", strings.Join(argv, " "), limit)
	case errors.Is(err, exec.ErrNotFound):
		err = fmt.Errorf("worktree_setup: %s not found: give an installed program (an argv, not a shell line)", argv[0])
	case errors.As(err, &exitErr):
		err = fmt.Errorf("worktree_setup %q failed (%v): %s", strings.Join(argv, " "), exitErr, lastPart(text, 2000))
	default:
		err = fmt.Errorf("worktree_setup %q: %w", strings.Join(argv, " "), err)
	}
	return text, fmt.Errorf("%w; the worktree was not kept", err)
}

// lastPart is the end of s, where a failing command says why.
func lastPart(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
