package state

import (
	"strings"
	"time"
)

// Status is a session's liveness status (SPEC §9): what the classifier
// names it. The first four mirror state.json's own status (State.Status,
// the Status* strings); the others are only ever derived. In JSON it is the
// plain string.
type Status string

// Liveness statuses.
const (
	LiveRunning  Status = "running"
	LiveComplete Status = "complete"
	LiveFailed   Status = "failed"
	LiveKilled   Status = "killed"
	LiveCrashed  Status = "crashed"  // state says running, no live lock, no tmux session
	LiveOrphan   Status = "orphan"   // a loop-*/pipeline-* tmux session with no run dir behind it
	LiveZombie   Status = "zombie"   // tmux session alive, engine gone
	LiveStarting Status = "starting" // tmux session younger than StartGrace, engine not locked yet
	LiveWaiting  Status = "waiting"  // an engine holds the lock and waits for an answer (SPEC §15)
	LiveParked   Status = "parked"   // an engine holds the lock and waits out a usage or rate limit
	// LiveStaleLock is list's status for a lock file no process holds, with
	// no run directory or tmux session behind it: the classifier has nothing
	// to name (it says ""), and an empty status told the reader nothing.
	LiveStaleLock Status = "stale_lock"
)

// Alive reports whether an engine holds (or is about to hold) the session:
// it may be stopped, never resumed.
func (s Status) Alive() bool {
	switch s {
	case LiveRunning, LiveStarting, LiveWaiting, LiveParked:
		return true
	}
	return false
}

// Active reports whether something of the session still runs that kill
// stops: a live engine, or a tmux session without one (zombie, orphan). It
// is what the orphan reminder lists.
func (s Status) Active() bool {
	return s.Alive() || s == LiveZombie || s == LiveOrphan
}

// Finished reports whether the session ended and recorded how: complete,
// failed or killed (list's include_finished).
func (s Status) Finished() bool {
	return s == LiveComplete || s == LiveFailed || s == LiveKilled
}

// rankOrder is the order of sessions found together: those with an engine
// first, then what was left behind, then what ended.
var rankOrder = []Status{LiveWaiting, LiveParked, LiveRunning, LiveStarting, LiveZombie, LiveOrphan, LiveCrashed,
	LiveFailed, LiveKilled, LiveComplete}

// Rank orders statuses for a listing of sessions (lower first); an unknown
// status comes last.
func (s Status) Rank() int {
	for i, o := range rankOrder {
		if o == s {
			return i
		}
	}
	return len(rankOrder)
}

// attentionOrder is what needs a person, most urgent first (after a
// waiting session, whose agent waits for the user).
var attentionOrder = []Status{LiveCrashed, LiveZombie, LiveOrphan, LiveFailed, LiveStaleLock}

// Attention orders sessions by what needs a person first (lower first): a
// waiting session, then what was left broken, then a stale one (running for
// over StaleAfter), parked, running, killed, and the rest.
func (s Status) Attention(stale bool) int {
	if s == LiveWaiting {
		return -1 // its agent waits for the user: first of all
	}
	for i, o := range attentionOrder {
		if s == o {
			return i
		}
	}
	n := len(attentionOrder)
	switch {
	case stale:
		return n
	case s == LiveParked:
		return n + 1
	case s == LiveRunning || s == LiveStarting:
		return n + 2
	case s == LiveKilled:
		return n + 3
	}
	return n + 4
}

// StaleAfter is how long a session may run before it is flagged stale.
const StaleAfter = 2 * time.Hour

// StartGrace is how long a fresh tmux session may go without a live lock
// before it is judged a zombie or orphan: the engine inside needs a moment
// to start and take its lock, and cleanup must never kill a starting session.
const StartGrace = 15 * time.Second

// TmuxFacts is what tmux says about a session's tmux session.
type TmuxFacts struct {
	Name     string
	Created  time.Time
	PaneDead bool
}

// Facts are everything the classifier looks at. Gathering them is the
// caller's business (one list-sessions call, one lock probe, one state
// read); Classify itself does no I/O.
type Facts struct {
	// HasRunDir: .claude/pipeline-runs/<session> exists.
	HasRunDir bool
	// State is the session's state, nil when there is none readable.
	State *State
	// Lock is the probe of the session's lock file.
	Lock LockStatus
	// Tmux is the session's tmux session, nil when there is none.
	Tmux *TmuxFacts
	// Now is the time of the judgement.
	Now time.Time
}

// Liveness is the classifier's verdict.
type Liveness struct {
	Status    Status        `json:"status"`
	Stale     bool          `json:"stale"`
	StaleLock bool          `json:"stale_lock"`
	Age       time.Duration `json:"-"`
	// Why explains the verdict in a sentence.
	Why string `json:"why"`
}

