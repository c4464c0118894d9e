package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agent-sessions/agent-sessions/remote"
	"github.com/agent-sessions/agent-sessions/sessions"
)

// CodeHostUnreachable is the error code of a call to a host that could not
// be reached (ssh failed, the login needs a password, our binary is missing
// there, or the connection dropped mid-call). The host's sessions are not
// affected: they live in tmux there.
const CodeHostUnreachable = "host_unreachable"

// DefaultFanOutTimeout bounds each host's answer when list, cleanup's dry
// run and the reminder cover every host (SPEC §17).
const DefaultFanOutTimeout = 3 * time.Second

// Hosts are the configured remote hosts and one kept-open connection per
// host, made on first use. The routing wrapper and the fan-outs use it;
// Close ends the connections (the hosts' sessions keep running).
type Hosts struct {
	Config  *remote.Config
	Options remote.Options
	// Timeout bounds each host in a fan-out (default DefaultFanOutTimeout).
	Timeout time.Duration
	// LoadErr is why hosts.yaml could not be read, if it could not: this
	// machine still works, and a call naming a host says why there is none.
	LoadErr error

	mu     sync.Mutex
	conns  map[string]*remote.Conn
	closed bool
}

// NewHosts returns the hosts of cfg (nil: none), connecting lazily.
func NewHosts(cfg *remote.Config, opts remote.Options) *Hosts {
	if cfg == nil {
		cfg = &remote.Config{}
	}
	return &Hosts{Config: cfg, Options: opts, conns: map[string]*remote.Conn{}}
}

// Names lists the configured hosts (not local), in file order.
func (h *Hosts) Names() []string {
	if h == nil {
		return nil
	}
	return h.Config.Names()
}

func (h *Hosts) timeout() time.Duration {
	if h != nil && h.Timeout > 0 {
		return h.Timeout
	}
	return DefaultFanOutTimeout
}

// conn returns the connection to the host called name; an unknown name is
// an invalid_argument naming the configured hosts and the closest one.
func (h *Hosts) conn(name string) (*remote.Conn, error) {
	cfg := &remote.Config{}
	if h != nil {
		cfg = h.Config
	}
	if h != nil && h.LoadErr != nil {
		return nil, invalidf("host %q: hosts.yaml could not be read, so no host is configured: %v (fix it, then check with `agent-sessions hosts`)", name, h.LoadErr)
	}
	host, err := cfg.Lookup(name)
	if err != nil {
		return nil, invalidf("host: %s", strings.TrimPrefix(err.Error(), remote.ErrUnknownHost.Error()+" "))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, &ToolError{Code: CodeHostUnreachable, Message: "the server is stopping", Options: []Option{}}
	}
	if c, ok := h.conns[name]; ok {
		return c, nil
	}
	c, err := remote.New(host, h.Options)
	if err != nil {
		return nil, fmt.Errorf("host %q: %w", name, err)
	}
	h.conns[name] = c
	return c, nil
}

// Close ends every connection. Sessions on the hosts keep running.
func (h *Hosts) Close() error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	conns := h.conns
	h.conns, h.closed = map[string]*remote.Conn{}, true
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); c.Close() }()
	}
	wg.Wait()
	return nil
}

