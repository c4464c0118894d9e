package sessions

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
)

// Info is everything known about one session: its files, its lock, its
// tmux session, and the classifier's verdict over them.
type Info struct {
	Name       string
	ProjectDir string
	Layout     state.Layout
	HasRunDir  bool
	State      *state.State
	StateErr   error
	Rebuilt    bool
	Lock       state.LockStatus
	Tmux       *tmux.Session
	// TmuxErr is why tmux could not be asked (it did not answer, or is
	// missing); Tmux is then nil whatever tmux holds.
	TmuxErr error
	Live    state.Liveness
}

// TmuxName is the session's tmux session name: the live one, else what
// its state says (state.TmuxNameOf, the engine's rule), else the loop- form.
func (s *Info) TmuxName() string {
	switch {
	case s.Tmux != nil:
		return s.Tmux.Name
	case s.State != nil:
		return state.TmuxNameOf(s.State)
	}
	return state.TmuxName(s.Name, false)
}

// Depth says how much of a session's state Inspect reads.
type Depth int

const (
	// Full: the whole state (monitor, kill, start, the resources).
	Full Depth = iota
	// Summary: the state without History and Spec, which stay nil; enough
	// for the classifier and a summary, and much cheaper on sessions with
	// a long history (see state.LoadSummary). list and cleanup use it.
	Summary
	// StatusOnly: no state at all while the engine holds the lock — the
	// held lock alone makes the session running, whatever the state says;
	// only Live.Status is meant to be used. The reminder watcher, which
	// re-inspects every session every few seconds, uses it.
	StatusOnly
)

// ListTmux lists tmux sessions in one call. A missing tmux or server means
// an empty list; the error is returned for warnings. A list with records it
// could not read still holds every session it could (tmux.ErrUnparsable).
func (l *Local) ListTmux(ctx context.Context) ([]tmux.Session, error) {
	if err := l.Tmux.Available(); err != nil {
		return nil, err
	}
	return l.Tmux.ListSessions(ctx)
}

// TmuxWarning turns ListTmux's error into a warning for the caller, or ""
// when there is nothing to say.
func TmuxWarning(err error) string {
	switch {
	case err == nil, errors.Is(err, tmux.ErrNoServer):
		return ""
	case errors.Is(err, tmux.ErrNotInstalled):
		return "tmux is not installed, so tmux sessions cannot be seen; " + tmux.InstallHint()
	case errors.Is(err, tmux.ErrTimeout):
		return "tmux did not answer (its server may be stopped or hung), so tmux sessions could not be seen; engines were judged by their locks alone: " + err.Error()
	case errors.Is(err, tmux.ErrUnparsable):
		return "some tmux sessions could not be read and were left out: " + err.Error()
	}
	return "listing tmux sessions failed: " + err.Error()
}

// findTmux returns the tmux session of a session in a project: loop-<name>
// or pipeline-<name>, started in that project (tmux records the directory).
func findTmux(list []tmux.Session, project, name string) *tmux.Session {
	// Plain comparisons, not SessionFromTmux: list calls this for every
	// session against every tmux session, and a regexp match per pair made
	// that the slowest part of a list of dozens of sessions. name is valid,
	// so the two agree.
	loop, pipeline := state.TmuxName(name, false), state.TmuxName(name, true)
	for i := range list {
		if list[i].Name != loop && list[i].Name != pipeline {
			continue
		}
		if list[i].Path == "" || samePath(list[i].Path, project) {
			return &list[i]
		}
	}
	return nil
}

