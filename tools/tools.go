// Package tools is the MCP surface of agent-sessions: one file per tool or
// resource, each a constructor returning its definition and handler, and
// All, the single registry that the stdio server, the debug mode and the
// tests all use. Handlers are a thin adapter: they check their arguments,
// make one or a few calls on the Host (host.go: the session lifecycle,
// package sessions on this machine) and shape the answer; this package
// alone turns the lifecycle's domain errors into error codes and the
// options that resolve them (errors.go).
package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/state"
)

// Tmux is what the tools need from tmux (the tmux package's Client).
type Tmux = sessions.Tmux

// Deps are the tools' dependencies. The lifecycle runs on Host; without
// one, on this machine (a sessions.Local with these Settings).
type Deps struct {
	// Host runs the sessions (nil: this machine, with Settings).
	Host Host
	// Settings are this machine's: what the Local made without a Host
	// runs sessions with, and the server's own defaults (project, clock,
	// environment, poll interval).
	sessions.Settings
	// Hosts are the other machines of hosts.yaml (nil: this one only);
	// Serve closes their connections when it returns.
	Hosts *Hosts
	// MaxWaits is how many monitor waits may be pending at once (default
	// DefaultMaxWaits); a wait beyond it answers at once with a warning.
	MaxWaits int

	waitsOnce sync.Once
	waits     chan struct{} // one token per pending wait
}

func (d *Deps) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Deps) environ() []string {
	if d.Environ != nil {
		return d.Environ()
	}
	return os.Environ()
}

func (d *Deps) poll() time.Duration {
	if d.Poll > 0 {
		return d.Poll
	}
	return 250 * time.Millisecond
}

// PollEnv names the variable that sets how often a monitor wait looks at
// its session (Deps.Poll; the reminder watcher looks 8× less often).
const PollEnv = "AGENT_SESSIONS_POLL"

// MinPoll is the shortest poll PollEnv may set.
const MinPoll = 10 * time.Millisecond

// PollFromEnv reads PollEnv from env: 0 (the default, 250 ms) when unset,
// else a Go duration of at least MinPoll. A bare number is refused, as
// for the kill grace: "1" could mean a second or a nanosecond.
func PollFromEnv(env []string) (time.Duration, error) {
	v := engine.EnvValue(env, PollEnv)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < MinPoll {
		return 0, fmt.Errorf("%s=%q: want a duration with a unit, at least %s (e.g. %s=250ms)", PollEnv, v, MinPoll, PollEnv)
	}
	return d, nil
}

// All is the registry of every tool. main, the debug mode and the tests use
// it; there is no other list.
func All(d *Deps) []server.ServerTool {
	all := []server.ServerTool{
		StartSession(d),
		Monitor(d),
		AttachHint(d),
		List(d),
		Kill(d),
		Cleanup(d),
		Reply(d),
	}
	// Every tool takes host and is routed in one place (hosts.go).
	for i := range all {
		all[i] = d.routed(all[i])
	}
	return all
}

// ServerName is the MCP server's name.
const ServerName = "agent-sessions"

// Instructions tell Claude how to route requests and the orphan rule.
const Instructions = `agent-sessions runs autonomous agents in the background, in tmux. A session is a pipeline of stages; a single-stage session is a "loop". Each iteration spawns a fresh agent; continuity lives in a progress file.

Routing (what the user wants -> tool):
- Start a loop or pipeline -> start_session (list with include_catalog shows what can be started; dry_run previews the plan and first prompt).
- Peek at progress or wait for it -> monitor (wait: "iteration" or "complete" blocks up to timeout_seconds).
- Watch live -> attach_hint (gives the tmux command for the user to run; never run it yourself).
- See what exists -> list.
- Stop a session -> kill.
- Find stale, crashed, orphaned or zombie sessions -> cleanup (dry run by default).
- A session is "waiting" (an agent asked the user a question) -> show the user the question, ask them, then reply with their answer; never answer for them. "parked" sessions wait out a usage limit by themselves.

Errors come back with a code and options naming the calls that resolve them (for example resume or force after a conflict). A successful answer carries next_steps: calls you can make as given.

Resources: sessions://reminder (what is still running and how to stop it), sessions://catalog (what can be started), and per session sessions://session/{name}/state, sessions://session/{name}/progress and sessions://session/{name}/log (put the session's name in place of {name}). monitor already covers all three per-session ones (status, the progress file's tail, recent output), so read them only for the whole file.

Sessions started by an agent inside a session are refused (not_allowed) unless the person set AGENT_SESSIONS_ALLOW_NESTED=1.

Never leave orphans: before ending a conversation in which you started a session, read sessions://reminder (or call list) and tell the user which sessions are still running and how to stop them.`

