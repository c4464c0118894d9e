package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/agent-sessions/agent-sessions/workspace"
)

// Isolation values (SPEC §16).
const (
	IsolationNone     = "none"
	IsolationWorktree = "worktree"
)

// checkIsolation validates the isolation arguments of a plan.
func checkIsolation(isolation, baseRef string, setup []string) error {
	switch isolation {
	case "", IsolationNone:
		if baseRef != "" || len(setup) > 0 {
			return fmt.Errorf("%w: base_ref and worktree_setup need isolation worktree (give isolation: worktree, or leave them out)", ErrInvalid)
		}
	case IsolationWorktree:
		if len(setup) > 0 && setup[0] == "" {
			return fmt.Errorf("%w: worktree_setup: the first element (the program) is empty; give an argv such as [\"npm\", \"ci\"]", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: isolation %q: use none (the default) or worktree", ErrInvalid, isolation)
	}
	return nil
}

// applyIsolation copies the isolation options onto a compiled plan; an
// option given overrides the definition's own.
func applyIsolation(p *Plan, o Options) error {
	if o.Isolation != "" {
		p.Isolation = o.Isolation
	}
	if o.BaseRef != "" {
		p.BaseRef = o.BaseRef
	}
	if len(o.WorktreeSetup) > 0 {
		p.WorktreeSetup = o.WorktreeSetup
	}
	if p.Isolation == IsolationNone {
		p.Isolation = ""
	}
	if p.Isolation == "" && o.BaseRef == "" && len(o.WorktreeSetup) == 0 {
		// isolation none given over a definition's worktree: its
		// worktree settings go with it.
		p.BaseRef, p.WorktreeSetup = "", nil
	}
	return checkIsolation(p.Isolation, p.BaseRef, p.WorktreeSetup)
}

// SetAsideSuffix is the suffix a forced start gives what it moves aside.
func SetAsideSuffix(t time.Time) string { return t.UTC().Format("20060102T150405") }

// MakeWorktree gives a new session its worktree (start_session calls it
// before the engine starts, so that a failure is its error, with nothing
// half-made). force first moves an existing worktree and branch aside.
func MakeWorktree(ctx context.Context, p *Plan, force bool, now time.Time) (*workspace.Worktree, workspace.Aside, error) {
	var aside workspace.Aside
	if err := workspace.Check(ctx, p.ProjectDir, p.BaseRef); err != nil {
		return nil, aside, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if force {
		var err error
		if aside, err = workspace.SetAside(ctx, p.ProjectDir, p.Session, SetAsideSuffix(now)); err != nil {
			return nil, aside, err
		}
	}
	wt, err := workspace.CreateWorktree(ctx, p.ProjectDir, p.Session, p.BaseRef, p.WorktreeSetup)
	if err != nil {
		return nil, aside, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return wt, aside, nil
}

// openWorktree is the engine's side: the worktree start_session made (or,
// run by hand, made now), or on resume the one the session had.
func openWorktree(ctx context.Context, o RunOptions, p *Plan, logf func(string, ...any)) (*workspace.Worktree, error) {
	var wt *workspace.Worktree
	var err error
	switch {
	case o.Mode == ModeResume:
		wt, err = workspace.Reuse(ctx, p.ProjectDir, p.Session)
	case o.WorktreeReady:
		wt, err = workspace.CreateWorktree(ctx, p.ProjectDir, p.Session, p.BaseRef, nil)
	default:
		var aside workspace.Aside
		wt, aside, err = MakeWorktree(ctx, p, o.Mode == ModeForce, time.Now())
		if aside.Dir != "" || aside.Branch != "" {
			logf("■ previous worktree kept: %s (branch %s)\n", aside.Dir, aside.Branch)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("worktree of session %s: %w", p.Session, err)
	}
	if wt.SetupOutput != "" {
		logf("■ worktree_setup output:\n%s\n", strings.TrimRight(wt.SetupOutput, "\n"))
	}
	p.Worktree, p.Branch = wt.Dir, wt.Branch
	p.Inputs = inWorktree(p.Inputs, p.ProjectDir, wt.AgentDir)
	return wt, nil
}

// inWorktree maps input files of the project to the same files in the
// worktree, where the agents see them; a file the worktree lacks (say,
// untracked in the project) is read where it is.
func inWorktree(inputs []string, project, agentDir string) []string {
	out := make([]string, len(inputs))
	for i, in := range inputs {
		out[i] = in
		rel, err := filepath.Rel(project, in)
		if err != nil || strings.HasPrefix(rel, "..") || strings.HasPrefix(rel, ".claude") {
			continue
		}
		if _, err := os.Stat(filepath.Join(agentDir, rel)); err == nil {
			out[i] = filepath.Join(agentDir, rel)
		}
	}
	return out
}

// IsolationDef is the isolation a stage or pipeline definition asks for;
// start_session's arguments override it.
type IsolationDef struct {
	Isolation     string   `json:"isolation,omitempty"`
	BaseRef       string   `json:"base_ref,omitempty"`
	WorktreeSetup []string `json:"worktree_setup,omitempty"`
}

func isolationField(i *IsolationDef) field {
	return field{"isolation", str(&i.Isolation, "isolation")}
}
func baseRefField(i *IsolationDef) field { return field{"base_ref", str(&i.BaseRef, "base_ref")} }
func setupField(i *IsolationDef) field {
	return field{"worktree_setup", argv(&i.WorktreeSetup, "worktree_setup")}
}

// checkIsolation reports a definition's bad isolation fields at their line.
func (d *decoder) checkIsolation(seen map[string]*yaml.Node, i IsolationDef) {
	n, ok := seen["isolation"]
	if !ok {
		n, ok = seen["base_ref"]
	}
	if !ok {
		n, ok = seen["worktree_setup"]
	}
	if !ok {
		return
	}
	if err := checkIsolation(i.Isolation, i.BaseRef, i.WorktreeSetup); err != nil {
		d.addf(n, "%s", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	}
}
