package remote

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
)

// TestRemoteSessionLifecycle drives a host through the transport: list,
// start_session (mock), monitor, a resource (the catalog); then sshd is killed mid-run —
// the session keeps running on the host (its engine is in tmux there), a
// call fails at once naming the host — and once sshd is back the next call
// reconnects and kill works.
func TestRemoteSessionLifecycle(t *testing.T) {
	t.Parallel()
	sshd := testkit.StartSSHD(t)
	h := testHost(t, sshd, "box")
	project := t.TempDir()
	ctx := context.Background()
	c, err := Dial(ctx, h, testOptions(t))
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, sshd.Log())
	}
	defer c.Close()

	if got := call(t, c, "list", map[string]any{"project_dir": project}); len(got["sessions"].([]any)) != 0 {
		t.Fatalf("list on a fresh host: %v", got)
	}
	started := call(t, c, "start_session", map[string]any{
		"session": "r1", "stage": "demo", "provider": "mock", "project_dir": project, "max_iterations": 1000,
	})
	if started["status"] != "running" {
		t.Fatalf("start_session: %v", started)
	}
	// A second session: start_session lists the host's tmux sessions, which
	// over ssh (no UTF-8 locale there) needs tmux -u to parse.
	if second := call(t, c, "start_session", map[string]any{
		"session": "r2", "stage": "demo", "provider": "mock", "project_dir": project, "max_iterations": 1,
	}); second["status"] == nil {
		t.Fatalf("second start_session: %v", second)
	}
	// The session's files are the host's: under the project there, its
	// tmux server the one on the host's socket.
	if _, err := os.Stat(filepath.Join(project, ".claude", "pipeline-runs", "r1")); err != nil {
		t.Fatalf("run dir on the host: %v", err)
	}
	sock := h.Env["AGENT_SESSIONS_TMUX_SOCKET"]
	if err := exec.Command("tmux", "-L", sock, "has-session", "-t", "=loop-r1").Run(); err != nil {
		t.Fatalf("tmux session on the host's socket %s: %v", sock, err)
	}
	mon := call(t, c, "monitor", map[string]any{"session": "r1", "project_dir": project})
	if mon["status"] != "running" { // monitor's status says it; there is no separate alive field
		t.Fatalf("monitor: %v", mon)
	}
	if text, err := c.ReadResource(ctx, "sessions://catalog"); err != nil || !strings.Contains(text, "demo") {
		t.Fatalf("reminder resource: %v %q", err, text)
	}

	// A call that outlives its deadline is a timeout naming the host; the
	// connection stays.
	before := c.link
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = c.CallTool(short, "monitor", map[string]any{"session": "r1", "project_dir": project, "wait": "complete"})
	cancel()
	checkHostErr(t, err, "box", ErrTimeout)
	if c.link != before {
		t.Fatal("a timeout dropped the connection")
	}
	// A call in flight when sshd dies (monitor waiting for the end, which
	// is far off) fails with the host named, long before its own deadline.
	inflight := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		_, err := c.CallTool(ctx, "monitor", map[string]any{"session": "r1", "project_dir": project, "wait": "complete"})
		inflight <- err
	}()
	time.Sleep(500 * time.Millisecond) // let the call reach the host; either way it must fail, not hang
	sshd.Stop()
	err = <-inflight
	t.Logf("in flight when sshd died: %v", err)
	checkHostErr(t, err, "box", ErrConnectionLost, ErrUnreachable)
	_, err = c.CallTool(ctx, "list", map[string]any{"project_dir": project})
	t.Logf("while sshd is down: %v", err)
	checkHostErr(t, err, "box", ErrUnreachable)
	if err := exec.Command("tmux", "-L", sock, "has-session", "-t", "=loop-r1").Run(); err != nil {
		t.Fatalf("the remote session died with the ssh connection: %v", err)
	}

	sshd.Restart()
	if got := call(t, c, "list", map[string]any{"project_dir": project}); !strings.Contains(mustJSON(got), `"status":"running"`) {
		t.Fatalf("list after sshd came back: %v", got)
	}
	killed := call(t, c, "kill", map[string]any{"session": "r1", "project_dir": project})
	if killed["killed"] != true || killed["status"] != "killed" {
		t.Fatalf("kill after reconnect: %v", killed)
	}
}

// checkHostErr fails t unless err is an *Error naming host, of one of kinds.
func checkHostErr(t *testing.T, err error, host string, kinds ...error) {
	t.Helper()
	var he *Error
	if !errors.As(err, &he) || he.Host != host || !strings.Contains(err.Error(), `host "`+host+`"`) {
		t.Fatalf("got %v, want an *Error naming host %s", err, host)
	}
	for _, k := range kinds {
		if errors.Is(err, k) {
			return
		}
	}
	t.Fatalf("got %v, want one of %v", err, kinds)
}

