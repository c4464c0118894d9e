package tools_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"github.com/agent-sessions/agent-sessions/remote"
	"github.com/agent-sessions/agent-sessions/tools"
)

// farHost is a host on a private sshd whose far side runs the built binary
// with its own HOME and tmux socket: its sessions, files and tmux server
// are the host's, never this test's local ones.
func farHost(t testing.TB, s *testkit.SSHD, name string) remote.Host {
	t.Helper()
	return remote.Host{
		Name: name, SSH: s.Alias, SSHArgs: s.SSHArgs(), Binary: binary(t),
		Env: map[string]string{
			"HOME":                              t.TempDir(),
			"AGENT_SESSIONS_TMUX_SOCKET":        newSocket(t),
			"AGENT_SESSIONS_NOTIFY":             "0",
			"AGENT_SESSIONS_MOCK_STEP":          "10ms",
			"AGENT_SESSIONS_MOCK_PLATEAU_AFTER": "100000",
			"AGENT_SESSIONS_KILL_GRACE":         "2s",
		},
	}
}

// withHosts gives the env's server these hosts, with generous bounds: the
// tests prove behaviour, not speed, on a shared machine where a cold ssh
// login can take seconds.
func (e *testEnv) withHosts(hosts ...remote.Host) { e.withHostsTimeout(30*time.Second, hosts...) }

func (e *testEnv) withHostsTimeout(call time.Duration, hosts ...remote.Host) {
	e.t.Helper()
	ctl, err := os.MkdirTemp("", "as-ctl-")
	if err != nil {
		e.t.Fatal(err)
	}
	h := tools.NewHosts(&remote.Config{Hosts: hosts}, remote.Options{ControlDir: ctl, ConnectTimeout: 5 * time.Second, CallTimeout: call, ClientVersion: "test"})
	h.Timeout = 20 * time.Second
	e.deps.Hosts = h
	e.t.Cleanup(func() { h.Close(); os.RemoveAll(ctl) })
}

// goneHost is a host whose ssh port has nothing listening.
func goneHost(t *testing.T) remote.Host {
	return remote.Host{Name: "gone", SSH: "127.0.0.1", SSHArgs: []string{"-F", "/dev/null", "-p", closedPort(t)}}
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := strings.Cut(l.Addr().String(), ":")
	return port
}

func hasTmuxOn(socket, name string) bool {
	return exec.Command("tmux", "-L", socket, "has-session", "-t", "="+name).Run() == nil
}

