package main

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
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
)

// Binary-level figures of issue 5, measured on the built agent-sessions:
// how fast the MCP server answers its first request, how much memory the
// engine and the server hold, and how much CPU they burn while idle.
//
// CPU is utime+stime from /proc/<pid>/stat over a window of idleWindow;
// the "+children" figure adds what the process's reaped children used (the
// tmux clients the server runs to list sessions), so nothing is hidden.

const (
	idleWindow = 12 * time.Second
	clockTicks = 100 // USER_HZ: the unit of /proc/<pid>/stat times on Linux
)

func medianOf(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// procTimes returns a process's own CPU time and its reaped children's.
func procTimes(b *testing.B, pid int) (self, children time.Duration) {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	tick := func(i int) time.Duration {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		return time.Duration(n) * time.Second / clockTicks
	}
	// Fields 14-17 of stat(5): utime stime cutime cstime; f[0] is field 3.
	return tick(11) + tick(12), tick(13) + tick(14)
}

// procMemMB returns VmRSS and VmHWM (peak RSS) in MB.
func procMemMB(b *testing.B, pid int) (rss, hwm float64) {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		k, v, _ := strings.Cut(line, ":")
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			rss = kb / 1024
		case "VmHWM":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

// cpuPercent measures a process's CPU use over idleWindow.
func cpuPercent(b *testing.B, pid int) (self, withChildren float64) {
	b.Helper()
	s0, c0 := procTimes(b, pid)
	t0 := time.Now()
	time.Sleep(idleWindow)
	s1, c1 := procTimes(b, pid)
	wall := time.Since(t0)
	self = 100 * float64(s1-s0) / float64(wall)
	withChildren = 100 * float64(s1-s0+c1-c0) / float64(wall)
	return self, withChildren
}

func benchWriteFile(b *testing.B, path, content string) {
	b.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		b.Fatal(err)
	}
}

func benchWriteStage(b *testing.B, project, name, yaml, prompt string) {
	b.Helper()
	dir := filepath.Join(project, ".claude", "stages", name)
	benchWriteFile(b, filepath.Join(dir, "stage.yaml"), yaml)
	benchWriteFile(b, filepath.Join(dir, "prompt.md"), prompt)
}

func benchWaitFor(b *testing.B, within time.Duration, what string, cond func() bool) {
	b.Helper()
	for end := time.Now().Add(within); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			b.Fatalf("timed out after %s waiting for %s", within, what)
		}
	}
}

func benchSocket(b *testing.B) string {
	b.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			b.Fatalf("tmux is required under CI: %v", err)
		}
		b.Skipf("tmux not installed: %v", err)
	}
	sock := fmt.Sprintf("as-perf-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	b.Cleanup(func() {
		exec.Command("tmux", "-L", sock, "kill-server").Run()
		// tmux leaves the socket file behind.
		dir := os.Getenv("TMUX_TMPDIR")
		if dir == "" {
			dir = "/tmp"
		}
		os.Remove(filepath.Join(dir, fmt.Sprintf("tmux-%d", os.Getuid()), sock))
	})
	return sock
}

func benchProject(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	if p, err := filepath.EvalSymlinks(dir); err == nil {
		dir = p
	}
	return dir
}

// rpcClient speaks newline-delimited JSON-RPC to a served binary.
type rpcClient struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan []byte
	done  chan struct{}
}

func startServer(b *testing.B, dir string, env []string) *rpcClient {
	b.Helper()
	c := &rpcClient{cmd: exec.Command(binary, "serve"), lines: make(chan []byte, 1024), done: make(chan struct{})}
	c.cmd.Dir, c.cmd.Env = dir, env
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			select {
			case c.lines <- bytes.Clone(sc.Bytes()):
			default: // nobody is reading notifications; drop them
			}
		}
	}()
	return c
}

func (c *rpcClient) send(b *testing.B, msg string) {
	b.Helper()
	if _, err := io.WriteString(c.stdin, msg+"\n"); err != nil {
		b.Fatal(err)
	}
}

