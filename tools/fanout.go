package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agent-sessions/agent-sessions/remote"
	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/state"
)

// fanHandler answers a call without host for every host at once.
type fanHandler func(ctx context.Context, req mcp.CallToolRequest, args map[string]any) (*mcp.CallToolResult, error)

// fanOut is the every-host form of the tools that have one (SPEC §17): list
// and cleanup's dry run. Other tools run on one host.
func (d *Deps) fanOut(tool string) fanHandler {
	switch tool {
	case "list":
		return d.listAll
	case "cleanup":
		return d.cleanupAll
	}
	return nil
}

// hostAnswer is one host's answer in a fan-out.
type hostAnswer struct {
	host string
	raw  json.RawMessage
	err  error
}

// eachHost calls tool on every configured host in parallel, each within
// the fan-out timeout, and returns the answers in hosts.yaml order.
// project_dir is a path on this machine: each host answers for its own
// default project (and, as here, the tmux sessions of every project).
func (d *Deps) eachHost(ctx context.Context, tool string, args map[string]any) []hostAnswer {
	if _, ok := args["project_dir"]; ok {
		rest := make(map[string]any, len(args))
		for k, v := range args {
			if k != "project_dir" {
				rest[k] = v
			}
		}
		args = rest
	}
	names := d.Hosts.Names()
	timeout := d.Hosts.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	answers := make(chan hostAnswer, len(names))
	for _, name := range names {
		go func() {
			// A fan-out is list or cleanup's dry run: nothing changes there.
			raw, err := d.Hosts.call(ctx, name, tool, args, true)
			answers <- hostAnswer{host: name, raw: raw, err: err}
		}()
	}
	// The bound is the caller's: a host whose call is still cleaning up
	// (ssh given two seconds to exit) is reported as not answering rather
	// than waited for.
	got := map[string]hostAnswer{}
	done := ctx.Done()
	var late <-chan time.Time // a moment for answers already on their way
	for len(got) < len(names) {
		select {
		case a := <-answers:
			got[a.host] = a
		case <-done:
			done, late = nil, time.After(100*time.Millisecond)
		case <-late:
			return fanResults(names, got, timeout)
		}
	}
	return fanResults(names, got, timeout)
}

// fanResults are the answers in hosts.yaml order, a host without one
// reported as not answering in time.
func fanResults(names []string, got map[string]hostAnswer, timeout time.Duration) []hostAnswer {
	out := make([]hostAnswer, len(names))
	for i, name := range names {
		a, ok := got[name]
		if !ok {
			a = hostAnswer{host: name, err: fmt.Errorf("no answer within %s (its sessions are not affected)", timeout)}
		}
		out[i] = a
	}
	return out
}

// hostWarning says a host could not answer a fan-out: a warning, never a
// failed call.
func hostWarning(a hostAnswer) string {
	msg := a.err.Error()
	var re *remote.Error
	if errors.As(a.err, &re) {
		msg = re.Msg
	} else if te, ok := a.err.(*ToolError); ok {
		msg = te.Message
	}
	// Terse: list's byte budget holds with a warning per host.
	return fmt.Sprintf("host %s left out: %s", a.host, sessions.Truncate(msg, 110))
}

// listAll is list across this machine and every host: counts over all,
// one page of the sessions that need attention first, each remote one
// carrying its host. Paging (offset) is per host: list with host and offset.
func (d *Deps) listAll(ctx context.Context, req mcp.CallToolRequest, args map[string]any) (*mcp.CallToolResult, error) {
	var a ListArgs
	if err := bindArgs(args, &a); err != nil {
		return errorResult(err), nil
	}
	if a.Offset > 0 {
		return typed(d.list)(ctx, req)
	}
	var answers []hostAnswer
	done := make(chan struct{})
	go func() { answers = d.eachHost(ctx, "list", args); close(done) }()
	res, _, err := d.list(ctx, req, a)
	<-done
	if err != nil {
		return errorResult(err), nil
	}
	if a.Limit == 0 {
		a.Limit = listDefaultLimit
	}
	all := res.Sessions
	hidden := map[string]bool{}
	if res.Counts.Total > len(res.Sessions) {
		hidden["local"] = true
	}
	for _, ans := range answers {
		var r ListResult
		if ans.err == nil {
			ans.err = json.Unmarshal(ans.raw, &r)
		}
		if ans.err != nil {
			res.Warnings = append(res.Warnings, hostWarning(ans))
			continue
		}
		for i := range r.Sessions {
			r.Sessions[i].Host = ans.host
		}
		all = append(all, r.Sessions...)
		res.Counts.merge(r.Counts)
		if r.Counts.Total > len(r.Sessions) {
			hidden[ans.host] = true
		}
		for _, w := range r.Warnings {
			res.Warnings = append(res.Warnings, "host "+ans.host+": "+w)
		}
		for _, o := range r.NextSteps {
			res.NextSteps = append(res.NextSteps, withHostOption(o, ans.host))
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return attention(all[i]) < attention(all[j]) })
	res.Sessions = all[:min(len(all), a.Limit)]
	fitHosts(&res, all, hidden)
	return mcp.NewToolResultStructured(res, sessions.BoundText(listText(res), TextLimit)), nil
}