func samePath(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

// Inspect gathers the facts of one session and classifies it; tmuxList is
// what ListTmux returned (nil: no tmux session is looked for).
func (l *Local) Inspect(project, name string, tmuxList []tmux.Session, dp Depth) Info {
	lay := state.NewLayout(project, name)
	info := settle(func() Info { return readSession(project, name, lay, dp) },
		func() state.LockStatus { ls, _ := state.ProbeLock(lay.LockFile()); return ls },
		func() (state.State, error) { st, _, err := state.LoadSummary(lay); return st, err })
	if info.State != nil && info.State.Status == state.StatusRunning && !info.Lock.Held {
		// An engine killed between its last event and the state.json
		// replace left the file a step behind the log: judge by the log.
		if st, moved, err := state.CatchUp(lay, *info.State); err == nil && moved {
			info.State = &st
		}
	}
	info.Tmux = findTmux(tmuxList, project, name)
	facts := state.Facts{HasRunDir: info.HasRunDir, State: info.State, Lock: info.Lock, Now: l.now()}
	if info.Tmux != nil {
		facts.Tmux = &state.TmuxFacts{Name: info.Tmux.Name, Created: info.Tmux.Created, PaneDead: info.Tmux.PaneDead}
	}
	info.Live = state.Classify(facts)
	return info
}

// settle reads a session (read: its lock, run dir and state, in that
// order) until the read is one an engine's moves cannot explain away: the
// files of a run (an active state, or a run dir with no state yet) and no
// engine holding the lock are a crash — or an engine that took the lock just
// after the probe (a start: it takes the lock before it makes its run dir
// and state), or that wrote its end and let go just after the read. So probe
// again, then load again: an engine that started holds the lock; one that
// ended has changed the state. A run dir without state was once taken as
// crashed at once, and a start that looked while another's engine was
// making its run told its caller to resume a session that was starting.
func settle(read func() Info, probe func() state.LockStatus, load func() (state.State, error)) Info {
	for attempt := 1; ; attempt++ {
		info := read()
		if attempt == 3 || info.Lock.Held || !runWithoutEngine(info) {
			return info
		}
		if again := probe(); again.Held {
			info.Lock = again
			return info
		}
		st, err := load()
		if info.State == nil && err != nil {
			return info // still no state, still unlocked: crashed
		}
		if info.State != nil && err == nil && st.EventSeq == info.State.EventSeq && st.Status == info.State.Status {
			return info // still running, still unlocked: crashed
		}
	}
}

// runWithoutEngine: what a read found would be a crash if no engine holds
// the lock — an active state, or a run dir with no state (yet).
func runWithoutEngine(info Info) bool {
	if info.State == nil {
		return info.HasRunDir
	}
	return state.Active(info.State.Status)
}

// readSession reads one session's lock, run dir and state, in that order.
func readSession(project, name string, l state.Layout, dp Depth) Info {
	info := Info{Name: name, ProjectDir: project, Layout: l}
	info.Lock, _ = state.ProbeLock(l.LockFile())
	if fi, err := os.Stat(l.RunDir()); err == nil && fi.IsDir() {
		info.HasRunDir = true
	}
	if info.HasRunDir && !(dp == StatusOnly && info.Lock.Held) {
		load := state.Load
		if dp != Full {
			load = state.LoadSummary
		}
		st, res, err := load(l)
		if err == nil {
			info.State = &st
			info.Rebuilt = res.Rebuilt
		} else if !errors.Is(err, state.ErrNoState) {
			info.StateErr = err
		}
	}
	return info
}

// ResolveProject resolves a project_dir argument ("" = the default one).
func (l *Local) ResolveProject(arg string) (string, error) {
	dir := arg
	if dir == "" {
		dir = l.ProjectDir
	}
	return engine.ProjectDir(dir)
}

// Find finds one named session: in projectArg when given, else in the
// default project, else wherever its tmux session was started. A name that
// matches nothing is a *NotFoundError.
func (l *Local) Find(ctx context.Context, name, projectArg string) (Info, error) {
	if err := state.ValidateSession(name); err != nil {
		return Info{}, &InvalidNameError{Err: err}
	}
	project, err := l.ResolveProject(projectArg)
	if err != nil {
		return Info{}, err
	}
	tmuxList, tmuxErr := l.ListTmux(ctx)
	info := l.Inspect(project, name, tmuxList, Full)
	if info.Live.Status == "" && projectArg == "" {
		for _, t := range tmuxList {
			if s, ok := state.SessionFromTmux(t.Name); ok && s == name && t.Path != "" {
				info = l.Inspect(filepath.Clean(t.Path), name, tmuxList, Full)
				break
			}
		}
	}
	if errors.Is(tmuxErr, tmux.ErrTimeout) {
		info.TmuxErr = tmuxErr
	}
	if info.Live.Status == "" && !info.Lock.Exists {
		return info, &NotFoundError{Session: name, ProjectDir: project}
	}
	return info, nil
}

// Discover finds every session of a project (run directories and lock
// files) and every loop-*/pipeline-* tmux session (of any project), with one
// tmux call in all, in Status.Rank order. It returns warnings for what
// could not be seen.
func (l *Local) Discover(ctx context.Context, project string, dp Depth) ([]Info, []string) {
	var warnings []string
	tmuxList, err := l.ListTmux(ctx)
	if w := TmuxWarning(err); w != "" {
		warnings = append(warnings, w)
	}
	keys := sessionKeys(project, tmuxList)
	infos := make([]Info, 0, len(keys))
	for _, k := range keys {
		info := l.Inspect(k.project, k.name, tmuxList, dp)
		if info.Live.Status == "" && !info.Lock.Exists {
			continue
		}
		infos = append(infos, info)
	}
	sort.SliceStable(infos, func(i, j int) bool {
		ri, rj := infos[i].Live.Status.Rank(), infos[j].Live.Status.Rank()
		if ri != rj {
			return ri < rj
		}
		return infos[i].Name < infos[j].Name
	})
	return infos, warnings
}

type sessionKey struct{ project, name string }

// sessionKeys names the sessions of project (run dirs, then lock files) and
// of every loop-*/pipeline-* tmux session, each once.
func sessionKeys(project string, tmuxList []tmux.Session) []sessionKey {
	seen := map[sessionKey]bool{}
	var keys []sessionKey
	add := func(p, n string) {
		k := sessionKey{p, n}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if entries, err := os.ReadDir(state.RunsDir(project)); err == nil {
		for _, e := range entries {
			if e.IsDir() && state.ValidateSession(e.Name()) == nil {
				add(project, e.Name())
			}
		}
	}
	if entries, err := os.ReadDir(state.LocksDir(project)); err == nil {
		for _, e := range entries {
			if n, ok := strings.CutSuffix(e.Name(), ".lock"); ok && state.ValidateSession(n) == nil {
				add(project, n)
			}
		}
	}
	for _, t := range tmuxList {
		n, ok := state.SessionFromTmux(t.Name)
		if !ok {
			continue
		}
		p := project
		if t.Path != "" && !samePath(t.Path, project) {
			p = filepath.Clean(t.Path)
		}
		add(p, n)
	}
	return keys
}

// Refresh re-inspects a session in full. While the engine holds its lock,
// the lock alone says it is running and tmux is not asked.
func (l *Local) Refresh(ctx context.Context, info Info) Info {
	ls, _ := state.ProbeLock(info.Layout.LockFile())
	return l.refresh(ctx, info, ls.Held)
}

// refresh is Refresh for a caller that has just probed the lock (held).
func (l *Local) refresh(ctx context.Context, info Info, held bool) Info {
	var list []tmux.Session
	if !held {
		list, _ = l.ListTmux(ctx)
	}
	return l.Inspect(info.ProjectDir, info.Name, list, Full)
}

// Catalog lists the stages and pipelines that can be started in project,
// and the definitions there that could not be read.
func (l *Local) Catalog(project string) ([]engine.Entry, engine.Problems) {
	return engine.NewCatalog(project).List()
}
