package tools_test

// tmux stopped, hung or configured oddly, and a server full of waits
// (issue 11, items 5, 6 and 8): every call answers within its bound.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
	"github.com/agent-sessions/agent-sessions/tools"
)

// tmuxServerPID is the pid of the env's private tmux server.
func (e *testEnv) tmuxServerPID() int {
	e.t.Helper()
	out, err := exec.Command("tmux", "-L", e.socket, "display-message", "-p", "#{pid}").Output()
	if err != nil {
		e.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		e.t.Fatal(err)
	}
	return pid
}

func anyContains(list []string, sub string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.Contains(s, sub) })
}

// TestStoppedTmuxTools: with the tmux server SIGSTOPped under a running
// session, list, monitor, cleanup and kill answer (saying tmux did not
// answer), and kill still stops the engine.
func TestStoppedTmuxTools(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("long", longStage)
	c := e.connect(legacyVersion)
	c.start(map[string]any{"session": "hung", "stage": "long"})
	e.deps.Tmux = &recordingTmux{Client: e.tmux.WithTimeout(300 * time.Millisecond)}
	pid := e.tmuxServerPID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
	const says = "tmux did not answer"

	l := c.list(nil)
	if s, ok := summary(l, "hung"); !ok || s.Status != state.LiveRunning || !anyContains(l.Warnings, says) {
		t.Errorf("list: %+v, warnings %q; want hung running and a warning", s, l.Warnings)
	}
	var m tools.MonitorResult
	c.ok("monitor", map[string]any{"session": "hung"}, &m)
	if m.Status != state.LiveRunning || !anyContains(m.Warnings, says) {
		t.Errorf("monitor: status %s, warnings %q", m.Status, m.Warnings)
	}
	var cl tools.CleanupResult
	c.ok("cleanup", map[string]any{}, &cl)
	if !anyContains(cl.Warnings, says) {
		t.Errorf("cleanup warnings %q do not say tmux did not answer", cl.Warnings)
	}
	var k tools.KillResult
	c.ok("kill", map[string]any{"session": "hung"}, &k)
	if k.Status != state.StatusKilled || !anyContains(k.Steps, says) {
		t.Errorf("kill: status %s, steps %q; want killed, saying tmux did not answer", k.Status, k.Steps)
	}
	if ls, _ := state.ProbeLock(e.layout("hung").LockFile()); ls.Held {
		t.Error("the engine still holds its lock after kill")
	}
}

// TestRemainOnExitTools: under a tmux server whose config sets
// remain-on-exit on, our finished session's tmux session closes; one left
// with a dead pane (made the old way) is "complete", not a zombie, is not
// in the reminder, and cleanup closes it.
func TestRemainOnExitTools(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	conf := filepath.Join(t.TempDir(), "tmux.conf")
	writeFile(t, conf, "set-option -g remain-on-exit on\n")
	if out, err := exec.Command("tmux", "-L", e.socket, "-f", conf, "new-session", "-d", "-s", "keep", "--", "sleep", "600").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	e.stage("quick", quickStage)
	c := e.connect(legacyVersion)
	c.start(map[string]any{"session": "q", "stage": "quick"})
	if m := c.monitorWait("q", "complete", 60); m.Status != state.StatusComplete {
		t.Fatalf("status %s, want complete", m.Status)
	}
	eventually(t, 10*time.Second, "loop-q to close despite remain-on-exit", func() bool { return !e.hasTmux("loop-q") })

	if out, err := exec.Command("tmux", "-L", e.socket, "new-session", "-d", "-s", "loop-q", "-c", e.project, "--", "true", "x").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	eventually(t, 10*time.Second, "loop-q's pane to be dead", func() bool {
		list, _ := e.tmux.ListSessions(context.Background())
		return slices.ContainsFunc(list, func(s tmux.Session) bool { return s.Name == "loop-q" && s.PaneDead })
	})
	if s, ok := summary(c.list(nil), "q"); !ok || s.Status != state.StatusComplete || !strings.Contains(s.Why, "dead pane") {
		t.Errorf("list: %+v; want complete, saying its pane is dead", s)
	}
	if text, err := c.readResource(tools.ReminderURI); err != nil || !strings.Contains(text, "No agent sessions are running") {
		t.Errorf("reminder = %q, %v; want nothing running", text, err)
	}
	var cl tools.CleanupResult
	c.ok("cleanup", map[string]any{"dry_run": false, "kill_orphans": true}, &cl)
	if len(cl.Zombies) != 1 || len(cl.Actions) != 1 || !cl.Actions[0].Done {
		t.Errorf("cleanup: zombies %+v, actions %+v; want loop-q closed", cl.Zombies, cl.Actions)
	}
	if e.hasTmux("loop-q") {
		t.Error("cleanup left loop-q")
	}
}