// TestHostRouting: every tool reaches a host through `host`; two hosts at
// once and an unreachable one among them; list, cleanup's dry run and the
// reminder cover every host, naming the one that did not answer; the
// session's tmux server and files are the host's; an unknown host is
// invalid_argument with did-you-mean.
func TestHostRouting(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sshd := testkit.StartSSHD(t)
	box, box2 := farHost(t, sshd, "box"), farHost(t, sshd, "box2")
	e.withHosts(box, box2, goneHost(t))
	c := e.connect("2025-06-18")

	te := c.fail("monitor", map[string]any{"host": "bxo", "session": "r1"}, tools.CodeInvalidArgument)
	if !strings.Contains(te.Message, `did you mean "box"?`) || !strings.Contains(te.Message, "box2") {
		t.Errorf("unknown host: %s", te.Message)
	}

	far, far2 := t.TempDir(), t.TempDir()
	var st struct {
		tools.StartResult
		Host string `json:"host"`
	}
	c.ok("start_session", map[string]any{"host": "box", "session": "r1", "stage": "demo", "provider": "mock", "project_dir": far, "max_iterations": 1000}, &st)
	if st.Host != "box" || st.Status != "running" {
		t.Fatalf("start on box: %+v", st)
	}
	c.ok("start_session", map[string]any{"host": "box2", "session": "r2", "stage": "demo", "provider": "mock", "project_dir": far2, "max_iterations": 1000}, nil)
	// The host's: its tmux server and run dir; nothing on this machine's.
	if !hasTmuxOn(box.Env["AGENT_SESSIONS_TMUX_SOCKET"], "loop-r1") || hasTmuxOn(e.socket, "loop-r1") {
		t.Errorf("loop-r1 is not on box's tmux server only (local: %v)", e.tmuxNames())
	}
	if !hasTmuxOn(box2.Env["AGENT_SESSIONS_TMUX_SOCKET"], "loop-r2") {
		t.Errorf("loop-r2 is not on box2's tmux server")
	}
	if _, err := os.Stat(filepath.Join(far, ".claude", "pipeline-runs", "r1", "state.json")); err != nil {
		t.Errorf("r1's run dir on the host: %v", err)
	}

	l := c.list(map[string]any{})
	if s, ok := summary(l, "r1"); !ok || s.Host != "box" {
		t.Errorf("list across hosts lacks r1 on box: %+v", l)
	}
	if s, ok := summary(l, "r2"); !ok || s.Host != "box2" {
		t.Errorf("list across hosts lacks r2 on box2: %+v", l)
	}
	if !strings.Contains(strings.Join(l.Warnings, "\n"), "host gone") {
		t.Errorf("list: no warning naming the unreachable host: %q", l.Warnings)
	}
	if data, _ := json.Marshal(l); len(data) > min(300+180*len(l.Sessions), 6<<10) {
		t.Errorf("list across hosts is %d bytes for %d sessions", len(data), len(l.Sessions))
	}

	var mon struct {
		tools.MonitorResult
		Host string `json:"host"`
	}
	c.ok("monitor", map[string]any{"host": "box", "session": "r1", "project_dir": far}, &mon)
	if mon.Host != "box" || mon.Status != "running" {
		t.Errorf("monitor through box: %+v", mon)
	}
	var at tools.AttachResult
	c.ok("attach_hint", map[string]any{"host": "box", "session": "r1", "project_dir": far, "read_only": true}, &at)
	want := "ssh -t -F " + sshd.ConfigFile + " " + sshd.Alias + " -- tmux -L " + box.Env["AGENT_SESSIONS_TMUX_SOCKET"]
	if !strings.HasPrefix(at.Command, want) || !strings.Contains(at.Command, "attach") || !strings.Contains(at.Command, "-r") {
		t.Errorf("attach_hint through box: %q, want prefix %q and a read-only attach", at.Command, want)
	}

	var cl tools.CleanupResult
	c.ok("cleanup", map[string]any{}, &cl)
	if !strings.Contains(strings.Join(cl.Warnings, "\n"), "host gone") {
		t.Errorf("cleanup dry run: no warning naming gone: %q", cl.Warnings)
	}
	rem, err := c.readResource(tools.ReminderURI)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"**r1** on host box", "**r2** on host box2", `kill {"host": "box2", "session": "r2"}`, "host gone"} {
		if !strings.Contains(rem, w) {
			t.Errorf("reminder lacks %q:\n%s", w, rem)
		}
	}

	var k tools.KillResult
	c.ok("kill", map[string]any{"host": "box", "session": "r1", "project_dir": far}, &k)
	if k.Status != "killed" {
		t.Errorf("kill through box: %+v", k)
	}
	te = c.fail("kill", map[string]any{"host": "box2", "session": "nope", "project_dir": far}, tools.CodeNotFound)
	for _, o := range te.Options {
		if o.Arguments["host"] != "box2" {
			t.Errorf("an option of box2's error lacks host: %+v", o)
		}
	}
	c.ok("kill", map[string]any{"host": "box2", "session": "r2", "project_dir": far2}, nil)
}

