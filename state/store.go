package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
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

	mu  sync.Mutex
	st  State
	enc snapshotEncoder
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

// writeSnapshot replaces state.json with the current state: temp file,
// fsync, rename (WriteFileAtomic). The engine does this twice per
// iteration, so the encoding is kept cheap (see snapshotEncoder); the
// durability is not traded for it.
func (s *Store) writeSnapshot() error {
	data, err := s.encodeSnapshot()
	if err != nil {
		return err
	}
	return WriteFileAtomic(s.layout.StateFile(), data, 0o644)
}

func (s *Store) encodeSnapshot() ([]byte, error) {
	data, err := s.enc.encode(&s.st)
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return data, nil
}

// snapshotEncoder encodes state.json: compact JSON (a third of the bytes
// and of the time of indented JSON; `jq . state.json` pretty-prints it),
// byte for byte what json.Marshal(state) gives, plus a newline.
//
// Between two writes almost nothing changes: the spec (the whole plan,
// prompts included) is fixed at session start, and a history entry never
// changes once recorded. Re-encoding them was most of the cost of a write,
// so their encodings are kept and reused: the spec's while it is the same
// bytes, each entry's while that exact entry (compared by value) is still
// in the history. Only the small head of the state is encoded anew, into a
// buffer reused from write to write (the Store's lock serialises them and
// WriteFileAtomic is done with the bytes when it returns).
type snapshotEncoder struct {
	specSrc json.RawMessage // the spec that spec encodes
	spec    []byte
	entries []encodedEntry // the history of the last write, encoded
	buf     []byte
}

type encodedEntry struct {
	h   HistoryEntry
	enc []byte
}

// headTail is how json.Marshal ends a State whose History and Spec are nil:
// they are its last two fields.
const headTail = `"history":null,"spec":null}`

func (e *snapshotEncoder) encode(st *State) ([]byte, error) {
	head := *st
	head.History, head.Spec = nil, nil
	headJSON, err := json.Marshal(&head)
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(headJSON, []byte(headTail)) {
		// Not reachable while History and Spec are the last fields; stay
		// correct should that ever change.
		data, err := json.Marshal(st)
		return append(data, '\n'), err
	}
	if !bytes.Equal(e.specSrc, st.Spec) || e.spec == nil {
		// json.Marshal of a RawMessage validates and compacts it, exactly
		// as it would inside the state.
		spec, err := json.Marshal(st.Spec)
		if err != nil {
			return nil, err
		}
		e.specSrc, e.spec = bytes.Clone(st.Spec), spec
	}
	entries, err := e.encodeHistory(st.History)
	if err != nil {
		return nil, err
	}
	size := len(headJSON) + len(e.spec) + 32
	for _, x := range entries {
		size += len(x.enc) + 1
	}
	data := slices.Grow(e.buf[:0], size)
	data = append(data, headJSON[:len(headJSON)-len(headTail)]...)
	data = append(data, `"history":`...)
	if st.History == nil {
		data = append(data, "null"...)
	} else {
		data = append(data, '[')
		for i, x := range entries {
			if i > 0 {
				data = append(data, ',')
			}
			data = append(data, x.enc...)
		}
		data = append(data, ']')
	}
	data = append(data, `,"spec":`...)
	data = append(data, e.spec...)
	data = append(data, '}', '\n')
	e.entries, e.buf = entries, data
	return data, nil
}

// encodeHistory encodes the entries of history, reusing the encodings of
// the last write. The history only ever loses entries at the front and
// gains them at the back, so the old entries are found in order.
func (e *snapshotEncoder) encodeHistory(history []HistoryEntry) ([]encodedEntry, error) {
	out := make([]encodedEntry, len(history))
	k := 0
	if len(history) > 0 {
		for k < len(e.entries) && e.entries[k].h != history[0] {
			k++
		}
	}
	for i, h := range history {
		if k < len(e.entries) && e.entries[k].h == h {
			out[i] = e.entries[k]
			k++
			continue
		}
		enc, err := json.Marshal(h)
		if err != nil {
			return nil, err
		}
		out[i] = encodedEntry{h: h, enc: enc}
	}
	return out, nil
}
