package tools_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
)

// The tap: Claude Code starts this test binary as its MCP server with
// tapEnv set; it runs the built `agent-sessions serve` and records both
// directions of the stdio protocol, so the test can compare what the server
// answered with what the model was handed.
const (
	tapEnv    = "AGENT_SESSIONS_TEST_TAP_DIR" // where to write in.jsonl and out.jsonl
	tapBinEnv = "AGENT_SESSIONS_TEST_TAP_BIN" // the agent-sessions binary to run
)

func tapServe() int {
	dir := os.Getenv(tapEnv)
	in, err1 := os.Create(filepath.Join(dir, "in.jsonl"))
	out, err2 := os.Create(filepath.Join(dir, "out.jsonl"))
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "tap:", err1, err2)
		return 2
	}
	defer in.Close()
	defer out.Close()
	cmd := exec.Command(os.Getenv(tapBinEnv), "serve")
	cmd.Stdin = io.TeeReader(os.Stdin, in)
	cmd.Stdout = io.MultiWriter(os.Stdout, out)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "tap:", err)
		return 1
	}
	return 0
}

// toolCall is one scripted model step: the tool and its input.
type toolCall struct {
	tool  string
	input string
}

// TestClaudeCodeReadsStructuredContent runs the real Claude Code CLI as the
// MCP client of the built `serve`: the fake Messages API scripts the model
// to call start_session, monitor, list, kill and a failing monitor, and the
// test asserts on what the model was handed — the tool_result in the next
// API request is the compact structuredContent on success, the error text
// on isError. Under both protocol eras. The default era adds the server as a
// user would (`claude mcp add --scope user`) and checks `claude mcp list`
// says it is connected; the legacy era names it with --mcp-config.
func TestClaudeCodeReadsStructuredContent(t *testing.T) {
	t.Parallel()
	cli := testkit.RequireClaudeCLI(t)
	for _, era := range []string{"default", "legacy"} {
		t.Run(era, func(t *testing.T) {
			t.Parallel()
			claudeAsClient(t, cli, era)
		})
	}
}

