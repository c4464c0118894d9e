package tools_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
	"github.com/agent-sessions/agent-sessions/tools"
)

// The figures of issue 5 for the tools Claude calls all day: list with
// dozens of live sessions and monitor of one, through an in-process MCP
// client (so the JSON-RPC encoding of the answer is included), against a
// private tmux server.
//
// "Live" is as real as it gets without running agents: each session has a
// tmux session (a shell that printed a transcript, then sleeps), a run dir
// with a full state.json (a work-stage spec and 100 history entries, as a
// long session has), events.jsonl, session.log, a progress file and the
// last iteration's output.md — and a HELD lock: the benchmark process takes
// every session's flock itself (flocks on separate open files conflict even
// within one process, so the tools see them held).

// benchWorld is a project with n live sessions.
type benchWorld struct {
	project string
	socket  string
	names   []string
	execs   atomic.Int64 // tmux processes run by the tools
	client  *client.Client
}

func benchRequireTmux(b *testing.B) {
	b.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			b.Fatalf("tmux is required under CI: %v", err)
		}
		b.Skipf("tmux not installed: %v", err)
	}
}

// newBenchWorld builds the project, the tmux server, the held locks and an
// MCP client of a server over them. Everything is torn down by b.Cleanup.
func newBenchWorld(b *testing.B, n int) *benchWorld {
	b.Helper()
	benchRequireTmux(b)
	w := &benchWorld{project: b.TempDir()}
	if p, err := filepath.EvalSymlinks(w.project); err == nil {
		w.project = p
	}
	w.socket = newSocket(b)

	ctx := context.Background()
	tc := tmux.New(w.socket)
	for i := range n {
		name := fmt.Sprintf("agent-%03d", i)
		w.names = append(w.names, name)
		l := state.NewLayout(w.project, name)
		writeLiveSession(b, l)
		lock, err := state.AcquireLock(ctx, l.LockFile(), name, time.Second, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { lock.Release() })
		err = tc.NewSession(ctx, tmux.NewSessionOptions{Name: "loop-" + name, Dir: w.project, Width: 160, Height: 50,
			Argv: []string{"sh", "-c", "for i in $(seq 1 80); do echo \"line $i of the agent's transcript: edited parser.go, ran go test ./...\"; done; exec sleep 3600"}})
		if err != nil {
			b.Fatal(err)
		}
	}
	// Every tmux process the tools start goes through this runner.
	counted := tc.WithRunner(func(ctx context.Context, argv []string) ([]byte, error) {
		w.execs.Add(1)
		return tmux.ExecRunner(ctx, argv)
	})
	deps := &tools.Deps{Settings: sessions.Settings{Tmux: counted, ProjectDir: w.project, Environ: os.Environ}}
	sctx, cancel := context.WithCancel(ctx)
	b.Cleanup(cancel)
	srv := tools.NewServer(sctx, deps, "bench")
	c, err := client.NewInProcessClientWithOptions(srv, client.WithProtocolVersion(legacyVersion))
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(sctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	var req mcp.InitializeRequest
	req.Params.ProtocolVersion = legacyVersion
	req.Params.ClientInfo = mcp.Implementation{Name: "bench", Version: "1"}
	if _, err := c.Initialize(sctx, req); err != nil {
		b.Fatal(err)
	}
	w.client = c
	// Let every pane print its transcript before measuring.
	time.Sleep(300 * time.Millisecond)
	return w
}

// writeLiveSession writes what a long-running work session has on disk:
// events.jsonl with 100 completed iterations, state.json rebuilt from it by
// the state package itself, session.log, the progress file and the last
// iteration's output.md.
func writeLiveSession(b *testing.B, l state.Layout) {
	b.Helper()
	plan, err := engine.NewCatalog(l.ProjectDir).CompileStage(l.Session, "work", engine.Options{Max: 500})
	if err != nil {
		b.Fatal(err)
	}
	sp := plan.Stages[0]
	var buf bytes.Buffer
	var seq int64
	ts := time.Now().Add(-time.Hour).UTC()
	emit := func(ev state.Event) {
		seq++
		ev.Seq, ev.TS, ev.Session = seq, ts, l.Session
		line, err := json.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	emit(state.Event{Type: state.EventSessionStart, Data: state.MustData(state.SessionStartData{
		Type: engine.KindLoop, Stage: plan.Name, ProjectDir: l.ProjectDir, TmuxSession: "loop-" + l.Session, Provider: sp.Provider, Model: sp.Model,
		Stages: []state.StagePlan{{Name: sp.Name, MaxIterations: sp.MaxIterations}}, Spec: plan.MarshalSpec(),
	})})
	emit(state.Event{Type: state.EventStageStart, Stage: sp.Name})
	const done = 100
	for it := 1; it <= done; it++ {
		emit(state.Event{Type: state.EventIterationStart, Stage: sp.Name, Iteration: it})
		emit(state.Event{Type: state.EventIterationDone, Stage: sp.Name, Iteration: it, Data: state.MustData(state.HistoryEntry{
			Iteration: it, Stage: sp.Name, Timestamp: ts, Decision: engine.DecisionContinue, DurationMS: 61234,
			Reasoning: strings.Repeat("closed bead 12 (the parser), tests pass; next is the lexer. ", 3),
			CostUSD:   0.42, InputTokens: 123456, OutputToks: 4567,
		})})
		ts = ts.Add(30 * time.Second)
	}
	emit(state.Event{Type: state.EventIterationStart, Stage: sp.Name, Iteration: done + 1})
	mustWrite(b, l.EventsFile(), buf.String())
	if _, _, err := state.Open(l, nil); err != nil {
		b.Fatal(err)
	}
	var log, progress strings.Builder
	for i := range 400 {
		fmt.Fprintf(&log, "line %d of the transcript: the agent edited parser.go and ran the tests\n", i)
	}
	for i := range 40 {
		fmt.Fprintf(&progress, "## Iteration %d\n- closed a bead; learned that the lexer needs a peek\n", i)
	}
	mustWrite(b, l.LogFile(), log.String())
	mustWrite(b, l.ProgressFile(), progress.String())
	mustWrite(b, l.Iteration(0, sp.Name, done).Output, strings.Repeat("Done: closed bead 12.\nREASONING: the parser is complete\n", 30))
}

func mustWrite(b *testing.B, path, content string) {
	b.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		b.Fatal(err)
	}
}

func (w *benchWorld) call(b *testing.B, name string, args map[string]any, out any) {
	b.Helper()
	var req mcp.CallToolRequest
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := w.client.CallTool(context.Background(), req)
	if err != nil {
		b.Fatal(err)
	}
	if res.IsError {
		b.Fatalf("%s: %v", name, res.Content)
	}
	if out != nil {
		raw, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(raw, out); err != nil {
			b.Fatal(err)
		}
	}
}

// median and msf: the shared benchmark helpers of internal/testkit.
var (
	median = testkit.Median
	msf    = testkit.Ms
)

// BenchmarkList: list with 60 and with 100 live sessions.
func BenchmarkList(b *testing.B) {
	for _, n := range []int{60, 100} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			w := newBenchWorld(b, n)
			var res tools.ListResult
			w.call(b, "list", map[string]any{}, &res)
			if res.Counts.Running != n {
				b.Fatalf("list sees %d running of %d (%+v)", res.Counts.Running, n, res.Counts)
			}
			w.execs.Store(0)
			samples := testkit.Samples(b, func() { w.call(b, "list", map[string]any{}, nil) })
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(msf(median(samples)), "ms/list")
			b.ReportMetric(float64(w.execs.Load())/float64(len(samples)), "tmux-execs/op")
		})
	}
}

