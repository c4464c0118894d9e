package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"github.com/agent-sessions/agent-sessions/state"
)

// The engine's own cost per iteration (issue 5): a stage whose agent
// is `true`, delay 0, so what is measured is everything the engine does
// around the agent — the iteration_start and iteration_complete records
// (fsynced event append + atomic state.json replace, each), the prompt
// render and prompt.md, output.md, result.json, the transcript, the env —
// plus the spawn of `true` itself.
//
// Per-iteration samples come from the engine's own events: the time between
// consecutive iteration_start events is one whole iteration.

// benchPrompt is a realistic prompt: the built-in work stage's (3.5 KB,
// every common variable), so rendering and the spec in state.json have
// their real size.
func benchPrompt(b *testing.B) string {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("builtin", "stages", "work", "prompt.md"))
	if err != nil {
		b.Fatal(err)
	}
	return string(data)
}

// benchScratch holds the benchmarks' projects until the test process
// ends (TestMain removes it). Removing thousands of iteration files
// between two runs of a benchmark (-count) slowed the disk of the next run
// for tens of seconds on the machine of the README's figures; the engine
// does not delete files as it runs, so that is not charged to it.
var benchScratch string

func TestMain(m *testing.M) {
	// The tests mostly wait on agents (fake ones: processes) and delays.
	testkit.SetDefaultParallel(testkit.WaitingParallel)
	code := testkit.Main(m)
	if benchScratch != "" {
		os.RemoveAll(benchScratch)
		syscall.Sync()
	}
	os.Exit(code)
}

func benchDir(b *testing.B) string {
	b.Helper()
	if benchScratch == "" {
		dir, err := os.MkdirTemp("", "agent-sessions-bench-")
		if err != nil {
			b.Fatal(err)
		}
		if p, err := filepath.EvalSymlinks(dir); err == nil {
			dir = p
		}
		benchScratch = dir
	}
	dir, err := os.MkdirTemp(benchScratch, "project-")
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

// noopProject is a project with a stage "noop" run by `true`.
func noopProject(b *testing.B) string {
	b.Helper()
	project := benchDir(b)
	dir := filepath.Join(project, ".claude", "stages", "noop")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	yaml := "description: no-op agent for benchmarks\ncompletion: fixed-n\nprovider: command\ncommand: [\"true\"]\ndelay: 0\nmax_iterations: 10\n"
	if err := os.WriteFile(filepath.Join(dir, "stage.yaml"), []byte(yaml), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prompt.md"), []byte(benchPrompt(b)), 0o644); err != nil {
		b.Fatal(err)
	}
	return project
}

func benchRunOptions(project, session string, max int) RunOptions {
	return RunOptions{
		Session: session, Stage: "noop", ProjectDir: project, Foreground: true,
		Compile: Options{Max: max}, Stdout: io.Discard, Env: os.Environ(),
		Grace: 2 * time.Second, Notify: func(string, string) {},
	}
}

// iterationSamples returns, for each iteration from `from` on, the time
// from its iteration_start to the next iteration_start — or, for the last
// one, to the stage_complete that ended the stage (when there is one).
func iterationSamples(b *testing.B, project, session string, from int) []time.Duration {
	b.Helper()
	evs, _, err := state.ReadEvents(state.NewLayout(project, session).EventsFile())
	if err != nil {
		b.Fatal(err)
	}
	var starts []time.Time
	for _, ev := range evs {
		switch {
		case ev.Type == state.EventIterationStart && ev.Iteration >= from:
			starts = append(starts, ev.TS)
		case ev.Type == state.EventStageComplete && len(starts) > 0:
			starts = append(starts, ev.TS)
		}
	}
	var out []time.Duration
	for i := 1; i < len(starts); i++ {
		out = append(out, starts[i].Sub(starts[i-1]))
	}
	return out
}

// stopAfter is a transcript that cancels the session once iteration n
// has been recorded (the engine prints "iteration n continue" right after):
// the engine then records the session killed, and a resume continues it.
type stopAfter struct {
	line   []byte
	cancel context.CancelFunc
	buf    []byte
}

func (w *stopAfter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if bytes.Contains(w.buf, w.line) {
		w.cancel()
	}
	if len(w.buf) > 4096 {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-256:]...)
	}
	return len(p), nil
}

// median and msf: the shared benchmark helpers of internal/testkit.
var (
	median = testkit.Median
	msf    = testkit.Ms
)

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

// settle flushes what earlier benchmarks left to the disk (deleting their
// trees, with the discard this machine's ext4 is mounted with), so it is
// not charged to this one.
func settle(b *testing.B) {
	b.Helper()
	b.StopTimer()
	syscall.Sync()
	time.Sleep(2 * time.Second)
	b.StartTimer()
}