// fitHosts keeps a merged page within list's byte budget, dropping the
// sessions that need attention least, and points at each host's own list
// for the ones not shown.
func fitHosts(res *ListResult, all []Summary, hidden map[string]bool) {
	steps := res.NextSteps
	for {
		res.NextSteps = steps
		for _, s := range all[len(res.Sessions):] {
			hidden[hostOf(s)] = true
		}
		for _, h := range sortedKeys(hidden) {
			res.NextSteps = append(res.NextSteps, Option{Tool: "list", Arguments: map[string]any{"host": h, "offset": 0},
				Description: "all sessions on " + h})
		}
		data, _ := json.Marshal(res)
		if len(data) <= min(listBaseBytes+listPerSessionBytes*len(res.Sessions), listByteLimit) || len(res.Sessions) <= 1 {
			return
		}
		res.Sessions = res.Sessions[:len(res.Sessions)-1]
	}
}

func hostOf(s Summary) string {
	if s.Host == "" {
		return "local"
	}
	return s.Host
}

func sortedKeys(m map[string]bool) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c *Counts) merge(o Counts) {
	c.Total += o.Total
	c.Running += o.Running
	c.Starting += o.Starting
	c.Complete += o.Complete
	c.Failed += o.Failed
	c.Killed += o.Killed
	c.Crashed += o.Crashed
	c.Orphan += o.Orphan
	c.Zombie += o.Zombie
	c.Stale += o.Stale
	c.StaleLock += o.StaleLock
}

// cleanupAll is cleanup's dry run across this machine and every host; a
// cleanup that acts runs on one host (host given, default local).
func (d *Deps) cleanupAll(ctx context.Context, req mcp.CallToolRequest, args map[string]any) (*mcp.CallToolResult, error) {
	var a CleanupArgs
	if err := bindArgs(args, &a); err != nil {
		return errorResult(err), nil
	}
	if a.DryRun != nil && !*a.DryRun {
		return typed(d.cleanup)(ctx, req)
	}
	var answers []hostAnswer
	done := make(chan struct{})
	go func() { answers = d.eachHost(ctx, "cleanup", args); close(done) }()
	res, _, err := d.cleanup(ctx, req, a)
	<-done
	if err != nil {
		return errorResult(err), nil
	}
	for _, ans := range answers {
		var r CleanupResult
		if ans.err == nil {
			ans.err = json.Unmarshal(ans.raw, &r)
		}
		if ans.err != nil {
			res.Warnings = append(res.Warnings, hostWarning(ans))
			continue
		}
		res.mergeHost(r, ans.host)
	}
	return mcp.NewToolResultStructured(res, sessions.BoundText(cleanupText(res), TextLimit)), nil
}

// mergeHost adds a host's dry-run findings, each tagged with the host.
func (r *CleanupResult) mergeHost(o CleanupResult, host string) {
	tag := func(dst *[]CleanupItem, src []CleanupItem) {
		for _, it := range src {
			it.Host = host
			*dst = append(*dst, it)
		}
	}
	tag(&r.Orphans, o.Orphans)
	tag(&r.Zombies, o.Zombies)
	tag(&r.Crashed, o.Crashed)
	tag(&r.Stale, o.Stale)
	tag(&r.StaleLocks, o.StaleLocks)
	tag(&r.Prunable, o.Prunable)
	for _, ac := range o.Actions {
		ac.Host = host
		r.Actions = append(r.Actions, ac)
	}
	for _, w := range o.Warnings {
		r.Warnings = append(r.Warnings, "host "+host+": "+w)
	}
	for _, s := range o.NextSteps {
		r.NextSteps = append(r.NextSteps, withHostOption(s, host))
	}
}

// remoteActive are the reminder's lines for the sessions still running on
// every host (from each host's own list), and a warning per host that did
// not answer in time.
func (d *Deps) remoteActive(ctx context.Context) ([]active, []string) {
	if len(d.Hosts.Names()) == 0 {
		return nil, nil
	}
	var out []active
	var warnings []string
	for _, ans := range d.eachHost(ctx, "list", map[string]any{"include_finished": false}) {
		var r ListResult
		if ans.err == nil {
			ans.err = json.Unmarshal(ans.raw, &r)
		}
		if ans.err != nil {
			warnings = append(warnings, "- warning: "+hostWarning(ans))
			continue
		}
		for _, s := range r.Sessions {
			switch s.Status {
			case state.LiveRunning, state.LiveStarting, state.LiveZombie, state.LiveOrphan:
			default:
				continue
			}
			out = append(out, active{name: ans.host + "/" + s.Session, line: remoteActiveLine(s, ans.host)})
		}
		if hidden := r.Counts.Total - len(r.Sessions); hidden > 0 {
			warnings = append(warnings, fmt.Sprintf("- host %s has %d more session(s): `list {\"host\": %q}`", ans.host, hidden, ans.host))
		}
	}
	return out, warnings
}

func remoteActiveLine(s Summary, host string) string {
	line := fmt.Sprintf("- **%s** on host %s — %s", s.Session, host, s.Status)
	if s.Definition != "" {
		line += ", " + s.Definition
	}
	if s.Iterations != "" {
		line += ", iteration " + s.Iterations
	}
	if s.Age != "" {
		line += ", for " + s.Age
	}
	switch s.Status {
	case state.LiveOrphan, state.LiveZombie:
		return line + fmt.Sprintf(". Close it: `cleanup {\"host\": %q, \"dry_run\": false, \"kill_orphans\": true}`", host)
	}
	return line + fmt.Sprintf(". Stop it: `kill {\"host\": %q, \"session\": %q}`, or in a terminal `agent-sessions kill --host %s %s`; watch it: `attach_hint {\"host\": %q, \"session\": %q}`",
		host, s.Session, host, s.Session, host, s.Session)
}
