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
	"syscall"
	"time"
)

// ErrRunDirRemoved is returned by Record (and CheckRunDir) once the
// session's run directory was removed or replaced under the engine: the
// engine then stops rather than write into a directory someone took away
// (see Rehome).
var ErrRunDirRemoved = errors.New("the run directory was removed")

// ErrDiskFull is returned by Record when the disk is full. When the event
// could still be recorded with the space kept in reserve, Record returns it
// all the same: the session must stop, and the reserve is what lets the
// engine record why.
var ErrDiskFull = errors.New("the disk is full")

// ErrReserveUsed accompanies ErrDiskFull when Record did record the event,
// with the space kept in reserve.
var ErrReserveUsed = errors.New("recorded with the space kept in reserve")

// reserveBase is the reserve's size beyond twice the state.json it guards:
// enough for the last events and the session log's last lines.
const reserveBase = 32 << 10

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
	dir os.FileInfo // the run directory the store writes into
	// wrote: state.json has been written (or read) in that directory, so
	// it must be there; a directory removed and made again can get the
	// same inode number, but not our state.json back.
	wrote bool
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
		return nil, fmt.Errorf("create run dir: %w", diskFull(err, l.ProjectDir, thenStart))
	}
	// The run dir's name is durable before its first event is.
	if err := syncDir(RunsDir(l.ProjectDir)); err != nil {
		return nil, err
	}
	s := &Store{layout: l, now: now}
	if err := s.pinRunDir(); err != nil {
		return nil, err
	}
	// The state will be about the size of the spec (the plan, prompts
	// included) plus its history.
	if err := s.keepReserve(int64(len(start.Spec)+16<<10), thenStart); err != nil {
		os.Remove(l.RunDir()) // only if empty: it was just made
		return nil, err
	}
	if err := s.Record(Event{Type: EventSessionStart, Data: MustData(start)}); err != nil {
		s.ReleaseReserve()
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
			// state.json's problem is said, not wrapped: the rebuild's
			// error is the one to test (see rebuildFromEvents).
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
	s := &Store{layout: l, now: now, st: st, wrote: serr == nil}
	if err := s.pinRunDir(); err != nil {
		return nil, rec, err
	}
	var size int64 = 16 << 10
	if info, err := os.Stat(l.StateFile()); err == nil {
		size = info.Size()
	}
	if err := s.keepReserve(size, thenResume); err != nil {
		return nil, rec, err
	}
	if rec.Rebuilt || rec.Replayed > 0 {
		if err := s.writeSnapshot(); err != nil {
			s.ReleaseReserve()
			return nil, rec, DiskFull(err, l.ProjectDir)
		}
	}
	return s, rec, nil
}

// pinRunDir remembers which directory the run directory is, so that its
// removal (or replacement) under a live engine is noticed.
func (s *Store) pinRunDir() error {
	info, err := os.Stat(s.layout.RunDir())
	if err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	s.dir = info
	return nil
}

// CheckRunDir reports ErrRunDirRemoved when the run directory the store
// writes into is gone or is no longer the same directory (moved away,
// removed and made again by someone else, even with the same inode
// number). It costs two stats.
func (s *Store) CheckRunDir() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkRunDir()
}

func (s *Store) checkRunDir() error {
	info, err := os.Stat(s.layout.RunDir())
	if err == nil && os.SameFile(info, s.dir) {
		if !s.wrote {
			return nil
		}
		if _, err := os.Lstat(s.layout.StateFile()); err == nil {
			return nil
		}
	}
	return runDirRemoved(s.layout.RunDir())
}

// runDirRemoved is ErrRunDirRemoved naming the directory.
type runDirRemoved string

func (d runDirRemoved) Error() string {
	return "the run directory " + string(d) + " was removed or replaced while the session ran (by a person, a script, or an agent cleaning the project)"
}

func (d runDirRemoved) Is(target error) bool { return target == ErrRunDirRemoved }

