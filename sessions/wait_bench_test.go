package sessions

import (
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"github.com/agent-sessions/agent-sessions/state"
)

// BenchmarkWaitTick: what one tick of a monitor wait costs on a running
// session with a full history (100 entries) whose engine (this process)
// holds the lock: "read" reads the session in full, as every tick did;
// "mark" is the look that now comes first and, while the engine holds the
// lock and state.json is unchanged, is all a tick does.
func BenchmarkWaitTick(b *testing.B) {
	l := state.NewLayout(b.TempDir(), "bench")
	st, err := state.Create(l, nil, state.SessionStartData{Type: "loop", Stage: "work", ProjectDir: l.ProjectDir,
		TmuxSession: "loop-bench", Provider: "claude", Stages: []state.StagePlan{{Name: "work", MaxIterations: 1000}},
		Spec: state.MustData(map[string]any{"prompt": strings.Repeat("Read ${PROGRESS} and do one thing. ", 100)})})
	if err != nil {
		b.Fatal(err)
	}
	for it := 1; it <= state.HistoryLimit; it++ {
		entry := state.HistoryEntry{Iteration: it, Stage: "work", Timestamp: time.Now().UTC(), Decision: "continue",
			Reasoning: strings.Repeat("the tests pass and the next bead is the parser; ", 4), CostUSD: 0.42}
		for _, ev := range []state.Event{{Type: state.EventIterationStart, Iteration: it},
			{Type: state.EventIterationDone, Iteration: it, Data: state.MustData(entry)}} {
			if err := st.Record(ev); err != nil {
				b.Fatal(err)
			}
		}
	}
	lock, err := state.AcquireLock(b.Context(), l.LockFile(), "bench", time.Second, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer lock.Release()
	loc := &Local{Settings{Tmux: listedTmux{}, ProjectDir: l.ProjectDir}}
	info := loc.Inspect(l.ProjectDir, "bench", nil, Full)
	if info.Live.Status != state.LiveRunning || len(info.State.History) != state.HistoryLimit {
		b.Fatalf("bench session: %s with %d history entries", info.Live.Status, len(info.State.History))
	}
	run := func(name string, tick func()) {
		b.Run(name, func(b *testing.B) {
			samples := testkit.Samples(b, tick)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(testkit.Median(samples))/float64(time.Microsecond), "us/tick")
		})
	}
	run("read", func() { loc.Refresh(b.Context(), info) })
	run("mark", func() { markOf(l) })
}
