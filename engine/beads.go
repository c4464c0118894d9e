package engine

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// BeadsReady counts the ready beads of a label by running
// `bd ready --label=<label>` in dir: every non-empty output line is a bead.
func BeadsReady(ctx context.Context, dir, label string) (int, error) {
	lines, err := BeadsReadyList(ctx, dir, label, nil)
	return len(lines), err
}

// BeadsReadyList returns the lines `bd ready --label=<label>` prints, run
// in dir with env (nil: this process's environment).
func BeadsReadyList(ctx context.Context, dir, label string, env []string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	bd := "bd"
	if env != nil {
		if p, err := lookPath("bd", envPath(env)); err == nil {
			bd = p
		}
	}
	cmd := exec.CommandContext(ctx, bd, "ready", "--label="+label)
	cmd.Dir = dir
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("bd ready --label=%s: %s", label, truncate(msg, 400))
	}
	var lines []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// CheckBeads reports whether bd is available when a plan needs it.
func CheckBeads(p *Plan, path string) error {
	for _, sp := range p.Stages {
		if sp.Completion == CompletionBeadsEmpty {
			if _, err := lookPath("bd", path); err != nil {
				return fmt.Errorf("%w: stage %s (completion beads-empty) needs the beads CLI `bd`, which is not on PATH; install it from https://github.com/steveyegge/beads (go install github.com/steveyegge/beads/cmd/bd@latest) or use another completion", ErrDependencyMissing, sp.Name)
			}
		}
	}
	return nil
}