// Rehome makes the run directory again after it was removed and writes the
// state the engine holds into it, so the session's end can be recorded and
// it can be resumed. What was in the removed directory (iteration files,
// progress notes, earlier events) is not brought back.
func (s *Store) Rehome() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.layout.RunDir(), 0o755); err != nil {
		return fmt.Errorf("recreate run dir: %w", DiskFull(err, s.layout.ProjectDir))
	}
	if err := s.pinRunDir(); err != nil {
		return err
	}
	return DiskFull(s.writeSnapshot(), s.layout.ProjectDir)
}

// keepReserve sets aside disk space for the session's last words: twice
// stateSize (a replace writes a whole new copy before the old one goes)
// plus reserveBase. The bytes are written, not a sparse file, so the space
// really is taken. A disk without that much room is full: the session
// does not start (ErrDiskFull). Other failures (a filesystem that refuses
// the file) leave the session without a reserve.
func (s *Store) keepReserve(stateSize int64, then string) error {
	path := s.layout.ReserveFile()
	size := reserveBase + 2*stateSize
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err == nil {
		_, err = f.Write(make([]byte, size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
		}
	}
	if err != nil && isNoSpace(err) {
		return diskFull(fmt.Errorf("keep %d KiB in reserve for the session's last records: %w", size>>10, err), s.layout.ProjectDir, then)
	}
	return nil
}

// ReleaseReserve gives the reserved space back; the engine calls it when
// the session ends. It reports whether there was a reserve.
func (s *Store) ReleaseReserve() bool {
	return os.Remove(s.layout.ReserveFile()) == nil
}

// What to do once there is room again: a running session resumes, one
// that could not start is started again.
const (
	thenResume = "resume the session"
	thenStart  = "start the session again"
)

// DiskFull turns an out-of-space error (ENOSPC, EDQUOT) into ErrDiskFull
// saying what to do; other errors are returned as they are.
func DiskFull(err error, projectDir string) error { return diskFull(err, projectDir, thenResume) }

func diskFull(err error, projectDir, then string) error {
	if err == nil || !isNoSpace(err) || errors.Is(err, ErrDiskFull) {
		return err
	}
	return fmt.Errorf("%w (%w): free space on the disk holding %s, then %s", ErrDiskFull, err, projectDir, then)
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
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
//
// Nothing is written once the run directory was removed
// (ErrRunDirRemoved). On a full disk the reserve (keepReserve) is given up
// and the write tried once more; Record then returns ErrDiskFull even when
// that succeeded, so the caller stops the session while it still can
// record why.
func (s *Store) Record(ev Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkRunDir(); err != nil {
		return err
	}
	usedReserve := false
	retry := func(err error, again func() error) error {
		if err != nil && isNoSpace(err) && s.ReleaseReserve() {
			usedReserve = true
			err = again()
		}
		return DiskFull(err, s.layout.ProjectDir)
	}
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
	// The event is durable before state.json moves past it (SPEC §14).
	appendEvent := func() error { return appendFile(s.layout.EventsFile(), line, false, true) }
	if err := retry(appendEvent(), appendEvent); err != nil {
		return err
	}
	if err := Apply(&s.st, ev); err != nil {
		return err
	}
	if err := retry(s.writeSnapshot(), s.writeSnapshot); err != nil {
		return err
	}
	if usedReserve {
		return fmt.Errorf("%w: %s %w; free space on the disk holding %s, then resume the session", ErrDiskFull, ev.Type, ErrReserveUsed, s.layout.ProjectDir)
	}
	return nil
}

// writeSnapshot replaces state.json with the current state: temp file,
// rename. It is not fsynced: every event it folds in is already durable
// in events.jsonl, from which Open rebuilds (or replays onto) a state.json
// a crash left behind or empty — so the engine's iteration costs two
// fsyncs, the log's. The engine does this twice per iteration, so the
// encoding is kept cheap (see snapshotEncoder).
func (s *Store) writeSnapshot() error {
	data, err := s.encodeSnapshot()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.layout.StateFile(), data, 0o644, false, false); err != nil {
		return err
	}
	s.wrote = true
	return nil
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