// rpcServer is tools.Serve over pipes, spoken to in raw JSON-RPC lines.
type rpcServer struct {
	t         *testing.T
	in        *io.PipeWriter
	responses chan map[string]any
	served    chan error
}

func serveRPC(t *testing.T, e *testEnv) *rpcServer {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &rpcServer{t: t, in: inW, responses: make(chan map[string]any, 256), served: make(chan error, 1)}
	go func() { s.served <- tools.Serve(e.ctx, e.deps, "test", inR, outW, io.Discard); outW.Close() }()
	go func() {
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var msg map[string]any
			if json.Unmarshal(sc.Bytes(), &msg) == nil && msg["id"] != nil {
				s.responses <- msg
			}
		}
		close(s.responses)
	}()
	t.Cleanup(func() { inW.Close() })
	s.send(0, "initialize", map[string]any{"protocolVersion": legacyVersion, "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "rpc-test", "version": "1"}})
	s.next(30 * time.Second)
	s.write(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
	return s
}

func (s *rpcServer) write(msg map[string]any) {
	b, _ := json.Marshal(msg)
	if _, err := s.in.Write(append(b, '\n')); err != nil {
		s.t.Fatal(err)
	}
}

func (s *rpcServer) send(id int, method string, params map[string]any) {
	s.write(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

func (s *rpcServer) call(id int, tool string, args map[string]any) {
	s.send(id, "tools/call", map[string]any{"name": tool, "arguments": args})
}

// next returns the next response, failing the test after within.
func (s *rpcServer) next(within time.Duration) map[string]any {
	s.t.Helper()
	select {
	case msg, ok := <-s.responses:
		if !ok {
			s.t.Fatal("the server closed its output")
		}
		return msg
	case <-time.After(within):
		s.t.Fatalf("no response within %s", within)
		return nil
	}
}

// TestWaitsNeverDelayKill: 64 pending monitor waits (as many as the
// server has workers) must not hold up a kill: it answers while they are
// still waiting; the waits beyond the limit answer at once and say so; and
// the server stops as soon as its stdin closes.
func TestWaitsNeverDelayKill(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("long", longStage)
	c := e.connect(legacyVersion)
	c.start(map[string]any{"session": "a", "stage": "long"})
	c.start(map[string]any{"session": "b", "stage": "long"})
	s := serveRPC(t, e)
	for id := 1; id <= 64; id++ {
		s.call(id, "monitor", map[string]any{"session": "a", "wait": "complete", "timeout_seconds": 600})
	}
	s.call(100, "kill", map[string]any{"session": "b"})
	busy := 0
	for {
		msg := s.next(60 * time.Second)
		text, _ := json.Marshal(msg)
		if msg["id"] == float64(100) {
			if !strings.Contains(string(text), `"status":"killed"`) {
				t.Errorf("kill answered %s", text)
			}
			break
		}
		if !strings.Contains(string(text), "monitor waits are already pending") {
			t.Fatalf("a wait returned before kill answered: %s", text)
		}
		busy++
	}
	if want := 64 - tools.DefaultMaxWaits; busy > want {
		t.Errorf("%d waits answered at once, want at most %d", busy, want)
	}
	s.in.Close()
	select {
	case err := <-s.served:
		if err != nil {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after stdin closed")
	}
}

// stuckTmux is a tmux whose list-sessions never returns, whatever its
// context says: a call that nothing can cancel.
type stuckTmux struct {
	noTmux
	entered chan struct{} // gets a value when a call is stuck
	release chan struct{}
}

func (stuckTmux) Available() error { return nil }
func (s stuckTmux) ListSessions(context.Context) ([]tmux.Session, error) {
	s.entered <- struct{}{}
	<-s.release
	return nil, fmt.Errorf("released")
}

// TestServeExitsWithStuckCall: a call stuck for good does not keep the
// server alive once stdin closes.
func TestServeExitsWithStuckCall(t *testing.T) {
	t.Parallel()
	stuck := stuckTmux{entered: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(func() { close(stuck.release) })
	d := &tools.Deps{Settings: sessions.Settings{Tmux: stuck, Executable: "/nonexistent/agent-sessions", ProjectDir: t.TempDir(), Environ: os.Environ}}
	e := &testEnv{t: t, deps: d, ctx: context.Background()}
	s := serveRPC(t, e)
	s.call(1, "list", map[string]any{})
	<-stuck.entered
	s.in.Close()
	select {
	case <-s.served:
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after stdin closed, with a call stuck")
	}
}
