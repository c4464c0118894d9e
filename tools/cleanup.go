package tools

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/state"
)

// ArchiveDir is where prune moves finished run directories, inside
// .claude/pipeline-runs/. Nothing is deleted: delete the archive yourself.
const ArchiveDir = sessions.ArchiveDir

// CleanupArgs are cleanup's arguments.
type CleanupArgs struct {
	DryRun             *bool  `json:"dry_run,omitempty" jsonschema:"only report what would be done (default true); set false to act"`
	KillOrphans        bool   `json:"kill_orphans,omitempty" jsonschema:"close orphan tmux sessions (no run directory) and zombie ones (engine gone)"`
	KillStale          bool   `json:"kill_stale,omitempty" jsonschema:"kill sessions running for more than 2 hours"`
	MarkCrashed        bool   `json:"mark_crashed,omitempty" jsonschema:"record crashed sessions as failed (they stay resumable)"`
	RemoveStaleLocks   bool   `json:"remove_stale_locks,omitempty" jsonschema:"remove lock files no process holds"`
	PruneOlderThanDays int    `json:"prune_older_than_days,omitempty" jsonschema:"move run directories of sessions that ended more than this many days ago into .claude/pipeline-runs/.archive/ (0: do not prune)"`
	ProjectDir         string `json:"project_dir,omitempty" jsonschema:"project whose run directories to examine (default: the server's working directory)"`
	RemoveWorktrees    bool   `json:"remove_worktrees,omitempty" jsonschema:"remove ended sessions' clean worktrees (git worktree remove); a dirty one is kept, and branches are never deleted"`
}

// CleanupItem is one finding.
type CleanupItem struct {
	Session     string `json:"session" jsonschema:"session name"`
	Detail      string `json:"detail" jsonschema:"what was found"`
	TmuxSession string `json:"tmux_session,omitempty" jsonschema:"orphans and zombies: the tmux session"`
	Host        string `json:"host,omitempty" jsonschema:"the host it is on, from hosts.yaml (absent: this machine)"`

	Status state.Status `json:"-"` // the group says it
	Path   string       `json:"-"` // follows from the session and project
}

// CleanupAction is one thing done (or that would be done).
type CleanupAction struct {
	Action  string `json:"action" jsonschema:"kill_orphan, kill_zombie, kill_stale, mark_crashed, remove_stale_lock, prune or remove_worktree"`
	Session string `json:"session" jsonschema:"session concerned"`
	Done    bool   `json:"done" jsonschema:"false in a dry run or when it failed"`
	Result  string `json:"result" jsonschema:"what happened"`
	Host    string `json:"host,omitempty" jsonschema:"the host it is on, from hosts.yaml (absent: this machine)"`
}

// CleanupResult is cleanup's result; empty groups are left out.
type CleanupResult struct {
	DryRun     bool            `json:"dry_run" jsonschema:"nothing was changed"`
	Orphans    []CleanupItem   `json:"orphans,omitempty" jsonschema:"loop-*/pipeline-* tmux sessions with no run directory"`
	Zombies    []CleanupItem   `json:"zombies,omitempty" jsonschema:"tmux sessions whose engine is gone"`
	Crashed    []CleanupItem   `json:"crashed,omitempty" jsonschema:"sessions whose engine died while running (resumable)"`
	Stale      []CleanupItem   `json:"stale,omitempty" jsonschema:"sessions running for more than 2 hours"`
	StaleLocks []CleanupItem   `json:"stale_locks,omitempty" jsonschema:"lock files no process holds"`
	Prunable   []CleanupItem   `json:"prunable,omitempty" jsonschema:"run directories of sessions that ended before the prune cutoff"`
	Worktrees  []WorktreeItem  `json:"worktrees,omitempty" jsonschema:"worktrees of sessions not running, with their branches' unmerged commits"`
	Actions    []CleanupAction `json:"actions,omitempty" jsonschema:"what was done, or would be done without dry_run"`
	Warnings   []string        `json:"warnings,omitempty" jsonschema:"what could not be seen"`
	NextSteps  []Option        `json:"next_steps,omitempty" jsonschema:"calls to make next, with complete arguments"`

	ProjectDir string `json:"-"` // the one asked for, or the server's
}

// Cleanup is the cleanup tool.
func Cleanup(d *Deps) server.ServerTool {
	tool := mcp.NewTool("cleanup",
		mcp.WithToolTitle("Find and clean up stale sessions"),
		mcp.WithDescription("Report orphan tmux sessions, zombies, crashed and stale sessions, stale lock files and old run directories — and, only with dry_run false and the matching flags, act on them: close orphans/zombies, kill stale sessions, mark crashed ones failed, remove stale locks, archive old runs. A dry run (the default) changes nothing. Nothing is ever deleted: pruned runs are moved to .claude/pipeline-runs/.archive/."),
		inputSchema[CleanupArgs](map[string]propPatch{
			"dry_run":               {Default: true},
			"kill_orphans":          {Default: false},
			"kill_stale":            {Default: false},
			"mark_crashed":          {Default: false},
			"remove_stale_locks":    {Default: false},
			"remove_worktrees":      {Default: false},
			"prune_older_than_days": {Min: num(0), Max: num(3650)},
		}),
		outputSchema[CleanupResult](),
		annotations("Find and clean up stale sessions", false, true, true, false),
	)
	return server.ServerTool{Tool: tool, Handler: typed(d.cleanup)}
}

