package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/state"
)

// Resource URIs.
const (
	ReminderURI      = "sessions://reminder"
	CatalogURI       = "sessions://catalog"
	stateTemplate    = "sessions://session/{name}/state"
	progressTemplate = "sessions://session/{name}/progress"
	logTemplate      = "sessions://session/{name}/log"
)

// Resources returns the resources and resource templates.
func Resources(d *Deps) ([]server.ServerResource, []server.ServerResourceTemplate) {
	res := []server.ServerResource{
		{
			Resource: mcp.NewResource(ReminderURI, "Orphan reminder",
				mcp.WithResourceDescription("Markdown naming every agent session still running, with how to stop each — or saying none are. Read it (or subscribe) before ending a conversation in which sessions were started, and tell the user."),
				mcp.WithMIMEType("text/markdown")),
			Handler: func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
				text, err := d.ReminderText(ctx, "")
				if err != nil {
					return nil, err
				}
				return []mcp.ResourceContents{mcp.TextResourceContents{URI: ReminderURI, MIMEType: "text/markdown", Text: text}}, nil
			},
		},
		{
			Resource: mcp.NewResource(CatalogURI, "Catalog of stages and pipelines",
				mcp.WithResourceDescription("JSON list of the stages and pipelines that can be started in the server's project: name, description, termination, default iteration limit, where each was found."),
				mcp.WithMIMEType("application/json")),
			Handler: func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
				entries, problems := d.host().Catalog(d.ProjectDir)
				if entries == nil {
					entries = []engine.Entry{}
				}
				ps := make([]string, 0, len(problems))
				for _, p := range problems {
					ps = append(ps, p.String())
				}
				data, _ := json.MarshalIndent(map[string]any{"project_dir": d.ProjectDir, "entries": entries, "problems": ps}, "", "  ")
				return []mcp.ResourceContents{mcp.TextResourceContents{URI: CatalogURI, MIMEType: "application/json", Text: string(data)}}, nil
			},
		},
	}
	templates := []server.ServerResourceTemplate{
		{
			Template: mcp.NewResourceTemplate(stateTemplate, "Session state",
				mcp.WithTemplateDescription("A session's state.json (rebuilt from events.jsonl when the file is corrupt), with its classifier status."),
				mcp.WithTemplateMIMEType("application/json")),
			Handler: d.sessionResource("state"),
		},
		{
			Template: mcp.NewResourceTemplate(progressTemplate, "Session progress file",
				mcp.WithTemplateDescription("A session's progress file: the context agents accumulate across iterations (the current stage's, for pipelines)."),
				mcp.WithTemplateMIMEType("text/markdown")),
			Handler: d.sessionResource("progress"),
		},
		{
			Template: mcp.NewResourceTemplate(logTemplate, "Session log",
				mcp.WithTemplateDescription("The end of a session's session.log: everything the engine printed (at most 16 KB, most recent last)."),
				mcp.WithTemplateMIMEType("text/plain")),
			Handler: d.sessionResource("log"),
		},
	}
	return res, templates
}

func (d *Deps) sessionResource(kind string) server.ResourceTemplateHandlerFunc {
	return func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		name := templateArg(req, "name")
		if err := state.ValidateSession(name); err != nil {
			return nil, fmt.Errorf("%s: %w", req.Params.URI, err)
		}
		info, err := d.resolve(ctx, name, "")
		if err != nil {
			return nil, errors.New(toolError(err).Message)
		}
		return d.readSession(kind, name, req.Params.URI, info)
	}
}

// readSession is a session resource's contents: its state, progress file
// or log.
func (d *Deps) readSession(kind, name, uri string, info sessions.Info) ([]mcp.ResourceContents, error) {
	switch kind {
	case "state":
		if info.State == nil {
			return nil, fmt.Errorf("session %s has no readable state (%s)", name, info.Live.Why)
		}
		data, _ := json.MarshalIndent(map[string]any{"status": info.Live.Status, "why": info.Live.Why, "rebuilt_from_events": info.Rebuilt, "state": info.State}, "", "  ")
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: "application/json", Text: sessions.BoundText(string(data), 64<<10)}}, nil
	case "progress":
		data, path, err := d.host().ReadProgress(info)
		if errors.Is(err, state.ErrNotRegular) {
			return nil, fmt.Errorf("session %s: %w", name, err)
		}
		if err != nil {
			return nil, fmt.Errorf("session %s has no progress file yet (%s)", name, path)
		}
		text, _ := sessions.TailText(data, TextLimit)
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: "text/markdown", Text: text}}, nil
	default:
		text, err := d.host().ReadLog(info, 400)
		if err != nil {
			return nil, fmt.Errorf("session %s has no session.log yet", name)
		}
		text, _ = sessions.TailText(text, TextLimit)
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: "text/plain", Text: text}}, nil
	}
}

