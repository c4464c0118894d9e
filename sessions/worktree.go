package sessions

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
func checkWorktree(ctx context.Context, plan *engine.Plan, mode string) error {
	if plan.Isolation != engine.IsolationWorktree || mode == engine.ModeResume {
		return nil
	}
	if err := workspace.Check(ctx, plan.ProjectDir, plan.BaseRef); err != nil {
		return &WorktreeError{Err: err}
	}
	return nil
}

// makeWorktree makes a new session's worktree before its engine starts,
// so that a failure (setup included) is this call's error with nothing
// half-made. It returns what the engine should log.
func (l *Local) makeWorktree(ctx context.Context, r StartRequest, res *Started) (string, error) {
	plan := res.Plan
	if plan.Isolation != engine.IsolationWorktree || r.Mode == engine.ModeResume {
		if r.Mode == engine.ModeResume && plan.Worktree != "" {
			res.Worktree, res.Branch = plan.Worktree, plan.Branch
		}
		return "", nil
	}
	if v := envValue(l.environ(), SetupTimeoutEnv); v != "" {
		limit, err := time.ParseDuration(v)
		if err != nil || limit <= 0 {
			return "", fmt.Errorf("%w: %s=%q: want a duration such as 90s or 5m", engine.ErrInvalid, SetupTimeoutEnv, v)
		}
		ctx = workspace.WithSetupTimeout(ctx, limit)
	}
	wt, aside, err := engine.MakeWorktree(ctx, plan, r.Mode == engine.ModeForce, l.now())
	if aside.Branch != "" {
		res.BranchAside = aside.Branch
		res.Warnings = append(res.Warnings, fmt.Sprintf("the previous worktree was moved to %s and its branch renamed %s (kept with its commits)", aside.Dir, aside.Branch))
	}
	if err != nil {
		return "", err
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

// discard takes back the worktree this start made when the engine then
// did not start; what cannot be taken back makes err a *KeptWorktreeError.
func (l *Local) discard(ctx context.Context, res *Started, err error) error {
	if res.made == nil {
		return err
	}
	if derr := workspace.Discard(context.WithoutCancel(ctx), res.ProjectDir, res.made); derr != nil {
		return &KeptWorktreeError{Err: err, Dir: res.made.Dir, Why: derr}
	}
	return err
}

// sharedDirWarning names the other sessions running in project when this
// one would run there too, without isolation.
func sharedDirWarning(project, session string, plan *engine.Plan) []string {
	if plan.Isolation == engine.IsolationWorktree {
		return nil
	}
	locks, _ := filepath.Glob(filepath.Join(state.LocksDir(project), "*.lock"))
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

// Worktrees are the session worktrees of project whose session is not
// running (infos says which run): what cleanup may remove. A project that
// is no repository has none.
func (l *Local) Worktrees(ctx context.Context, project string, infos []Info) ([]workspace.WorktreeInfo, error) {
	running := map[string]bool{}
	for _, info := range infos {
		running[info.Name] = info.Lock.Held
	}
	wts, err := workspace.Inventory(ctx, project)
	if errors.Is(err, workspace.ErrNotRepo) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []workspace.WorktreeInfo
	for _, w := range wts {
		if running[w.Session] || !w.Registered || w.Missing {
			continue
		}
		out = append(out, w)
	}
	return out, nil
}

// RemoveWorktree removes a session's clean worktree; its branch is kept.
func (l *Local) RemoveWorktree(ctx context.Context, project, session string) error {
	return workspace.RemoveWorktree(ctx, project, session)
}

// Worktree is what a session's spec records of its isolation.
type Worktree struct {
	Isolation string `json:"isolation"`
	Dir       string `json:"worktree"`
	Branch    string `json:"branch"`
}

// WorktreeOf reads a state's worktree from its spec (zero without one).
func WorktreeOf(st *state.State) Worktree {
	var w Worktree
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

// Branch is a session's branch when it has a worktree. A summary's state
// has no spec (it is not read, for speed): there the worktree directory
// says it, one stat.
func (s *Info) Branch() string {
	if b := WorktreeOf(s.State).Branch; b != "" {
		return b
	}
	if fi, err := os.Stat(filepath.Join(workspace.WorktreesDir(s.ProjectDir), s.Name)); err == nil && fi.IsDir() {
		return workspace.BranchPrefix + s.Name
	}
	return ""
}
