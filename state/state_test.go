package state

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestValidateSession(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"auth-refactor", true},
		{"0day", true},
		{strings.Repeat("a", 48), true},
		{strings.Repeat("a", 49), false},
		{"", false},
		{"-lead", false},
		{"Upper", false},
		{"../etc", false},
		{"a;b", false},
		{"$(x)", false},
		{"with space", false},
		{"ünïcode", false},
		{"a_b", false},
		{"a.b", false},
	}
	for _, tt := range tests {
		err := ValidateSession(tt.name)
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidateSession(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "lowercase") {
			t.Errorf("ValidateSession(%q) error %q does not state the rule", tt.name, err)
		}
	}
}

func TestSuggestSessionIsAlwaysValid(t *testing.T) {
	for _, in := range []string{"", "Auth Refactor!", "../../x", "a;b$(c)", strings.Repeat("Ab_", 40), "日本語", "---", "x"} {
		got := SuggestSession(in)
		if err := ValidateSession(got); err != nil {
			t.Errorf("SuggestSession(%q) = %q, invalid: %v", in, got, err)
		}
	}
	if got, want := SuggestSession("Auth Refactor!"), "auth-refactor"; got != want {
		t.Errorf("SuggestSession = %q, want %q", got, want)
	}
}

func TestWriteFileAtomicCreatesDirAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "state.json")
	for i := range 3 {
		if err := WriteFileAtomic(path, []byte(strings.Repeat("x", i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(path)
	if string(got) != "xxx" {
		t.Errorf("content = %q, want xxx", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("dir has %d entries, want only state.json", len(entries))
	}
}

func TestMoveAsideNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "run")
	var moved []string
	for range 3 {
		os.MkdirAll(p, 0o755)
		to, err := MoveAside(p, "20260101T000000")
		if err != nil {
			t.Fatal(err)
		}
		moved = append(moved, to)
	}
	if moved[0] == moved[1] || moved[1] == moved[2] {
		t.Fatalf("MoveAside reused a name: %v", moved)
	}
}

func startData() SessionStartData {
	return SessionStartData{
		Type: "pipeline", Pipeline: "p", ProjectDir: "/x", Provider: "mock", Model: "opus",
		Stages: []StagePlan{{Name: "one", MaxIterations: 3}, {Name: "two", MaxIterations: 500}},
		Spec:   json.RawMessage(`{"k":1}`),
	}
}

func newStore(t *testing.T) (*Store, Layout) {
	t.Helper()
	l := NewLayout(t.TempDir(), "s")
	s, err := Create(l, nil, startData())
	if err != nil {
		t.Fatal(err)
	}
	return s, l
}

func complete(t *testing.T, s *Store, stage, it int) {
	t.Helper()
	if err := s.Record(Event{Type: EventIterationStart, StageIndex: stage, Iteration: it}); err != nil {
		t.Fatal(err)
	}
	h := HistoryEntry{Iteration: it, StageIndex: stage, Decision: "continue", CostUSD: 0.5, InputTokens: 10, OutputToks: 2}
	if err := s.Record(Event{Type: EventIterationDone, StageIndex: stage, Iteration: it, Data: MustData(h)}); err != nil {
		t.Fatal(err)
	}
}

func TestStoreRecordsAndReloads(t *testing.T) {
	s, l := newStore(t)
	s.Record(Event{Type: EventStageStart, StageIndex: 0})
	for i := 1; i <= 3; i++ {
		complete(t, s, 0, i)
	}
	s.Record(Event{Type: EventStageComplete, StageIndex: 0, Data: MustData(ReasonData{Reason: "fixed-n"})})
	s.Record(Event{Type: EventStageStart, StageIndex: 1})
	complete(t, s, 1, 1)

	got, res, err := Load(l)
	if err != nil || res.Rebuilt {
		t.Fatalf("Load: %v %+v", err, res)
	}
	if got.CurrentStage != 1 || got.IterationCompleted != 1 || got.Stages[0].Status != StageComplete || got.Stages[0].Reason != "fixed-n" {
		t.Errorf("state = stage %d completed %d stages %+v", got.CurrentStage, got.IterationCompleted, got.Stages)
	}
	if got.Cost.USD != 2 || got.Cost.InputTokens != 40 {
		t.Errorf("cost = %+v, want 2 USD 40 tokens", got.Cost)
	}
	if got.MaxIterations != 500 {
		t.Errorf("max_iterations = %d, want the current stage's 500", got.MaxIterations)
	}
	if got.IterationStarted != nil {
		t.Errorf("iteration_started = %v, want null", got.IterationStarted)
	}
	// The raw file carries the original's field names, null included
	// (whatever its whitespace: state.json is written compact).
	raw, _ := os.ReadFile(l.StateFile())
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("state.json: %v", err)
	}
	for key, want := range map[string]string{"iteration_started": "null", "iteration_completed": "1", "current_stage": "1", "history": "", "schema_version": "1", "spec": ""} {
		got, ok := fields[key]
		if !ok || (want != "" && string(got) != want) {
			t.Errorf("state.json %q = %s (present %v), want %s", key, got, ok, want)
		}
	}
}

func TestRebuildEqualsLiveState(t *testing.T) {
	s, l := newStore(t)
	s.Record(Event{Type: EventStageStart, StageIndex: 0})
	for i := 1; i <= 3; i++ {
		complete(t, s, 0, i)
	}
	live := s.State()
	events, skipped, err := ReadEvents(l.EventsFile())
	if err != nil || skipped != 0 {
		t.Fatal(err, skipped)
	}
	rebuilt, err := Rebuild(events)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(live)
	b, _ := json.Marshal(rebuilt)
	if string(a) != string(b) {
		t.Errorf("rebuilt state differs from live state:\n%s\n%s", a, b)
	}
}

func TestCorruptStateIsRebuiltAndMovedAside(t *testing.T) {
	s, l := newStore(t)
	s.Record(Event{Type: EventStageStart, StageIndex: 0})
	complete(t, s, 0, 1)
	complete(t, s, 0, 2)
	os.WriteFile(l.StateFile(), []byte(`{"session": "s", "stat`), 0o644)

	got, res, err := Load(l)
	if err != nil || !res.Rebuilt || got.IterationCompleted != 2 {
		t.Fatalf("Load = %d, %+v, %v; want rebuilt with 2 completed", got.IterationCompleted, res, err)
	}
	st, rec, err := Open(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Rebuilt || rec.CorruptMovedTo == "" {
		t.Errorf("recovery = %+v, want rebuilt and moved aside", rec)
	}
	if _, err := os.Stat(rec.CorruptMovedTo); err != nil {
		t.Errorf("corrupt file not kept: %v", err)
	}
	if st.State().IterationCompleted != 2 {
		t.Errorf("reopened state lost iterations")
	}
	if _, _, err := Load(l); err != nil {
		t.Errorf("state.json not rewritten: %v", err)
	}
}

func TestOpenReplaysEventsNewerThanSnapshot(t *testing.T) {
	s, l := newStore(t)
	s.Record(Event{Type: EventStageStart, StageIndex: 0})
	complete(t, s, 0, 1)
	snapshot, _ := os.ReadFile(l.StateFile())
	complete(t, s, 0, 2)
	// A crash after the event append, before the snapshot write.
	os.WriteFile(l.StateFile(), snapshot, 0o644)

	re, rec, err := Open(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := re.State()
	if rec.Replayed != 2 || st.IterationCompleted != 2 || len(st.History) != 2 {
		t.Fatalf("replayed %d, completed %d, history %d; want 2, 2, 2", rec.Replayed, st.IterationCompleted, len(st.History))
	}
	complete(t, re, 0, 3)
	events, _, _ := ReadEvents(l.EventsFile())
	seen := map[int]int{}
	for _, ev := range events {
		if ev.Type == EventIterationDone {
			seen[ev.Iteration]++
		}
	}
	for it := 1; it <= 3; it++ {
		if seen[it] != 1 {
			t.Errorf("iteration %d completed %d times in events, want 1", it, seen[it])
		}
	}
}

func TestTornEventLineIsSkippedAndTerminated(t *testing.T) {
	s, l := newStore(t)
	s.Record(Event{Type: EventStageStart, StageIndex: 0})
	complete(t, s, 0, 1)
	AppendFile(l.EventsFile(), []byte(`{"seq":99,"type":"iteration_comp`))
	re, rec, err := Open(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.SkippedLines != 1 {
		t.Errorf("skipped = %d, want 1", rec.SkippedLines)
	}
	complete(t, re, 0, 2)
	events, skipped, _ := ReadEvents(l.EventsFile())
	if skipped != 1 || events[len(events)-1].Iteration != 2 {
		t.Errorf("after torn line: skipped %d, last %+v", skipped, events[len(events)-1])
	}
}

func TestHistoryIsBounded(t *testing.T) {
	s, l := newStore(t)
	s.Record(Event{Type: EventStageStart, StageIndex: 1})
	for i := 1; i <= 250; i++ {
		complete(t, s, 1, i)
	}
	st := s.State()
	if len(st.History) != HistoryLimit || st.History[0].Iteration != 151 || st.History[99].Iteration != 250 {
		t.Errorf("history len %d first %d", len(st.History), st.History[0].Iteration)
	}
	events, _, _ := ReadEvents(l.EventsFile())
	n := 0
	for _, ev := range events {
		if ev.Type == EventIterationDone {
			n++
		}
	}
	if n != 250 {
		t.Errorf("events hold %d completions, want 250", n)
	}
}

func TestLoadMissingSession(t *testing.T) {
	_, _, err := Load(NewLayout(t.TempDir(), "nope"))
	if !errors.Is(err, ErrNoState) {
		t.Errorf("err = %v, want ErrNoState", err)
	}
}

func TestLockExclusiveAndReleased(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".claude", "locks", "s.lock")
	ctx := context.Background()
	l, err := AcquireLock(ctx, path, "s", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if l.Stale != nil {
		t.Errorf("fresh lock reported stale")
	}
	var info LockInfo
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &info); err != nil || info.PID != os.Getpid() || info.Session != "s" || info.HeartbeatEpoch == 0 {
		t.Errorf("lock file = %s (%v)", data, err)
	}
	_, err = AcquireLock(ctx, path, "s", 50*time.Millisecond, 0)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || le.Info == nil || le.Info.PID != os.Getpid() {
		t.Fatalf("second acquire = %v, want LockedError naming pid", err)
	}
	ls, _ := ProbeLock(path)
	if !ls.Exists || !ls.Held {
		t.Errorf("probe = %+v, want held", ls)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l.Release()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("lock file still there after release")
	}
	ls, _ = ProbeLock(path)
	if ls.Exists || ls.Held {
		t.Errorf("probe after release = %+v", ls)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("probe created the lock file")
	}
}

func TestStaleLockIsTakenOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.lock")
	os.WriteFile(path, []byte(`{"session":"s","pid":999999,"started_at":"2020-01-01T00:00:00Z"}`), 0o644)
	ls, _ := ProbeLock(path)
	if !ls.Exists || ls.Held || ls.Info == nil || ls.Info.PID != 999999 {
		t.Fatalf("probe = %+v, want existing, free, pid 999999", ls)
	}
	l, err := AcquireLock(context.Background(), path, "s", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if l.Stale == nil || l.Stale.PID != 999999 {
		t.Errorf("Stale = %+v, want the old holder", l.Stale)
	}
}

func TestRemoveStaleLockSparesHeldLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.lock")
	l, _ := AcquireLock(context.Background(), path, "s", 0, 0)
	if removed, _ := RemoveStaleLock(path); removed {
		t.Fatal("removed a held lock")
	}
	l.Release()
	os.WriteFile(path, []byte("{}"), 0o644)
	if removed, err := RemoveStaleLock(path); !removed || err != nil {
		t.Fatalf("stale lock not removed: %v", err)
	}
}

// Probes from list/monitor must never make a starting engine fail.
func TestProbesNeverBlockAcquire(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.lock")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					ProbeLock(path)
				}
			}
		}()
	}
	for range 200 {
		l, err := AcquireLock(context.Background(), path, "s", time.Second, 0)
		if err != nil {
			close(stop)
			t.Fatalf("acquire failed under probes: %v", err)
		}
		l.Release()
	}
	close(stop)
	wg.Wait()
}

func TestHeartbeatRewritesInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.lock")
	l, err := AcquireLock(context.Background(), path, "s", 0, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	first := l.Info().Heartbeat
	before, _ := os.Stat(path)
	deadline := time.Now().Add(2 * time.Second)
	for l.Info().Heartbeat.Equal(first) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	after, _ := os.Stat(path)
	if l.Info().Heartbeat.Equal(first) {
		t.Fatal("heartbeat never advanced")
	}
	if !os.SameFile(before, after) {
		t.Error("heartbeat replaced the lock file; the flock would be lost")
	}
	ls, _ := ProbeLock(path)
	if !ls.Held || ls.Info == nil || ls.Info.Heartbeat.Before(first) {
		t.Errorf("probe after heartbeat = %+v", ls)
	}
}

func TestClassify(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	st := func(status string, started time.Duration) *State {
		s := &State{Session: "s", Status: status, StartedAt: now.Add(-started)}
		if Terminal(status) {
			c := now.Add(-time.Minute)
			s.CompletedAt = &c
		}
		return s
	}
	resumed := func(started, resumedAgo time.Duration) *State {
		s := st("running", started)
		r := now.Add(-resumedAgo)
		s.ResumedAt = &r
		return s
	}
	old := &TmuxFacts{Name: "loop-s", Created: now.Add(-time.Hour)}
	fresh := &TmuxFacts{Name: "loop-s", Created: now.Add(-time.Second)}
	held := LockStatus{Exists: true, Held: true}
	free := LockStatus{Exists: true}
	tests := []struct {
		name      string
		f         Facts
		want      Status
		stale     bool
		staleLock bool
	}{
		{"running", Facts{HasRunDir: true, State: st("running", time.Minute), Lock: held, Tmux: old}, LiveRunning, false, false},
		{"running foreground", Facts{HasRunDir: true, State: st("running", time.Minute), Lock: held}, LiveRunning, false, false},
		{"running stale", Facts{HasRunDir: true, State: st("running", 3*time.Hour), Lock: held, Tmux: old}, LiveRunning, true, false},
		{"resumed a minute ago after 5h dead", Facts{HasRunDir: true, State: resumed(5*time.Hour, time.Minute), Lock: held, Tmux: old}, LiveRunning, false, false},
		{"resumed 3h ago", Facts{HasRunDir: true, State: resumed(5*time.Hour, 3*time.Hour), Lock: held, Tmux: old}, LiveRunning, true, false},
		{"complete", Facts{HasRunDir: true, State: st("complete", time.Hour)}, LiveComplete, false, false},
		{"failed", Facts{HasRunDir: true, State: st("failed", time.Hour)}, LiveFailed, false, false},
		{"killed", Facts{HasRunDir: true, State: st("killed", time.Hour)}, LiveKilled, false, false},
		{"crashed", Facts{HasRunDir: true, State: st("running", time.Hour)}, LiveCrashed, false, false},
		{"crashed stale lock", Facts{HasRunDir: true, State: st("running", time.Hour), Lock: free}, LiveCrashed, false, true},
		{"zombie", Facts{HasRunDir: true, State: st("running", time.Hour), Tmux: old}, LiveZombie, false, false},
		{"zombie after end", Facts{HasRunDir: true, State: st("complete", time.Hour), Tmux: old}, LiveZombie, false, false},
		{"orphan", Facts{Tmux: old}, LiveOrphan, false, false},
		{"starting, no dir yet", Facts{Tmux: fresh}, LiveStarting, false, false},
		{"starting, resuming", Facts{HasRunDir: true, State: st("running", time.Hour), Tmux: fresh}, LiveStarting, false, false},
		{"nothing", Facts{}, "", false, false},
		{"unreadable run dir", Facts{HasRunDir: true}, LiveCrashed, false, false},
	}
	for _, tt := range tests {
		tt.f.Now = now
		got := Classify(tt.f)
		if got.Status != tt.want || got.Stale != tt.stale || got.StaleLock != tt.staleLock {
			t.Errorf("%s: got %+v, want %s stale=%v staleLock=%v", tt.name, got, tt.want, tt.stale, tt.staleLock)
		}
		if got.Status != "" && got.Why == "" {
			t.Errorf("%s: no explanation", tt.name)
		}
		if strings.HasPrefix(tt.name, "resumed a minute") && got.Age != time.Minute {
			t.Errorf("%s: age %s, want 1m0s (since the resume)", tt.name, got.Age)
		}
	}
}