// await returns the next line carrying id (or the method, for
// notifications).
func (c *rpcClient) await(b *testing.B, match string, within time.Duration) []byte {
	b.Helper()
	deadline := time.After(within)
	for {
		select {
		case line := <-c.lines:
			if bytes.Contains(line, []byte(match)) {
				return line
			}
		case <-deadline:
			b.Fatalf("no %s from the server within %s", match, within)
		}
	}
}

func (c *rpcClient) stop() {
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
	}
	c.cmd.Wait()
}

const initializeRequest = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`

// BenchmarkServerStart: from exec of `agent-sessions serve` to its answer
// to initialize on stdout.
func BenchmarkServerStart(b *testing.B) {
	dir := benchProject(b)
	env := append(engineEnv(false), tmux.SocketEnv+"=as-perf-unused")
	var samples []time.Duration
	for b.Loop() {
		t0 := time.Now()
		c := startServer(b, dir, env)
		c.send(b, initializeRequest)
		c.await(b, `"id":1`, 10*time.Second)
		samples = append(samples, time.Since(t0))
		b.StopTimer()
		c.stop()
		b.StartTimer()
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(medianOf(samples)), "ms/first-response")
}

// liveSessions makes n live sessions in project, as the tools benchmarks
// do: tmux session, run dir with state.json (100 history entries),
// progress, session.log — and a lock held by this process.
func liveSessions(b *testing.B, project, sock string, n int) []*state.Lock {
	b.Helper()
	ctx := context.Background()
	tc := tmux.New(sock)
	var locks []*state.Lock
	for i := range n {
		name := fmt.Sprintf("agent-%03d", i)
		l := state.NewLayout(project, name)
		plan, err := engine.NewCatalog(project).CompileStage(name, "work", engine.Options{Max: 500})
		if err != nil {
			b.Fatal(err)
		}
		sp := plan.Stages[0]
		var buf bytes.Buffer
		var seq int64
		ts := time.Now().Add(-time.Hour).UTC()
		emit := func(ev state.Event) {
			seq++
			ev.Seq, ev.TS, ev.Session = seq, ts, name
			line, _ := json.Marshal(ev)
			buf.Write(append(line, '\n'))
		}
		emit(state.Event{Type: state.EventSessionStart, Data: state.MustData(state.SessionStartData{
			Type: engine.KindLoop, Stage: plan.Name, ProjectDir: project, TmuxSession: "loop-" + name, Provider: sp.Provider, Model: sp.Model,
			Stages: []state.StagePlan{{Name: sp.Name, MaxIterations: sp.MaxIterations}}, Spec: plan.MarshalSpec(),
		})})
		emit(state.Event{Type: state.EventStageStart, Stage: sp.Name})
		for it := 1; it <= 100; it++ {
			emit(state.Event{Type: state.EventIterationStart, Stage: sp.Name, Iteration: it})
			emit(state.Event{Type: state.EventIterationDone, Stage: sp.Name, Iteration: it, Data: state.MustData(state.HistoryEntry{
				Iteration: it, Stage: sp.Name, Timestamp: ts, Decision: engine.DecisionContinue, DurationMS: 61234,
				Reasoning: strings.Repeat("closed bead 12 (the parser), tests pass; next is the lexer. ", 3), CostUSD: 0.42,
			})})
		}
		emit(state.Event{Type: state.EventIterationStart, Stage: sp.Name, Iteration: 101})
		benchWriteFile(b, l.EventsFile(), buf.String())
		if _, _, err := state.Open(l, nil); err != nil {
			b.Fatal(err)
		}
		benchWriteFile(b, l.LogFile(), strings.Repeat("a line of the transcript\n", 400))
		benchWriteFile(b, l.ProgressFile(), strings.Repeat("## Iteration\n- closed a bead\n", 40))
		lock, err := state.AcquireLock(ctx, l.LockFile(), name, time.Second, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		locks = append(locks, lock)
		b.Cleanup(func() { lock.Release() })
		if err := tc.NewSession(ctx, tmux.NewSessionOptions{Name: "loop-" + name, Dir: project, Argv: []string{"sleep", "3600"}}); err != nil {
			b.Fatal(err)
		}
	}
	return locks
}

// BenchmarkServerIdle: a served binary tracking 100 live sessions, with a
// client subscribed to sessions://reminder (so the reminder watcher polls):
// its memory, and its CPU over idleWindow with nothing else happening.
func BenchmarkServerIdle(b *testing.B) {
	sock := benchSocket(b)
	project := benchProject(b)
	locks := liveSessions(b, project, sock, 100)
	env := append(engineEnv(false), tmux.SocketEnv+"="+sock)
	for b.Loop() {
		c := startServer(b, project, env)
		c.send(b, initializeRequest)
		c.await(b, `"id":1`, 10*time.Second)
		c.send(b, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
		c.send(b, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list","arguments":{}}}`)
		if line := c.await(b, `"id":2`, 30*time.Second); !bytes.Contains(line, []byte(`"running":100`)) {
			b.Fatalf("list does not see 100 running sessions: %.300s", line)
		}
		c.send(b, `{"jsonrpc":"2.0","id":3,"method":"resources/subscribe","params":{"uri":"sessions://reminder"}}`)
		c.await(b, `"id":3`, 10*time.Second)
		time.Sleep(time.Second)
		pid := c.cmd.Process.Pid
		out, err := exec.Command("tmux", "-L", sock, "display-message", "-p", "#{pid}").Output()
		if err != nil {
			b.Fatal(err)
		}
		tmuxPID, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		tmux0, _ := procTimes(b, tmuxPID)
		self, all := cpuPercent(b, pid)
		tmux1, _ := procTimes(b, tmuxPID)
		rss, hwm := procMemMB(b, pid)
		// The watcher was polling all along: a change is noticed.
		locks[0].Release()
		c.await(b, `notifications/resources/updated`, 15*time.Second)
		c.stop()
		b.ReportMetric(self, "%cpu")
		b.ReportMetric(all, "%cpu+children")
		// The tmux server answering the watcher's list-sessions (and
		// nothing else: the sessions' panes run sleep).
		b.ReportMetric(100*float64(tmux1-tmux0)/float64(idleWindow), "tmux-server-%cpu")
		b.ReportMetric(rss, "rss-MB")
		b.ReportMetric(hwm, "peak-rss-MB")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkEngineIdle: an engine in a tmux session, between two
