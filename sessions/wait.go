package sessions

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// Wait kinds.
const (
	WaitNone      = "none"
	WaitIteration = "iteration"
	WaitComplete  = "complete"
)

// Waited says how a wait ended.
type Waited struct {
	Kind     string
	Met      bool    // what was waited for happened
	TimedOut bool    // the timeout passed first
	Seconds  float64 // how long it waited
	// Paused: the wait returned because the session stopped running
	// agents meanwhile, for a question or a limit (SPEC §15).
	Paused state.Status
	// EngineDied: the engine stopped without recording an end (crashed, or
	// its tmux session left as a zombie); a complete-wait is not met.
	EngineDied bool
}

// Progress receives a wait's progress: iterations done of the limit, and
// a line saying where the session is.
type Progress func(done, total float64, msg string)

// Wait polls a session until the wait (WaitIteration or WaitComplete) is
// met, the session ends or pauses, the timeout passes or ctx ends; it
// returns the session as it is then, inspected afresh with its tmux
// session. progress may be nil.
func (l *Local) Wait(ctx context.Context, info Info, kind string, timeout time.Duration, progress Progress) (Info, Waited, error) {
	info, out, err := l.wait(ctx, info, kind, timeout, progress)
	if err != nil {
		return info, out, err
	}
	tmuxList, _ := l.ListTmux(ctx)
	return l.Inspect(info.ProjectDir, info.Name, tmuxList, Full), out, nil
}

func (l *Local) wait(ctx context.Context, info Info, kind string, limit time.Duration, progress Progress) (Info, Waited, error) {
	start := time.Now()
	out := Waited{Kind: kind}
	stage0, done0 := position(info)
	status0 := info.Live.Status
	lastKey := fmt.Sprint(stage0, done0)
	timeout := time.NewTimer(limit)
	defer timeout.Stop()
	tick := time.NewTicker(l.poll())
	defer tick.Stop()
	heartbeat := time.Now()
	var last waitMark
	read := time.Now()
	for {
		alive := info.Live.Status.Alive()
		stage, done := position(info)
		switch {
		case !alive:
			// A session only completes when its engine records the end; an
			// engine that died mid-run left it unfinished.
			out.EngineDied = !info.Live.Status.Finished()
			out.Met = (kind == WaitComplete && !out.EngineDied) || (stage != stage0 || done != done0)
		case kind == WaitIteration && (stage != stage0 || done > done0):
			out.Met = true
		case info.Live.Status == state.LiveWaiting || (info.Live.Status == state.LiveParked && status0 != state.LiveParked):
			// Nothing moves until the user answers; a park that began
			// during the wait is news (one that was known goes on by
			// itself, so the wait goes on with it).
			out.Paused = info.Live.Status
		}
		if out.Met || !alive || out.Paused != "" {
			out.Seconds = time.Since(start).Seconds()
			return info, out, nil
		}
		if progress != nil {
			if k := fmt.Sprint(stage, done); k != lastKey || time.Since(heartbeat) > 5*time.Second {
				lastKey, heartbeat = k, time.Now()
				progress(float64(done), float64(maxOf(info)), progressMessage(info))
			}
		}
		select {
		case <-ctx.Done():
			return info, Waited{}, fmt.Errorf("monitor wait cancelled: %w", ctx.Err())
		case <-timeout.C:
			out.TimedOut = true
			out.Seconds = time.Since(start).Seconds()
			return info, out, nil
		case <-tick.C:
			if m := markOf(info.Layout); !m.same(last) || time.Since(read) >= 8*l.poll() {
				info, last, read = l.refresh(ctx, info, m.held), m, time.Now()
			}
		}
	}
}

// waitMark is what a wait looks at before it reads a session again: who
// holds its lock and which state.json is in place. While the same engine
// holds the lock and the file has not been replaced, nothing a wait
// decides on (the session's status and position) can have moved — the
// engine replaces state.json at every event — so the tick reads nothing
// more. A full read was two lock probes, a stat and the whole state.json
// (up to ~50 KB of JSON) at every tick of a wait that can last minutes.
// The session is still read in full every 8 ticks (a file system with
// coarse times could reuse an inode for a replacement of the same size
// within one tick), and Wait's answer is read afresh at its end.
type waitMark struct {
	held bool
	pid  int
	file os.FileInfo // nil: no state.json
}

func markOf(l state.Layout) waitMark {
	var m waitMark
	ls, _ := state.ProbeLock(l.LockFile())
	m.held = ls.Held
	if ls.Info != nil {
		m.pid = ls.Info.PID
	}
	if fi, err := os.Stat(l.StateFile()); err == nil {
		m.file = fi
	}
	return m
}

// same reports whether nothing can have changed between two marks: an
// engine held the lock at both (the same one), and the same state.json
// was in place. A lock nobody holds is never the same: the session is
// then judged with its tmux session, which a mark does not look at.
func (m waitMark) same(o waitMark) bool {
	if !m.held || !o.held || m.pid != o.pid || (m.file == nil) != (o.file == nil) {
		return false
	}
	return m.file == nil || os.SameFile(m.file, o.file) && m.file.Size() == o.file.Size() && m.file.ModTime().Equal(o.file.ModTime())
}

// position is where a session is: its stage and the iterations of it done.
func position(i Info) (int, int) {
	if i.State == nil {
		return -1, -1
	}
	return i.State.CurrentStage, i.State.IterationCompleted
}

func maxOf(info Info) int {
	if info.State == nil {
		return 0
	}
	return info.State.MaxIterations
}

func progressMessage(info Info) string {
	st := info.State
	if st == nil {
		return "starting"
	}
	return fmt.Sprintf("stage %d/%d %s: %d of %d iterations done", st.CurrentStage+1, len(st.Stages), stageName(*st), st.IterationCompleted, st.MaxIterations)
}

// answerTakeWait bounds how long Answer waits for the engine to take the
// answer (it polls answer.json twice a second).
const answerTakeWait = 3 * time.Second

// Answer hands the user's answer to a session waiting for one: the engine
// takes it from the run directory (a session whose engine is gone finds it
// on resume). It returns the session's status after a brief wait for a
// live engine to take it: running once it has, else as it was.
func (l *Local) Answer(ctx context.Context, info Info, answer string) (state.Status, error) {
	if info.State == nil || info.State.Question == nil {
		return info.Live.Status, fmt.Errorf("session %s: %w", info.Name, ErrNotWaiting)
	}
	q := info.State.Question
	err := state.WriteAnswer(info.Layout, state.AnswerFile{StageIndex: q.StageIndex, Iteration: q.Iteration, Answer: answer, AnsweredAt: time.Now().UTC()})
	if err != nil {
		return info.Live.Status, fmt.Errorf("hand the answer to session %s: %w", info.Name, err)
	}
	if !info.Live.Status.Alive() {
		return info.Live.Status, nil
	}
	return l.awaitAnswerTaken(ctx, info), nil
}

// awaitAnswerTaken waits (briefly) until the engine has recorded the
// answer, so the status returned — and what a look says next — is the
// session going on, not still waiting. It returns the status it saw last.
func (l *Local) awaitAnswerTaken(ctx context.Context, info Info) state.Status {
	deadline := time.Now().Add(answerTakeWait)
	status := info.Live.Status
	for time.Now().Before(deadline) {
		if st, _, err := state.LoadSummary(info.Layout); err == nil && st.Question == nil {
			return state.LiveRunning
		}
		select {
		case <-ctx.Done():
			return status
		case <-time.After(min(l.poll(), 100*time.Millisecond)):
		}
	}
	return status
}