// spawnTrue spawns `true` n times the plainest way, for scale.
func spawnTrue(b *testing.B, n int) []time.Duration {
	b.Helper()
	out := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if err := exec.Command("true").Run(); err != nil {
			b.Fatal(err)
		}
		out = append(out, time.Since(t0))
	}
	return out
}

// BenchmarkIteration: one op is one iteration of a fresh session, its
// agent contained by the strongest mechanism available (a cgroup here).
func BenchmarkIteration(b *testing.B) { benchIteration(b) }

// BenchmarkIterationContainment is BenchmarkIteration under each
// containment mechanism, to price each: a cgroup per iteration (mkdir,
// clone3 into it, cgroup.events read, rmdir) against the process group.
func BenchmarkIterationContainment(b *testing.B) {
	for _, mech := range []string{ContainCgroup, ContainSubreaper, ContainPgroup} {
		b.Run(mech, func(b *testing.B) {
			b.Setenv(ContainmentEnv, mech)
			benchIteration(b)
		})
	}
}

func benchIteration(b *testing.B) {
	project := noopProject(b)
	session := fmt.Sprintf("bench-%d", b.N)
	settle(b)
	syncs := state.Fsyncs()
	b.ResetTimer()
	res, err := Run(context.Background(), benchRunOptions(project, session, b.N))
	b.StopTimer()
	syncs = state.Fsyncs() - syncs
	if err != nil || res.Status != state.StatusComplete {
		b.Fatalf("run: %v %+v", err, res)
	}
	samples := iterationSamples(b, project, session, 1)
	if len(samples) != b.N {
		b.Fatalf("%d iteration samples, want %d", len(samples), b.N)
	}
	spawn := spawnTrue(b, min(b.N, 1000))
	it, sp := median(samples), median(spawn)
	// The disk at the time, for scale: an iteration is a spawn, two of
	// these (state.json's replaces) and file creations.
	l := state.NewLayout(project, session)
	data, err := os.ReadFile(l.StateFile())
	if err != nil {
		b.Fatal(err)
	}
	var replace []time.Duration
	for range 100 {
		t0 := time.Now()
		if err := state.WriteFileAtomic(filepath.Join(l.RunDir(), "probe.json"), data, 0o644); err != nil {
			b.Fatal(err)
		}
		replace = append(replace, time.Since(t0))
	}
	b.ReportMetric(msf(median(replace)), "replace-ms")
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(msf(it), "ms/iter")
	b.ReportMetric(msf(percentile(samples, 0.9)), "p90-ms/iter")
	b.ReportMetric(msf(sp), "spawn-ms")
	b.ReportMetric(float64(it)/float64(sp), "x-spawn")
	b.ReportMetric(msf(it-sp), "overhead-ms")
	// The session's start and end add a handful; per iteration it is two.
	b.ReportMetric(float64(syncs)/float64(b.N), "fsyncs/iter")
	if fi, err := os.Stat(state.NewLayout(project, session).StateFile()); err == nil {
		b.ReportMetric(float64(fi.Size()), "state-bytes")
	}
}

