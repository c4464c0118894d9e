package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
)

// Limits of what Look reads. A look is read whole by Claude, so by default
// it is a glance; a caller who asks for lines gets exactly those lines.
const (
	defaultLines       = 15
	defaultOutputLimit = 1100
	recentOutputLimit  = 32 << 10
)

// View is a look at a session's files and processes, beside its Info.
type View struct {
	// RecentOutput is the last lines of output, from OutputSource: pane
	// (the live tmux screen) or session.log (the transcript).
	RecentOutput string
	OutputSource string
	// ProgressTail is the last 30 lines of the current progress file.
	ProgressTail string
	// LastOutput is the last 40 lines of the last iteration's output.md.
	LastOutput string
	// LastChanges is the last iteration's change record from its
	// result.json (with its commit list), when it has one.
	LastChanges *state.Changes
	// Containment is what the engine recorded of how it contains its
	// agents (nil: nothing recorded).
	Containment *engine.Scope
	// AgentsLeft counts a crashed session's agent processes still running.
	AgentsLeft int
	// Beads are the ready beads left for a beads-empty stage; BeadsErr is
	// why they could not be counted.
	Beads    *int
	BeadsErr error
}

// Look reads what a look at a session shows besides its state: recent
// output (lines 0: the default glance), the progress file's and the last
// output's ends, the last change record, containment, leftovers, beads.
func (l *Local) Look(ctx context.Context, info Info, lines int) View {
	var v View
	v.RecentOutput, v.OutputSource = l.recentOutput(ctx, info, lines)
	if sc, ok := engine.ReadContainment(info.Layout); ok {
		v.Containment = &sc
	}
	if info.Live.Status == state.LiveCrashed {
		v.AgentsLeft = l.AgentsLeft(info)
	}
	st := info.State
	if st == nil {
		return v
	}
	if n := len(st.History); n > 0 {
		h := st.History[n-1]
		files := info.Layout.Iteration(h.StageIndex, h.Stage, h.Iteration)
		v.LastOutput, _ = tailFile(files.Output, 40, 64<<10)
		if c, ok := resultChanges(files.Result); ok {
			v.LastChanges = &c
		}
	}
	v.ProgressTail, _ = tailFile(info.Layout.ProgressOf(st), 30, 64<<10)
	if plan, err := engine.PlanFromSpec(st.Spec); err == nil && st.CurrentStage < len(plan.Stages) &&
		plan.Stages[st.CurrentStage].Completion == engine.CompletionBeadsEmpty {
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n, err := engine.BeadsReady(bctx, info.ProjectDir, "loop/"+info.Name)
		cancel()
		if err == nil {
			v.Beads = &n
		} else {
			v.BeadsErr = err
		}
	}
	return v
}

// recentOutput is the live pane while the tmux session exists, else the
// end of the transcript: exactly the last lines asked for (tmux's capture
// starts that many lines back in its history and runs to the bottom of the
// screen, so it is cut here), or the default glance.
func (l *Local) recentOutput(ctx context.Context, info Info, lines int) (string, string) {
	n, limit := lines, recentOutputLimit
	if lines == 0 {
		n, limit = defaultLines, defaultOutputLimit
	}
	text, source := "", ""
	if info.Tmux != nil {
		if screen, err := l.Tmux.CapturePane(ctx, info.Tmux.Name, n); err == nil {
			text, source = screen, "pane"
		}
	}
	if source == "" && info.HasRunDir {
		if t, err := tailFile(info.Layout.LogFile(), n, 256<<10); err == nil && t != "" {
			text, source = t, "session.log"
		}
	}
	text = lastLines(strings.TrimRight(text, "\n"), n)
	if len(text) > limit {
		text, _ = TailText(text, limit)
	}
	return text, source
}

// lastLines keeps the last n lines of s.
func lastLines(s string, n int) string {
	for i, seen := len(s)-1, 0; i >= 0; i-- {
		if s[i] == '\n' {
			if seen++; seen == n {
				return s[i+1:]
			}
		}
	}
	return s
}

// resultChanges reads the change record of an iteration's result.json.
func resultChanges(path string) (state.Changes, bool) {
	f, err := os.Open(path)
	if err != nil {
		return state.Changes{}, false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 256<<10))
	if err != nil {
		return state.Changes{}, false
	}
	var r struct {
		Changes *state.Changes `json:"changes"`
	}
	if json.Unmarshal(data, &r) != nil || r.Changes == nil {
		return state.Changes{}, false
	}
	return *r.Changes, true
}

// ReadProgress is a session's current progress file (its last 256 KB)
// and its path. Agents write it: a FIFO or device there is refused
// (state.ErrNotRegular), never opened for a blocking read.
func (l *Local) ReadProgress(info Info) (text, path string, err error) {
	path = info.Layout.ProgressOf(info.State)
	text, err = tailFile(path, math.MaxInt32, 256<<10)
	return text, path, err
}

// ReadLog is the end of a session's session.log: at most its last lines,
// from its last 256 KB.
func (l *Local) ReadLog(info Info, lines int) (string, error) {
	return tailFile(info.Layout.LogFile(), lines, 256<<10)
}

// tailFile returns the last n lines of a file, reading at most max bytes
// from its end.
// Agents write some of these files (progress, output): a FIFO or device
// there is refused, never opened for a blocking read.
func tailFile(path string, n int, max int64) (string, error) {
	f, size, err := state.OpenRegularFile(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	off := size - max
	if off < 0 {
		off = 0
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return "", err
	}
	data, err := io.ReadAll(io.LimitReader(f, max))
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	text := strings.TrimRight(string(data), "\n")
	if off > 0 {
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			text = text[i+1:]
		}
	}
	lines := strings.Split(text, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n"), nil
}
