package workspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// ChangeTimeout bounds the work of one change record (all its git calls).
const ChangeTimeout = 10 * time.Second

// subjectLimit bounds a commit subject in the record.
const subjectLimit = 200

// enginePaths are the engine's own files, kept out of every change record
// with exclude pathspecs (relative to the project directory, where they
// live). They are passed on each call rather than relying on
// .git/info/exclude, which a user or agent may edit.
var enginePaths = []string{
	":(exclude).claude/pipeline-runs",
	":(exclude).claude/locks",
	":(exclude).claude/worktrees",
}

// Local is the project directory as the agents' workspace: agents run in
// it, and in a git repository each iteration gets a change record.
type Local struct {
	dir string
	// Timeout bounds one change record; zero means ChangeTimeout.
	Timeout time.Duration

	warned    atomic.Bool
	emptyOnce sync.Once
	emptyTree string
}

// NewLocal returns the workspace of agents that run in dir.
func NewLocal(dir string) *Local { return &Local{dir: dir} }

// Dir is where agents run.
func (l *Local) Dir() string { return l.dir }

// Snapshot is what After compares against: HEAD before the agent ran.
type Snapshot struct {
	Repo bool   // dir is in a git repository: After gives a record
	Head string // HEAD's commit; "" on an unborn branch
	// Warning, set at most once per Local, says why no record can be made
	// where one would be expected (git missing).
	Warning string
	// Note is a git failure while taking the snapshot, carried into the record.
	Note string
}

func (l *Local) timeout() time.Duration {
	if l.Timeout > 0 {
		return l.Timeout
	}
	return ChangeTimeout
}

// Before takes the snapshot of dir before an agent runs. Outside a git
// repository it costs a few stat calls and no exec.
func (l *Local) Before(ctx context.Context) Snapshot {
	if !InRepo(l.dir) {
		return Snapshot{}
	}
	head, err := headCommit(ctx, l.dir, l.timeout())
	switch {
	case errors.Is(err, ErrGitMissing):
		if l.warned.CompareAndSwap(false, true) {
			return Snapshot{Warning: "git is not installed: iterations get no change record (install git to have one)"}
		}
		return Snapshot{}
	case errors.Is(err, ErrNotRepo):
		return Snapshot{}
	case exitCode(err) == 128:
		// git refuses the repository (e.g. "dubious ownership"): every
		// call would fail the same way, so say it once and record nothing.
		if l.warned.CompareAndSwap(false, true) {
			return Snapshot{Warning: "no change record for iterations: " + err.Error()}
		}
		return Snapshot{}
	case err != nil:
		return Snapshot{Repo: true, Note: "head before: " + err.Error()}
	}
	return Snapshot{Repo: true, Head: head}
}

// InRepo reports whether dir or a parent holds a .git entry: the cheap
// test that keeps non-git projects free of any git run (git finds its
// repository the same way; the variables that would point it elsewhere,
// GIT_DIR and the like, are cleared for every run of ours).
func InRepo(dir string) bool {
	d, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return true
		}
		parent := filepath.Dir(d)
		if parent == d {
			return false
		}
		d = parent
	}
}

// headCommit returns HEAD's commit, "" on an unborn branch.
func headCommit(ctx context.Context, dir string, timeout time.Duration) (string, error) {
	res, err := git(ctx, dir, timeout, 4<<10, "rev-parse", "-q", "--verify", "HEAD^{commit}")
	switch exitCode(err) {
	case -1:
	case 1:
		return "", nil // unborn: no commit yet
	case 128:
		if strings.Contains(err.Error(), "not a git repository") {
			return "", fmt.Errorf("%w: %w", ErrNotRepo, err)
		}
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(res.out)), nil
}

// After computes the change record since before. It returns nil outside a
// git repository. A git failure never fails the caller: what was measured
// is returned, and Note says what was not.
//
// An iteration without commits costs two git runs (status, which also
// names HEAD, and diff), one with fewer than CommitsListed commits three:
// an engine runs this after every iteration, for hours.
func (l *Local) After(ctx context.Context, before Snapshot) *state.Changes {
	if !before.Repo {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout())
	defer cancel()
	c := &state.Changes{HeadBefore: before.Head, Commits: []state.Commit{}}
	var notes []string
	if before.Note != "" {
		notes = append(notes, before.Note)
	}
	note := func(what string, err error) {
		notes = append(notes, what+": "+err.Error())
	}
	defer func() { c.Note = truncate(strings.Join(notes, "; "), 1000) }()

	head, statusErr := l.status(ctx, c)
	if !head {
		note("head after", statusErr)
		return c
	}
	if c.HeadAfter != "" && c.HeadAfter != before.Head {
		if err := l.commits(ctx, c); err != nil {
			note("commits", err)
		}
	}
	if err := l.diffstat(ctx, c); err != nil {
		note("diffstat", err)
	}
	if statusErr != nil {
		note("status", statusErr)
	}
	return c
}

// revRange is head_before..head_after as rev-list arguments.
func revRange(c *state.Changes) []string {
	if c.HeadBefore == "" {
		return []string{c.HeadAfter}
	}
	return []string{c.HeadAfter, "^" + c.HeadBefore}
}