func templateArg(req mcp.ReadResourceRequest, key string) string {
	if v, ok := req.Params.Arguments[key]; ok {
		switch x := v.(type) {
		case string:
			return x
		case []string:
			if len(x) > 0 {
				return x[0]
			}
		case []any:
			if len(x) > 0 {
				s, _ := x[0].(string)
				return s
			}
		}
	}
	// sessions://session/{name}/…
	rest, _ := strings.CutPrefix(req.Params.URI, "sessions://session/")
	name, _, _ := strings.Cut(rest, "/")
	return name
}

// active is a session that needs the user's attention before Claude stops.
type active struct {
	name, line string
	waiting    bool // its agent asked the user something: shown first
}

// activeInfos lists the sessions still running (or starting), and zombies
// and orphans, which also keep a tmux session alive; and the project.
func (d *Deps) activeInfos(ctx context.Context, project string, dp sessions.Depth) ([]sessions.Info, string) {
	if p, err := d.host().ResolveProject(project); err == nil {
		project = p
	} else if project == "" {
		project = d.ProjectDir
	}
	infos, _ := d.host().Discover(ctx, project, dp)
	var out []sessions.Info
	for _, info := range infos {
		if info.Live.Status.Active() {
			out = append(out, info)
		}
	}
	return out, project
}

// activeSessions is the reminder's list: activeInfos, one line each.
func (d *Deps) activeSessions(ctx context.Context, project string) []active {
	infos, project := d.activeInfos(ctx, project, sessions.Summary)
	var out []active
	for _, info := range infos {
		s := summarize(info)
		var b strings.Builder
		fmt.Fprintf(&b, "- **%s** — %s", s.Session, s.Status)
		if s.Definition != "" {
			fmt.Fprintf(&b, ", %s %s", s.Type, s.Definition)
		}
		if s.MaxIterations > 0 {
			if s.StageCount > 1 {
				fmt.Fprintf(&b, ", stage %d/%d", s.StageNumber, s.StageCount)
			}
			fmt.Fprintf(&b, ", iteration %d/%d", s.IterationCompleted, s.MaxIterations)
		}
		if s.Age != "" {
			fmt.Fprintf(&b, ", for %s", s.Age)
		}
		if s.Stale {
			b.WriteString(" (stale: over 2 hours)")
		}
		if s.ProjectDir != project {
			fmt.Fprintf(&b, ", in %s", s.ProjectDir)
		}
		if s.Branch != "" {
			fmt.Fprintf(&b, ", on branch %s", s.Branch)
		}
		// The reminder is read by Claude (the resource) and by a person (the
		// reminder command, the Stop hook): name the call and the command.
		cli := "agent-sessions kill " + s.Session
		if s.ProjectDir != project {
			cli = fmt.Sprintf("agent-sessions kill --project %s %s", s.ProjectDir, s.Session)
		}
		switch s.Status {
		case state.LiveOrphan, state.LiveZombie:
			fmt.Fprintf(&b, ". Close it: `cleanup {\"dry_run\": false, \"kill_orphans\": true}`, or in a terminal `%s`", cli)
		default:
			fmt.Fprintf(&b, ". Stop it: `kill {\"session\": %q}`, or in a terminal `%s`; watch it: `%s`", s.Session, cli, strings.Join(d.host().AttachCommand(s.TmuxSession, true), " "))
		}
		b.WriteString(guardrailNote(s))
		out = append(out, active{name: s.Session, line: b.String(), waiting: s.Status == state.LiveWaiting})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].waiting && !out[j].waiting })
	return out
}