// NewServer builds the MCP server with every tool and resource of All and
// Resources. Its goroutines (the reminder watcher) stop when ctx ends.
func NewServer(ctx context.Context, d *Deps, version string) *server.MCPServer {
	w := newReminderWatcher(ctx, d)
	hooks := &server.Hooks{}
	w.attach(hooks)
	s := server.NewMCPServer(ServerName, version,
		server.WithTitle("Agent Sessions"),
		server.WithDescription("Start, monitor and stop autonomous agent loops and pipelines running in tmux."),
		server.WithInstructions(Instructions),
		server.WithToolCapabilities(false),
		server.WithResourceCapabilities(true, false),
		server.WithRecovery(),
		server.WithResourceRecovery(),
		server.WithHooks(hooks),
	)
	w.server = s
	s.AddTools(All(d)...)
	res, templates := Resources(d)
	s.AddResources(res...)
	s.AddResourceTemplates(templates...)
	return s
}

// Serve runs the stdio MCP server until stdin closes or ctx ends.
func Serve(ctx context.Context, d *Deps, version string, stdin io.Reader, stdout, errLog io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer d.Hosts.Close()
	s := NewServer(ctx, d, version)
	stdio := server.NewStdioServer(s)
	// monitor may wait up to 10 minutes; many waits must not starve the
	// other calls, and a full queue would be served on the read loop.
	server.WithWorkerPoolSize(64)(stdio)
	server.WithQueueSize(1024)(stdio)
	stdio.SetErrorLogger(log.New(errLog, "agent-sessions: ", log.LstdFlags))
	in := &eofReader{r: stdin, eof: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- stdio.Listen(ctx, in, stdout) }()
	// Listen returns only when every call in flight has returned. A call
	// stuck where nothing can cancel it must not keep the server alive once
	// its client has gone (stdin closed) or it was told to stop: after
	// shutdownGrace the stuck call is abandoned (it ends with the process).
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	case <-in.eof:
	}
	select {
	case err := <-served:
		return err
	case <-time.After(shutdownGrace):
		fmt.Fprintf(errLog, "agent-sessions: a call still running after %s was abandoned at shutdown\n", shutdownGrace)
		return nil
	}
}

// shutdownGrace is how long Serve waits for calls in flight once stdin has
// closed or its context has ended.
const shutdownGrace = 3 * time.Second

// eofReader closes eof when reading r first fails (end of input, or an
// error: either way no more requests will come).
type eofReader struct {
	r    io.Reader
	eof  chan struct{}
	once sync.Once
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}

// annotations are set deliberately on every tool: mcp.NewTool defaults to
// destructive and open-world.
func annotations(title string, readOnly, destructive, idempotent, openWorld bool) mcp.ToolOption {
	return mcp.WithToolAnnotation(mcp.ToolAnnotation{
		Title:           title,
		ReadOnlyHint:    mcp.ToBoolPtr(readOnly),
		DestructiveHint: mcp.ToBoolPtr(destructive),
		IdempotentHint:  mcp.ToBoolPtr(idempotent),
		OpenWorldHint:   mcp.ToBoolPtr(openWorld),
	})
}

// outputSchema is the output schema of a tool whose result is R: R's
// schema, plus the ToolError fields, with R's required fields and the
// error's as alternatives (anyOf). Error results carry their ToolError as
// structuredContent, and clients may validate structuredContent against the
// output schema whatever isError says (the TypeScript SDK does), so an
// error must match the schema as well as a result does.
func outputSchema[R any]() mcp.ToolOption {
	key := reflect.TypeFor[R]()
	raw, ok := outputSchemas.Load(key)
	if !ok {
		raw, _ = outputSchemas.LoadOrStore(key, buildOutputSchema[R]())
	}
	return func(t *mcp.Tool) {
		// As with the input schema: a tool carrying both fails to marshal.
		t.OutputSchema = mcp.ToolOutputSchema{}
		t.RawOutputSchema = raw.([]byte)
	}
}

// outputSchemas holds each result type's output schema, made once: a
// schema depends on its type alone, and building one (reflection, then
// marshalling it twice) was a quarter of the tools tests' CPU, which start
// a server per test.
var outputSchemas sync.Map // reflect.Type → []byte

func buildOutputSchema[R any]() []byte {
	props := func(schemaOf mcp.ToolOption) map[string]any {
		var t mcp.Tool
		schemaOf(&t)
		raw, err := json.Marshal(t.OutputSchema)
		if err != nil {
			panic(fmt.Sprintf("tools: output schema: %v", err))
		}
		var schema map[string]any
		if err := json.Unmarshal(raw, &schema); err != nil {
			panic(fmt.Sprintf("tools: output schema: %v", err))
		}
		return schema
	}
	schema := props(mcp.WithOutputSchema[R]())
	errSchema := props(mcp.WithOutputSchema[ToolError]())
	properties, _ := schema["properties"].(map[string]any)
	for name, p := range errSchema["properties"].(map[string]any) {
		if _, dup := properties[name]; dup {
			panic(fmt.Sprintf("tools: result property %q clashes with the error's", name))
		}
		properties[name] = p
	}
	schema["anyOf"] = []any{
		map[string]any{"required": schema["required"]},
		map[string]any{"required": errSchema["required"]},
	}
	delete(schema, "required")
	raw, _ := json.Marshal(schema)
	return raw
}

