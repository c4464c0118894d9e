package workspace

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// gitTimeout bounds one git call of the worktree operations.
const gitTimeout = 30 * time.Second

// BranchPrefix is the prefix of every session's branch.
const BranchPrefix = "agent-sessions/"

// Worktree is a session's git worktree.
type Worktree struct {
	Session  string `json:"session"`
	Dir      string `json:"dir"`       // <project>/.claude/worktrees/<session>
	AgentDir string `json:"agent_dir"` // where agents run: Dir, or the project's subdirectory inside it
	Branch   string `json:"branch"`    // agent-sessions/<session>
	BaseRef  string `json:"base_ref"`  // what the branch came from: a branch name, or a commit
	Base     string `json:"base"`      // the commit the worktree was created at
	// Reused: the worktree or the session's branch existed and was taken
	// up again rather than made.
	Reused bool `json:"-"`
	// SetupOutput is what worktree_setup printed (bounded), for the session log.
	SetupOutput string `json:"-"`
	// Copied lists the .worktreeinclude files copied in, relative to the repository root.
	Copied []string `json:"-"`
}

// Workspace is the worktree as the agents' workspace: they run in
// AgentDir, and each iteration's change record is taken there.
func (w *Worktree) Workspace() *Local { return NewLocal(w.AgentDir) }

// WorktreesDir is where a project's session worktrees live.
func WorktreesDir(project string) string { return filepath.Join(project, ".claude", "worktrees") }

func metaFile(project, session string) string {
	// Session names have no dots, so <session>.json never names a worktree.
	return filepath.Join(WorktreesDir(project), session+".json")
}

// repo is a project's repository as the worktree operations see it.
type repo struct {
	project string // absolute, symlinks resolved
	root    string // the top level of the checkout the project is in
	rel     string // project relative to root ("." at the top)
}

func openRepo(ctx context.Context, project string) (repo, error) {
	abs, err := filepath.Abs(project)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return repo{}, fmt.Errorf("project %s: %w", project, err)
	}
	res, err := git(ctx, abs, gitTimeout, 4<<10, "rev-parse", "--show-toplevel")
	if exitCode(err) == 128 {
		return repo{}, fmt.Errorf("project %s is %w: worktree isolation needs one (run `git init` and commit, or use isolation none)", abs, ErrNotRepo)
	}
	if err != nil {
		return repo{}, err
	}
	root := strings.TrimSpace(string(res.out))
	rel, err := filepath.Rel(root, abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		// The project is itself inside a worktree of ours, or beside the
		// repository: no sensible place for a nested worktree.
		return repo{}, fmt.Errorf("project %s is not inside its repository's top level %s", abs, root)
	}
	return repo{project: abs, root: root, rel: rel}, nil
}

func (r repo) git(ctx context.Context, args ...string) (gitResult, error) {
	return git(ctx, r.root, gitTimeout, outputLimit, args...)
}

// resolve returns the commit a ref names, "" when it names none.
func (r repo) resolve(ctx context.Context, ref string) (string, error) {
	res, err := r.git(ctx, "rev-parse", "-q", "--verify", ref+"^{commit}")
	if exitCode(err) == 1 {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(res.out)), nil
}

// count is how many commits `git rev-list --count args` finds.
func (r repo) count(ctx context.Context, args ...string) (int, error) {
	res, err := r.git(ctx, append(append([]string{"rev-list", "--count"}, args...), "--")...)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(res.out)))
}

