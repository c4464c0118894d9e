package tools_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
	"github.com/agent-sessions/agent-sessions/tools"
)

// The two protocol revisions the in-process tests run under: the newest
// (stateless; the client probes server/discover) and the last one with the
// initialize handshake (forVersions runs a test under both, inVersion
// under one).
const (
	modernVersion = mcp.LATEST_PROTOCOL_VERSION
	legacyVersion = "2025-11-25"
)

var versions = []string{modernVersion, legacyVersion}

// The shared helpers of internal/testkit, under the names this package's
// tests use.
var (
	agentsDir  = testkit.AgentsDir()
	agentPath  = testkit.AgentPath
	writeFile  = testkit.WriteFile
	eventually = testkit.Eventually
)

// Stages written into test projects. All run the built-in mock agent (fast
// with AGENT_SESSIONS_MOCK_STEP=10ms) unless they name a command.
const (
	// quickStage finishes after three iterations.
	quickStage = "completion: fixed-n\nprovider: mock\nmax_iterations: 3\ndelay: 0.1\n"
	// longStage keeps running for minutes, one iteration every ~0.3 s.
	longStage = "completion: fixed-n\nprovider: mock\nmax_iterations: 500\ndelay: 0.3\n"
	// stepStage runs long enough to be killed between iterations.
	stepStage = "completion: fixed-n\nprovider: mock\nmax_iterations: 50\ndelay: 0.4\n"
	prompt    = "Session ${SESSION}, iteration ${ITERATION} of ${MAX_ITERATIONS}, stage ${STAGE}. Context: ${CONTEXT}\n"
)

// testEnv is one test's world: a project directory, a private tmux server,
// the tools' dependencies pointed at both, and an MCP server over them.
type testEnv struct {
	t       *testing.T
	project string
	socket  string
	tmux    *tmux.Client
	rec     *recordingTmux
	deps    *tools.Deps
	ctx     context.Context

	// The tools' clock: real time moved forward by offset; reads counts
	// its readings (every poll of a wait reads it).
	offset atomic.Int64
	reads  atomic.Int64

	mu    sync.Mutex
	path  string   // PATH handed to engines ("" = testdata/agents + the test's)
	extra []string // more KEY=VALUE for engines
}

// newEnv builds a test world. Engines it starts are stopped (by killing
// the private tmux server) and waited for before the project is removed.
func newEnv(t *testing.T) *testEnv {
	t.Helper()
	requireTmux(t)
	e := &testEnv{t: t, project: t.TempDir()}
	if p, err := filepath.EvalSymlinks(e.project); err == nil {
		e.project = p
	}
	// Cleanups run last-registered first: kill the tmux server (engines get
	// SIGHUP), then wait for every engine to let go of its lock, then remove
	// the project (t.TempDir's cleanup, registered above).
	t.Cleanup(e.waitEngines)
	e.socket = newSocket(t)
	e.tmux = tmux.New(e.socket)
	e.rec = &recordingTmux{Client: e.tmux}
	e.deps = &tools.Deps{Settings: sessions.Settings{
		Tmux:       e.rec,
		Executable: binary(t),
		ProjectDir: e.project,
		Environ:    e.environ,
		Now:        e.now,
		Grace:      5 * time.Second,
		Poll:       50 * time.Millisecond,
	}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e.ctx = ctx
	return e
}

// recordingTmux is the real tmux client, recording the sessions the tools
// create.
type recordingTmux struct {
	*tmux.Client
	mu      sync.Mutex
	created []string
}

func (r *recordingTmux) NewSession(ctx context.Context, o tmux.NewSessionOptions) error {
	r.mu.Lock()
	r.created = append(r.created, o.Name)
	r.mu.Unlock()
	return r.Client.NewSession(ctx, o)
}

// Created lists the tmux sessions the tools asked for, in order.
func (r *recordingTmux) Created() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.created)
}

func (e *testEnv) now() time.Time {
	e.reads.Add(1)
	return time.Now().Add(time.Duration(e.offset.Load()))
}

// advance moves the tools' clock forward (the engines keep real time).
func (e *testEnv) advance(d time.Duration) { e.offset.Add(int64(d)) }