// commits lists the commits of head_before..head_after, newest first, and
// counts them: the list is the count while it is shorter than
// CommitsListed (and whole), so rev-list --count runs only past that.
func (l *Local) commits(ctx context.Context, c *state.Changes) error {
	args := append([]string{"log", "--no-show-signature", "--format=%H%x1f%s", "-n", strconv.Itoa(state.CommitsListed)}, revRange(c)...)
	res, err := git(ctx, l.dir, l.timeout(), 64<<10, append(args, "--")...)
	if err != nil {
		return err
	}
	var lines []string // none when HEAD moved back: nothing in the range
	if out := strings.TrimRight(string(res.out), "\n"); out != "" {
		lines = strings.Split(out, "\n")
	}
	for _, line := range lines {
		sha, subject, ok := strings.Cut(line, "\x1f")
		if ok {
			c.Commits = append(c.Commits, state.Commit{SHA: sha, Subject: truncate(subject, subjectLimit)})
		}
	}
	if n := len(c.Commits); n < state.CommitsListed && n == len(lines) && !res.truncated {
		c.CommitCount = len(c.Commits)
		return nil
	}
	args = append([]string{"rev-list", "--count"}, revRange(c)...)
	res, err = git(ctx, l.dir, l.timeout(), 4<<10, append(args, "--")...)
	if err != nil {
		return err
	}
	if c.CommitCount, err = strconv.Atoi(strings.TrimSpace(string(res.out))); err != nil {
		return fmt.Errorf("rev-list --count printed %q", res.out)
	}
	return nil
}

// emptyTreeID is the id of the empty tree in this repository's object
// format (sha1 or sha256): the base of a diff from an unborn branch.
func (l *Local) emptyTreeID(ctx context.Context) (string, error) {
	var err error
	l.emptyOnce.Do(func() {
		var res gitResult
		res, err = git(ctx, l.dir, l.timeout(), 4<<10, "hash-object", "-t", "tree", os.DevNull)
		l.emptyTree = strings.TrimSpace(string(res.out))
	})
	if l.emptyTree == "" && err == nil {
		err = errors.New("git hash-object gave no id for the empty tree")
	}
	return l.emptyTree, err
}

// diffstat counts the diff from head_before to the working tree, tracked
// files only (status counts the untracked ones). Binary files count as
// changed files with no lines. numstat prints one line per file and never
// the content, so a huge file costs git's reading it, not our memory.
func (l *Local) diffstat(ctx context.Context, c *state.Changes) error {
	base := c.HeadBefore
	if base == "" {
		id, err := l.emptyTreeID(ctx)
		if err != nil {
			return err
		}
		base = id
	}
	args := []string{"diff", "--numstat", "--no-renames", "--no-ext-diff", "--no-textconv", "--ignore-submodules=dirty", base, "--", ":/"}
	res, err := git(ctx, l.dir, l.timeout(), outputLimit, append(args, enginePaths...)...)
	if err != nil {
		return err
	}
	for _, line := range bytes.Split(res.out, []byte("\n")) {
		fields := strings.SplitN(string(line), "\t", 3)
		if len(fields) < 3 {
			continue
		}
		c.FilesChanged++
		ins, _ := strconv.Atoi(fields[0]) // "-" for a binary file: 0 lines
		del, _ := strconv.Atoi(fields[1])
		c.Insertions += ins
		c.Deletions += del
	}
	if res.truncated {
		return fmt.Errorf("more than %d bytes of numstat: the figures count only the files listed before that", outputLimit)
	}
	return nil
}

// status reads HEAD's commit into head_after, sets dirty and counts
// untracked files (as changed files), all from one `git status
// --porcelain=v2 --branch`: its header names HEAD, as `rev-parse` would, so
// a record needs no run of its own for that. head says whether HEAD was
// read (the header comes first, so a status cut short still has it); err
// is what went wrong.
func (l *Local) status(ctx context.Context, c *state.Changes) (head bool, err error) {
	// --no-ahead-behind: the upstream comparison is not ours to pay for.
	args := []string{"status", "--porcelain=v2", "--branch", "--no-ahead-behind", "-z", "--untracked-files=all", "--no-renames", "--ignore-submodules=dirty", "--", ":/"}
	res, err := git(ctx, l.dir, l.timeout(), outputLimit, append(args, enginePaths...)...)
	if err != nil {
		return false, err
	}
	entries := bytes.Split(res.out, []byte{0})
	for i := 0; i < len(entries); i++ {
		entry := entries[i]
		switch {
		case len(entry) == 0:
		case bytes.HasPrefix(entry, []byte("# branch.oid ")):
			oid := string(entry[len("# branch.oid "):])
			if oid == "(initial)" {
				oid = "" // unborn: no commit yet
			}
			c.HeadAfter, head = oid, true
		case entry[0] == '#':
			// Another header (branch name, upstream).
		case entry[0] == '2':
			// A rename or copy (not asked for) is followed by its source.
			c.Dirty = true
			i++
		default:
			c.Dirty = true
			if entry[0] == '?' {
				c.Untracked++
				c.FilesChanged++
			}
		}
	}
	switch {
	case !head && !res.truncated:
		return false, fmt.Errorf("git status printed no branch.oid header")
	case res.truncated:
		return head, fmt.Errorf("more than %d bytes of status: untracked files counted only up to there", outputLimit)
	}
	return true, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