func (d *Deps) cleanup(ctx context.Context, _ mcp.CallToolRequest, a CleanupArgs) (CleanupResult, string, error) {
	if a.PruneOlderThanDays < 0 {
		return CleanupResult{}, "", invalidf("prune_older_than_days must be 0 or more, got %d", a.PruneOlderThanDays)
	}
	project, err := d.projectDir(a.ProjectDir)
	if err != nil {
		return CleanupResult{}, "", err
	}
	dry := a.DryRun == nil || *a.DryRun
	res := CleanupResult{DryRun: dry, ProjectDir: project}
	h := d.host()
	infos, warnings := h.Discover(ctx, project, sessions.Summary)
	act := func(enabled bool, action, session string, do func() (string, error)) {
		if !enabled {
			return
		}
		ca := CleanupAction{Action: action, Session: session}
		if dry {
			ca.Result = "would " + strings.ReplaceAll(action, "_", " ")
		} else if msg, err := do(); err != nil {
			ca.Result = "failed: " + err.Error()
		} else {
			ca.Done, ca.Result = true, msg
		}
		res.Actions = append(res.Actions, ca)
	}
	for _, info := range infos {
		d.cleanupSession(ctx, h, info, a, act, &res)
	}
	d.cleanupWorktrees(ctx, project, infos, a.RemoveWorktrees, act, &res)
	res.NextSteps = cleanupNext(res, a)
	for _, w := range warnings {
		if strings.HasPrefix(w, "tmux did not answer") {
			res.Warnings = append(res.Warnings, "tmux did not answer, so orphan and zombie tmux sessions could not be seen: run cleanup again once it answers")
		}
	}
	return res, cleanupText(res), nil
}

// actFunc records one cleanup action: done when enabled and not a dry run.
type actFunc func(enabled bool, action, session string, do func() (string, error))

// cleanupSession files one session under what cleanup found, and acts on
// it as the flags ask.
func (d *Deps) cleanupSession(ctx context.Context, h Host, info sessions.Info, a CleanupArgs, act actFunc, res *CleanupResult) {
	item := CleanupItem{Session: info.Name, Status: info.Live.Status, Detail: info.Live.Why}
	if info.Tmux != nil {
		item.TmuxSession = info.Tmux.Name
	}
	closeTmux := func(what string) func() (string, error) {
		return func() (string, error) {
			if err := h.CloseTmux(ctx, info.Tmux.Name); err != nil {
				return "", err
			}
			return "closed tmux session " + info.Tmux.Name + what, nil
		}
	}
	stop := func() (string, error) { return strings.Join(h.Stop(ctx, info), "; "), nil }
	if info.Tmux != nil && info.Tmux.PaneDead && info.Live.Status != state.LiveOrphan {
		dead := item
		dead.Detail = "its tmux session remains with a dead pane (remain-on-exit is on)"
		res.Zombies = append(res.Zombies, dead)
		act(a.KillOrphans, "kill_zombie", info.Name, closeTmux(" (its pane was dead)"))
	}
	switch info.Live.Status {
	case state.LiveOrphan:
		res.Orphans = append(res.Orphans, item)
		act(a.KillOrphans, "kill_orphan", info.Name, closeTmux(""))
	case state.LiveZombie:
		res.Zombies = append(res.Zombies, item)
		act(a.KillOrphans, "kill_zombie", info.Name, stop)
	case state.LiveCrashed:
		item.Path = info.Layout.RunDir()
		if n := h.AgentsLeft(info); n > 0 {
			item.Detail += fmt.Sprintf("; %d of its agent processes still run (mark_crashed or kill stops them)", n)
		}
		res.Crashed = append(res.Crashed, item)
		act(a.MarkCrashed, "mark_crashed", info.Name, func() (string, error) { return h.MarkCrashed(info) })
	}
	if info.Live.Stale {
		item.Detail = "running for " + humanDuration(info.Live.Age)
		res.Stale = append(res.Stale, item)
		act(a.KillStale, "kill_stale", info.Name, stop)
	}
	if info.Live.StaleLock {
		lockItem := CleanupItem{Session: info.Name, Status: info.Live.Status, Detail: "lock file exists but no process holds it", Path: info.Layout.LockFile()}
		if info.Lock.Info != nil {
			lockItem.Detail += fmt.Sprintf(" (it names pid %d, started %s)", info.Lock.Info.PID, info.Lock.Info.StartedAt.Format(time.RFC3339))
		}
		res.StaleLocks = append(res.StaleLocks, lockItem)
		act(a.RemoveStaleLocks, "remove_stale_lock", info.Name, func() (string, error) { return h.RemoveStaleLock(info.Layout.LockFile()) })
	}
	now := d.now()
	cutoff := now.Add(-time.Duration(a.PruneOlderThanDays) * 24 * time.Hour)
	if a.PruneOlderThanDays > 0 && info.State != nil && state.Terminal(info.State.Status) && info.State.CompletedAt != nil &&
		info.State.CompletedAt.Before(cutoff) && info.Tmux == nil && !info.Lock.Held {
		item.Path = info.Layout.RunDir()
		item.Detail = fmt.Sprintf("%s %s ago", info.State.Status, humanDuration(now.Sub(*info.State.CompletedAt)))
		res.Prunable = append(res.Prunable, item)
		act(true, "prune", info.Name, func() (string, error) { return h.Archive(info) })
	}
}

