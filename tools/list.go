package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/state"
)

// Paging of list: Claude reads the whole structuredContent of every answer,
// so a project with hundreds of sessions shows a page of them — the ones
// that need attention first — and counts the rest.
const (
	listDefaultLimit = 30
	listMaxLimit     = 30
	listByteLimit    = 6 << 10
	// The budget of a page: a base plus so much per session shown, and
	// never more than listByteLimit (SPEC §13).
	listBaseBytes       = 300
	listPerSessionBytes = 180
)

// ListArgs are list's arguments.
type ListArgs struct {
	ProjectDir      string `json:"project_dir,omitempty" jsonschema:"project whose run directories to read (default: the server's working directory); tmux sessions of every project are listed too"`
	IncludeFinished *bool  `json:"include_finished,omitempty" jsonschema:"include complete, failed and killed sessions (default true)"`
	IncludeCatalog  bool   `json:"include_catalog,omitempty" jsonschema:"also list the stages and pipelines that can be started"`
	Offset          int    `json:"offset,omitempty" jsonschema:"skip this many sessions (in the order shown: those needing attention first); for paging"`
	Limit           int    `json:"limit,omitempty" jsonschema:"show at most this many sessions (default and maximum 30); every session is counted in counts whatever the page"`
}

// Counts counts sessions by status; a zero count is left out.
type Counts struct {
	Total     int `json:"total" jsonschema:"sessions in all (shown or not)"`
	Running   int `json:"running,omitempty" jsonschema:"engines alive"`
	Starting  int `json:"starting,omitempty" jsonschema:"tmux sessions whose engine is starting"`
	Complete  int `json:"complete,omitempty" jsonschema:"finished normally"`
	Failed    int `json:"failed,omitempty" jsonschema:"ended with an error"`
	Killed    int `json:"killed,omitempty" jsonschema:"stopped by a user"`
	Crashed   int `json:"crashed,omitempty" jsonschema:"engine gone while running; resumable"`
	Orphan    int `json:"orphan,omitempty" jsonschema:"tmux sessions with no run directory"`
	Zombie    int `json:"zombie,omitempty" jsonschema:"tmux sessions whose engine is gone"`
	Stale     int `json:"stale,omitempty" jsonschema:"running for more than 2 hours"`
	StaleLock int `json:"stale_lock,omitempty" jsonschema:"lock files no process holds, with no run directory"`
	Waiting   int `json:"waiting,omitempty" jsonschema:"waiting for the user's answer to a question (reply)"`
	Parked    int `json:"parked,omitempty" jsonschema:"waiting out a usage or rate limit; they go on by themselves"`
}

// CatalogEntry is a stage or pipeline that can be started.
type CatalogEntry struct {
	Kind        string `json:"kind" jsonschema:"stage or pipeline"`
	Name        string `json:"name" jsonschema:"name to pass to start_session"`
	Description string `json:"description,omitempty" jsonschema:"what it does (shortened)"`
	Termination string `json:"termination" jsonschema:"how it ends: a completion strategy, or the pipeline's stages"`
	DefaultMax  int    `json:"default_max" jsonschema:"default iteration limit (pipelines: total runs of all stages)"`
	Source      string `json:"source,omitempty" jsonschema:"where it was found when not built in: .claude/stages, scripts/loops, .claude/pipelines or scripts/pipelines"`
}

// ListResult is list's result.
type ListResult struct {
	ProjectDir      string         `json:"project_dir" jsonschema:"project whose run directories were read"`
	Counts          Counts         `json:"counts" jsonschema:"every session by status, shown or not"`
	Sessions        []Summary      `json:"sessions" jsonschema:"a page of sessions, those that need attention first (crashed, zombie, orphan, failed, stale), then running, then finished"`
	Offset          int            `json:"offset,omitempty" jsonschema:"sessions skipped before this page"`
	Warnings        []string       `json:"warnings,omitempty" jsonschema:"what could not be seen or read"`
	Catalog         []CatalogEntry `json:"catalog,omitempty" jsonschema:"with include_catalog: the stages and pipelines that can be started"`
	CatalogProblems []string       `json:"catalog_problems,omitempty" jsonschema:"definitions that could not be read (run agent-sessions lint)"`
	NextSteps       []Option       `json:"next_steps,omitempty" jsonschema:"calls to make next, with complete arguments: the next page, resuming a crashed session, closing orphans"`
}

// List is the list tool.
func List(d *Deps) server.ServerTool {
	tool := mcp.NewTool("list",
		mcp.WithToolTitle("List sessions"),
		mcp.WithDescription("List agent sessions — running, finished, crashed, orphaned — with status, stage, iteration and age, those that need attention first; counts cover every session, and offset/limit page through more than 30. With include_catalog, also list the stages and pipelines that can be started. Reads only; makes no tmux call beyond one list-sessions."),
		inputSchema[ListArgs](map[string]propPatch{
			"include_finished": {Default: true}, "include_catalog": {Default: false},
			"offset": {Min: num(0)}, "limit": {Default: listDefaultLimit, Min: num(1), Max: num(listMaxLimit)},
		}),
		outputSchema[ListResult](),
		annotations("List sessions", true, false, true, false),
	)
	return server.ServerTool{Tool: tool, Handler: typed(d.list)}
}