// propPatch adds what struct tags cannot say to a generated input schema.
type propPatch struct {
	Enum    []any
	Default any
	Min     *float64
	Max     *float64
}

func num(v float64) *float64 { return &v }

// inputSchema is the schema of A with the patches applied, made once per
// type and patches (as output schemas are): generating it (reflection, then
// marshalling it) was most of building a server, which the tools tests and
// the debug mode do many times over.
func inputSchema[A any](patches map[string]propPatch) mcp.ToolOption {
	patchKey, err := json.Marshal(patches)
	if err != nil {
		panic(fmt.Sprintf("tools: input schema patches: %v", err))
	}
	key := inputSchemaKey{reflect.TypeFor[A](), string(patchKey)}
	raw, ok := inputSchemas.Load(key)
	if !ok {
		raw, _ = inputSchemas.LoadOrStore(key, buildInputSchema[A](patches))
	}
	return func(t *mcp.Tool) {
		// mcp.NewTool pre-fills InputSchema; a tool carrying both fails to
		// marshal, which breaks tools/list for every client.
		t.InputSchema = mcp.ToolInputSchema{}
		t.RawInputSchema = raw.([]byte)
	}
}

// inputSchemaKey names an input schema: its type and its patches (JSON).
type inputSchemaKey struct {
	typ     reflect.Type
	patches string
}

var inputSchemas sync.Map // inputSchemaKey → []byte

// buildInputSchema generates the schema of A and applies the patches.
func buildInputSchema[A any](patches map[string]propPatch) []byte {
	var t mcp.Tool
	mcp.WithInputSchema[A]()(&t)
	var schema map[string]any
	if err := json.Unmarshal(t.RawInputSchema, &schema); err != nil {
		panic(fmt.Sprintf("tools: input schema: %v", err))
	}
	props, _ := schema["properties"].(map[string]any)
	for name, p := range patches {
		prop, ok := props[name].(map[string]any)
		if !ok {
			panic(fmt.Sprintf("tools: patch for unknown property %q", name))
		}
		if p.Enum != nil {
			prop["enum"] = p.Enum
		}
		if p.Default != nil {
			prop["default"] = p.Default
		}
		if p.Min != nil {
			prop["minimum"] = *p.Min
		}
		if p.Max != nil {
			prop["maximum"] = *p.Max
		}
	}
	raw, _ := json.Marshal(schema)
	return raw
}

// handler is a tool's typed handler: it returns the structured result and a
// short human-readable text, or an error (a *ToolError for what the caller
// can fix).
type handler[A, R any] func(ctx context.Context, req mcp.CallToolRequest, args A) (R, string, error)

// typed adapts a handler: strict argument binding (unknown arguments are an
// error naming the known ones), structured result plus bounded text, and
// every error turned into a structured tool error.
func typed[A, R any](h handler[A, R]) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var args A
		if err := bindArgs(req.GetArguments(), &args); err != nil {
			return errorResult(err), nil
		}
		res, text, err := h(ctx, req, args)
		if err != nil {
			return errorResult(err), nil
		}
		return mcp.NewToolResultStructured(res, sessions.BoundText(text, TextLimit)), nil
	}
}

// bindArgs decodes arguments into a struct, rejecting unknown names.
func bindArgs(args map[string]any, out any) error {
	if args == nil {
		args = map[string]any{}
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return invalidf("arguments are not JSON: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		known := jsonFieldNames(out)
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			name = strings.Trim(name, `"`)
			hint := ""
			if s := state.Closest(name, known); s != "" {
				hint = fmt.Sprintf("; did you mean %q?", s)
			}
			return invalidf("unknown argument %q (known: %s)%s", name, strings.Join(known, ", "), hint)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return invalidf("argument %q must be %s, got %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return invalidf("arguments: %v", err)
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "int", "int64", "int32":
		return "a whole number"
	case "bool":
		return "true or false"
	case "string":
		return "text"
	case "slice":
		return "a list"
	case "ptr":
		return "a value of another type"
	}
	return k
}

// TextLimit bounds the text returned to Claude.
const TextLimit = 16 << 10

// jsonFieldNames lists the JSON names of a struct's fields, in order.
func jsonFieldNames(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}