// call forwards one tool call to host and returns its structured answer.
// The host's own tool errors come back as *ToolError with host added to
// their options; failing to reach it is a host_unreachable error. A
// resendable call (see resendable) whose connection was lost mid-call is
// sent once more over a new connection (remote.Conn.CallRepeatable); any
// other may have run there and is never sent twice.
func (h *Hosts) call(ctx context.Context, host, tool string, args map[string]any, resend bool) (json.RawMessage, error) {
	c, err := h.conn(host)
	if err != nil {
		return nil, err
	}
	// host local on the wire: the far side answers for itself and does not
	// fan out to hosts of its own.
	wire := map[string]any{"host": remote.Local}
	for k, v := range args {
		wire[k] = v
	}
	if _, ok := ctx.Deadline(); !ok {
		// A monitor wait blocks on the host for up to its timeout: the
		// call's own limit comes on top, or every long wait would fail.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.callLimit(args))
		defer cancel()
	}
	call := c.CallTool
	if resend {
		call = c.CallRepeatable
	}
	raw, err := call(ctx, tool, wire)
	if err == nil {
		return raw, nil
	}
	var rte *remote.ToolError
	if errors.As(err, &rte) {
		te := &ToolError{Code: rte.Code, Message: fmt.Sprintf("on host %s: %s", host, rte.Message), Options: []Option{}}
		if len(rte.Options) > 0 {
			json.Unmarshal(rte.Options, &te.Options)
		}
		for i := range te.Options {
			te.Options[i] = withHostOption(te.Options[i], host)
		}
		return nil, te
	}
	return nil, unreachable(host, tool, args, err)
}

// callLimit is how long a forwarded call may take: the call timeout, plus
// the wait it asks for (monitor's wait blocks up to timeout_seconds,
// default 300).
func (h *Hosts) callLimit(args map[string]any) time.Duration {
	limit := h.Options.CallTimeout
	if limit <= 0 {
		limit = remote.DefaultCallTimeout
	}
	if w, _ := args["wait"].(string); w != "" && w != "none" {
		secs := 300.0
		if t, ok := args["timeout_seconds"].(float64); ok && t > 0 && t <= 600 {
			secs = t
		}
		limit += time.Duration(secs * float64(time.Second))
	}
	return limit
}

// unreachable is the error of a host that could not be reached, with the
// calls that help: check the hosts, or retry (the next call reconnects).
func unreachable(host, tool string, args map[string]any, err error) *ToolError {
	retry := map[string]any{"host": host}
	for k, v := range args {
		retry[k] = v
	}
	return &ToolError{Code: CodeHostUnreachable, cause: err,
		Message: fmt.Sprintf("%v (the host's sessions are not affected; run `agent-sessions hosts` to check it)", err),
		Options: []Option{
			{Tool: tool, Arguments: retry, Description: "retry: the next call reconnects"},
			{Tool: "list", Arguments: map[string]any{"host": "local"}, Description: "this machine's sessions only"},
		}}
}

// withHostOption adds host to an option's arguments: an option is a call
// that succeeds as given, and a remote host's option must go back there.
func withHostOption(o Option, host string) Option {
	args := map[string]any{"host": host}
	for k, v := range o.Arguments {
		args[k] = v
	}
	o.Arguments = args
	return o
}

// hostProperty is the `host` argument every tool takes.
var hostProperty = map[string]any{
	"type":        "string",
	"description": "the host to run on: a name from hosts.yaml, or local (default) for this machine; project_dir is a path on that host. list and cleanup's dry run cover every host when it is left out",
}

// routed makes a tool take `host` and forwards a call with a host other than
// local to that host's own server: the same call, minus host, with host
// added to its structured answer. One place for every tool, so a tool added
// to All is routed without a line of its own.
func (d *Deps) routed(st server.ServerTool) server.ServerTool {
	st.Tool.RawInputSchema = addProperty(st.Tool.RawInputSchema, "host", hostProperty)
	st.Tool.RawOutputSchema = addProperty(st.Tool.RawOutputSchema, "host",
		map[string]any{"type": "string", "description": "the host that answered, when not local"})
	inner, name := st.Handler, st.Tool.Name
	resend := resendable(st.Tool)
	st.Handler = func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		args := req.GetArguments()
		hv, given := args["host"]
		host, ok := hv.(string)
		if given && !ok {
			return errorResult(invalidf("argument \"host\" must be text (a name from hosts.yaml, or local), got %v", hv)), nil
		}
		rest := make(map[string]any, len(args))
		for k, v := range args {
			if k != "host" {
				rest[k] = v
			}
		}
		req.Params.Arguments = rest
		if host == "" || host == remote.Local {
			if fan := d.fanOut(name); fan != nil && !given && len(d.Hosts.Names()) > 0 {
				return fan(ctx, req, rest)
			}
			return inner(ctx, req)
		}
		raw, err := d.Hosts.call(ctx, host, name, rest, resend)
		if err != nil {
			return errorResult(err), nil
		}
		return d.remoteResult(name, host, raw)
	}
	return st
}