func (d *Deps) list(ctx context.Context, _ mcp.CallToolRequest, a ListArgs) (ListResult, string, error) {
	if a.Offset < 0 {
		return ListResult{}, "", invalidf("offset must be 0 or more, got %d", a.Offset)
	}
	if a.Limit == 0 {
		a.Limit = listDefaultLimit
	}
	if a.Limit < 1 || a.Limit > listMaxLimit {
		return ListResult{}, "", invalidf("limit must be between 1 and %d, got %d", listMaxLimit, a.Limit)
	}
	project, err := d.projectDir(a.ProjectDir)
	if err != nil {
		return ListResult{}, "", err
	}
	infos, warnings := d.host().Discover(ctx, project, sessions.Summary)
	res := ListResult{ProjectDir: project, Sessions: []Summary{}, Warnings: warnings, Offset: a.Offset}
	includeFinished := a.IncludeFinished == nil || *a.IncludeFinished
	var all []Summary
	for _, info := range infos {
		s := summarize(info)
		if !includeFinished && s.Status.Finished() {
			continue
		}
		res.Counts.add(s)
		all = append(all, s.compact(project))
	}
	sort.SliceStable(all, func(i, j int) bool { return attention(all[i]) < attention(all[j]) })
	if a.Offset < len(all) {
		res.Sessions = all[a.Offset:min(len(all), a.Offset+a.Limit)]
	}
	if a.IncludeCatalog {
		entries, problems := d.host().Catalog(project)
		for _, e := range entries {
			ce := CatalogEntry{Kind: e.Kind, Name: e.Name, Description: sessions.Truncate(e.Description, 100), Termination: e.Termination, DefaultMax: e.DefaultMax}
			if e.Source != "builtin" {
				ce.Source = e.Source
			}
			res.Catalog = append(res.Catalog, ce)
		}
		for _, p := range problems {
			res.CatalogProblems = append(res.CatalogProblems, sessions.Truncate(p.String(), 300))
		}
	}
	fitPage(&res, all, a)
	return res, listText(res), nil
}

// fitPage sets the next steps and, should the page still exceed the byte
// budget (long names, many catalog entries), shows fewer sessions: what
// Claude reads stays bounded whatever is on disk.
func fitPage(res *ListResult, all []Summary, a ListArgs) {
	for {
		res.NextSteps = listNext(*res, all, a)
		data, _ := json.Marshal(res)
		if len(data) <= min(listBaseBytes+listPerSessionBytes*len(res.Sessions), listByteLimit) || len(res.Sessions) <= 1 {
			return
		}
		res.Sessions = res.Sessions[:len(res.Sessions)-1]
	}
}

// listNext are the calls that follow a list: the next page, and what the
// sessions needing attention call for.
func listNext(r ListResult, all []Summary, a ListArgs) []Option {
	var next []Option
	if end := r.Offset + len(r.Sessions); end < len(all) {
		args := map[string]any{"offset": end}
		if a.ProjectDir != "" {
			args["project_dir"] = a.ProjectDir
		}
		if a.IncludeFinished != nil {
			args["include_finished"] = *a.IncludeFinished
		}
		next = append(next, Option{Tool: "list", Arguments: args, Description: fmt.Sprintf("the next %d of %d sessions", min(len(all)-end, listMaxLimit), len(all)-end)})
	}
	if r.Counts.Orphan+r.Counts.Zombie > 0 {
		next = append(next, Option{Tool: "cleanup", Arguments: map[string]any{"dry_run": false, "kill_orphans": true}, Description: "close the orphan and zombie tmux sessions"})
	}
	for _, s := range all {
		if s.Status == state.LiveCrashed && s.ProjectDir == "" {
			next = append(next, Option{Tool: "start_session", Arguments: map[string]any{"session": s.Session, "mode": "resume"},
				Description: fmt.Sprintf("continue crashed %s (%d crashed in all)", s.Session, r.Counts.Crashed)})
			break
		}
	}
	if r.Counts.StaleLock > 0 {
		next = append(next, Option{Tool: "cleanup", Arguments: map[string]any{"dry_run": false, "remove_stale_locks": true}, Description: "remove lock files no process holds"})
	}
	return next
}

// attention orders list: what needs a person first.
func attention(s Summary) int { return s.Status.Attention(s.Stale) }

