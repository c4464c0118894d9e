package state

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
)

// Fuzz targets for everything of this package that reads what a user, a
// crash or a hand edit may have left behind: session names, state.json and
// events.jsonl. CI runs each for a few seconds (.ci/run); locally:
//
//	go test -run '^$' -fuzz '^FuzzValidateSession$' -fuzztime 60s ./state

// sessionSeeds are the hostile names of issue 6 and their neighbours.
var sessionSeeds = []string{
	"ok", "a", "my-task", "0", "a-b-c", strings.Repeat("a", 48), strings.Repeat("a", 49),
	"", "-", "-t", "=loop-x", "a/../../b", "../x", "..", ".", "a;b", "$(id)", "`id`", "a b", "a\tb",
	"ünï", "Ünïcode", "loop-\x00;rm -rf /", "name\n", "\nname", "a:b", "a.b", "UPPER", "a\u200bb",
	strings.Repeat("x", 10<<10), strings.Repeat("é", 60), "\xff\xfe", "a-", "a--b",
}

// FuzzValidateSession: an accepted name is safe everywhere it goes (a
// directory, a lock file, a tmux target); a refused one is refused with a
// message naming it or the rule; a suggestion is always valid.
func FuzzValidateSession(f *testing.F) {
	for _, s := range sessionSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateSession(name)
		if err == nil {
			checkSafeName(t, name)
			for _, multi := range []bool{false, true} {
				tn := TmuxName(name, multi)
				if strings.ContainsAny(tn, ":.=%$;'\"`\\ \t\n") || strings.HasPrefix(tn, "-") {
					t.Errorf("tmux name %q is not a safe tmux target", tn)
				}
				if back, ok := SessionFromTmux(tn); !ok || back != name {
					t.Errorf("SessionFromTmux(%q) = %q, %v; want %q", tn, back, ok, name)
				}
			}
		} else {
			msg := err.Error()
			if msg == "" {
				t.Fatalf("ValidateSession(%q): empty error", name)
			}
			if !strings.Contains(msg, SessionRule) {
				t.Errorf("ValidateSession(%q) = %q: does not state the rule", name, msg)
			}
			if len(msg) > 600 {
				t.Errorf("ValidateSession of a %d-byte name: message of %d bytes is not bounded", len(name), len(msg))
			}
		}
		s := SuggestSession(name)
		if s == "" {
			t.Fatalf("SuggestSession(%q) is empty", name)
		}
		if err := ValidateSession(s); err != nil {
			t.Errorf("SuggestSession(%q) = %q, which is invalid: %v", name, s, err)
		}
		if err != nil && name != "" && !strings.Contains(err.Error(), s) {
			t.Errorf("ValidateSession(%q) = %q: does not suggest %q", name, err, s)
		}
	})
}

// checkSafeName asserts what the documented rule promises of a name.
func checkSafeName(t *testing.T, name string) {
	t.Helper()
	if name == "" || len(name) > 48 {
		t.Errorf("accepted %q of length %d (max 48)", name, len(name))
	}
	if strings.Contains(name, "/") || strings.Contains(name, "..") || strings.HasPrefix(name, "-") || strings.HasPrefix(name, ".") {
		t.Errorf("accepted %q: path syntax or a leading '-'", name)
	}
	if strings.ContainsAny(name, ";&|$`'\"\\(){}[]<>*?!~#=:%") {
		t.Errorf("accepted %q: shell or tmux metacharacter", name)
	}
	for _, r := range name {
		if r > unicode.MaxASCII || unicode.IsSpace(r) || unicode.IsControl(r) || unicode.IsUpper(r) {
			t.Errorf("accepted %q: rune %q", name, r)
		}
	}
	if filepath.Base(name) != name || filepath.Clean(name) != name {
		t.Errorf("accepted %q: not a single clean path element", name)
	}
}