// TestHostSSHDrop: sshd killed mid-run → the host's session keeps running,
// list answers naming the host in a warning, and once sshd is back the
// next call reconnects and kill through the host works.
func TestHostSSHDrop(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sshd := testkit.StartSSHD(t)
	box := farHost(t, sshd, "box")
	e.withHosts(box)
	c := e.connect("2025-06-18")
	far := t.TempDir()
	c.ok("start_session", map[string]any{"host": "box", "session": "d1", "stage": "demo", "provider": "mock", "project_dir": far, "max_iterations": 100000}, nil)

	sshd.Stop()
	l := c.list(map[string]any{})
	if !strings.Contains(strings.Join(l.Warnings, "\n"), "host box") {
		t.Errorf("list with box down: no warning naming it: %q", l.Warnings)
	}
	if !hasTmuxOn(box.Env["AGENT_SESSIONS_TMUX_SOCKET"], "loop-d1") {
		t.Fatal("the session on box stopped when its ssh connection did")
	}
	c.fail("monitor", map[string]any{"host": "box", "session": "d1", "project_dir": far}, tools.CodeHostUnreachable)

	sshd.Restart()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sshd's log (LogLevel VERBOSE):\n%s", sshd.Log())
		}
	})
	var k tools.KillResult
	c.ok("kill", map[string]any{"host": "box", "session": "d1", "project_dir": far}, &k)
	if k.Status != "killed" {
		t.Errorf("kill after sshd came back: %+v", k)
	}
}

// TestHostReadOnlyCallOutlivesALostConnection: the far side's server dies
// under a monitor wait (read-only); the call is sent once more over a new
// connection and answers. start_session and reply, neither read-only nor
// idempotent, are never resent (TestResendableFollowsAnnotations).
func TestHostReadOnlyCallOutlivesALostConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sshd := testkit.StartSSHD(t)
	box := farHost(t, sshd, "box")
	e.withHosts(box)
	c := e.connect(modernVersion)
	far := t.TempDir()
	at := map[string]any{"host": "box", "session": "rw", "project_dir": far}
	c.ok("start_session", map[string]any{"host": "box", "session": "rw", "stage": "demo", "provider": "mock", "project_dir": far, "max_iterations": 100000}, nil)
	marker := "AGENT_SESSIONS_TMUX_SOCKET=" + box.Env["AGENT_SESSIONS_TMUX_SOCKET"]
	first := remoteServers(marker)
	if len(first) != 1 {
		t.Fatalf("box's servers: %v, want one", first)
	}

	type answer struct {
		mon tools.MonitorResult
		err bool
		raw string
	}
	got := make(chan answer, 1)
	go func() {
		wait := map[string]any{"wait": "complete", "timeout_seconds": 3}
		for k, v := range at {
			wait[k] = v
		}
		res, err := c.callRaw(context.Background(), "monitor", wait, nil) // not c.call: it may not Fatal here
		if err != nil {
			got <- answer{err: true, raw: err.Error()}
			return
		}
		a := answer{err: res.IsError, raw: res.Text}
		if !res.IsError {
			a.err = json.Unmarshal(res.Structured, &a.mon) != nil
		}
		got <- a
	}()
	time.Sleep(500 * time.Millisecond) // the wait is under way on box
	for _, pid := range first {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	a := <-got
	if a.err || a.mon.Status != "running" {
		t.Fatalf("monitor whose connection was lost mid-wait: error %v, %s", a.err, a.raw)
	}
	if now := remoteServers(marker); len(now) != 1 || now[0] == first[0] {
		t.Errorf("box's servers after the resend: %v (first %v), want one new one", now, first)
	}
	c.ok("kill", at, nil)
}