func (c *Counts) add(s Summary) {
	c.Total++
	switch s.Status {
	case state.LiveRunning:
		c.Running++
	case state.LiveStarting:
		c.Starting++
	case state.LiveWaiting:
		c.Waiting++
	case state.LiveParked:
		c.Parked++
	case state.LiveComplete:
		c.Complete++
	case state.LiveFailed:
		c.Failed++
	case state.LiveKilled:
		c.Killed++
	case state.LiveCrashed:
		c.Crashed++
	case state.LiveOrphan:
		c.Orphan++
	case state.LiveZombie:
		c.Zombie++
	case LiveStaleLock:
		c.StaleLock++
	}
	if s.Stale {
		c.Stale++
	}
}

func sessionWarning(s Summary) string {
	switch {
	case s.Status == state.LiveOrphan:
		return fmt.Sprintf("%s: orphan tmux session %s has no run directory; cleanup with kill_orphans removes it", s.Session, s.TmuxSession)
	case s.Status == state.LiveZombie:
		return fmt.Sprintf("%s: zombie — tmux session %s is open but its engine is gone; cleanup with kill_orphans closes it", s.Session, s.TmuxSession)
	case s.Status == state.LiveCrashed:
		return fmt.Sprintf("%s: crashed at iteration %d; start_session with mode resume continues it", s.Session, s.IterationCompleted+1)
	case s.Stale:
		return fmt.Sprintf("%s: running for %s (over 2 hours); check it with monitor", s.Session, s.Age)
	case s.StaleLock:
		return fmt.Sprintf("%s: stale lock file (no process holds it); cleanup with remove_stale_locks removes it", s.Session)
	}
	return ""
}

func listText(r ListResult) string {
	var b strings.Builder
	if r.Counts.Total == 0 {
		b.WriteString("No agent sessions.\n")
	} else {
		fmt.Fprintf(&b, "%d session(s): %d running", r.Counts.Total, r.Counts.Running)
		for _, kv := range []struct {
			n    int
			name string
		}{{r.Counts.Waiting, "waiting"}, {r.Counts.Parked, "parked"}, {r.Counts.Starting, "starting"}, {r.Counts.Complete, "complete"}, {r.Counts.Failed, "failed"}, {r.Counts.Killed, "killed"},
			{r.Counts.Crashed, "crashed"}, {r.Counts.Orphan, "orphan"}, {r.Counts.Zombie, "zombie"}, {r.Counts.StaleLock, "stale lock"}} {
			if kv.n > 0 {
				fmt.Fprintf(&b, ", %d %s", kv.n, kv.name)
			}
		}
		if len(r.Sessions) < r.Counts.Total {
			fmt.Fprintf(&b, " (showing %d from %d)", len(r.Sessions), r.Offset+1)
		}
		b.WriteString("\n")
		for _, s := range r.Sessions {
			b.WriteString(summaryLine(s) + "\n")
		}
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	if len(r.Catalog) > 0 {
		b.WriteString("Available to start:\n")
		for _, e := range r.Catalog {
			src := e.Source
			if src == "" {
				src = "builtin"
			}
			fmt.Fprintf(&b, "- %s %s (%s, max %d, %s): %s\n", e.Kind, e.Name, e.Termination, e.DefaultMax, src, e.Description)
		}
	}
	if len(r.CatalogProblems) > 0 {
		b.WriteString("Definitions that could not be read (run agent-sessions lint):\n")
		for _, p := range r.CatalogProblems {
			fmt.Fprintf(&b, "- %s\n", p)
		}
	}
	for _, n := range r.NextSteps {
		fmt.Fprintf(&b, "Next: %s\n", callText(n))
	}
	return strings.TrimRight(b.String(), "\n")
}

func summaryLine(s Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "- %s [%s] %s", s.Session, s.Status, first(s.Definition, s.TmuxSession))
	b.WriteString(strings.TrimPrefix(guardrailNote(s), "."))
	if s.MaxIterations > 0 {
		if s.StageCount > 1 {
			fmt.Fprintf(&b, " stage %d/%d %s", s.StageNumber, s.StageCount, s.StageName)
		}
		fmt.Fprintf(&b, " iteration %d/%d", s.IterationCompleted, s.MaxIterations)
	}
	if s.Age != "" {
		fmt.Fprintf(&b, " · %s", s.Age)
	}
	if s.CompletionReason != "" {
		fmt.Fprintf(&b, " · %s", s.CompletionReason)
	}
	if s.Commits != nil {
		fmt.Fprintf(&b, " · %d commit(s)", *s.Commits)
	}
	if s.Branch != "" {
		fmt.Fprintf(&b, " · branch %s", s.Branch)
	}
	if s.FailedIterations > 0 {
		fmt.Fprintf(&b, " · %d failed iteration(s)", s.FailedIterations)
	}
	if s.Why != "" {
		fmt.Fprintf(&b, " · %s", s.Why)
	}
	if s.ProjectDir != "" {
		fmt.Fprintf(&b, " · in %s", s.ProjectDir)
	}
	return b.String()
}

// callText writes a call as Claude would make it: tool {arguments} — why.
func callText(o Option) string {
	args := ""
	if len(o.Arguments) > 0 {
		args = " " + compactJSON(o.Arguments)
	}
	return o.Tool + args + " — " + o.Description
}