// Classify names a session from its facts. It is a pure function so every
// tool (list, monitor, kill, cleanup, start) judges sessions the same way.
func Classify(f Facts) Liveness {
	// A dead pane (kept by a user's remain-on-exit) runs nothing: a session
	// with files behind it is judged as if its tmux session were gone, so it
	// is never "running" or a zombie for ever. Without files it stays an
	// orphan, which cleanup closes.
	deadPane := f.Tmux != nil && f.Tmux.PaneDead && (f.State != nil || f.HasRunDir)
	if deadPane {
		f.Tmux = nil
	}
	lv := classify(f)
	if deadPane {
		lv.Why += "; its tmux session remains with a dead pane (remain-on-exit is on): cleanup with kill_orphans closes it"
	}
	return lv
}

func classify(f Facts) Liveness {
	var lv Liveness
	lv.StaleLock = f.Lock.Exists && !f.Lock.Held
	young := f.Tmux != nil && !f.Tmux.Created.IsZero() && f.Now.Sub(f.Tmux.Created) < StartGrace
	if f.State != nil {
		// A running session's age counts from its last (re)start: the
		// hours it lay dead before a resume are not time spent running,
		// and must not make it look stale (and get it killed).
		lv.Age = f.Now.Sub(LastStart(f.State))
		if f.State.CompletedAt != nil && Terminal(f.State.Status) {
			lv.Age = f.State.CompletedAt.Sub(f.State.StartedAt)
		}
	} else if f.Tmux != nil && !f.Tmux.Created.IsZero() {
		lv.Age = f.Now.Sub(f.Tmux.Created)
	}
	switch {
	case f.Lock.Held && f.State != nil && f.State.Status == StatusWaiting:
		lv.Status = LiveWaiting
		lv.Why = "waiting for an answer: " + firstLine(questionText(f.State))
	case f.Lock.Held && f.State != nil && f.State.Status == StatusParked:
		lv.Status = LiveParked
		lv.Why = "parked (" + f.State.ParkedReason + ")" + untilText(f.State.ParkedUntil)
	case f.Lock.Held:
		lv.Status = LiveRunning
		lv.Why = "the engine holds the session lock"
	case f.State == nil && !f.HasRunDir && f.Tmux == nil:
		lv.Status = ""
		lv.Why = "no such session"
	case f.State == nil && young:
		lv.Status = LiveStarting
		lv.Why = "tmux session just created; the engine is starting"
	case f.State == nil && !f.HasRunDir:
		lv.Status = LiveOrphan
		lv.Why = "tmux session with no run directory behind it"
	case f.State == nil && f.Tmux != nil:
		lv.Status = LiveZombie
		lv.Why = "tmux session alive but no engine and no readable state"
	case f.State == nil:
		lv.Status = LiveCrashed
		lv.Why = "run directory without a readable state and no engine"
	case Active(f.State.Status) && young:
		lv.Status = LiveStarting
		lv.Why = "tmux session just created; the engine is starting"
	case Active(f.State.Status) && f.Tmux != nil:
		lv.Status = LiveZombie
		lv.Why = "tmux session alive but the engine is gone (its lock is free)"
	case Active(f.State.Status):
		lv.Status = LiveCrashed
		lv.Why = "state says " + f.State.Status + " but no engine holds the lock; resumable"
	case f.Tmux != nil && !young:
		lv.Status = LiveZombie
		lv.Why = "session ended (" + f.State.Status + ") but its tmux session is still open"
	default:
		lv.Status = Status(f.State.Status)
		switch f.State.Status {
		case StatusComplete:
			lv.Why = "completed: " + f.State.CompletionReason
		case StatusFailed:
			lv.Why = "failed: " + firstLine(f.State.Error)
		case StatusKilled:
			lv.Why = "killed"
		}
	}
	if lv.Status.Alive() && lv.Status != LiveStarting && f.State != nil && f.Now.Sub(LastStart(f.State)) > StaleAfter {
		lv.Stale = true
	}
	return lv
}

// LastStart is when the session's engine last started: resumed_at when it
// was resumed, else started_at.
func LastStart(st *State) time.Time {
	if st.ResumedAt != nil && st.ResumedAt.After(st.StartedAt) {
		return *st.ResumedAt
	}
	return st.StartedAt
}

// TmuxName is the tmux session name of a session: loop-<session> for a
// single-stage session, pipeline-<session> for a multi-stage one.
func TmuxName(session string, multiStage bool) string {
	if multiStage {
		return "pipeline-" + session
	}
	return "loop-" + session
}

// SessionFromTmux returns the session a tmux session name belongs to, and
// whether it is one of ours at all.
func SessionFromTmux(name string) (string, bool) {
	for _, p := range []string{"loop-", "pipeline-"} {
		if s, ok := strings.CutPrefix(name, p); ok && ValidateSession(s) == nil {
			return s, true
		}
	}
	return "", false
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func questionText(st *State) string {
	if st.Question == nil {
		return "(no question recorded)"
	}
	return st.Question.Question
}

func untilText(t *time.Time) string {
	if t == nil {
		return ""
	}
	return " until " + t.Local().Format("2006-01-02 15:04:05")
}