// baseOf resolves a base_ref ("" is HEAD) to the name worth comparing
// against later (the branch HEAD is on, for HEAD) and its commit.
func (r repo) baseOf(ctx context.Context, baseRef string) (name, sha string, err error) {
	if strings.HasPrefix(baseRef, "-") {
		return "", "", fmt.Errorf("base_ref %q: a ref cannot start with '-'", baseRef)
	}
	name = baseRef
	if baseRef == "" || baseRef == "HEAD" {
		name = "HEAD"
		if res, err := r.git(ctx, "symbolic-ref", "-q", "--short", "HEAD"); err == nil {
			name = strings.TrimSpace(string(res.out))
		}
	}
	sha, err = r.resolve(ctx, name)
	if name == "HEAD" {
		// A detached HEAD moves on: what the worktree came from is the commit.
		name = sha
	}
	switch {
	case err != nil:
		return "", "", err
	case sha == "" && (baseRef == "" || baseRef == "HEAD"):
		return "", "", fmt.Errorf("the repository at %s has no commit yet: commit something first, the worktree branches from it", r.root)
	case sha == "":
		return "", "", fmt.Errorf("base_ref %q is not a branch, tag or commit of %s: list them with `git branch -a` and `git tag`, or leave base_ref out to branch from HEAD", baseRef, r.root)
	}
	return name, sha, nil
}

// listed is one entry of `git worktree list --porcelain`.
type listed struct {
	path, head, branch string // branch without refs/heads/; "" when detached
	prunable           bool   // its directory is gone
}

func (r repo) worktrees(ctx context.Context) ([]listed, error) {
	res, err := r.worktreeGit(ctx, "list", "--porcelain", "-z")
	if err != nil {
		return nil, err
	}
	var out []listed
	var cur *listed
	for _, field := range strings.Split(string(res.out), "\x00") {
		key, val, _ := strings.Cut(field, " ")
		switch key {
		case "worktree":
			out = append(out, listed{path: val})
			cur = &out[len(out)-1]
		case "HEAD":
			if cur != nil {
				cur.head = val
			}
		case "branch":
			if cur != nil {
				cur.branch = strings.TrimPrefix(val, "refs/heads/")
			}
		case "prunable":
			if cur != nil {
				cur.prunable = true
			}
		}
	}
	return out, nil
}

// find returns the registered worktree at dir.
func (r repo) find(ctx context.Context, dir string) (listed, bool, error) {
	wts, err := r.worktrees(ctx)
	if err != nil {
		return listed{}, false, err
	}
	for _, w := range wts {
		if samePath(w.path, dir) {
			return w, true, nil
		}
	}
	return listed{}, false, nil
}

func samePath(a, b string) bool {
	if a == b {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

// undoList is what to take back when a create fails half-way: run in
// reverse, with a context of their own (the caller's may be what ran out).
type undoList []func(ctx context.Context)

func (u undoList) run(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), gitTimeout)
	defer cancel()
	for i := len(u) - 1; i >= 0; i-- {
		u[i](ctx)
	}
}

// CreateWorktree makes session's worktree: <project>/.claude/worktrees/<session>
// on branch agent-sessions/<session>, from baseRef ("" means HEAD). It copies
// in the files .worktreeinclude names and runs setupArgv there once (when
// given), bounded by SetupTimeout and ctx.
//
// What exists already decides what happens:
//   - the session's worktree, on its branch: it is returned as it is
//     (Reused; no copy, no setup) — a start that finds it is a resume;
//   - the branch, without a worktree, holding no commit that baseRef does
//     not: it is taken up again at baseRef (nothing is lost: its commits are
//     all in baseRef) and the worktree made as new;
//   - the branch with commits of its own: refused — an earlier session of
//     that name worked there; branches are never reset or deleted for you;
//   - anything else at the worktree's path: refused.
//
// On any failure nothing is left half-made: the worktree is removed, a
// branch this call created is deleted (it has no commits then), and a
// branch it took up again is put back where it was.
func CreateWorktree(ctx context.Context, project, session, baseRef string, setupArgv []string) (*Worktree, error) {
	if err := state.ValidateSession(session); err != nil {
		return nil, err
	}
	r, err := openRepo(ctx, project)
	if err != nil {
		return nil, err
	}
	wt := r.newWorktree(session)
	if w, ok, err := r.find(ctx, wt.Dir); err != nil {
		return nil, err
	} else if ok {
		if w.branch != wt.Branch || w.prunable {
			return nil, fmt.Errorf("%s is registered as a worktree but is not on branch %s (it is on %q%s): move it away with `git worktree move`, or remove it", wt.Dir, wt.Branch, w.branch, prunableNote(w))
		}
		return r.reuse(ctx, wt)
	}
	if _, err := os.Lstat(wt.Dir); err == nil {
		return nil, fmt.Errorf("%s exists but is not a worktree of %s: move it away, then start again", wt.Dir, r.root)
	}
	wt.BaseRef, wt.Base, err = r.baseOf(ctx, baseRef)
	if err != nil {
		return nil, err
	}
	var undo undoList
	if err := r.addWorktree(ctx, wt, &undo); err != nil {
		undo.run(ctx)
		return nil, err
	}
	if err := r.prepare(ctx, wt, setupArgv, &undo); err != nil {
		undo.run(ctx)
		return nil, err
	}
	return wt, nil
}