// setEnv adds KEY=VALUE pairs to the engines' environment.
func (e *testEnv) setEnv(kv ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.extra = append(e.extra, kv...)
}

// setPath replaces the PATH engines (and agent checks) see.
func (e *testEnv) setPath(p string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.path = p
}

// environ is Deps.Environ: the test's environment without CLAUDECODE and
// without any inherited knob, testdata/agents first on PATH, the private
// socket, and the fast, quiet settings engines use in tests.
func (e *testEnv) environ() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var env []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "CLAUDECODE", strings.HasPrefix(k, "AGENT_SESSIONS_"), strings.HasPrefix(k, "FAKE_"):
			continue
		case k == "PATH":
			if e.path != "" {
				kv = "PATH=" + e.path
			} else {
				kv = "PATH=" + agentsDir + ":" + v
			}
		}
		env = append(env, kv)
	}
	env = append(env,
		tmux.SocketEnv+"="+e.socket,
		"AGENT_SESSIONS_NOTIFY=0",
		"AGENT_SESSIONS_KILL_GRACE=2s",
		"AGENT_SESSIONS_MOCK_STEP=10ms",
		// What the README tells a root user to give the server; tests that
		// check the refusal without it set Deps.Geteuid and their own env.
		"IS_SANDBOX=1",
	)
	return append(env, e.extra...)
}