// TestRemoteToolError: a tool's own error comes back as a *ToolError with
// its code and options, and a protocol error as a plain error; neither is
// taken for a connection failure.
func TestRemoteToolError(t *testing.T) {
	t.Parallel()
	sshd := testkit.StartSSHD(t)
	c, err := New(testHost(t, sshd, "box"), testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.CallTool(context.Background(), "monitor", map[string]any{"session": "ghost", "project_dir": t.TempDir()})
	var te *ToolError
	if !errors.As(err, &te) || te.Code != "not_found" || te.Host != "box" || !strings.HasPrefix(te.Text, "Error (not_found)") {
		t.Fatalf("monitor of a missing session: %#v", err)
	}
	// A protocol error (no such tool) keeps the connection: the next call
	// goes over the same ssh process, with no new dial.
	first := c.link
	_, err = c.CallTool(context.Background(), "no_such_tool", nil)
	var he *Error
	if err == nil || errors.As(err, &he) || !strings.Contains(err.Error(), `host "box": no_such_tool`) {
		t.Fatalf("unknown tool: %v, want a protocol error naming the host", err)
	}
	call(t, c, "list", map[string]any{"project_dir": t.TempDir()})
	if c.link != first {
		t.Fatal("a protocol error dropped the connection")
	}
}

// TestRemoteResendsWhatNeverLeft: a call whose request could not be written
// because ssh had already closed its input (EPIPE: it died idle, or right
// after its handshake) is sent again over a new connection — the host never
// got it, so it cannot run twice — and succeeds. The first "ssh" here
// answers initialize, then closes its input while its output stays open;
// the next runs the remote command as sshd would, through a shell.
func TestRemoteResendsWhatNeverLeft(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	runs, closed := filepath.Join(dir, "runs"), filepath.Join(dir, "closed")
	fake := filepath.Join(dir, "ssh")
	writeExec(t, fake, `#!/bin/sh
echo run >> '`+runs+`'
while [ "$1" != "--" ]; do shift; done; shift
if [ "$(wc -l < '`+runs+`')" -eq 1 ]; then
	while IFS= read -r req; do
		id=$(printf '%s' "$req" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
		case "$req" in
		*'"notifications/initialized"'*) break ;;
		*'"initialize"'*) printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"half","version":"1"}}}\n' "$id" ;;
		*) printf '{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"Method not found"}}\n' "$id" ;;
		esac
	done
	exec 0<&-
	: > '`+closed+`'
	exec sleep 30
fi
exec sh -c "$*"
`)
	h := Host{Name: "box", SSH: "fakehost", Binary: binary, Env: map[string]string{
		"HOME": t.TempDir(), "AGENT_SESSIONS_TMUX_SOCKET": "as-remote-" + randHex(6), "AGENT_SESSIONS_NOTIFY": "0",
	}}
	opts := testOptions(t)
	opts.ssh = fake
	c, err := Dial(context.Background(), h, opts)
	if err != nil {
		t.Fatalf("dial the half ssh: %v", err)
	}
	defer c.Close()
	testkit.Eventually(t, 10*time.Second, "the first ssh to close its input", func() bool { _, err := os.Stat(closed); return err == nil })
	call(t, c, "list", map[string]any{"project_dir": t.TempDir()})
	if data, _ := os.ReadFile(runs); strings.Count(string(data), "run") != 2 {
		t.Fatalf("ssh ran %d times, want 2 (the dial, then the one resend)", strings.Count(string(data), "run"))
	}
}

// TestRemoteBadHosts: each way a host can be wrong fails with its kind and
// a message that says what to do — and returns (no hang) within the bound.
func TestRemoteBadHosts(t *testing.T) {
	t.Parallel()
	sshd := testkit.StartSSHD(t)
	closed := closedPort(t)
	silent := silentPort(t)
	for _, tc := range []struct {
		name string
		edit func(*Host)
		kind error
		want string
	}{
		{"closed-port", func(h *Host) { h.SSH, h.SSHArgs = "127.0.0.1", []string{"-F", "/dev/null", "-p", closed} }, ErrUnreachable, "Connection refused"},
		{"silent-port", func(h *Host) { h.SSH, h.SSHArgs = "127.0.0.1", []string{"-F", "/dev/null", "-p", silent} }, nil, "127.0.0.1"},
		{"password", func(h *Host) { h.SSHArgs = append(h.SSHArgs, "-o", "User=no-such-user") }, ErrAuth, "BatchMode"},
		{"no-binary", func(h *Host) { h.Binary = "/nonexistent/agent-sessions" }, ErrBinaryMissing, "agent-sessions install --host box"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := testHost(t, sshd, "box")
			tc.edit(&h)
			opts := testOptions(t)
			if tc.name == "silent-port" {
				opts.ConnectTimeout = time.Second // only a timeout ends it
			}
			c, err := New(h, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.CallTool(context.Background(), "list", nil)
			t.Logf("%v", err)
			var he *Error
			if !errors.As(err, &he) || he.Host != "box" {
				t.Fatalf("got %v, want an *Error naming the host", err)
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Errorf("got %v, want kind %v", err, tc.kind)
			}
			if tc.kind == nil && !errors.Is(err, ErrUnreachable) && !errors.Is(err, ErrTimeout) {
				t.Errorf("got %v, want unreachable or timeout", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

// TestRemoteTwoHosts: two hosts (two sshd) used at once from many
// goroutines, each answering with its own sessions.
func TestRemoteTwoHosts(t *testing.T) {
	t.Parallel()
	opts := testOptions(t)
	var conns []*Conn
	var projects []string
	for _, name := range []string{"one", "two"} {
		c, err := New(testHost(t, testkit.StartSSHD(t), name), opts)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		p := t.TempDir()
		call(t, c, "start_session", map[string]any{"session": "s-" + name, "stage": "demo", "provider": "mock", "project_dir": p, "max_iterations": 1000})
		conns, projects = append(conns, c), append(projects, p)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, p := conns[i%2], projects[i%2]
			raw, err := c.CallTool(context.Background(), "list", map[string]any{"project_dir": p})
			if err == nil && !strings.Contains(string(raw), `"session":"s-`+c.Host().Name+`"`) {
				err = errors.New("list of " + c.Host().Name + " lacks its session: " + string(raw))
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, c := range conns {
		call(t, c, "kill", map[string]any{"session": "s-" + c.Host().Name, "project_dir": projects[i]})
	}
}