// resendable: a call of t may be sent again when its connection was lost
// mid-call, because running it twice changes nothing more than running it
// once — it is read-only or idempotent (its annotations say which). kill
// resent after the first one stopped the session is a calm no-op that says
// so; start_session and reply are never resent.
func resendable(t mcp.Tool) bool {
	a := t.Annotations
	return a.ReadOnlyHint != nil && *a.ReadOnlyHint || a.IdempotentHint != nil && *a.IdempotentHint
}

// remoteResult is a host's structured answer with host added (to the
// answer, and to each session and option in it), and its text.
func (d *Deps) remoteResult(tool, host string, raw json.RawMessage) (*mcp.CallToolResult, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return errorResult(fmt.Errorf("host %q: %s: its answer is not a JSON object: %.200s", host, tool, raw)), nil
	}
	m["host"] = host
	tagHost(m, host)
	if tool == "attach_hint" {
		if h, err := d.Hosts.Config.Lookup(host); err == nil {
			sshAttach(m, h)
		}
	}
	text := fmt.Sprintf("On host %s:\n%s", host, compactJSON(m))
	return mcp.NewToolResultStructured(m, sessions.BoundText(text, TextLimit)), nil
}

// tagHost adds host to every session of a list and every next step.
func tagHost(m map[string]any, host string) {
	if ss, ok := m["sessions"].([]any); ok {
		for _, s := range ss {
			if sm, ok := s.(map[string]any); ok {
				sm["host"] = host
			}
		}
	}
	for _, key := range []string{"next_steps", "options"} {
		if steps, ok := m[key].([]any); ok {
			for _, s := range steps {
				if sm, ok := s.(map[string]any); ok {
					args, _ := sm["arguments"].(map[string]any)
					if args == nil {
						args = map[string]any{}
					}
					args["host"] = host
					sm["arguments"] = args
				}
			}
		}
	}
}

// sshAttach turns the host's tmux attach lines into lines run here:
// ssh -t [ssh_args] destination -- tmux … attach …
func sshAttach(m map[string]any, h remote.Host) {
	prefix := append([]string{"ssh", "-t"}, h.SSHArgs...)
	prefix = append(prefix, h.SSH, "--")
	for _, key := range []string{"command", "read_only_command", "switch_command"} {
		if s, ok := m[key].(string); ok && s != "" {
			m[key] = strings.Join(prefix, " ") + " " + s
		}
	}
	if w, ok := m["warnings"].([]any); ok {
		m["warnings"] = append(w, "The session runs on host "+h.Name+"; the command reaches it over ssh, and detaching leaves it running there.")
	}
}

// addProperty adds a property to a raw JSON object schema. The result
// depends on the schema and the property alone (each name is added with one
// constant prop), so it is made once per process: a server is built per
// connection (in the tests, per test), and parsing and re-marshalling every
// schema each time was a few seconds of the tools tests' CPU under -race.
func addProperty(raw json.RawMessage, name string, prop map[string]any) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	key := name + "\x00" + string(raw)
	if out, ok := withProperty.Load(key); ok {
		return out.(json.RawMessage)
	}
	out, _ := withProperty.LoadOrStore(key, buildWithProperty(raw, name, prop))
	return out.(json.RawMessage)
}

// withProperty holds addProperty's results: schema and name → schema.
var withProperty sync.Map

func buildWithProperty(raw json.RawMessage, name string, prop map[string]any) json.RawMessage {
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		panic(fmt.Sprintf("tools: schema: %v", err))
	}
	props, _ := schema["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
		schema["properties"] = props
	}
	props[name] = prop
	out, _ := json.Marshal(schema)
	return out
}
