package tools

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/workspace"
)

// SetupTimeoutEnv bounds worktree_setup below its 10-minute default.
const SetupTimeoutEnv = "AGENT_SESSIONS_WORKTREE_SETUP_TIMEOUT"

// checkWorktree refuses, before anything is created, a worktree session
// whose project is not a repository or whose base_ref names nothing.
func checkWorktree(ctx context.Context, plan *engine.Plan, a StartArgs) error {
	if plan.Isolation != engine.IsolationWorktree || a.Mode == engine.ModeResume {
		return nil
	}
	if err := workspace.Check(ctx, plan.ProjectDir, plan.BaseRef); err != nil {
		args := startArgsMap(a)
		delete(args, "isolation")
		delete(args, "base_ref")
		delete(args, "worktree_setup")
		return invalidf("isolation worktree: %v", err).
			with(Option{Tool: "start_session", Arguments: args, Description: "run it in the project directory itself (no isolation)"})
	}
	return nil
}

// makeWorktree makes a new session's worktree before its engine starts,
// so that a failure (setup included) is this call's error with nothing
// half-made. It returns what the engine should log.
func (d *Deps) makeWorktree(ctx context.Context, plan *engine.Plan, a StartArgs, res *StartResult) (string, error) {
	if plan.Isolation != engine.IsolationWorktree || a.Mode == engine.ModeResume {
		if a.Mode == engine.ModeResume && plan.Worktree != "" {
			res.Worktree, res.Branch = plan.Worktree, plan.Branch
		}
		return "", nil
	}
	if v := envValue(d.environ(), SetupTimeoutEnv); v != "" {
		limit, err := time.ParseDuration(v)
		if err != nil || limit <= 0 {
			return "", invalidf("%s=%q: want a duration such as 90s or 5m", SetupTimeoutEnv, v)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	wt, aside, err := engine.MakeWorktree(ctx, plan, a.Mode == engine.ModeForce, d.now())
	if aside.Branch != "" {
		res.BranchAside = aside.Branch
		res.Warnings = append(res.Warnings, fmt.Sprintf("the previous worktree was moved to %s and its branch renamed %s (kept with its commits)", aside.Dir, aside.Branch))
	}
	if err != nil {
		return "", toolError(err)
	}
	res.Worktree, res.Branch = wt.Dir, wt.Branch
	var note strings.Builder
	if len(wt.Copied) > 0 {
		fmt.Fprintf(&note, "■ copied in (.worktreeinclude): %s\n", strings.Join(wt.Copied, " "))
	}
	if wt.SetupOutput != "" {
		fmt.Fprintf(&note, "■ worktree_setup output:\n%s\n", strings.TrimRight(wt.SetupOutput, "\n"))
	}
	return note.String(), nil
}

// sharedDirWarning names the other sessions running in project when this
// one would run there too, without isolation.
func sharedDirWarning(project, session string, plan *engine.Plan) []string {
	if plan.Isolation == engine.IsolationWorktree {
		return nil
	}
	locks, _ := filepath.Glob(filepath.Join(project, ".claude", "locks", "*.lock"))
	var running []string
	for _, l := range locks {
		name := strings.TrimSuffix(filepath.Base(l), ".lock")
		if name == session {
			continue
		}
		if ls, _ := state.ProbeLock(l); ls.Held {
			running = append(running, name)
		}
	}
	if len(running) == 0 {
		return nil
	}
	sort.Strings(running)
	return []string{fmt.Sprintf("session %s is running in %s too: both sessions' agents edit the same checkout; give isolation: worktree to run this one in its own git worktree",
		strings.Join(running, ", "), project)}
}