// BenchmarkMonitor: monitor (wait none) of one live session among 100.
func BenchmarkMonitor(b *testing.B) {
	w := newBenchWorld(b, 100)
	args := map[string]any{"session": w.names[42]}
	var res tools.MonitorResult
	w.call(b, "monitor", args, &res)
	if res.Status != state.LiveRunning || res.OutputSource != "pane" || res.LastIteration == nil || res.ProgressTail == "" {
		b.Fatalf("monitor: status %s, source %s, last %v, progress %q", res.Status, res.OutputSource, res.LastIteration, res.ProgressTail)
	}
	w.execs.Store(0)
	samples := testkit.Samples(b, func() { w.call(b, "monitor", args, nil) })
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(msf(median(samples)), "ms/monitor")
	b.ReportMetric(float64(w.execs.Load())/float64(len(samples)), "tmux-execs/op")
}

// BenchmarkReminder: reading sessions://reminder with 100 live sessions —
// the same discovery the reminder watcher repeats every 2 s while a client
// is subscribed.
func BenchmarkReminder(b *testing.B) {
	w := newBenchWorld(b, 100)
	read := func() string {
		var req mcp.ReadResourceRequest
		req.Params.URI = tools.ReminderURI
		res, err := w.client.ReadResource(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		return res.Contents[0].(mcp.TextResourceContents).Text
	}
	if text := read(); !strings.Contains(text, "still running: 100") {
		b.Fatalf("reminder: %.200s", text)
	}
	w.execs.Store(0)
	samples := testkit.Samples(b, func() { read() })
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(msf(median(samples)), "ms/read")
	b.ReportMetric(float64(w.execs.Load())/float64(len(samples)), "tmux-execs/op")
}
