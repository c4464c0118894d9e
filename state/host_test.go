package state

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestHostDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/xdg/state")
	if got, _ := HostDir(); got != "/xdg/state/agent-sessions" {
		t.Errorf("HostDir = %s", got)
	}
	// A relative XDG_STATE_HOME is invalid by the XDG spec: ignored.
	t.Setenv("XDG_STATE_HOME", "rel")
	t.Setenv("HOME", "/home/u")
	if got, _ := HostDir(); got != "/home/u/.local/state/agent-sessions" {
		t.Errorf("HostDir = %s", got)
	}
}

func TestParks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	if _, ok := ParkActive(dir, "claude", now); ok {
		t.Fatal("a park without a file")
	}
	later := Park{Provider: "claude", Until: now.Add(time.Hour), Reason: "usage_limit", BySession: "a"}
	if err := WritePark(dir, later); err != nil {
		t.Fatal(err)
	}
	// A shorter park does not shorten the one in force.
	if err := WritePark(dir, Park{Provider: "claude", Until: now.Add(time.Minute), Reason: "rate_limit", BySession: "b"}); err != nil {
		t.Fatal(err)
	}
	p, ok := ParkActive(dir, "claude", now)
	if !ok || p.BySession != "a" || !p.Until.Equal(later.Until) {
		t.Fatalf("park = %+v, %v; want a's", p, ok)
	}
	if _, ok := ParkActive(dir, "codex", now); ok {
		t.Error("a park of claude parks codex")
	}
	if _, ok := ParkActive(dir, "claude", now.Add(2*time.Hour)); ok {
		t.Error("an expired park is in force")
	}
	if err := WritePark(dir, Park{Provider: "../x", Until: now}); err == nil {
		t.Error("a provider name with a path was accepted")
	}
	// A damaged park file parks nobody.
	os.WriteFile(filepath.Join(dir, "parks", "codex.json"), []byte("{torn"), 0o644)
	if _, ok := ParkActive(dir, "codex", now); ok {
		t.Error("a torn park file is in force")
	}
}

func TestSpendLedger(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	if got, err := SpendOn(dir, now); err != nil || got != 0 {
		t.Fatalf("no ledger: %v, %v", got, err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := AddSpend(dir, SpendEntry{TS: now, Session: "s", USD: 0.25}); err != nil {
				t.Error(i, err)
			}
		}()
	}
	wg.Wait()
	for _, bad := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		AddSpend(dir, SpendEntry{TS: now, USD: bad})
	}
	// Yesterday's spend is not today's.
	AddSpend(dir, SpendEntry{TS: now.AddDate(0, 0, -1), USD: 100})
	got, err := SpendOn(dir, now)
	if err != nil || math.Abs(got-5) > 1e-9 {
		t.Fatalf("spend today = %v, %v; want 5", got, err)
	}
	// A torn last line (a crash mid-write) is skipped.
	f, _ := os.OpenFile(spendFile(dir, now), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"usd": 3`)
	f.Close()
	if got, _ := SpendOn(dir, now); math.Abs(got-5) > 1e-9 {
		t.Fatalf("spend with a torn line = %v", got)
	}
}

func TestNextLocalDay(t *testing.T) {
	t.Parallel()
	tm := time.Date(2026, 3, 31, 23, 59, 0, 0, time.Local)
	want := time.Date(2026, 4, 1, 0, 0, 0, 0, time.Local)
	if got := NextLocalDay(tm); !got.Equal(want) {
		t.Errorf("NextLocalDay = %v, want %v", got, want)
	}
}

// TestApplyParkAndQuestion: the reducer's view of parks, questions and
// answers, which a rebuild from events.jsonl must reproduce.
func TestApplyParkAndQuestion(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	ev := func(seq int64, typ string, it int, d any) Event {
		e := Event{Seq: seq, TS: t0.Add(time.Duration(seq) * time.Minute), Type: typ, Session: "s", Iteration: it}
		if d != nil {
			e.Data = MustData(d)
		}
		return e
	}
	events := []Event{
		ev(1, EventSessionStart, 0, SessionStartData{Type: "loop", Stages: []StagePlan{{Name: "a", MaxIterations: 5}}, MaxCostUSD: 2}),
		ev(2, EventStageStart, 0, nil),
		ev(3, EventIterationStart, 1, nil),
		ev(4, EventSessionParked, 1, ParkData{Until: t0.Add(time.Hour), Reason: "usage_limit", CostUSD: 0.5}),
	}
	st, err := Rebuild(events)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != StatusParked || st.ParkedUntil == nil || st.ParkedReason != "usage_limit" || st.IterationStarted != nil || st.Cost.USD != 0.5 || st.MaxCostUSD != 2 {
		t.Fatalf("parked state: %+v", st)
	}
	events = append(events,
		ev(6, EventSessionUnparked, 1, UnparkData{Seconds: 120}),
		ev(7, EventIterationStart, 1, nil),
		ev(8, EventIterationDone, 1, HistoryEntry{Iteration: 1, Decision: "continue"}),
		ev(9, EventSessionWaiting, 1, Question{Question: "which db?", Options: []string{"pg", "sqlite"}}),
	)
	st, _ = Rebuild(events)
	if st.Status != StatusWaiting || st.Question == nil || st.Question.Iteration != 1 || st.ParkedSeconds != 120 || st.ParkStreak != 0 {
		t.Fatalf("waiting state: %+v", st)
	}
	events = append(events, ev(10, EventSessionAnswered, 1, AnswerData{Answer: "pg"}))
	st, _ = Rebuild(events)
	if st.Status != StatusRunning || st.Question != nil || st.Answer == nil || st.Answer.Answer != "pg" || st.Answer.Question != "which db?" {
		t.Fatalf("answered state: %+v", st)
	}
	events = append(events, ev(11, EventIterationStart, 2, nil), ev(12, EventIterationDone, 2, HistoryEntry{Iteration: 2}))
	st, _ = Rebuild(events)
	if st.Answer != nil {
		t.Fatalf("the answer outlived the iteration that received it: %+v", st.Answer)
	}
	// The head (what list reads) carries the park and the question.
	raw, _ := json.Marshal(st)
	if _, ok := decodeHead(raw, raw[len(raw)-16:]); !ok {
		t.Fatal("head not decodable")
	}
}

func TestClassifyWaitingAndParked(t *testing.T) {
	t.Parallel()
	now := time.Now()
	until := now.Add(time.Hour)
	for _, tc := range []struct {
		status string
		held   bool
		want   Status
	}{
		{StatusWaiting, true, LiveWaiting},
		{StatusParked, true, LiveParked},
		{StatusWaiting, false, LiveCrashed},
		{StatusParked, false, LiveCrashed},
	} {
		st := &State{Session: "s", Status: tc.status, StartedAt: now, ParkedUntil: &until, ParkedReason: "usage_limit", Question: &Question{Question: "q?"}}
		lv := Classify(Facts{HasRunDir: true, State: st, Lock: LockStatus{Exists: true, Held: tc.held}, Now: now})
		if lv.Status != tc.want {
			t.Errorf("%s held=%v: %s (%s), want %s", tc.status, tc.held, lv.Status, lv.Why, tc.want)
		}
		if lv.Status.Alive() != tc.held {
			t.Errorf("%s held=%v: Alive = %v", tc.status, tc.held, !tc.held)
		}
	}
}
