package tools

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/state"
)

// projectDir resolves a project_dir argument ("" = the server's).
func (d *Deps) projectDir(arg string) (string, error) {
	p, err := d.host().ResolveProject(arg)
	if err != nil {
		return "", toolError(err)
	}
	return p, nil
}

// resolve finds one named session: in project_dir when given, else in the
// server's project, else wherever its tmux session was started.
func (d *Deps) resolve(ctx context.Context, name, projectArg string) (sessions.Info, error) {
	if err := state.ValidateSession(name); err != nil {
		return sessions.Info{}, invalidf("%v", err).with(Option{Tool: "list", Description: "see the sessions that exist"})
	}
	info, err := d.host().Find(ctx, name, projectArg)
	if err != nil {
		return info, toolError(err)
	}
	return info, nil
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

func summarize(info sessions.Info) Summary {
	s := Summary{
		Session: info.Name, Status: info.Live.Status, Why: info.Live.Why, Stale: info.Live.Stale, StaleLock: info.Live.StaleLock,
		ProjectDir: info.ProjectDir, TmuxSession: info.TmuxName(), AgeSeconds: int64(info.Live.Age.Seconds()), Age: humanDuration(info.Live.Age),
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
		s.Branch = info.Branch()
		s.StartedAt = st.StartedAt.Format(time.RFC3339)
		s.CompletionReason, s.Error = st.CompletionReason, sessions.Truncate(st.Error, 500)
		s.CostUSD = st.Cost.USD
		s.Commits = commitCount(st)
		s.FailedIterations = st.FailedIterations
		s.MaxCostUSD, s.Question, s.ParkedUntil, s.ParkedReason = guardrailsOf(st, 300)
	}
	if info.StateErr != nil {
		s.Why += " (" + sessions.Truncate(info.StateErr.Error(), 200) + ")"
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
	c.Error = sessions.Truncate(firstLine(c.Error), 60)
	// list gives the question's start (monitor all of it): the budget is
	// ~180 bytes a session.
	c.Question = sessions.Truncate(c.Question, 120)
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