func claudeAsClient(t *testing.T, cli, era string) {
	e := newEnv(t)
	e.stage("long", longStage)
	session := "cc-" + era
	calls := []toolCall{
		{"start_session", fmt.Sprintf(`{"session":%q,"stage":"long"}`, session)},
		{"monitor", fmt.Sprintf(`{"session":%q,"lines":3}`, session)},
		{"list", `{}`},
		{"kill", fmt.Sprintf(`{"session":%q}`, session)},
		{"monitor", `{"session":"nobody-here"}`},
	}
	api := testkit.NewMessages(t)
	var mu sync.Mutex
	api.Script = func(r testkit.Request) testkit.Turn {
		if !bytes.Contains(r.Body, []byte("mcp__agent-sessions__start_session")) {
			return testkit.Text("ok") // a side request (a title, a check): not the agent loop
		}
		mu.Lock()
		defer mu.Unlock()
		n := bytes.Count(r.Body, []byte(`"tool_result"`))
		if n < len(calls) {
			// Each call its own id: Claude Code pairs results by id.
			return testkit.Turn{Blocks: []testkit.Block{{Kind: "tool_use", Name: "mcp__agent-sessions__" + calls[n].tool,
				ID: fmt.Sprintf("toolu_as_%d", n), Input: json.RawMessage(calls[n].input)}}}
		}
		return testkit.Text("All done.")
	}
	// The fake reads Script under its lock: taking that lock once (Enqueue
	// of nothing) orders the lines above before any request it serves.
	api.Enqueue()

	env := testkit.NewEnv(t, api.URL)
	tapDir := t.TempDir()
	// Claude Code 2.1.332 connects MCP servers without blocking and gives
	// up on one after MCP_CONNECT_TIMEOUT_MS (5 s): at a load of 25 this
	// server (the tap, a race-built test binary, then serve) was not up in
	// time and the model was asked without its tools. (A tap that sleeps 8 s
	// fails without the two settings below and passes with them.)
	env.Extra = append(env.Extra, "IS_SANDBOX=1", "ENABLE_TOOL_SEARCH=false", "MCP_TIMEOUT=30000", "MCP_TOOL_TIMEOUT=60000",
		"MCP_CONNECTION_NONBLOCKING=false", "MCP_CONNECT_TIMEOUT_MS=30000")
	if era == "legacy" {
		env.Extra = append(env.Extra, "MCP_PROTOCOL_NEGOTIATION=legacy")
	}
	run := func(timeout time.Duration, args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, cli, args...)
		cmd.Dir, cmd.Env = e.project, env.List()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("claude %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// The server Claude Code starts: this test binary as a tap in front of
	// the built binary, on the test's private tmux socket, with fast mocks.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	serverEnv := map[string]string{tapEnv: tapDir, tapBinEnv: binary(t), "AGENT_SESSIONS_TMUX_SOCKET": e.socket,
		"AGENT_SESSIONS_MOCK_STEP": "10ms", "AGENT_SESSIONS_NOTIFY": "0", "AGENT_SESSIONS_KILL_GRACE": "2s"}
	prompt := []string{"-p", "Start a session, look at it, list, stop it.", "--model", "sonnet",
		"--dangerously-skip-permissions", "--output-format", "text"}
	if era == "default" {
		// The way the README tells a user to add the server, once (and,
		// at the end, what `claude mcp list` says of it): every run of the
		// CLI costs a second or two of CPU, and the legacy era changes
		// nothing in how the server is added or health-checked.
		mcpAdd(t, run, self, serverEnv)
	} else {
		prompt = append(prompt, "--mcp-config", mcpConfig(t, self, serverEnv))
	}
	defer func() {
		if t.Failed() {
			dumpConversation(t, api, tapDir)
		}
	}()
	out := run(45*time.Second, prompt...)
	if !strings.Contains(out, "All done.") {
		t.Errorf("claude -p printed %q, want the scripted last turn", out)
	}

	answers := tappedAnswers(t, tapDir)
	results := handedToModel(t, api.MessageRequests())
	if len(results) != len(calls) {
		t.Fatalf("the model was handed %d tool results, want %d: %+v", len(results), len(calls), results)
	}
	for i, c := range calls {
		got := results[i]
		a, ok := answers[c.tool+"#"+fmt.Sprint(countBefore(calls, i))]
		if !ok {
			t.Errorf("%s: the server's answer was not recorded", c.tool)
			continue
		}
		if a.isError != got.isError {
			t.Errorf("%s: isError %v on the wire, %v as handed to the model", c.tool, a.isError, got.isError)
		}
		if a.isError {
			if got.text != a.text {
				t.Errorf("%s error: the model read\n%q\nwant the error text\n%q", c.tool, got.text, a.text)
			}
			if !strings.HasPrefix(got.text, "Error (not_found)") {
				t.Errorf("%s error text %q, want the Error (code) form", c.tool, got.text)
			}
			continue
		}
		if !compactSame(got.text, a.structured) {
			t.Errorf("%s: the model read\n%s\nwant the structuredContent\n%s", c.tool, got.text, a.structured)
		}
		if got.text == a.text {
			t.Errorf("%s: the model read the text, not the structured content", c.tool)
		}
		t.Logf("%s: the model read %d B", c.tool, len(got.text))
	}
	in, _ := os.ReadFile(filepath.Join(tapDir, "in.jsonl"))
	if era == "legacy" && !bytes.Contains(in, []byte(`"method":"initialize"`)) {
		t.Errorf("legacy era: no initialize in what Claude Code sent:\n%.2000s", in)
	}
	if era == "default" {
		// Last: its health check starts the server (the tap) afresh, which
		// rewrites the tap's files read above.
		mcpListConnected(t, run)
	}
}

// mcpAdd adds the server with `claude mcp add --scope user`, as the
// README's hint tells a user to.
func mcpAdd(t *testing.T, run func(time.Duration, ...string) string, server string, env map[string]string) {
	t.Helper()
	// The name first: -e takes every value up to "--".
	add := []string{"mcp", "add", "agent-sessions", "--scope", "user"}
	for k, v := range env {
		add = append(add, "-e", k+"="+v)
	}
	run(time.Minute, append(add, "--", server)...)
}

// mcpListConnected checks that `claude mcp list` reports the added server
// connected (its health check starts the server and talks to it).
func mcpListConnected(t *testing.T, run func(time.Duration, ...string) string) {
	t.Helper()
	out := run(time.Minute, "mcp", "list")
	if !strings.Contains(out, "agent-sessions") || !strings.Contains(out, "✔ Connected") || strings.Contains(out, "failed") {
		t.Fatalf("claude mcp list does not report the server connected:\n%s", out)
	}
	t.Logf("claude mcp list:\n%s", out)
}

