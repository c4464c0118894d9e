package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"github.com/agent-sessions/agent-sessions/skill"
	"github.com/agent-sessions/agent-sessions/state"
)

// tmuxSocket gives a test its own tmux server (-L) and kills it at the end;
// no test touches the user's default server. Without tmux the test skips,
// except under CI, where that is a failure.
func tmuxSocket(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is not installed, and CI requires it")
		}
		t.Skip("tmux is not installed")
	}
	sock := fmt.Sprintf("as-main-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	t.Cleanup(func() { testkit.KillTmuxServer(sock) }) // and its socket file
	return sock
}

// tmuxSessions lists the sessions on a private server ("" when none).
func tmuxSessions(sock string) string {
	out, _ := exec.Command("tmux", "-L", sock, "list-sessions", "-F", "#{session_name}").Output()
	return strings.TrimSpace(string(out))
}

func cliEnv(sock string, extra ...string) []string {
	env := engineEnv(false, "AGENT_SESSIONS_MOCK_STEP=10ms")
	if sock != "" {
		env = append(env, "AGENT_SESSIONS_TMUX_SOCKET="+sock)
	}
	return append(env, extra...)
}

// The debug mode runs a scripted session from stdin, shrugs off bad lines,
// and calls the same handlers the server does.
func TestDebugModeScriptedSession(t *testing.T) {
	t.Parallel()
	sock := tmuxSocket(t)
	project := t.TempDir()
	script := strings.Join([]string{
		"help",
		"tools",
		"# a comment, ignored",
		"list include_catalog=true",
		`start_session {"session": "dbg", "stage": "demo", "max_iterations": 3`, // bad JSON
		"start_session session dbg", // not key=value
		"nosuch_tool x=1",           // unknown tool
		`monitor session="unclosed`, // unclosed quote
		"start_session session=dbg stage=demo context=\"two words\"",
		"monitor session=dbg wait=complete timeout_seconds=120",
		"monitor session=dbg lines=9999", // out of range: a tool error
		"read sessions://reminder",
		"read sessions://session/dbg/state",
		"read",
		"resources",
		"kill session=dbg",
		"quit",
		"list", // never reached
	}, "\n") + "\n"
	cmd := exec.Command(binary, "debug", "--project", project)
	cmd.Env = cliEnv(sock, "AGENT_SESSIONS_MOCK_PLATEAU_AFTER=1")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("debug exited with %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{
		"agent-sessions debug",
		"TOOL key=value",         // help
		"start_session",          // tools
		`"name": "quick-refine"`, // list's catalog
		"error: arguments are not a JSON object",
		`error: "session" is not key=value`,
		"error: unclosed quote",
		`"status": "running"`,            // start_session result
		`"completion_reason": "plateau"`, // monitor waited for completion
		`"code": "invalid_argument"`,     // lines=9999
		"No agent sessions are running",  // reminder after completion
		`"session": "dbg"`,               // state resource
		"error: read needs a URI",
		"sessions://catalog", // resources
		`"killed": false`,    // kill of a finished session is a calm no-op
	} {
		if !strings.Contains(text, want) {
			t.Errorf("debug output lacks %q", want)
		}
	}
	if !strings.Contains(text, "error:") || strings.Count(text, "nosuch_tool") == 0 {
		t.Errorf("unknown tool not reported:\n%s", text)
	}
	if st := loadState(t, project, "dbg"); st.Status != state.StatusComplete {
		t.Errorf("session status %s, want complete", st.Status)
	}
	if s := tmuxSessions(sock); s != "" {
		t.Errorf("tmux sessions left behind: %s", s)
	}
}