// cleanupNext are the calls that follow a cleanup report, each complete.
func cleanupNext(r CleanupResult, a CleanupArgs) []Option {
	var next []Option
	act := func(args map[string]any, why string) {
		args["dry_run"] = false
		if a.ProjectDir != "" {
			args["project_dir"] = a.ProjectDir
		}
		next = append(next, Option{Tool: "cleanup", Arguments: args, Description: why})
	}
	if r.DryRun && len(r.Actions) > 0 {
		args := map[string]any{}
		for k, v := range map[string]bool{"kill_orphans": a.KillOrphans, "kill_stale": a.KillStale, "mark_crashed": a.MarkCrashed, "remove_stale_locks": a.RemoveStaleLocks, "remove_worktrees": a.RemoveWorktrees} {
			if v {
				args[k] = true
			}
		}
		if a.PruneOlderThanDays > 0 {
			args["prune_older_than_days"] = a.PruneOlderThanDays
		}
		act(args, "do the actions listed")
	}
	if len(r.Orphans)+len(r.Zombies) > 0 && !a.KillOrphans {
		act(map[string]any{"kill_orphans": true}, "close the orphan and zombie tmux sessions")
	}
	if len(r.Crashed) > 0 && a.ProjectDir == "" {
		next = append(next, Option{Tool: "start_session", Arguments: map[string]any{"session": r.Crashed[0].Session, "mode": "resume"},
			Description: fmt.Sprintf("continue crashed %s (%d crashed)", r.Crashed[0].Session, len(r.Crashed))})
	}
	if len(r.Crashed) > 0 && !a.MarkCrashed {
		act(map[string]any{"mark_crashed": true}, "record the crashed sessions as failed (they stay resumable)")
	}
	if len(r.Stale) > 0 && !a.KillStale {
		act(map[string]any{"kill_stale": true}, "stop the sessions running for over 2 hours")
	}
	if len(r.StaleLocks) > 0 && !a.RemoveStaleLocks {
		act(map[string]any{"remove_stale_locks": true}, "remove the lock files no process holds")
	}
	return next
}

func cleanupText(r CleanupResult) string {
	var b strings.Builder
	mode := "Cleanup"
	if r.DryRun {
		mode = "Cleanup (dry run — nothing changed)"
	}
	fmt.Fprintf(&b, "%s: %d orphan(s), %d zombie(s), %d crashed, %d stale, %d stale lock(s), %d prunable.\n", mode,
		len(r.Orphans), len(r.Zombies), len(r.Crashed), len(r.Stale), len(r.StaleLocks), len(r.Prunable))
	for _, group := range []struct {
		name  string
		items []CleanupItem
	}{{"orphan", r.Orphans}, {"zombie", r.Zombies}, {"crashed", r.Crashed}, {"stale", r.Stale}, {"stale lock", r.StaleLocks}, {"prunable", r.Prunable}} {
		for _, it := range group.items {
			fmt.Fprintf(&b, "- %s %s: %s\n", group.name, it.Session, it.Detail)
		}
	}
	for _, w := range r.Worktrees {
		fmt.Fprintf(&b, "- worktree %s: %s (branch %s, %d unmerged commit(s)%s)\n", w.Session, w.Dir, w.Branch, w.Unmerged, map[bool]string{true: ", dirty: kept", false: ""}[w.Dirty])
	}
	for _, a := range r.Actions {
		fmt.Fprintf(&b, "* %s %s: %s\n", a.Action, a.Session, a.Result)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "Warning: %s\n", w)
	}
	for _, n := range r.NextSteps {
		fmt.Fprintf(&b, "Next: %s\n", callText(n))
	}
	return strings.TrimRight(b.String(), "\n")
}
