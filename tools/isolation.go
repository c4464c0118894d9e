package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
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
		ctx = workspace.WithSetupTimeout(ctx, limit)
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
	res.made = wt
	var note strings.Builder
	if len(wt.Copied) > 0 {
		fmt.Fprintf(&note, "■ copied in (.worktreeinclude): %s\n", strings.Join(wt.Copied, " "))
	}
	if wt.SetupOutput != "" {
		fmt.Fprintf(&note, "■ worktree_setup output:\n%s\n", strings.TrimRight(wt.SetupOutput, "\n"))
	}
	return note.String(), nil
}

// discardWorktree takes back the worktree this start made when the engine
// then did not start; what cannot be taken back is added to err's message.
func discardWorktree(ctx context.Context, res *StartResult, err error) error {
	if res.made == nil {
		return err
	}
	derr := workspace.Discard(context.WithoutCancel(ctx), res.ProjectDir, res.made)
	var te *ToolError
	if derr != nil && errors.As(err, &te) {
		te.Message += fmt.Sprintf(" (its worktree %s was kept: %v)", res.made.Dir, derr)
	}
	return err
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

// WorktreeItem is a session worktree cleanup found.
type WorktreeItem struct {
	Session  string `json:"session" jsonschema:"session name"`
	Dir      string `json:"dir" jsonschema:"the worktree"`
	Branch   string `json:"branch,omitempty" jsonschema:"its branch (never deleted)"`
	Unmerged int    `json:"unmerged" jsonschema:"commits on the branch that the branch it came from lacks: merge them before deleting the branch yourself"`
	Dirty    bool   `json:"dirty,omitempty" jsonschema:"uncommitted changes: it is never removed"`
}

// cleanupWorktrees reports the worktrees of sessions that are not running
// and, with remove, removes the clean ones (act decides dry or real).
func cleanupWorktrees(ctx context.Context, project string, infos []sessionInfo, remove bool,
	act func(bool, string, string, func() (string, error)), res *CleanupResult) {
	running := map[string]bool{}
	for _, info := range infos {
		running[info.Name] = info.Lock.Held
	}
	wts, err := workspace.Inventory(ctx, project)
	if err != nil {
		if !errors.Is(err, workspace.ErrNotRepo) {
			res.Warnings = append(res.Warnings, "worktrees: "+err.Error())
		}
		return
	}
	for _, w := range wts {
		if running[w.Session] || !w.Registered || w.Missing {
			continue
		}
		res.Worktrees = append(res.Worktrees, WorktreeItem{Session: w.Session, Dir: w.Dir, Branch: w.Branch, Unmerged: w.Unmerged, Dirty: w.Dirty})
		if w.Dirty {
			continue
		}
		act(remove, "remove_worktree", w.Session, func() (string, error) {
			if err := workspace.RemoveWorktree(ctx, project, w.Session); err != nil {
				return "", err
			}
			return fmt.Sprintf("removed %s; branch %s kept (%d unmerged commit(s))", w.Dir, w.Branch, w.Unmerged), nil
		})
	}
}

// sessionWorktree is what a session's spec records of its isolation.
type sessionWorktree struct {
	Isolation string `json:"isolation"`
	Worktree  string `json:"worktree"`
	Branch    string `json:"branch"`
}

// worktreeOf reads a state's worktree from its spec (zero without one).
func worktreeOf(st *state.State) sessionWorktree {
	var w sessionWorktree
	if st != nil && len(st.Spec) > 0 {
		json.Unmarshal(st.Spec, &w)
	}
	return w
}

// branchCommits is how many commits session's branch holds that its base
// lacks; nil when git cannot tell.
func branchCommits(project, session string) *int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wts, err := workspace.Inventory(ctx, project)
	if err != nil {
		return nil
	}
	for _, w := range wts {
		if w.Session == session && w.Registered {
			n := w.Unmerged
			return &n
		}
	}
	return nil
}

// branchOf is a session's branch when it has a worktree. A summary's state
// has no spec (it is not read, for speed): there the worktree directory
// says it, one stat.
func branchOf(info sessionInfo) string {
	if b := worktreeOf(info.State).Branch; b != "" {
		return b
	}
	if fi, err := os.Stat(filepath.Join(workspace.WorktreesDir(info.ProjectDir), info.Name)); err == nil && fi.IsDir() {
		return workspace.BranchPrefix + info.Name
	}
	return ""
}
