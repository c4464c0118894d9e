package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
)

// ListArgs are list's arguments.
type ListArgs struct {
	ProjectDir      string `json:"project_dir,omitempty" jsonschema:"project whose run directories to read (default: the server's working directory); tmux sessions of every project are listed too"`
	IncludeFinished *bool  `json:"include_finished,omitempty" jsonschema:"include complete, failed and killed sessions (default true)"`
	IncludeCatalog  bool   `json:"include_catalog,omitempty" jsonschema:"also list the stages and pipelines that can be started"`
}

// Counts counts sessions by status.
type Counts struct {
	Total    int `json:"total" jsonschema:"sessions listed"`
	Running  int `json:"running" jsonschema:"engines alive"`
	Starting int `json:"starting" jsonschema:"tmux sessions whose engine is starting"`
	Complete int `json:"complete" jsonschema:"finished normally"`
	Failed   int `json:"failed" jsonschema:"ended with an error"`
	Killed   int `json:"killed" jsonschema:"stopped by a user"`
	Crashed  int `json:"crashed" jsonschema:"engine gone while running; resumable"`
	Orphan   int `json:"orphan" jsonschema:"tmux sessions with no run directory"`
	Zombie   int `json:"zombie" jsonschema:"tmux sessions whose engine is gone"`
	Stale    int `json:"stale" jsonschema:"running for more than 2 hours"`
	Waiting  int `json:"waiting,omitempty" jsonschema:"waiting for the user's answer to a question (reply)"`
	Parked   int `json:"parked,omitempty" jsonschema:"waiting out a usage or rate limit; they go on by themselves"`
}

// ListResult is list's result.
type ListResult struct {
	ProjectDir      string         `json:"project_dir" jsonschema:"project whose run directories were read"`
	Sessions        []Summary      `json:"sessions" jsonschema:"every session, what needs attention first"`
	Counts          Counts         `json:"counts" jsonschema:"sessions by status"`
	Warnings        []string       `json:"warnings" jsonschema:"orphans, zombies, crashed and stale sessions, and anything that could not be read"`
	Catalog         []engine.Entry `json:"catalog,omitempty" jsonschema:"with include_catalog: the stages and pipelines that can be started"`
	CatalogProblems []string       `json:"catalog_problems,omitempty" jsonschema:"definitions that could not be read (run agent-sessions lint)"`
}

// List is the list tool.
func List(d *Deps) server.ServerTool {
	tool := mcp.NewTool("list",
		mcp.WithToolTitle("List sessions"),
		mcp.WithDescription("List every agent session — running, finished, crashed, orphaned — with its status, stage, iteration and age, plus warnings for sessions that need attention. With include_catalog, also list the stages and pipelines that can be started. Reads only; makes no tmux call beyond one list-sessions."),
		inputSchema[ListArgs](map[string]propPatch{"include_finished": {Default: true}, "include_catalog": {Default: false}}),
		outputSchema[ListResult](),
		annotations("List sessions", true, false, true, false),
	)
	return server.ServerTool{Tool: tool, Handler: typed(d.list)}
}

func (d *Deps) list(ctx context.Context, _ mcp.CallToolRequest, a ListArgs) (ListResult, string, error) {
	project, err := d.projectDir(a.ProjectDir)
	if err != nil {
		return ListResult{}, "", err
	}
	infos, warnings := d.discover(ctx, project)
	res := ListResult{ProjectDir: project, Sessions: []Summary{}, Warnings: warnings}
	if res.Warnings == nil {
		res.Warnings = []string{}
	}
	includeFinished := a.IncludeFinished == nil || *a.IncludeFinished
	for _, info := range infos {
		s := d.summarize(info)
		if !includeFinished && (s.Status == state.LiveComplete || s.Status == state.LiveFailed || s.Status == state.LiveKilled) {
			continue
		}
		res.Sessions = append(res.Sessions, s)
		res.Counts.add(s)
		if w := sessionWarning(s); w != "" {
			res.Warnings = append(res.Warnings, w)
		}
	}
	if a.IncludeCatalog {
		entries, problems := engine.NewCatalog(project).List()
		res.Catalog = entries
		for _, p := range problems {
			res.CatalogProblems = append(res.CatalogProblems, p.String())
		}
	}
	return res, listText(res), nil
}

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
	if len(r.Sessions) == 0 {
		b.WriteString("No agent sessions.")
	} else {
		fmt.Fprintf(&b, "%d session(s): %d running", r.Counts.Total, r.Counts.Running)
		for _, kv := range []struct {
			n    int
			name string
		}{{r.Counts.Starting, "starting"}, {r.Counts.Complete, "complete"}, {r.Counts.Failed, "failed"}, {r.Counts.Killed, "killed"},
			{r.Counts.Crashed, "crashed"}, {r.Counts.Orphan, "orphan"}, {r.Counts.Zombie, "zombie"}} {
			if kv.n > 0 {
				fmt.Fprintf(&b, ", %d %s", kv.n, kv.name)
			}
		}
		b.WriteString("\n")
		for _, s := range r.Sessions {
			fmt.Fprintf(&b, "- %s [%s] %s", s.Session, s.Status, first(s.Definition, s.TmuxSession))
			if s.MaxIterations > 0 {
				if s.StageCount > 1 {
					fmt.Fprintf(&b, " stage %d/%d %s", s.StageNumber, s.StageCount, s.Stage)
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
			b.WriteString("\n")
		}
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	if len(r.Catalog) > 0 {
		b.WriteString("Available to start:\n")
		for _, e := range r.Catalog {
			fmt.Fprintf(&b, "- %s %s (%s, max %d, %s): %s\n", e.Kind, e.Name, e.Termination, e.DefaultMax, e.Source, e.Description)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}