// The demo exits 0 on a private socket and leaves nothing behind.
func TestDemoLeavesNothingRunning(t *testing.T) {
	t.Parallel()
	sock := tmuxSocket(t)
	project := t.TempDir()
	cmd := exec.Command(binary, "demo", "--project", project)
	cmd.Env = cliEnv(sock)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo exited with %v\n%s", err, out)
	}
	text := string(out)
	// The hint to connect Claude Code names an absolute path and the user
	// scope; the directory to look at is a real iteration's.
	for _, want := range []string{"1/7", "start_session", "monitor", "list", "kill", `"mode":"resume"`, "7/7", "complete: plateau", "Nothing is left running", "-L " + sock,
		"claude mcp add --scope user agent-sessions -- " + binary + " serve", filepath.Join("stage-01-demo", "iterations", "001")} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q\n%s", want, text)
		}
	}
	if s := tmuxSessions(sock); s != "" {
		t.Errorf("tmux sessions left behind: %s", s)
	}
	entries, _ := os.ReadDir(state.RunsDir(project))
	if len(entries) != 1 {
		t.Fatalf("run dirs = %d, want 1", len(entries))
	}
	name := entries[0].Name()
	if st := loadState(t, project, name); st.Status != state.StatusComplete || st.ResumedAt == nil {
		t.Errorf("demo session: status %s, resumed %v; want complete after a resume", st.Status, st.ResumedAt)
	}
	if ls, _ := state.ProbeLock(state.NewLayout(project, name).LockFile()); ls.Exists {
		t.Errorf("lock file left behind")
	}
	t.Logf("demo took %s", time.Since(start).Round(time.Millisecond))
}

// Without tmux the demo says so and runs the engine in the foreground.
func TestDemoWithoutTmuxRunsInForeground(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	bin := t.TempDir() // a PATH without tmux
	cmd := exec.Command(binary, "demo", "--project", project)
	cmd.Env = withPath(cliEnv("as-never-used"), bin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo exited with %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"tmux is not available", "foreground", "session demo-", "complete"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q\n%s", want, text)
		}
	}
}

// install writes every skill file and a valid, merged .mcp.json.
func TestInstallWritesSkillAndMergesMCPConfig(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	project := t.TempDir()
	writeFile(t, filepath.Join(project, ".mcp.json"), `{"mcpServers": {"other": {"command": "other-server"}}}`)
	cmd := exec.Command(binary, "install", "--project", project)
	cmd.Env = append(cliEnv(""), "HOME="+home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("install exited with %v\n%s", err, out)
	}
	dir := filepath.Join(home, ".claude", "skills", "sessions")
	for _, f := range skill.Files() {
		want, _ := skill.FS.ReadFile(f)
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil || string(got) != string(want) {
			t.Errorf("skill file %s not installed (%v)", f, err)
		}
	}
	var cfg struct {
		MCPServers map[string]struct {
			Type, Command string
			Args          []string
		} `json:"mcpServers"`
	}
	data, _ := os.ReadFile(filepath.Join(project, ".mcp.json"))
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf(".mcp.json is not valid JSON: %v\n%s", err, data)
	}
	if cfg.MCPServers["other"].Command != "other-server" {
		t.Errorf("the other server was lost: %s", data)
	}
	e := cfg.MCPServers["agent-sessions"]
	if e.Command != binary || len(e.Args) != 1 || e.Args[0] != "serve" || e.Type != "stdio" {
		t.Errorf("agent-sessions entry = %+v, want stdio %s serve", e, binary)
	}
	for _, want := range []string{"claude mcp add --scope user agent-sessions -- " + binary + " serve", "reminder --hook"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("install output lacks %q\n%s", want, out)
		}
	}
	backups, _ := filepath.Glob(filepath.Join(project, ".mcp.json.bak-*"))
	if len(backups) != 1 {
		t.Errorf("backups of .mcp.json = %v, want one", backups)
	}
}

