package tools

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
)

// sessionInfo is everything known about one session: its files, its lock,
// its tmux session, and the classifier's verdict over them.
type sessionInfo struct {
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

// tmuxName is the session's tmux session name: the live one, else what
// state.json recorded, else the loop- form.
func (s *sessionInfo) tmuxName() string {
	switch {
	case s.Tmux != nil:
		return s.Tmux.Name
	case s.State != nil && s.State.TmuxSession != "":
		return s.State.TmuxSession
	case s.State != nil:
		return state.TmuxName(s.Name, s.State.Type == engine.KindPipeline)
	}
	return state.TmuxName(s.Name, false)
}

// listTmux lists tmux sessions in one call. A missing tmux or server means
// an empty list; the error is returned for warnings. A list with records it
// could not read still holds every session it could (tmux.ErrUnparsable).
func (d *Deps) listTmux(ctx context.Context) ([]tmux.Session, error) {
	if err := d.Tmux.Available(); err != nil {
		return nil, err
	}
	return d.Tmux.ListSessions(ctx)
}

// tmuxWarning turns listTmux's error into a warning for the caller, or ""
// when there is nothing to say.
func tmuxWarning(err error) string {
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

// depth says how much of a session's state inspect reads.
type depth int

const (
	// full: the whole state (monitor, kill, start_session, the resources).
	full depth = iota
	// summary: the state without History and Spec, which stay nil; enough
	// for the classifier and a Summary, and much cheaper on sessions with
	// a long history (see state.LoadSummary). list and cleanup use it.
	summary
	// statusOnly: no state at all while the engine holds the lock — the
	// held lock alone makes the session running, whatever the state says;
	// only Live.Status is meant to be used. The reminder watcher, which
	// re-inspects every session every few seconds, uses it.
	statusOnly
)

// inspect gathers the facts of one session and classifies it.
func (d *Deps) inspect(project, name string, tmuxList []tmux.Session) sessionInfo {
	return d.inspectAt(project, name, tmuxList, full)
}

func (d *Deps) inspectAt(project, name string, tmuxList []tmux.Session, dp depth) sessionInfo {
	l := state.NewLayout(project, name)
	var info sessionInfo
	for attempt := 1; ; attempt++ {
		info = readSession(project, name, l, dp)
		if attempt == 3 || info.Lock.Held || info.State == nil || !state.Active(info.State.Status) {
			break
		}
		// State says running and no engine holds the lock: crashed — or
		// an engine took the lock just after the probe (a start), or wrote
		// its end and let go just after the read. Probe again, then read
		// again: an engine that ended has changed the state; one that
		// started holds the lock.
		if again, _ := state.ProbeLock(l.LockFile()); again.Held {
			info.Lock = again
			break
		}
		if st, _, err := state.LoadSummary(l); err == nil && st.EventSeq == info.State.EventSeq && st.Status == info.State.Status {
			break // still running, still unlocked: crashed
		}
	}
	if info.State != nil && info.State.Status == state.StatusRunning && !info.Lock.Held {
		// An engine killed between its last event and the state.json
		// replace left the file a step behind the log: judge by the log.
		if st, moved, err := state.CatchUp(l, *info.State); err == nil && moved {
			info.State = &st
		}
	}
	info.Tmux = findTmux(tmuxList, project, name)
	facts := state.Facts{HasRunDir: info.HasRunDir, State: info.State, Lock: info.Lock, Now: d.now()}
	if info.Tmux != nil {
		facts.Tmux = &state.TmuxFacts{Name: info.Tmux.Name, Created: info.Tmux.Created, PaneDead: info.Tmux.PaneDead}
	}
	info.Live = state.Classify(facts)
	return info
}

// readSession reads one session's lock, run dir and state, in that order.
func readSession(project, name string, l state.Layout, dp depth) sessionInfo {
	info := sessionInfo{Name: name, ProjectDir: project, Layout: l}
	info.Lock, _ = state.ProbeLock(l.LockFile())
	if fi, err := os.Stat(l.RunDir()); err == nil && fi.IsDir() {
		info.HasRunDir = true
	}
	if info.HasRunDir && !(dp == statusOnly && info.Lock.Held) {
		load := state.Load
		if dp != full {
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

// projectDir resolves a project_dir argument ("" = the server's).
func (d *Deps) projectDir(arg string) (string, error) {
	dir := arg
	if dir == "" {
		dir = d.ProjectDir
	}
	p, err := engine.ProjectDir(dir)
	if err != nil {
		return "", toolError(err)
	}
	return p, nil
}

// resolve finds one named session: in project_dir when given, else in the
// server's project, else wherever its tmux session was started.
func (d *Deps) resolve(ctx context.Context, name, projectArg string) (sessionInfo, error) {
	if err := state.ValidateSession(name); err != nil {
		return sessionInfo{}, invalidf("%v", err).with(Option{Tool: "list", Description: "see the sessions that exist"})
	}
	project, err := d.projectDir(projectArg)
	if err != nil {
		return sessionInfo{}, err
	}
	tmuxList, tmuxErr := d.listTmux(ctx)
	info := d.inspect(project, name, tmuxList)
	if info.Live.Status == "" && projectArg == "" {
		for _, t := range tmuxList {
			if s, ok := state.SessionFromTmux(t.Name); ok && s == name && t.Path != "" {
				info = d.inspect(filepath.Clean(t.Path), name, tmuxList)
				break
			}
		}
	}
	if errors.Is(tmuxErr, tmux.ErrTimeout) {
		info.TmuxErr = tmuxErr
	}
	if info.Live.Status == "" && !info.Lock.Exists {
		return info, (&ToolError{Code: CodeNotFound, Message: fmt.Sprintf("no session %q in %s (no run directory, lock or tmux session loop-%s/pipeline-%s)", name, project, name, name)}).
			with(Option{Tool: "list", Arguments: map[string]any{"include_catalog": true}, Description: "see the sessions that exist, and the stages and pipelines a session of this name could run"})
	}
	return info, nil
}

// discover finds every session of a project (run directories and lock
// files) and every loop-*/pipeline-* tmux session (of any project), with one
// tmux call in all. The states it returns are summaries: History and Spec
// are nil (inspect reads a session in full).
func (d *Deps) discover(ctx context.Context, project string) ([]sessionInfo, []string) {
	return d.discoverAt(ctx, project, summary)
}

func (d *Deps) discoverAt(ctx context.Context, project string, dp depth) ([]sessionInfo, []string) {
	var warnings []string
	tmuxList, err := d.listTmux(ctx)
	if w := tmuxWarning(err); w != "" {
		warnings = append(warnings, w)
	}
	type key struct{ project, name string }
	seen := map[key]bool{}
	var keys []key
	add := func(p, n string) {
		k := key{p, n}
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
	infos := make([]sessionInfo, 0, len(keys))
	for _, k := range keys {
		info := d.inspectAt(k.project, k.name, tmuxList, dp)
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

// LiveStaleLock is list's status for a lock file no process holds, with
// no run directory or tmux session behind it (state.LiveStaleLock).
const LiveStaleLock = state.LiveStaleLock

// Summary is one session as list reports it: compact, since Claude reads
// every byte of it, and with what needs a person's attention. The fields
// tagged "-" are for the other tools and the text.
type Summary struct {
	Session          string       `json:"session" jsonschema:"session name"`
	Status           state.Status `json:"status" jsonschema:"running, starting, complete, failed, killed, crashed (resumable), orphan (tmux session without run dir), zombie (tmux alive, engine gone) or stale_lock (a lock file no process holds, nothing else)"`
	Why              string       `json:"why,omitempty" jsonschema:"zombies, stale locks and finished sessions whose tmux session is still open: why it has that status"`
	Definition       string       `json:"definition,omitempty" jsonschema:"the stage or pipeline it runs"`
	Stage            string       `json:"stage,omitempty" jsonschema:"multi-stage sessions: the current stage as N/M name"`
	Iterations       string       `json:"iterations,omitempty" jsonschema:"iterations of the current stage completed / its limit, e.g. 7/25"`
	Age              string       `json:"age,omitempty" jsonschema:"how long it has run (or ran)"`
	Stale            bool         `json:"stale,omitempty" jsonschema:"running for more than 2 hours"`
	StaleLock        bool         `json:"stale_lock,omitempty" jsonschema:"a lock file exists that no process holds"`
	CompletionReason string       `json:"completion_reason,omitempty" jsonschema:"why it ended"`
	Error            string       `json:"error,omitempty" jsonschema:"the start of the error it failed with (monitor shows all of it)"`
	CostUSD          float64      `json:"cost_usd,omitempty" jsonschema:"spend reported by the agents, in US dollars"`
	Commits          *int         `json:"commits,omitempty" jsonschema:"git projects: commits the session's iterations made"`
	Branch           string       `json:"branch,omitempty" jsonschema:"isolation worktree: the session's branch"`
	FailedIterations int          `json:"failed_iterations,omitempty" jsonschema:"iterations whose agent failed (present only when some did)"`
	MaxCostUSD       float64      `json:"max_cost_usd,omitempty" jsonschema:"its spending cap in US dollars, beside cost_usd (absent: none)"`
	Question         string       `json:"question,omitempty" jsonschema:"waiting: the agent's question — put it to the user, then reply with their answer"`
	ParkedUntil      string       `json:"parked_until,omitempty" jsonschema:"parked: when it goes on by itself (RFC 3339)"`
	ParkedReason     string       `json:"parked_reason,omitempty" jsonschema:"parked: why (usage_limit, rate_limit, overloaded, daily_budget)"`
	ProjectDir       string       `json:"project_dir,omitempty" jsonschema:"its project, when not the one listed"`
	TmuxSession      string       `json:"tmux_session,omitempty" jsonschema:"orphans, zombies and finished sessions: the tmux session left open"`
	Host             string       `json:"host,omitempty" jsonschema:"the host it runs on, from hosts.yaml (absent: this machine)"`

	Type               string `json:"-"`
	Pipeline           string `json:"-"`
	StageName          string `json:"-"`
	StageNumber        int    `json:"-"`
	StageCount         int    `json:"-"`
	Iteration          int    `json:"-"`
	IterationCompleted int    `json:"-"`
	MaxIterations      int    `json:"-"`
	StartedAt          string `json:"-"`
	AgeSeconds         int64  `json:"-"`
	RunDir             string `json:"-"`
	// TmuxOpen: its tmux session still exists.
	TmuxOpen bool `json:"-"`
}

func (d *Deps) summarize(info sessionInfo) Summary {
	s := Summary{
		Session: info.Name, Status: info.Live.Status, Why: info.Live.Why, Stale: info.Live.Stale, StaleLock: info.Live.StaleLock,
		ProjectDir: info.ProjectDir, TmuxSession: info.tmuxName(), AgeSeconds: int64(info.Live.Age.Seconds()), Age: humanDuration(info.Live.Age),
	}
	s.TmuxOpen = info.Tmux != nil
	if s.Status == "" && info.Lock.Exists && !info.Lock.Held {
		s.Status, s.StaleLock = LiveStaleLock, true
		s.Why = "a lock file no process holds, with no run directory or tmux session; cleanup with remove_stale_locks removes it"
	}
	if info.HasRunDir {
		s.RunDir = info.Layout.RunDir()
	}
	if st := info.State; st != nil {
		s.Type = st.Type
		s.Definition = first(st.Stage, st.Pipeline)
		s.Pipeline = st.Pipeline
		s.StageCount = len(st.Stages)
		if st.CurrentStage < len(st.Stages) {
			s.StageName = st.Stages[st.CurrentStage].Name
			s.StageNumber = st.CurrentStage + 1
		}
		s.Iteration, s.IterationCompleted, s.MaxIterations = st.Iteration, st.IterationCompleted, st.MaxIterations
		s.Branch = branchOf(info)
		s.StartedAt = st.StartedAt.Format(time.RFC3339)
		s.CompletionReason, s.Error = st.CompletionReason, truncate(st.Error, 500)
		s.CostUSD = st.Cost.USD
		s.Commits = commitCount(st)
		s.FailedIterations = st.FailedIterations
		s.MaxCostUSD, s.Question, s.ParkedUntil, s.ParkedReason = guardrailsOf(st, 300)
	}
	if info.StateErr != nil {
		s.Why += " (" + truncate(info.StateErr.Error(), 200) + ")"
	}
	return s
}

// compact is s as list shows it, in the listing of project: what follows
// from elsewhere (the project listed, the status) is left out.
func (s Summary) compact(project string) Summary {
	c := s
	if c.ProjectDir == project {
		c.ProjectDir = ""
	}
	// What needs a word: zombies, orphans, stale locks, and a finished
	// session whose tmux session is still open (a dead pane, say).
	unusual := c.Status == state.LiveOrphan || c.Status == state.LiveZombie || c.Status == LiveStaleLock ||
		(c.TmuxOpen && !c.Status.Alive())
	if !unusual || c.Status == LiveStaleLock {
		c.TmuxSession = ""
	}
	if !unusual || c.Status == state.LiveOrphan {
		c.Why = ""
	}
	if c.StaleLock && c.Status == LiveStaleLock {
		c.StaleLock = false // the status says it
	}
	if c.StageCount > 1 {
		c.Stage = fmt.Sprintf("%d/%d %s", c.StageNumber, c.StageCount, c.StageName)
	}
	if c.MaxIterations > 0 {
		c.Iterations = fmt.Sprintf("%d/%d", c.IterationCompleted, c.MaxIterations)
	}
	switch c.Status {
	case state.LiveFailed, state.LiveKilled:
		c.CompletionReason = "" // the status and the error say it
	}
	c.Error = truncate(firstLine(c.Error), 60)
	// list gives the question's start (monitor all of it): the budget is
	// ~180 bytes a session.
	c.Question = truncate(c.Question, 120)
	c.CostUSD = float64(int64(c.CostUSD*100+0.5)) / 100
	return c
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return validUTF8Prefix(s[:n]) + "…"
}

// humanDuration prints 45s, 12m03s, 2h05m, 3d04h.
func humanDuration(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