// iterations (its agent is `true`, the delay 60 s): memory and CPU.
func BenchmarkEngineIdle(b *testing.B) {
	sock := benchSocket(b)
	project := benchProject(b)
	benchWriteStage(b, project, "idle", "completion: fixed-n\nprovider: command\ncommand: [\"true\"]\ndelay: 60\nmax_iterations: 3\n",
		strings.Repeat("Session ${SESSION}, iteration ${ITERATION} of ${MAX_ITERATIONS}; notes in ${PROGRESS}.\n", 40))
	tc := tmux.New(sock)
	l := state.NewLayout(project, "idle")
	for b.Loop() {
		err := tc.NewSession(context.Background(), tmux.NewSessionOptions{Name: "loop-idle", Dir: project,
			Env:  []string{"AGENT_SESSIONS_NOTIFY=0", tmux.SocketEnv + "=" + sock},
			Argv: []string{binary, "run", "--session", "idle", "--stage", "idle", "--project", project, "--force"}})
		if err != nil {
			b.Fatal(err)
		}
		var pid int
		benchWaitFor(b, 20*time.Second, "the first iteration", func() bool {
			st, _, err := state.LoadSummary(l)
			ls, _ := state.ProbeLock(l.LockFile())
			if ls.Info != nil {
				pid = ls.Info.PID
			}
			return err == nil && st.IterationCompleted >= 1 && ls.Held
		})
		time.Sleep(time.Second)
		self, _ := cpuPercent(b, pid)
		rss, hwm := procMemMB(b, pid)
		tc.KillSession(context.Background(), "loop-idle")
		benchWaitFor(b, 20*time.Second, "the engine to stop", func() bool { ls, _ := state.ProbeLock(l.LockFile()); return !ls.Held })
		b.ReportMetric(self, "%cpu")
		b.ReportMetric(rss, "rss-MB")
		b.ReportMetric(hwm, "peak-rss-MB")
	}
	b.ReportMetric(0, "ns/op")
}