func prunableNote(w listed) string {
	if w.prunable {
		return ", and its directory is missing"
	}
	return ""
}

func (r repo) newWorktree(session string) *Worktree {
	dir := filepath.Join(WorktreesDir(r.project), session)
	return &Worktree{Session: session, Dir: dir, AgentDir: filepath.Join(dir, r.rel), Branch: BranchPrefix + session}
}

// addWorktree runs `git worktree add`, making the branch or taking it up
// again, and records how to undo that.
func (r repo) addWorktree(ctx context.Context, wt *Worktree, undo *undoList) error {
	ref := "refs/heads/" + wt.Branch
	old, err := r.resolve(ctx, ref)
	if err != nil {
		return err
	}
	args := []string{"add", "-b", wt.Branch, wt.Dir, wt.Base}
	if old != "" {
		own, err := r.count(ctx, old, "^"+wt.Base)
		if err != nil {
			return err
		}
		if own > 0 {
			return fmt.Errorf("branch %s already holds %d commit(s) not in %s: an earlier session named %s worked there. "+
				"Resume that session, merge or rename the branch (git branch -m %s %s-old), or choose another session name; agent-sessions never resets or deletes a branch",
				wt.Branch, own, wt.BaseRef, wt.Session, wt.Branch, wt.Branch)
		}
		// All its commits are in the base: moving it there loses nothing.
		args = []string{"add", "-B", wt.Branch, wt.Dir, wt.Base}
		wt.Reused = true
	}
	if err := os.MkdirAll(WorktreesDir(r.project), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", WorktreesDir(r.project), err)
	}
	// Registered before the add: an add cut short (a timeout) can leave a
	// half-made worktree that needs taking back as much as a whole one.
	*undo = append(*undo, func(ctx context.Context) {
		// --force: the worktree is minutes old and holds only what this
		// call (the include copy, the setup) put there.
		r.worktreeGit(ctx, "remove", "--force", wt.Dir)
		if old == "" {
			// Deleted only while it still points at the base: it has no
			// commit of its own.
			r.git(ctx, "update-ref", "-d", ref, wt.Base)
		} else {
			r.git(ctx, "update-ref", ref, old, wt.Base)
		}
	})
	if _, err := r.worktreeGit(ctx, args...); err != nil {
		return fmt.Errorf("create the worktree: %w", err)
	}
	return nil
}

// prepare finishes a new worktree: the meta file, the include copy, the setup.
func (r repo) prepare(ctx context.Context, wt *Worktree, setupArgv []string, undo *undoList) error {
	meta, _ := json.Marshal(wt)
	if err := state.WriteFileAtomic(metaFile(r.project, wt.Session), append(meta, '\n'), 0o644); err != nil {
		return fmt.Errorf("record the worktree's base: %w", err)
	}
	*undo = append(*undo, func(context.Context) { os.Remove(metaFile(r.project, wt.Session)) })
	copied, err := copyIncluded(ctx, r, wt.Dir)
	if err != nil {
		return err
	}
	wt.Copied = copied
	if len(setupArgv) > 0 {
		out, err := runSetup(ctx, wt.AgentDir, setupArgv)
		wt.SetupOutput = out
		if err != nil {
			return err
		}
	}
	return nil
}
