package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"
)

// Store is the single writer of one session's state.json and events.jsonl.
// Every change is an Event: it is appended to events.jsonl first (the commit
// point), folded into the in-memory state with Apply, and the snapshot is
// then replaced atomically. A crash between the two writes leaves
// events.jsonl ahead of state.json, which Open reconciles; nothing is ever
// counted twice. Store is safe for concurrent use.
type Store struct {
	layout Layout
	now    func() time.Time

	mu sync.Mutex
	st State
}

// Recovery describes what Open had to repair.
type Recovery struct {
	// Rebuilt: state.json was missing or corrupt and was rebuilt from events.
	Rebuilt bool
	// CorruptMovedTo is where an unreadable state.json was moved aside.
	CorruptMovedTo string
	// Replayed counts events newer than state.json that were applied.
	Replayed int
	// SkippedLines counts unreadable lines of events.jsonl.
	SkippedLines int
}

// Create starts a new session's files: the session_start event and the
// first state.json. The run directory must not hold a state already.
func Create(l Layout, now func() time.Time, start SessionStartData) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(l.RunDir(), 0o755); err != nil {
		return nil, fmt.Errorf("create run dir: %w", err)
	}
	s := &Store{layout: l, now: now}
	if err := s.Record(Event{Type: EventSessionStart, Data: MustData(start)}); err != nil {
		return nil, err
	}
	return s, nil
}

// Open loads an existing session for resuming: state.json, reconciled with
// any newer events. A corrupt state.json is moved aside and rebuilt.
func Open(l Layout, now func() time.Time) (*Store, Recovery, error) {
	if now == nil {
		now = time.Now
	}
	var rec Recovery
	events, skipped, eerr := ReadEvents(l.EventsFile())
	if eerr != nil && !errors.Is(eerr, fs.ErrNotExist) {
		return nil, rec, fmt.Errorf("read %s: %w", l.EventsFile(), eerr)
	}
	rec.SkippedLines = skipped
	st, serr := readStateFile(l.StateFile())
	switch {
	case serr == nil:
		for _, ev := range events {
			if ev.Seq > st.EventSeq {
				if err := Apply(&st, ev); err != nil {
					return nil, rec, err
				}
				rec.Replayed++
			}
		}
	case len(events) == 0:
		if errors.Is(serr, fs.ErrNotExist) {
			return nil, rec, fmt.Errorf("session %s: %w", l.Session, ErrNoState)
		}
		return nil, rec, fmt.Errorf("%w; events.jsonl has nothing to rebuild it from: move %s aside and start the session again", serr, l.StateFile())
	default:
		rebuilt, err := Rebuild(events)
		if err != nil {
			return nil, rec, fmt.Errorf("state.json unusable (%v); rebuild from events failed: %w", serr, err)
		}
		st = rebuilt
		rec.Rebuilt = true
		if !errors.Is(serr, fs.ErrNotExist) {
			moved, err := MoveAside(l.StateFile(), "corrupt-"+now().UTC().Format("20060102T150405"))
			if err != nil {
				return nil, rec, err
			}
			rec.CorruptMovedTo = moved
		}
	}
	if err := terminateTornLine(l.EventsFile()); err != nil {
		return nil, rec, err
	}
	s := &Store{layout: l, now: now, st: st}
	if rec.Rebuilt || rec.Replayed > 0 {
		if err := s.writeSnapshot(); err != nil {
			return nil, rec, err
		}
	}
	return s, rec, nil
}

// terminateTornLine makes sure events.jsonl ends with a newline, so a line
// torn by a crash is not glued to the next event.
func terminateTornLine(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || info.Size() == 0 {
		return err
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, info.Size()-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	return AppendFile(path, []byte("\n"))
}

// Layout returns the store's layout.
func (s *Store) Layout() Layout { return s.layout }

// State returns a deep copy of the current state.
func (s *Store) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Clone()
}

// Record commits one event: append to events.jsonl, apply, replace
// state.json. Session, sequence number and timestamp are filled in. When the
// append fails nothing changes; when the snapshot write fails the event is
// already durable and Open will replay it.
func (s *Store) Record(ev Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev.Seq = s.st.EventSeq + 1
	if ev.TS.IsZero() {
		ev.TS = s.now().UTC()
	}
	ev.Session = s.layout.Session
	line, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", ev.Type, err)
	}
	line = append(line, '\n')
	if err := AppendFile(s.layout.EventsFile(), line); err != nil {
		return err
	}
	if err := Apply(&s.st, ev); err != nil {
		return err
	}
	return s.writeSnapshot()
}

func (s *Store) writeSnapshot() error {
	data, err := json.MarshalIndent(&s.st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return WriteFileAtomic(s.layout.StateFile(), append(data, '\n'), 0o644)
}