// A state.json as this build writes it, and a matching events.jsonl.
func seedRun(f *testing.F) (stateJSON, events []byte) {
	f.Helper()
	dir := f.TempDir()
	l := NewLayout(dir, "seed")
	ts := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	s, err := Create(l, func() time.Time { return ts }, SessionStartData{Type: "pipeline", Pipeline: "p", ProjectDir: dir,
		TmuxSession: "pipeline-seed", Provider: "mock", Model: "opus",
		Stages: []StagePlan{{Name: "a", MaxIterations: 2}, {Name: "b", MaxIterations: 3, Parallel: true}}, Spec: json.RawMessage(`{"version":1}`)})
	if err != nil {
		f.Fatal(err)
	}
	for _, ev := range []Event{
		{Type: EventStageStart, StageIndex: 0},
		{Type: EventIterationStart, StageIndex: 0, Iteration: 1},
		{Type: EventIterationDone, StageIndex: 0, Iteration: 1, Data: MustData(HistoryEntry{Iteration: 1, Stage: "a", Decision: "continue", CostUSD: 0.5})},
		{Type: EventStageComplete, StageIndex: 0, Data: MustData(ReasonData{Reason: "plateau"})},
		{Type: EventStageStart, StageIndex: 1},
		{Type: EventIterationDone, StageIndex: 1, Iteration: 2, Data: MustData(HistoryEntry{Iteration: 2, Stage: "b", ExitCode: 1})},
		{Type: EventSessionFailed, StageIndex: 1, Data: MustData(ReasonData{Reason: "error", Error: "boom"})},
		{Type: EventSessionResume, StageIndex: 1, Data: MustData(ResumeData{MaxIterations: 4})},
		{Type: EventSessionKilled, StageIndex: 1, Data: MustData(ReasonData{Reason: "killed"})},
		{Type: "from_the_future", StageIndex: 9},
	} {
		if err := s.Record(ev); err != nil {
			f.Fatal(err)
		}
	}
	stateJSON, err = os.ReadFile(l.StateFile())
	if err != nil {
		f.Fatal(err)
	}
	events, err = os.ReadFile(l.EventsFile())
	if err != nil {
		f.Fatal(err)
	}
	return stateJSON, events
}