func TestSessionFromTmux(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"loop-auth", "auth", true},
		{"pipeline-x-y", "x-y", true},
		{"loop-", "", false},
		{"work", "", false},
		{"loop-Bad", "", false},
	}
	for _, tt := range tests {
		got, ok := SessionFromTmux(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("SessionFromTmux(%q) = %q, %v", tt.in, got, ok)
		}
	}
	if TmuxName("a", false) != "loop-a" || TmuxName("a", true) != "pipeline-a" {
		t.Error("TmuxName")
	}
}

func TestInitProgressShapeAndKeepsExisting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "progress-s.md")
	if err := InitProgress(path, "s"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	for _, want := range []string{"# Progress: s", "\nVerify:", "## Codebase Patterns", "\n---\n"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("progress file lacks %q", want)
		}
	}
	os.WriteFile(path, []byte("learned things"), 0o644)
	InitProgress(path, "s")
	data, _ = os.ReadFile(path)
	if string(data) != "learned things" {
		t.Error("InitProgress overwrote accumulated progress")
	}
}

// TestResumeRaisesMaxAndSurvivesRebuild: a session_resume carrying a new
// limit changes the current stage's max, in the live state and in one
// rebuilt from events.jsonl alike, and clears how the session had ended.
func TestResumeRaisesMaxAndSurvivesRebuild(t *testing.T) {
	s, l := newStore(t)
	s.Record(Event{Type: EventStageStart, StageIndex: 0})
	complete(t, s, 0, 1)
	s.Record(Event{Type: EventSessionKilled, StageIndex: 0, Data: MustData(ReasonData{Reason: "killed", Error: "killed by SIGTERM"})})
	if st := s.State(); st.Status != StatusKilled || st.Stages[0].Status != StageKilled || st.CompletedAt == nil {
		t.Fatalf("after kill: %+v", st)
	}
	s.Record(Event{Type: EventSessionResume, StageIndex: 0, Data: MustData(ResumeData{MaxIterations: 7})})
	live := s.State()
	if live.Status != StatusRunning || live.MaxIterations != 7 || live.Stages[0].MaxIterations != 7 || live.Stages[1].MaxIterations != 500 ||
		live.Stages[0].Status != StageRunning || live.CompletedAt != nil || live.CompletionReason != "" || live.ResumedAt == nil {
		t.Errorf("after resume: %+v", live)
	}
	events, _, err := ReadEvents(l.EventsFile())
	if err != nil {
		t.Fatal(err)
	}
	rebuilt, err := Rebuild(events)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(live)
	b, _ := json.Marshal(rebuilt)
	if string(a) != string(b) {
		t.Errorf("rebuilt state differs from live state:\n%s\n%s", a, b)
	}
	// A resume without a limit keeps the one in force.
	s.Record(Event{Type: EventSessionResume, StageIndex: 0})
	if st := s.State(); st.MaxIterations != 7 || st.Stages[0].MaxIterations != 7 {
		t.Errorf("resume without max changed it: %d/%d", st.MaxIterations, st.Stages[0].MaxIterations)
	}
}