// ReminderText is the orphan reminder: the same text for the resource and
// for `agent-sessions reminder`.
func (d *Deps) ReminderText(ctx context.Context, project string) (string, error) {
	var far []active
	var warnings []string
	done := make(chan struct{})
	go func() { far, warnings = d.remoteActive(ctx); close(done) }()
	act := d.activeSessions(ctx, project)
	<-done
	act = append(act, far...)
	if len(act) == 0 {
		if len(warnings) > 0 {
			return "# Agent sessions\n\nNo agent sessions are running here or on the hosts that answered.\n\n" + strings.Join(warnings, "\n") + "\n", nil
		}
		return "# Agent sessions\n\nNo agent sessions are running. Nothing needs stopping before you finish.\n", nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Agent sessions still running: %d\n\n", len(act))
	b.WriteString("These keep running (and spending) after this conversation ends:\n\n")
	for _, a := range act {
		b.WriteString(a.line + "\n")
	}
	b.WriteString("\nBefore you finish: tell the user which sessions are still running and ask whether to leave them running or stop them.\n")
	if len(warnings) > 0 {
		b.WriteString("\n" + strings.Join(warnings, "\n") + "\n")
	}
	return b.String(), nil
}

// reminderWatcher sends notifications/resources/updated for the reminder
// when the set of running sessions changes. It polls only while a client is
// subscribed (resources/subscribe, or subscriptions/listen in the 2026-07-28
// protocol); its goroutine exits when the last subscription ends or ctx is
// done.
type reminderWatcher struct {
	ctx    context.Context
	d      *Deps
	server *server.MCPServer

	mu      sync.Mutex
	subs    map[string]int // subscription key -> count
	running bool
	stop    chan struct{}
	last    string
}

func newReminderWatcher(ctx context.Context, d *Deps) *reminderWatcher {
	return &reminderWatcher{ctx: ctx, d: d, subs: map[string]int{}}
}

func (w *reminderWatcher) attach(h *server.Hooks) {
	h.AddAfterSubscribe(func(ctx context.Context, id any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
		if req.Params.URI == ReminderURI {
			w.set(sessionKey(ctx), 1)
		}
	})
	h.AddAfterUnsubscribe(func(ctx context.Context, id any, req *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
		if req.Params.URI == ReminderURI {
			w.set(sessionKey(ctx), 0)
		}
	})
	h.AddBeforeSubscriptionsListen(func(ctx context.Context, id any, req *mcp.SubscriptionsListenRequest) {
		for _, uri := range req.Params.Notifications.ResourceSubscriptions {
			if uri == ReminderURI {
				w.add(fmt.Sprintf("listen:%v", id), 1)
			}
		}
	})
	h.AddAfterSubscriptionsListen(func(ctx context.Context, id any, req *mcp.SubscriptionsListenRequest, _ *mcp.SubscriptionsListenResult) {
		w.set(fmt.Sprintf("listen:%v", id), 0)
	})
	h.AddOnError(func(ctx context.Context, id any, method mcp.MCPMethod, _ any, _ error) {
		if method == mcp.MethodSubscriptionsListen {
			w.set(fmt.Sprintf("listen:%v", id), 0)
		}
	})
	h.AddOnUnregisterSession(func(ctx context.Context, s server.ClientSession) {
		w.set("session:"+s.SessionID(), 0)
	})
}

func sessionKey(ctx context.Context) string {
	if s := server.ClientSessionFromContext(ctx); s != nil {
		return "session:" + s.SessionID()
	}
	return "session:"
}

func (w *reminderWatcher) add(key string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.subs[key] += n
	w.update()
}

func (w *reminderWatcher) set(key string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n == 0 {
		delete(w.subs, key)
	} else {
		w.subs[key] = n
	}
	w.update()
}

// update starts or stops the poller; called with mu held.
func (w *reminderWatcher) update() {
	want := len(w.subs) > 0
	switch {
	case want && !w.running:
		w.running = true
		w.stop = make(chan struct{})
		w.last = w.key()
		go w.poll(w.stop)
	case !want && w.running:
		w.running = false
		close(w.stop)
	}
}

// Subscribed reports whether the watcher is polling (for tests).
func (w *reminderWatcher) Subscribed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.running
}

// key names the active sessions and their statuses: what the reminder's
// notification is about. It is computed on every poll, so it reads no
// state of a session whose engine holds its lock (sessions.StatusOnly): a poll is
// one tmux list-sessions and a lock probe per session.
func (w *reminderWatcher) key() string {
	infos, _ := w.d.activeInfos(w.ctx, "", sessions.StatusOnly)
	parts := make([]string, 0, len(infos))
	for _, info := range infos {
		parts = append(parts, info.Name+"="+string(info.Live.Status))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (w *reminderWatcher) poll(stop <-chan struct{}) {
	t := time.NewTicker(8 * w.d.poll())
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-w.ctx.Done():
			return
		case <-t.C:
			k := w.key()
			w.mu.Lock()
			changed := k != w.last
			w.last = k
			srv := w.server
			w.mu.Unlock()
			if changed && srv != nil {
				srv.SendNotificationToAllClients(string(mcp.MethodNotificationResourceUpdated), map[string]any{"uri": ReminderURI})
			}
		}
	}
}