// mcpConfig writes an --mcp-config file naming the server: the same server
// as `claude mcp add` would, without a run of the CLI to add it.
func mcpConfig(t *testing.T, server string, env map[string]string) string {
	t.Helper()
	cfg := map[string]any{"mcpServers": map[string]any{"agent-sessions": map[string]any{
		"type": "stdio", "command": server, "args": []string{}, "env": env}}}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mcp.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func countBefore(calls []toolCall, i int) int {
	n := 0
	for _, c := range calls[:i] {
		if c.tool == calls[i].tool {
			n++
		}
	}
	return n
}

// answer is one tools/call answer as the server wrote it.
type answer struct {
	isError    bool
	text       string
	structured json.RawMessage
}

// tappedAnswers pairs the tools/call requests Claude Code sent with the
// server's responses: tool#k is the k-th call of tool.
func tappedAnswers(t *testing.T, dir string) map[string]answer {
	t.Helper()
	names := map[string]string{} // request id → tool#k
	seen := map[string]int{}
	for _, line := range jsonLines(t, filepath.Join(dir, "in.jsonl")) {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		if json.Unmarshal(line, &req) == nil && req.Method == "tools/call" {
			names[string(req.ID)] = fmt.Sprintf("%s#%d", req.Params.Name, seen[req.Params.Name])
			seen[req.Params.Name]++
		}
	}
	out := map[string]answer{}
	for _, line := range jsonLines(t, filepath.Join(dir, "out.jsonl")) {
		var res struct {
			ID     json.RawMessage `json:"id"`
			Result *struct {
				IsError           bool            `json:"isError"`
				StructuredContent json.RawMessage `json:"structuredContent"`
				Content           []struct {
					Text string `json:"text"`
				} `json:"content"`
			} `json:"result"`
		}
		if json.Unmarshal(line, &res) != nil || res.Result == nil {
			continue
		}
		name, ok := names[string(res.ID)]
		if !ok {
			continue
		}
		a := answer{isError: res.Result.IsError, structured: res.Result.StructuredContent}
		for _, c := range res.Result.Content {
			a.text += c.Text
		}
		out[name] = a
	}
	return out
}

func jsonLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the tap recorded nothing: %v", err)
	}
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	return lines
}

// handed is one tool_result block as the model received it.
type handed struct {
	isError bool
	text    string
}

// handedToModel reads the tool_result blocks of the last agent-loop
// request (it carries the whole conversation), in order.
func handedToModel(t *testing.T, bodies [][]byte) []handed {
	t.Helper()
	var last []byte
	for _, b := range bodies {
		if bytes.Contains(b, []byte("mcp__agent-sessions__start_session")) {
			last = b
		}
	}
	var req struct {
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(last, &req); err != nil {
		t.Fatalf("no agent-loop request: %v", err)
	}
	var out []handed
	for _, m := range req.Messages {
		var blocks []struct {
			Type    string          `json:"type"`
			IsError bool            `json:"is_error"`
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(m.Content, &blocks) != nil {
			continue
		}
		for _, b := range blocks {
			if b.Type != "tool_result" {
				continue
			}
			h := handed{isError: b.IsError}
			var s string
			var parts []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			}
			switch {
			case json.Unmarshal(b.Content, &s) == nil:
				h.text = s
			case json.Unmarshal(b.Content, &parts) == nil:
				for _, p := range parts {
					h.text += p.Text
				}
			}
			out = append(out, h)
		}
	}
	return out
}

// compactSame reports whether text is the compact JSON of raw: the same value,
// written without indentation (JSON.stringify's form).
func compactSame(text string, raw json.RawMessage) bool {
	var a, b any
	if json.Unmarshal([]byte(text), &a) != nil || json.Unmarshal(raw, &b) != nil || !reflect.DeepEqual(a, b) {
		return false
	}
	var compact bytes.Buffer
	return json.Compact(&compact, []byte(text)) == nil && compact.String() == text
}

// dumpConversation logs what the fake API and the server received.
func dumpConversation(t *testing.T, api *testkit.Messages, tapDir string) {
	for _, b := range api.MessageRequests() {
		var req struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
		}
		json.Unmarshal(b, &req)
		var names []string
		for _, tl := range req.Tools {
			names = append(names, tl.Name)
		}
		var msgs struct {
			Messages []json.RawMessage `json:"messages"`
		}
		json.Unmarshal(b, &msgs)
		lastMsg := []byte{}
		if n := len(msgs.Messages); n > 0 {
			lastMsg = msgs.Messages[n-1]
		}
		t.Logf("request (%d B, %d messages, %d tools): last message %.1500s", len(b), len(msgs.Messages), len(names), lastMsg)
	}
	in, _ := os.ReadFile(filepath.Join(tapDir, "in.jsonl"))
	out, _ := os.ReadFile(filepath.Join(tapDir, "out.jsonl"))
	t.Logf("the server received:\n%.4000s\nand answered:\n%.4000s", in, out)
}