// reminder prints the orphan reminder, and as a Stop hook speaks only when
// something is running; both always exit 0.
func TestReminder(t *testing.T) {
	t.Parallel()
	sock := tmuxSocket(t)
	project := t.TempDir()
	code, out, _ := runBinary(t, cliEnv(sock), "reminder", "--project", project)
	if code != 0 || !strings.Contains(out, "No agent sessions are running") {
		t.Fatalf("reminder with nothing running: exit %d\n%s", code, out)
	}
	hook := exec.Command(binary, "reminder", "--hook")
	hook.Env = cliEnv(sock)
	hook.Stdin = strings.NewReader(fmt.Sprintf(`{"session_id": "x", "cwd": %q, "stop_hook_active": false}`, project))
	if out, err := hook.Output(); err != nil || len(out) != 0 {
		t.Fatalf("hook with nothing running: %v, printed %q; want silence", err, out)
	}

	// A session running in the foreground (no tmux) is still named.
	writeStage(t, project, "slow", commandStage("fixed-n", "sleep-agent", "max_iterations: 1"), "sleep\n")
	p := startBinary(t, engineEnv(true, "SLEEP_SECONDS=30"), "run", "--session", "busy", "--stage", "slow", "--project", project, "--foreground")
	waitFor(t, 10*time.Second, "the engine to take its lock", func() bool {
		ls, _ := state.ProbeLock(state.NewLayout(project, "busy").LockFile())
		return ls.Held
	})
	code, out, _ = runBinary(t, cliEnv(sock), "reminder", "--project", project)
	if code != 0 || !strings.Contains(out, "**busy**") || !strings.Contains(out, `kill {"session": "busy"}`) || !strings.Contains(out, "`agent-sessions kill busy`") {
		t.Errorf("reminder with a running session: exit %d\n%s", code, out)
	}
	hook = exec.Command(binary, "reminder", "--hook")
	hook.Env = cliEnv(sock)
	hook.Stdin = strings.NewReader(fmt.Sprintf(`{"cwd": %q}`, project))
	raw, err := hook.Output()
	var msg struct {
		SystemMessage string `json:"systemMessage"`
	}
	if err != nil || json.Unmarshal(raw, &msg) != nil || !strings.Contains(msg.SystemMessage, "busy") {
		t.Errorf("hook with a running session: %v, %q", err, raw)
	}
	// The commands the reminder names work: list shows it, kill stops it.
	code, out, errOut := runBinaryIn(t, project, cliEnv(sock), "list")
	if code != 0 || !strings.Contains(out, "- busy [running]") {
		t.Errorf("agent-sessions list: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runBinaryIn(t, project, cliEnv(sock), "kill", "busy")
	if code != 0 || !strings.Contains(out, "Stopped busy") {
		t.Errorf("agent-sessions kill busy: exit %d\n%s%s", code, out, errOut)
	}
	if code := p.wait(t, 20*time.Second); code != exitKilled {
		t.Errorf("engine exit %d after agent-sessions kill, want %d", code, exitKilled)
	}
	code, out, _ = runBinaryIn(t, project, cliEnv(sock), "kill", "nobody")
	if code != 1 || !strings.Contains(out, "Error (not_found)") {
		t.Errorf("agent-sessions kill nobody: exit %d\n%s", code, out)
	}
}

// Run by hand in a terminal, serve says what it is and how to stop it
// instead of waiting in silence; under Claude Code (a pipe) it says nothing.
func TestServeInATerminalSaysWhatItIs(t *testing.T) {
	defer func(f func(io.Reader) bool) { stdinIsTerminal = f }(stdinIsTerminal)
	for _, tty := range []bool{true, false} {
		stdinIsTerminal = func(io.Reader) bool { return tty }
		var stdout, stderr bytes.Buffer
		code := dispatch([]string{"serve", "--project", t.TempDir()}, strings.NewReader(""), &stdout, &stderr)
		said := strings.Contains(stderr.String(), "this is the MCP server") && strings.Contains(stderr.String(), "Ctrl+C")
		if code != 0 || said != tty {
			t.Errorf("terminal %v: exit %d, stderr %q", tty, code, stderr.String())
		}
	}
}