// remoteServers lists the `serve` processes whose environment holds marker.
func remoteServers(marker string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if strings.HasSuffix(string(cmd), "\x00serve\x00") && strings.Contains(string(env), marker+"\x00") {
			pids = append(pids, pid)
		}
	}
	return pids
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// TestHostMonitorWait: a monitor wait through a host may block for its
// timeout_seconds even when that is longer than a call's own time limit.
func TestHostMonitorWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sshd := testkit.StartSSHD(t)
	box := farHost(t, sshd, "box")
	e.withHosts(box)
	c := e.connect("2025-06-18")
	far := t.TempDir()
	// A cold ssh login may exceed a short limit on a loaded machine, and so
	// may a start: both run under the generous limit, and the wait alone
	// under a short one, over the warm connection.
	eventually(t, 60*time.Second, "a warm connection to box", func() bool {
		return !c.call("list", map[string]any{"host": "box"}).IsError
	})
	c.ok("start_session", map[string]any{"host": "box", "session": "w1", "stage": "demo", "provider": "mock", "project_dir": far, "max_iterations": 100000}, nil)
	// Calls run one at a time here, and each reads the limit when it starts.
	hosts := e.deps.Hosts
	generous := hosts.Options.CallTimeout
	hosts.Options.CallTimeout = 4 * time.Second
	var mon tools.MonitorResult
	c.ok("monitor", map[string]any{"host": "box", "session": "w1", "project_dir": far, "wait": "complete", "timeout_seconds": 5}, &mon)
	if mon.Status != "running" {
		t.Errorf("monitor wait through box: %+v", mon)
	}
	hosts.Options.CallTimeout = generous
	c.ok("kill", map[string]any{"host": "box", "session": "w1", "project_dir": far}, nil)
}

// TestHostReply: a session on a host asks a question; monitor's wait through
// the host returns on it, list names it with its host, reply through the
// host answers it, and the host's next prompt has the answer.
func TestHostReply(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sshd := testkit.StartSSHD(t)
	box := farHost(t, sshd, "box")
	prompts := t.TempDir()
	for k, v := range map[string]string{
		"STATUS_DECISION": "ask", "STATUS_AT": "1", "STATUS_QUESTION": "Postgres or SQLite?",
		"STATUS_OPTIONS": `["postgres","sqlite"]`, "FAKE_AGENT_PROMPT_DIR": prompts,
	} {
		box.Env[k] = v
	}
	e.withHosts(box)
	c := e.connect(modernVersion)
	far := t.TempDir()
	dir := filepath.Join(far, ".claude", "stages", "asker")
	writeFile(t, filepath.Join(dir, "stage.yaml"), commandStage("fixed-n", 2, "status-agent"))
	writeFile(t, filepath.Join(dir, "prompt.md"), "iteration ${ITERATION}; answer: [${ANSWER}]\n")

	at := map[string]any{"host": "box", "session": "asks", "project_dir": far}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range at {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	c.ok("start_session", with(map[string]any{"stage": "asker"}), nil)
	var mon struct {
		tools.MonitorResult
		Host string `json:"host"`
	}
	c.ok("monitor", with(map[string]any{"wait": "complete", "timeout_seconds": 60}), &mon)
	if mon.Host != "box" || mon.Status != "waiting" || mon.Question != "Postgres or SQLite?" {
		t.Fatalf("monitor wait through box over a question: host %q status %q question %q", mon.Host, mon.Status, mon.Question)
	}
	if s, ok := summary(c.list(map[string]any{}), "asks"); !ok || s.Host != "box" || s.Status != "waiting" || s.Question != "Postgres or SQLite?" {
		t.Errorf("list across hosts: %+v", s)
	}
	var res struct {
		tools.ReplyResult
		Host string `json:"host"`
	}
	c.ok("reply", with(map[string]any{"answer": "postgres"}), &res)
	if !res.Answered || res.Host != "box" {
		t.Fatalf("reply through box = %+v", res)
	}
	for _, o := range res.NextSteps {
		if o.Arguments["host"] != "box" {
			t.Errorf("reply's next step lacks the host: %+v", o)
		}
	}
	c.ok("monitor", with(map[string]any{"wait": "complete", "timeout_seconds": 60}), &mon)
	if mon.Status != "complete" {
		t.Fatalf("after the answer through box: %s (%s)", mon.Status, mon.Why)
	}
	p2, err := readText(filepath.Join(prompts, "prompt-asks-asker-2.txt"))
	if err != nil || !strings.Contains(p2, "answer: [postgres]") {
		t.Errorf("the host's iteration 2 prompt: %q, %v", p2, err)
	}
}
