package state

import (
	"bytes"
	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchSpec is a spec of realistic size: a plan whose prompt is a 3.5 KB
// markdown template with quotes, backticks and newlines (the built-in work
// stage's is 3.5 KB).
func benchSpec() []byte {
	var prompt strings.Builder
	for prompt.Len() < 3500 {
		prompt.WriteString("- Run `bd ready --label=loop/${SESSION}` and pick \"one\" bead; read ${PROGRESS} first.\n")
	}
	return MustData(map[string]any{
		"version": 1, "session": "bench", "kind": "loop", "name": "work", "source": "builtin",
		"file": "builtin/stages/work/stage.yaml", "project_dir": "/home/user/project",
		"stages": []map[string]any{{
			"name": "work", "completion": "beads-empty", "max_iterations": 25, "delay": 3, "timeout": 3600,
			"check_before": true, "provider": "claude", "model": "opus", "prompt": prompt.String(),
			"output_parse": map[string]string{"plateau": "PLATEAU", "reasoning": "REASONING"},
		}},
	})
}

func benchEntry(it int) HistoryEntry {
	return HistoryEntry{
		Iteration: it, Stage: "work", Timestamp: time.Now().UTC(), Decision: "continue", DurationMS: 61234,
		Reasoning: strings.Repeat("the tests pass and the next bead is the parser; ", 4),
		CostUSD:   0.4242, InputTokens: 123456, OutputToks: 4567,
	}
}

// benchStore is a store with a realistic spec and a full history (100
// entries), as a long-running session has.
func benchStore(b *testing.B) *Store {
	b.Helper()
	l := NewLayout(b.TempDir(), "bench")
	s, err := Create(l, nil, SessionStartData{Type: "loop", Stage: "work", ProjectDir: l.ProjectDir, TmuxSession: "loop-bench",
		Provider: "claude", Model: "opus", Stages: []StagePlan{{Name: "work", MaxIterations: 100000}}, Spec: benchSpec()})
	if err != nil {
		b.Fatal(err)
	}
	// Fill the history without a write per event: Apply in memory, then
	// one snapshot (what Record would have left on disk).
	s.mu.Lock()
	for it := 1; it <= HistoryLimit; it++ {
		Apply(&s.st, Event{Seq: s.st.EventSeq + 1, TS: time.Now().UTC(), Type: EventIterationStart, Iteration: it})
		Apply(&s.st, Event{Seq: s.st.EventSeq + 1, TS: time.Now().UTC(), Type: EventIterationDone, Iteration: it, Data: MustData(benchEntry(it))})
	}
	err = s.writeSnapshot()
	s.mu.Unlock()
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// median and msf: the shared benchmark helpers of internal/testkit.
var (
	median = testkit.Median
	msf    = testkit.Ms
)

func usf(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// settle flushes what earlier benchmarks left to the disk, so it is not
// charged to this one.
func settle(b *testing.B) {
	b.Helper()
	syscall.Sync()
	time.Sleep(2 * time.Second)
}

// BenchmarkRecordIteration: one op is what one iteration records — the
// iteration_start and iteration_complete events, each appended to
// events.jsonl with an fsync and followed by an atomic replace of
// state.json (not fsynced: it is rebuilt from the log).
func BenchmarkRecordIteration(b *testing.B) {
	s := benchStore(b)
	settle(b)
	it := HistoryLimit
	var samples []time.Duration
	syncs := Fsyncs()
	for b.Loop() {
		it++
		t0 := time.Now()
		if err := s.Record(Event{Type: EventIterationStart, Stage: "work", Iteration: it}); err != nil {
			b.Fatal(err)
		}
		if err := s.Record(Event{Type: EventIterationDone, Stage: "work", Iteration: it, Data: MustData(benchEntry(it))}); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(t0))
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(msf(median(samples)), "ms/iter")
	b.ReportMetric(float64(Fsyncs()-syncs)/float64(len(samples)), "fsyncs/iter")
	if fi, err := os.Stat(s.layout.StateFile()); err == nil {
		b.ReportMetric(float64(fi.Size()), "state-bytes")
	}
}

// BenchmarkSnapshotEncode: encoding state.json alone (no I/O).
func BenchmarkSnapshotEncode(b *testing.B) {
	s := benchStore(b)
	var n int
	var samples []time.Duration
	for b.Loop() {
		t0 := time.Now()
		data, err := s.encodeSnapshot()
		if err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(t0))
		n = len(data)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(usf(median(samples)), "us/encode")
	b.ReportMetric(float64(n), "state-bytes")
}

// BenchmarkWriteFileAtomic: the durable replace alone (temp file, fsync,
// rename), at state.json's size.
func BenchmarkWriteFileAtomic(b *testing.B) {
	s := benchStore(b)
	data, err := s.encodeSnapshot()
	if err != nil {
		b.Fatal(err)
	}
	data = bytes.Clone(data)
	path := filepath.Join(b.TempDir(), "state.json")
	settle(b)
	var samples []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := WriteFileAtomic(path, data, 0o644); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(t0))
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(msf(median(samples)), "ms/write")
	b.ReportMetric(float64(len(data)), "bytes")
}

// BenchmarkLoad: reading one session's state in full, as monitor does.
func BenchmarkLoad(b *testing.B) {
	benchRead(b, Load)
}

// BenchmarkLoadSummary: reading what list needs of one session.
func BenchmarkLoadSummary(b *testing.B) {
	benchRead(b, LoadSummary)
}

func benchRead(b *testing.B, load func(Layout) (State, LoadResult, error)) {
	s := benchStore(b)
	var samples []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, _, err := load(s.layout); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(t0))
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(usf(median(samples)), "us/read")
}