// writeHistory makes a session that has completed done iterations of the
// noop stage, quickly: the events a real run would have written go to
// events.jsonl in one write, every iteration directory is created (empty),
// and state.Open rebuilds state.json from the events with the state
// package's own reducer and writer. A resume then continues at done+1.
func writeHistory(b *testing.B, project, session string, done int) {
	b.Helper()
	cat := NewCatalog(project)
	plan, err := cat.CompileStage(session, "noop", Options{})
	if err != nil {
		b.Fatal(err)
	}
	l := state.NewLayout(project, session)
	sp := plan.Stages[0]
	var buf bytes.Buffer
	var seq int64
	ts := time.Now().Add(-time.Duration(done) * time.Second).UTC()
	emit := func(ev state.Event) {
		seq++
		ev.Seq, ev.TS, ev.Session = seq, ts, session
		line, err := json.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	emit(state.Event{Type: state.EventSessionStart, Data: state.MustData(state.SessionStartData{
		Type: KindLoop, Stage: plan.Name, ProjectDir: project, Provider: sp.Provider, Model: sp.Model,
		Stages: []state.StagePlan{{Name: sp.Name, MaxIterations: sp.MaxIterations}}, Spec: plan.MarshalSpec(),
	})})
	emit(state.Event{Type: state.EventStageStart, Stage: sp.Name})
	reasoning := strings.Repeat("the tests pass and the next bead is the parser; ", 4)
	for it := 1; it <= done; it++ {
		emit(state.Event{Type: state.EventIterationStart, Stage: sp.Name, Iteration: it})
		emit(state.Event{Type: state.EventIterationDone, Stage: sp.Name, Iteration: it, Data: state.MustData(state.HistoryEntry{
			Iteration: it, Stage: sp.Name, Timestamp: ts, Reasoning: reasoning, Decision: DecisionContinue, DurationMS: 1,
		})})
		if err := os.MkdirAll(l.IterationDir(0, sp.Name, it), 0o755); err != nil {
			b.Fatal(err)
		}
		ts = ts.Add(time.Second)
	}
	if err := os.MkdirAll(l.RunDir(), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(l.EventsFile(), buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	if _, _, err := state.Open(l, nil); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkIterationAtHistory: iterations 11-30 of a session against
// iterations 10,001-10,020 (same stage, engine and machine); the ratio of
// their medians says whether anything per iteration grows with history.
// One op is one round of 20 iterations at each: the 10,000-iteration
// session is built once and continued round after round (stopped after 20
// iterations, resumed for the next round, so it stays at ~10,000); the
// short one is made anew each round.
func BenchmarkIterationAtHistory(b *testing.B) {
	const perRound = 20
	project := noopProject(b)
	writeHistory(b, project, "long", 10_000)
	settle(b)
	run := func(session string, done int) []time.Duration {
		// perRound+1 iterations give perRound iteration_start intervals.
		last := done + perRound + 1
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		o := benchRunOptions(project, session, last+1)
		o.Mode = ModeResume
		o.Stdout = &stopAfter{line: []byte(fmt.Sprintf(" iteration %d continue", last)), cancel: cancel}
		res, err := Run(ctx, o)
		if err != nil || res.Status != state.StatusKilled {
			b.Fatalf("resume %s at %d: %v %+v", session, done, err, res)
		}
		samples := iterationSamples(b, project, session, done+1)
		if len(samples) != perRound {
			b.Fatalf("%d samples for %s at %d, want %d", len(samples), session, done, perRound)
		}
		return samples
	}
	var short, long []time.Duration
	longDone, round := 10_000, 0
	for b.Loop() {
		round++
		session := fmt.Sprintf("short-%d", round)
		b.StopTimer()
		writeHistory(b, project, session, 10)
		b.StartTimer()
		short = append(short, run(session, 10)...)
		long = append(long, run("long", longDone)...)
		longDone += perRound + 1
	}
	at10, at10k := median(short), median(long)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(msf(at10), "ms/iter@10")
	b.ReportMetric(msf(at10k), "ms/iter@10000")
	b.ReportMetric(float64(at10k)/float64(at10), "ratio")
	for _, s := range []struct {
		name, unit string
	}{{fmt.Sprintf("short-%d", round), "state-bytes@31"}, {"long", "state-bytes@10000"}} {
		if fi, err := os.Stat(state.NewLayout(project, s.name).StateFile()); err == nil {
			b.ReportMetric(float64(fi.Size()), s.unit)
		}
	}
}

// BenchmarkContainedSpawn prices containment alone: one op runs `true`
// through runProcess in a fresh container (for cgroup: mkdir, clone3 into
// it, the end-of-run check, rmdir), against runProcess with no container
// ("group": the process group alone, as before containment) and a bare
// exec of `true` ("exec").
func BenchmarkContainedSpawn(b *testing.B) {
	for _, mech := range []string{ContainCgroup, ContainSubreaper, ContainPgroup, "group", "exec"} {
		b.Run(mech, func(b *testing.B) {
			project := b.TempDir()
			scope := Scope{Mechanism: mech, RunDir: filepath.Join(project, "run")}
			switch mech {
			case ContainCgroup:
				dir, err := makeSessionCgroup(project, "bench")
				if err != nil {
					b.Skipf("no cgroup: %v", err)
				}
				scope.Cgroup = dir
				defer scope.Close()
			case ContainSubreaper:
				if err := setSubreaper(); err != nil {
					b.Skip(err)
				}
			}
			for i := 0; b.Loop(); i++ {
				if mech == "exec" {
					cmd := exec.Command("true")
					cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
					if err := cmd.Run(); err != nil {
						b.Fatal(err)
					}
					continue
				}
				var ctr *Container
				if mech != "group" {
					var err error
					if ctr, err = scope.NewContainer(fmt.Sprintf("s1-i%d", i)); err != nil {
						b.Fatal(err)
					}
				}
				res := runProcess(context.Background(), procSpec{Argv: []string{"true"}, Stdout: io.Discard, Stderr: io.Discard, Container: ctr})
				if res.ExitCode != 0 || res.Err != nil {
					b.Fatalf("%+v", res)
				}
			}
		})
	}
}