// TestLockSurvivesDeletedOrReplacedFile: the engine socket, not the lock
// file, says an engine is alive. Deleting the file or replacing it with
// another's (git reset --hard, a person) neither makes the holder look dead
// nor lets a second holder in; the heartbeat puts the file back.
func TestLockSurvivesDeletedOrReplacedFile(t *testing.T) {
	if !engineSocketSupported {
		t.Skip("no engine sockets on this platform")
	}
	path := filepath.Join(t.TempDir(), ".claude", "locks", "s.lock")
	l, err := AcquireLock(context.Background(), path, "s", 0, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	foreign := []byte(`{"session":"s","pid":999999,"started_at":"2020-01-01T00:00:00Z"}`)
	for _, harm := range []struct {
		name string
		do   func() error
	}{
		{"deleted", func() error { return os.Remove(path) }},
		{"locks dir deleted", func() error { return os.RemoveAll(filepath.Dir(path)) }},
		{"replaced", func() error {
			tmp := path + ".other"
			if err := os.WriteFile(tmp, foreign, 0o644); err != nil {
				return err
			}
			return os.Rename(tmp, path)
		}},
	} {
		if err := harm.do(); err != nil {
			t.Fatal(err)
		}
		ls, err := ProbeLock(path)
		if err != nil || !ls.Held || ls.Info == nil || ls.Info.PID != os.Getpid() || ls.Via != "socket" {
			t.Errorf("%s: probe = %+v (%v), want held by pid %d via the socket", harm.name, ls, err, os.Getpid())
		}
		_, err = AcquireLock(context.Background(), path, "s", 30*time.Millisecond, 0)
		var le *LockedError
		if !errors.As(err, &le) || le.Info == nil || le.Info.PID != os.Getpid() {
			t.Errorf("%s: second acquire = %v, want LockedError naming pid %d", harm.name, err, os.Getpid())
		}
		if removed, err := RemoveStaleLock(path); removed || err != nil {
			t.Errorf("%s: RemoveStaleLock removed the live engine's lock file (%v)", harm.name, err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			ls, _ := probeLockFile(path)
			if ls.Held && ls.Info != nil && ls.Info.PID == os.Getpid() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the heartbeat never put the lock file back: %+v", harm.name, ls)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if fi, err := os.Stat(path); err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: restored lock file mode %v, want 0644", harm.name, fi.Mode())
		}
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if ls, _ := ProbeLock(path); ls.Held || ls.Exists {
		t.Errorf("after release: probe = %+v, want no engine, no file", ls)
	}
	l2, err := AcquireLock(context.Background(), path, "s", 0, 0)
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	l2.Release()
}

// TestEventsDurableBeforeState (SPEC §14): what is fsynced is the event log
// (and the directories on create), never state.json, which is rebuilt from
// the log — so an iteration (two events) costs two fsyncs.
func TestEventsDurableBeforeState(t *testing.T) {
	var synced []string
	syncHook = func(name string) { synced = append(synced, name) }
	defer func() { syncHook = nil }()
	l := NewLayout(t.TempDir(), "s")
	s, err := Create(l, nil, startData())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{RunsDir(l.ProjectDir), l.EventsFile(), l.RunDir()}
	if !slices.Equal(synced, want) {
		t.Errorf("create synced %q, want %q", synced, want)
	}
	synced = nil
	before := Fsyncs()
	complete(t, s, 0, 1)
	if got := Fsyncs() - before; got != 2 {
		t.Errorf("an iteration made %d fsyncs, want 2", got)
	}
	if want := []string{l.EventsFile(), l.EventsFile()}; !slices.Equal(synced, want) {
		t.Errorf("an iteration synced %q, want %q", synced, want)
	}
	// A state.json lost with its unsynced content is rebuilt from the log.
	os.WriteFile(l.StateFile(), nil, 0o644)
	s2, rec, err := Open(l, nil)
	if err != nil || !rec.Rebuilt || s2.State().IterationCompleted != 1 {
		t.Errorf("open after an empty state.json: rebuilt %v, err %v", rec.Rebuilt, err)
	}
	s2.ReleaseReserve()
}