// waitEngines waits until no engine of the project holds a lock; one that
// will not let go is SIGKILLed so the project can be removed.
func (e *testEnv) waitEngines() {
	locks, _ := filepath.Glob(filepath.Join(e.project, ".claude", "locks", "*.lock"))
	for _, l := range locks {
		deadline := time.Now().Add(15 * time.Second)
		for {
			ls, _ := state.ProbeLock(l)
			if !ls.Held {
				break
			}
			if time.Now().After(deadline) {
				if ls.Info != nil && ls.Info.PID > 0 {
					syscall.Kill(ls.Info.PID, syscall.SIGKILL)
				}
				e.t.Errorf("engine of %s still running at the end of the test", l)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// stage writes a project stage: .claude/stages/<name>/{stage.yaml,prompt.md}.
func (e *testEnv) stage(name, yaml string) {
	e.t.Helper()
	dir := filepath.Join(e.project, ".claude", "stages", name)
	writeFile(e.t, filepath.Join(dir, "stage.yaml"), yaml)
	writeFile(e.t, filepath.Join(dir, "prompt.md"), prompt)
}

// commandStage is the YAML of a stage run by one fake agent.
func commandStage(completion string, max int, agent string) string {
	return fmt.Sprintf("completion: %s\nprovider: command\ncommand: [%q]\nmax_iterations: %d\ndelay: 0\n", completion, agentPath(agent), max)
}

func (e *testEnv) layout(session string) state.Layout { return state.NewLayout(e.project, session) }

// loadState reads a session's state.json (rebuilt from events if needed).
func (e *testEnv) loadState(session string) state.State {
	e.t.Helper()
	st, _, err := state.Load(e.layout(session))
	if err != nil {
		e.t.Fatalf("load state of %s: %v", session, err)
	}
	return st
}

// enginePID is the pid the session's lock file names, 0 when none.
func (e *testEnv) enginePID(session string) int {
	ls, _ := state.ProbeLock(e.layout(session).LockFile())
	if ls.Info == nil {
		return 0
	}
	return ls.Info.PID
}

// hasTmux reports whether the private server has the tmux session name.
func (e *testEnv) hasTmux(name string) bool {
	e.t.Helper()
	ok, err := e.tmux.HasSession(context.Background(), name)
	// tmux 3.3a answers "no current target" to a -t lookup in the instant
	// between its last session closing and the server exiting; the tmux
	// package does not map that onto ErrSessionNotFound yet.
	if err != nil && strings.Contains(err.Error(), "no current target") {
		return false
	}
	if err != nil {
		e.t.Fatalf("tmux has-session %s: %v", name, err)
	}
	return ok
}

// tmuxNames lists the private server's sessions.
func (e *testEnv) tmuxNames() []string {
	e.t.Helper()
	list, err := e.tmux.ListSessions(context.Background())
	if err != nil {
		e.t.Fatalf("tmux list-sessions: %v", err)
	}
	var names []string
	for _, s := range list {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	return names
}

// processDead reports whether pid is gone; a zombie (exited, not yet
// reaped) counts as dead.
func processDead(pid int) bool { return !testkit.ProcessAlive(pid) }

// readPIDs reads one pid per line.
func readPIDs(t *testing.T, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read pids: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("pid file %s: %q is not a pid", path, f)
		}
		pids = append(pids, n)
	}
	return pids
}

// ---- the in-process MCP client ----

// mcpClient is an in-process client of a server built by tools.NewServer,
// recording every notification it receives.
type mcpClient struct {
	t       *testing.T
	c       *client.Client
	version string
	init    *mcp.InitializeResult

	mu     sync.Mutex
	notes  []mcp.JSONRPCNotification
	signal chan struct{}
}

// connect builds a server over the env's deps and an in-process client of
// it speaking version; it checks the negotiated version.
func (e *testEnv) connect(version string) *mcpClient {
	e.t.Helper()
	srv := tools.NewServer(e.ctx, e.deps, "test")
	return connectTo(e.t, e.ctx, srv, version)
}

func connectTo(t *testing.T, ctx context.Context, srv *server.MCPServer, version string) *mcpClient {
	t.Helper()
	c, err := client.NewInProcessClientWithOptions(srv, client.WithProtocolVersion(version))
	if err != nil {
		t.Fatal(err)
	}
	mc := &mcpClient{t: t, c: c, version: version, signal: make(chan struct{}, 1)}
	c.OnNotification(mc.record)
	// Start before Initialize, or no notification is delivered.
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	var req mcp.InitializeRequest
	req.Params.ProtocolVersion = version
	req.Params.ClientInfo = mcp.Implementation{Name: "tools-test", Version: "1"}
	res, err := c.Initialize(ctx, req)
	if err != nil {
		t.Fatalf("initialize (%s): %v", version, err)
	}
	if got := res.ProtocolVersion; got != version {
		t.Fatalf("negotiated protocol version = %q, want %q", got, version)
	}
	if got := res.ServerInfo.Name; got != tools.ServerName {
		t.Errorf("server name = %q, want %q", got, tools.ServerName)
	}
	mc.init = res
	return mc
}

func (c *mcpClient) record(n mcp.JSONRPCNotification) {
	c.mu.Lock()
	c.notes = append(c.notes, n)
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// notifications returns the notifications of a method received so far.
func (c *mcpClient) notifications(method string) []mcp.JSONRPCNotification {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []mcp.JSONRPCNotification
	for _, n := range c.notes {
		if n.Method == method {
			out = append(out, n)
		}
	}
	return out
}

// waitNotification waits until more than `after` notifications of method
// satisfying match have arrived.
func (c *mcpClient) waitNotification(method string, after int, timeout time.Duration, match func(mcp.JSONRPCNotification) bool) []mcp.JSONRPCNotification {
	c.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		var got []mcp.JSONRPCNotification
		for _, n := range c.notifications(method) {
			if match == nil || match(n) {
				got = append(got, n)
			}
		}
		if len(got) > after {
			return got
		}
		select {
		case <-c.signal:
		case <-time.After(50 * time.Millisecond):
		case <-deadline.C:
			c.t.Fatalf("no %s notification within %s (have %d)", method, timeout, len(got))
		}
	}
}

// result is a tool result as the client saw it.
type result struct {
	IsError    bool
	Text       string
	Structured json.RawMessage
}

// toolErr is the structured content of an error result.
type toolErr struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Options []tools.Option `json:"options"`
}

// callRaw calls a tool with an optional progress token. It checks what
// every result must satisfy: bounded text, structured content present, and
// for errors the {code, message, options} shape.
func (c *mcpClient) callRaw(ctx context.Context, name string, args map[string]any, token any) (result, error) {
	c.t.Helper()
	var req mcp.CallToolRequest
	req.Params.Name = name
	req.Params.Arguments = args
	if token != nil {
		req.Params.Meta = &mcp.Meta{ProgressToken: token}
	}
	res, err := c.c.CallTool(ctx, req)
	if err != nil {
		return result{}, err
	}
	var r result
	r.IsError = res.IsError
	for _, content := range res.Content {
		tc, ok := content.(mcp.TextContent)
		if !ok {
			c.t.Errorf("%s: content %T, want text", name, content)
			continue
		}
		r.Text += tc.Text
	}
	if r.Text == "" {
		c.t.Errorf("%s: empty text content", name)
	}
	// ≈16 KB: the limit plus room for the truncation note.
	if len(r.Text) > tools.TextLimit+256 {
		c.t.Errorf("%s: text is %d bytes, want at most ~%d", name, len(r.Text), tools.TextLimit)
	}
	if res.StructuredContent == nil {
		c.t.Fatalf("%s: no structuredContent (text %q)", name, r.Text)
	}
	r.Structured, err = json.Marshal(res.StructuredContent)
	if err != nil {
		c.t.Fatal(err)
	}
	// The TypeScript SDK (which Claude Code builds on) validates
	// structuredContent against the tool's output schema whenever it is
	// present, on error results too; so does this client.
	var instance any
	if err := json.Unmarshal(r.Structured, &instance); err != nil {
		c.t.Fatal(err)
	}
	if err := outputSchema(c.t, name).Validate(instance); err != nil {
		c.t.Errorf("%s: structuredContent does not match the output schema (isError %v): %v\n%s", name, r.IsError, err, r.Structured)
	}
	if r.IsError {
		var shape map[string]json.RawMessage
		if err := json.Unmarshal(r.Structured, &shape); err != nil {
			c.t.Fatalf("%s: error structuredContent is not an object: %s", name, r.Structured)
		}
		for _, k := range []string{"code", "message", "options"} {
			if _, ok := shape[k]; !ok {
				c.t.Errorf("%s: error structuredContent lacks %q: %s", name, k, r.Structured)
			}
		}
		if string(shape["options"]) == "null" {
			c.t.Errorf("%s: error options are null, want a list: %s", name, r.Structured)
		}
		var te toolErr
		json.Unmarshal(r.Structured, &te)
		if te.Code == "" || te.Message == "" {
			c.t.Errorf("%s: error without code or message: %s", name, r.Structured)
		}
	}
	return r, nil
}

var (
	schemasOnce sync.Once
	schemas     map[string]*jsonschema.Resolved
	schemasErr  error
)

// outputSchema is a tool's output schema exactly as tools/list sends it,
// resolved for validation.
func outputSchema(t *testing.T, tool string) *jsonschema.Resolved {
	t.Helper()
	schemasOnce.Do(func() {
		schemas = map[string]*jsonschema.Resolved{}
		for _, st := range tools.All(&tools.Deps{}) {
			raw, err := json.Marshal(st.Tool)
			if err != nil {
				schemasErr = err
				return
			}
			var def struct {
				OutputSchema *jsonschema.Schema `json:"outputSchema"`
			}
			if err := json.Unmarshal(raw, &def); err != nil || def.OutputSchema == nil {
				schemasErr = fmt.Errorf("%s: output schema: %v", st.Tool.Name, err)
				return
			}
			rs, err := def.OutputSchema.Resolve(nil)
			if err != nil {
				schemasErr = fmt.Errorf("%s: resolve output schema: %v", st.Tool.Name, err)
				return
			}
			schemas[st.Tool.Name] = rs
		}
	})
	if schemasErr != nil {
		t.Fatal(schemasErr)
	}
	rs, ok := schemas[tool]
	if !ok {
		t.Fatalf("no tool %s", tool)
	}
	return rs
}

// call calls a tool and fails the test on a protocol error.
func (c *mcpClient) call(name string, args map[string]any) result {
	c.t.Helper()
	r, err := c.callRaw(context.Background(), name, args, nil)
	if err != nil {
		c.t.Fatalf("%s %v: %v", name, args, err)
	}
	return r
}

// ok calls a tool that must succeed and decodes its structured result.
func (c *mcpClient) ok(name string, args map[string]any, out any) string {
	c.t.Helper()
	r := c.call(name, args)
	if r.IsError {
		c.t.Fatalf("%s %v: unexpected error: %s", name, args, r.Text)
	}
	if out != nil {
		if err := json.Unmarshal(r.Structured, out); err != nil {
			c.t.Fatalf("%s: decode %s: %v", name, r.Structured, err)
		}
	}
	return r.Text
}

// fail calls a tool that must answer an error with code.
func (c *mcpClient) fail(name string, args map[string]any, code string) toolErr {
	c.t.Helper()
	r := c.call(name, args)
	if !r.IsError {
		c.t.Fatalf("%s %v: succeeded, want error %s: %s", name, args, code, r.Text)
	}
	var te toolErr
	if err := json.Unmarshal(r.Structured, &te); err != nil {
		c.t.Fatal(err)
	}
	if te.Code != code {
		c.t.Fatalf("%s %v: code = %q, want %q (%s)", name, args, te.Code, code, te.Message)
	}
	return te
}

// hasOption reports whether an error offers a call of tool whose arguments
// include every key/value of want.
func hasOption(opts []tools.Option, tool string, want map[string]any) bool {
	for _, o := range opts {
		if o.Tool != tool {
			continue
		}
		match := true
		for k, v := range want {
			if fmt.Sprint(o.Arguments[k]) != fmt.Sprint(v) {
				match = false
			}
		}
		if match {
			return true
		}
	}
	return false
}

// start starts a session that must come up, returning its result.
func (c *mcpClient) start(args map[string]any) tools.StartResult {
	c.t.Helper()
	var res tools.StartResult
	c.ok("start_session", args, &res)
	return res
}

// monitorWait waits on a session with monitor and returns its answer.
func (c *mcpClient) monitorWait(session, wait string, timeout int) tools.MonitorResult {
	c.t.Helper()
	var res tools.MonitorResult
	c.ok("monitor", map[string]any{"session": session, "wait": wait, "timeout_seconds": timeout}, &res)
	return res
}

// list calls list.
// list calls list and, when it pages (more than 30 sessions), follows
// its offsets so that the result holds every session.
func (c *mcpClient) list(args map[string]any) tools.ListResult {
	c.t.Helper()
	var res tools.ListResult
	c.ok("list", args, &res)
	for len(res.Sessions) < res.Counts.Total {
		page := map[string]any{"offset": len(res.Sessions)}
		for k, v := range args {
			if k != "offset" && k != "limit" {
				page[k] = v
			}
		}
		var more tools.ListResult
		c.ok("list", page, &more)
		if len(more.Sessions) == 0 {
			break
		}
		res.Sessions = append(res.Sessions, more.Sessions...)
	}
	return res
}

// summary finds a session in a list result.
func summary(l tools.ListResult, name string) (tools.Summary, bool) {
	for _, s := range l.Sessions {
		if s.Session == name {
			return s, true
		}
	}
	return tools.Summary{}, false
}

// findListed pages through list until it finds the session: a page holds
// at most 30 sessions (fewer within its byte budget), so a test with many
// sessions cannot count on the first page.
func findListed(ctx context.Context, c *mcpClient, name string) (tools.Summary, bool, error) {
	for offset := 0; ; {
		var page tools.ListResult
		if err := must(c.try(ctx, "list", map[string]any{"offset": offset}, &page)); err != nil {
			return tools.Summary{}, false, err
		}
		if s, ok := summary(page, name); ok {
			return s, true, nil
		}
		if len(page.Sessions) == 0 || offset+len(page.Sessions) >= page.Counts.Total {
			return tools.Summary{}, false, nil
		}
		offset += len(page.Sessions)
	}
}

// readResource reads a resource and returns its text.
func (c *mcpClient) readResource(uri string) (string, error) {
	c.t.Helper()
	var req mcp.ReadResourceRequest
	req.Params.URI = uri
	res, err := c.c.ReadResource(context.Background(), req)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, rc := range res.Contents {
		tc, ok := rc.(mcp.TextResourceContents)
		if !ok {
			c.t.Fatalf("%s: contents %T, want text", uri, rc)
		}
		if tc.URI != uri {
			c.t.Errorf("%s: contents URI %q", uri, tc.URI)
		}
		b.WriteString(tc.Text)
	}
	return b.String(), nil
}