// FuzzLoadState writes arbitrary bytes as state.json and events.jsonl and
// reads them as list, monitor and resume do. Nothing panics; a state comes
// back with a session and a status, or an error does; the readers change
// nothing; Open (resume) never loses the bytes of a state.json it cannot
// use: it moves them aside, byte for byte.
func FuzzLoadState(f *testing.F) {
	st, ev := seedRun(f)
	lines := bytes.SplitAfter(ev, []byte("\n"))
	f.Add(st, ev, true, true)
	f.Add(st, ev, true, false)
	f.Add(st, ev, false, true)
	f.Add(st[:len(st)/2], ev, true, true)                               // torn state.json
	f.Add(st, ev[:len(ev)-7], true, true)                               // torn last event
	f.Add([]byte("{}"), ev, true, true)                                 // no session or status
	f.Add([]byte(`{"session":"x","status":"running"}`), ev, true, true) // the old layout
	f.Add([]byte("not json"), []byte("not json\n"), true, true)
	f.Add([]byte(""), bytes.Join(lines[1:], nil), true, true) // no session_start
	f.Add(bytes.Replace(st, []byte(`"event_seq":`), []byte(`"event_seq":1,"x":`), 1), ev, true, true)
	f.Add(bytes.Replace(st, []byte(`"history":`), []byte(`"history" :`), 1), ev, true, true)
	f.Add([]byte(`{"session":"a","status":"running","event_seq":1,"history":"}`), []byte(nil), true, false)
	f.Add(st, []byte(`{"seq":1,"type":"session_start","session":"s","data":null}`+"\n"), false, true)
	f.Add(st, []byte(`{"seq":1,"type":"session_start","session":"s","data":{"stages":[{"name":"a"}]}}`+"\n"+
		`{"seq":2,"type":"stage_start","stage_index":5}`+"\n"), false, true)
	f.Fuzz(func(t *testing.T, stateData, eventsData []byte, haveState, haveEvents bool) {
		l := NewLayout(t.TempDir(), "fuzz")
		if err := os.MkdirAll(l.RunDir(), 0o755); err != nil {
			t.Fatal(err)
		}
		if haveState {
			writeFuzzFile(t, l.StateFile(), stateData)
		}
		if haveEvents {
			writeFuzzFile(t, l.EventsFile(), eventsData)
		}
		before := dirSnapshot(t, l.RunDir())

		full, fullRes, fullErr := Load(l)
		checkLoaded(t, "Load", full, fullErr)
		sum, _, sumErr := LoadSummary(l)
		checkLoaded(t, "LoadSummary", sum, sumErr)
		if sumErr == nil && (sum.History != nil || sum.Spec != nil) {
			t.Errorf("LoadSummary returned history or spec")
		}
		if fullErr == nil && !fullRes.Rebuilt && sumErr != nil {
			t.Errorf("Load read state.json but LoadSummary failed: %v", sumErr)
		}
		// The converse does not hold, by design: LoadSummary decodes only the
		// head of a state.json of this build's layout and does not notice
		// damage after it (see decodeHead); Load does.
		if fullErr == nil && sumErr == nil && (sum.Session == "" || sum.Status == "") {
			t.Errorf("LoadSummary: session %q status %q", sum.Session, sum.Status)
		}
		if after := dirSnapshot(t, l.RunDir()); !mapsEqual(before, after) {
			t.Fatalf("Load or LoadSummary changed the run dir:\nbefore %q\nafter  %q", keys(before), keys(after))
		}

		// Open is what resume does: it may repair, but loses nothing.
		s, rec, openErr := Open(l, nil)
		after := dirSnapshot(t, l.RunDir())
		if haveEvents {
			got, ok := after["events.jsonl"]
			if !ok || !(got == string(eventsData) || got == string(eventsData)+"\n") {
				t.Errorf("Open changed events.jsonl beyond terminating a torn line:\nbefore %q\nafter  %q", eventsData, got)
			}
		}
		if haveState {
			kept := after["state.json"] == string(stateData)
			var movedTo string
			for name, content := range after {
				if strings.HasPrefix(name, "state.json.corrupt-") && content == string(stateData) {
					movedTo = name
				}
			}
			switch {
			case rec.CorruptMovedTo != "":
				if filepath.Base(rec.CorruptMovedTo) != movedTo {
					t.Errorf("Open says it moved state.json to %s; the original bytes are in %q", rec.CorruptMovedTo, movedTo)
				}
			case openErr != nil && !kept:
				t.Errorf("Open failed (%v) and state.json changed without being moved aside", openErr)
			case rec.Rebuilt:
				t.Errorf("Open rebuilt from events but did not move the unusable state.json aside (files %q)", keys(after))
			}
		}
		if openErr != nil {
			if s != nil {
				t.Errorf("Open returned a store with an error")
			}
			if openErr.Error() == "" {
				t.Errorf("Open: empty error")
			}
			return
		}
		got := s.State()
		if got.Session == "" || got.Status == "" {
			t.Errorf("Open: state with session %q status %q", got.Session, got.Status)
		}
		if fullErr == nil && !fullRes.Rebuilt && rec.Replayed == 0 && got.Session != full.Session {
			t.Errorf("Open found session %q, Load %q", got.Session, full.Session)
		}
		// What Open leaves behind reads back as the state it holds.
		if rec.Rebuilt || rec.Replayed > 0 {
			reread, _, err := Load(l)
			if err != nil {
				t.Fatalf("Load after Open repaired the run: %v", err)
			}
			if reread.Session != got.Session || reread.Status != got.Status || reread.EventSeq != got.EventSeq {
				t.Errorf("after Open: state.json has %q/%q/%d, the store %q/%q/%d",
					reread.Session, reread.Status, reread.EventSeq, got.Session, got.Status, got.EventSeq)
			}
		}
	})
}

func writeFuzzFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func checkLoaded(t *testing.T, what string, st State, err error) {
	t.Helper()
	if err != nil {
		if err.Error() == "" {
			t.Errorf("%s: empty error", what)
		}
		return
	}
	if st.Session == "" || st.Status == "" {
		t.Errorf("%s: state with session %q status %q and no error", what, st.Session, st.Status)
	}
	if len(st.History) > HistoryLimit && what != "Load" {
		t.Errorf("%s: %d history entries", what, len(st.History))
	}
}

// dirSnapshot maps each file of dir to its content.
func dirSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(data)
	}
	return m
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// FuzzDecodeEvents feeds arbitrary bytes to the events.jsonl reader and
// replays what it decodes: every non-blank line is either an event or
// counted as skipped; replaying never panics and, when it succeeds, gives
// a state with a session, a status, a bounded history and the sequence
// number of the last event it applied.
func FuzzDecodeEvents(f *testing.F) {
	_, ev := seedRun(f)
	f.Add(ev)
	f.Add(ev[:len(ev)-5])
	f.Add(bytes.ReplaceAll(ev, []byte("\n"), []byte("\r\n")))
	f.Add([]byte("\n\n  \n"))
	f.Add([]byte(`{"type":""}` + "\n" + `{"type":"x"}`))
	f.Add([]byte(`{"seq":1,"type":"session_start","session":"s","data":{}}` + "\n" + `{"seq":2,"type":"session_resume","stage_index":-1,"data":"x"}`))
	f.Add([]byte(`{"seq":1,"type":"session_start","session":"s","data":{"stages":[{"name":"a","parallel":true}]}}` + "\n" +
		`{"seq":2,"type":"iteration_complete","stage_index":0,"iteration":-3,"data":{"exit_code":2}}` + "\n" +
		`{"seq":-5,"type":"session_complete","data":null}`))
	f.Add([]byte(`{"seq":9,"type":"stage_start","stage_index":0}`))
	f.Add([]byte("\xff\xfe{\x00}\n{\"type\":\"session_start\",\"data\":[]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		events, skipped, err := DecodeEvents(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("DecodeEvents on an in-memory reader: %v", err)
		}
		nonBlank := 0
		for _, line := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(line)) > 0 {
				nonBlank++
			}
		}
		if len(events)+skipped != nonBlank || skipped < 0 {
			t.Errorf("%d events + %d skipped, want %d non-blank lines", len(events), skipped, nonBlank)
		}
		for i, ev := range events {
			if ev.Type == "" {
				t.Errorf("event %d has no type", i)
			}
		}
		// Every decoded event survives a write and a second read.
		var again bytes.Buffer
		for _, ev := range events {
			line, err := json.Marshal(ev)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", ev, err)
			}
			again.Write(line)
			again.WriteByte('\n')
		}
		reread, skipped2, _ := DecodeEvents(&again)
		if len(reread) != len(events) || skipped2 != 0 {
			t.Errorf("re-encoded %d events read back as %d (+%d skipped)", len(events), len(reread), skipped2)
		}

		st, err := Rebuild(events)
		if err != nil {
			if err.Error() == "" {
				t.Error("Rebuild: empty error")
			}
		} else {
			if st.Session == "" || st.Status == "" {
				t.Errorf("Rebuild: session %q status %q", st.Session, st.Status)
			}
			if len(st.History) > HistoryLimit {
				t.Errorf("Rebuild: %d history entries, limit %d", len(st.History), HistoryLimit)
			}
			// EventSeq is the highest seq applied since the last session_start.
			var want int64
			for _, ev := range events {
				if ev.Type == EventSessionStart {
					want = 0
				}
				want = max(want, ev.Seq)
			}
			if st.EventSeq != want {
				t.Errorf("Rebuild: event_seq %d, want %d", st.EventSeq, want)
			}
			if _, err := json.Marshal(st); err != nil {
				t.Errorf("a rebuilt state cannot be written: %v", err)
			}
		}
		// Apply alone, on any state, in any order, never panics.
		var loose State
		for _, ev := range events {
			if err := Apply(&loose, ev); err != nil && err.Error() == "" {
				t.Error("Apply: empty error")
			}
		}
	})
}
