package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
)

// launch makes way for the engine (force: the old engine stopped, a
// leftover tmux session closed), makes the worktree, starts the engine in
// tmux with its handoff file, and waits for it to hold its lock.
func (l *Local) launch(ctx context.Context, r StartRequest, info Info, res Started) (Started, error) {
	if err := l.clearForStart(ctx, info, r.Mode); err != nil {
		return Started{}, err
	}
	// force: the engine moves the old run aside; say where it went.
	var asideBefore map[string]bool
	if r.Mode == engine.ModeForce && info.HasRunDir {
		asideBefore = asideDirs(res.RunDir)
	}
	note, err := l.makeWorktree(ctx, r, &res)
	if err != nil {
		return Started{}, err
	}
	errFile, err := os.CreateTemp("", "agent-sessions-start-*.json")
	if err != nil {
		return Started{}, err
	}
	errFile.Close()
	defer os.Remove(errFile.Name())
	handoff := engine.Handoff{Env: engineEnv(l.environ())}
	if r.Mode != engine.ModeResume {
		handoff.Context, handoff.Inputs = r.Context, res.Plan.Inputs
	}
	handoff.WorktreeReady, handoff.WorktreeNote = res.Worktree != "", note
	handoffFile, err := engine.WriteHandoff(handoff)
	if err != nil {
		return Started{}, err
	}
	// The handoff holds the server's whole environment, API keys included:
	// it must not outlive this call. An engine that started has read and
	// removed it already; on every other path (tmux failed, the engine
	// never ran or died first) it goes here.
	defer os.Remove(handoffFile)
	res.EngineCommand = l.engineArgv(res.Plan, r, res.ProjectDir, handoffFile)
	env := []string{engine.StartErrorFileEnv + "=" + errFile.Name()}
	err = l.Tmux.NewSession(ctx, tmux.NewSessionOptions{Name: res.TmuxSession, Dir: res.ProjectDir, Env: env, Argv: res.EngineCommand, Width: 200, Height: 50})
	if errors.Is(err, tmux.ErrSessionExists) {
		return Started{}, l.discard(ctx, &res, &ConflictError{Reason: ConflictTmuxTaken, Session: r.Session, ProjectDir: res.ProjectDir, TmuxSession: res.TmuxSession})
	}
	if err != nil {
		return Started{}, l.discard(ctx, &res, fmt.Errorf("start tmux session %s: %w", res.TmuxSession, err))
	}
	// The engine takes its lock before it writes the new state (and, for
	// force, before it moves the old run aside): wait for state of this run.
	var previous *time.Time
	if r.Mode == engine.ModeForce && info.State != nil {
		previous = &info.State.StartedAt
	}
	status, err := l.confirmStart(ctx, info.Layout, res.TmuxSession, errFile.Name(), previous)
	if err != nil {
		return Started{}, l.discard(ctx, &res, err)
	}
	if status == StatusStarting && os.Remove(handoffFile) == nil {
		// The engine has not even read its handoff: it never ran, and now
		// that the file is gone it cannot. Close its tmux session and say
		// so, rather than report a session that will never start.
		l.Tmux.KillSession(context.WithoutCancel(ctx), res.TmuxSession)
		return Started{}, &StartFailure{Msg: fmt.Sprintf("the engine did not start within %s (tmux session %s never ran it); its tmux session was closed — try again, and check that %s runs",
			l.StartTimeoutOrDefault(), res.TmuxSession, l.Executable)}
	}
	if asideBefore != nil {
		res.MovedAside = newAside(res.RunDir, asideBefore)
	}
	res.Status = status
	if status == StatusStarting {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the engine had not taken its lock after %s; check it with monitor", l.StartTimeoutOrDefault()))
	}
	return res, nil
}

// newConflict refuses a new session whose name is taken, with the facts
// that say what resolves it.
func newConflict(info Info) error {
	e := &ConflictError{Session: info.Name, ProjectDir: info.ProjectDir, Status: info.Live.Status, Why: info.Live.Why,
		TmuxSession: info.TmuxName(), FreeName: freeName(info.ProjectDir, info.Name)}
	if st := info.State; st != nil {
		e.CompletionReason, e.Failure, e.Stopped = st.CompletionReason, Truncate(st.Error, 300), st.IterationCompleted
	}
	switch s := info.Live.Status; {
	case s == "":
		if !(info.Lock.Exists && info.Lock.Held) {
			return nil
		}
		e.Reason = ConflictLocked
	case s.Alive():
		e.Reason = ConflictRunning
	case s == state.LiveOrphan || s == state.LiveZombie:
		e.Reason = ConflictLeftover
	case s == state.LiveComplete:
		e.Reason = ConflictComplete
	default:
		e.Reason = ConflictResumable
	}
	return e
}

// asideDirs lists the run dirs moved aside from runDir (runDir.<suffix>).
func asideDirs(runDir string) map[string]bool {
	found := map[string]bool{}
	matches, _ := filepath.Glob(runDir + ".*")
	for _, m := range matches {
		found[m] = true
	}
	return found
}

// newAside is the run dir moved aside since before was taken ("" if none).
func newAside(runDir string, before map[string]bool) string {
	for m := range asideDirs(runDir) {
		if !before[m] {
			return m
		}
	}
	return ""
}

// freeName suggests the first of name-2, name-3… that no session of the
// project uses, so that a call with it succeeds as given.
func freeName(project, name string) string {
	next := nextName(name)
	for range 100 {
		l := state.NewLayout(project, next)
		_, errRun := os.Stat(l.RunDir())
		_, errLock := os.Stat(l.LockFile())
		if errors.Is(errRun, os.ErrNotExist) && errors.Is(errLock, os.ErrNotExist) {
			break
		}
		next = nextName(next)
	}
	return next
}

// nextName suggests name-2, name-3….
func nextName(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if n, err := strconv.Atoi(name[i+1:]); err == nil {
			return fmt.Sprintf("%s-%d", name[:i], n+1)
		}
	}
	s := name + "-2"
	if len(s) > 48 {
		s = name[:46] + "-2"
	}
	return s
}

// resumePlan validates a resume: the session must exist, not be running or
// complete, and its agents must be available.
func (l *Local) resumePlan(info Info, r StartRequest) (*engine.Plan, error) {
	name := r.Session
	switch {
	case info.Lock.Held:
		return nil, &ConflictError{Reason: ConflictNothingToResume, Session: name, ProjectDir: info.ProjectDir, Status: info.Live.Status, Why: info.Live.Why}
	case info.State == nil && info.StateErr != nil:
		return nil, &UnreadableError{Session: name, Err: info.StateErr}
	case info.State == nil:
		return nil, &NotFoundError{Session: name, ProjectDir: info.ProjectDir, Resume: true}
	case info.State.Status == state.StatusComplete && !engine.ResumableComplete(info.State.CompletionReason):
		return nil, &ConflictError{Reason: ConflictResumeComplete, Session: name, ProjectDir: info.ProjectDir, Status: info.Live.Status,
			CompletionReason: info.State.CompletionReason, Stage: info.State.Stage, Pipeline: info.State.Pipeline}
	}
	plan, err := engine.PlanFromSpec(info.State.Spec)
	if err != nil {
		return nil, err
	}
	if (r.Stage != "" && (plan.Kind != engine.KindLoop || r.Stage != plan.Name)) || (r.Pipeline != "" && (plan.Kind != engine.KindPipeline || r.Pipeline != plan.Name)) {
		return nil, fmt.Errorf("%w: session %s ran %s %q; resume it without stage/pipeline (or with the same one)", engine.ErrInvalid, name, plan.Kind, plan.Name)
	}
	for i := range plan.Stages {
		if r.Provider != "" {
			plan.Stages[i].Provider = r.Provider
		}
		if r.Model != "" {
			plan.Stages[i].Model = r.Model
		}
	}
	if err := engine.CheckPlan(plan, envValue(l.environ(), "PATH")); err != nil {
		return nil, &PlanError{Err: err}
	}
	return plan, nil
}

// clearForStart makes way for the new engine's tmux session: for force it
// stops a live engine; a leftover tmux session (zombie) is closed after its
// screen is saved.
func (l *Local) clearForStart(ctx context.Context, info Info, mode string) error {
	if mode == engine.ModeForce && info.Lock.Held {
		if err := engine.StopEngine(ctx, info.Layout, l.GraceOrDefault()); err != nil {
			return err
		}
	}
	if info.Tmux == nil || mode == engine.ModeNew {
		return nil
	}
	if screen, err := l.Tmux.CapturePane(ctx, info.Tmux.Name, 2000); err == nil && info.HasRunDir {
		if _, err := os.Stat(info.Layout.FinalOutput()); errors.Is(err, os.ErrNotExist) {
			state.WriteFileAtomic(info.Layout.FinalOutput(), []byte(screen+"\n"), 0o644)
		}
	}
	// The engine is gone; give its tmux session a moment to close itself.
	if l.tmuxCloses(ctx, info.Tmux.Name) {
		return nil
	}
	if err := l.Tmux.KillSession(ctx, info.Tmux.Name); err != nil && !errors.Is(err, tmux.ErrSessionNotFound) {
		return err
	}
	return nil
}

// engineArgv is the command tmux runs: this binary's `run`, every value a
// separate argument (tmux execs it without a shell). With a handoff file
// the context and inputs travel in it; without one (what a dry run shows,
// for a person to run by hand) they are flags.
func (l *Local) engineArgv(plan *engine.Plan, r StartRequest, project, handoff string) []string {
	argv := []string{l.Executable, "run", "--session", r.Session}
	if plan.Kind == engine.KindLoop {
		argv = append(argv, "--stage", plan.Name)
	} else {
		ref := r.Pipeline
		if ref == "" || r.Mode == engine.ModeResume {
			ref = plan.Name
		}
		argv = append(argv, "--pipeline", ref)
	}
	argv = append(argv, "--project", project)
	if r.MaxIterations > 0 {
		argv = append(argv, "--max", strconv.Itoa(r.MaxIterations))
	}
	if r.Provider != "" {
		argv = append(argv, "--provider", r.Provider)
	}
	if r.Model != "" {
		argv = append(argv, "--model", r.Model)
	}
	argv = append(argv, guardrailFlags(r)...)
	argv = append(argv, worktreeFlags(plan, r.Mode)...)
	if handoff != "" {
		argv = append(argv, "--handoff", handoff)
	} else if r.Mode != engine.ModeResume {
		if r.Context != "" {
			argv = append(argv, "--context", r.Context)
		}
		for _, in := range plan.Inputs {
			argv = append(argv, "--input", in)
		}
	}
	switch r.Mode {
	case engine.ModeResume:
		argv = append(argv, "--resume")
	case engine.ModeForce:
		argv = append(argv, "--force")
	}
	return argv
}

// guardrailFlags are the engine flags of the request's guardrails.
func guardrailFlags(r StartRequest) []string {
	var argv []string
	if r.MaxCostUSD != 0 {
		argv = append(argv, "--max-cost-usd", strconv.FormatFloat(r.MaxCostUSD, 'f', -1, 64))
	}
	if r.MaxRuntime != "" {
		argv = append(argv, "--max-runtime", r.MaxRuntime)
	}
	return argv
}

// worktreeFlags are the engine flags of a new worktree session (a resume
// finds its worktree in its spec).
func worktreeFlags(plan *engine.Plan, mode string) []string {
	if plan.Isolation != engine.IsolationWorktree || mode == engine.ModeResume {
		return nil
	}
	argv := []string{"--isolation", plan.Isolation}
	if plan.BaseRef != "" {
		argv = append(argv, "--base-ref", plan.BaseRef)
	}
	if len(plan.WorktreeSetup) > 0 {
		setup, _ := json.Marshal(plan.WorktreeSetup)
		argv = append(argv, "--worktree-setup", string(setup))
	}
	return argv
}

// engineEnv is the environment of the engine: the server's own (so PATH
// finds the same agent CLIs), without tmux's variables of the server's own
// terminal. Where to report a failed start is set on the tmux command.
func engineEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "TMUX", "TMUX_PANE", "TERM", engine.StartErrorFileEnv, "":
			continue
		}
		if strings.ContainsAny(k, " \t\n") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// confirmStart waits, within a bound, until the engine holds its lock and
// the run's state can be read (or it already finished), so that a look
// right after start sees the session, not a run dir without state. previous
// is the StartedAt of a run that force replaces: its state does not count.
// An engine that dies at once is reported with its own first error lines,
// never as started.
func (l *Local) confirmStart(ctx context.Context, lay state.Layout, tmuxName, errFile string, previous *time.Time) (string, error) {
	deadline := time.Now().Add(l.StartTimeoutOrDefault())
	fresh := func(st state.State) bool { return previous == nil || !st.StartedAt.Equal(*previous) }
	for look := 1; ; look++ {
		if ls, _ := state.ProbeLock(lay.LockFile()); ls.Held {
			if st, _, err := state.Load(lay); err == nil && fresh(st) && holdersRun(ls, st) {
				return state.StatusRunning, nil
			}
		}
		// An engine that could not start says so in errFile: a file read
		// tells. Only one that ended without a word needs tmux to tell, so
		// tmux is asked every confirmTmuxEvery looks, not at every one (a
		// start is most of the tmux calls a busy server makes).
		if engine.ReadStartFailure(errFile) != nil {
			return endedAtOnce(lay, errFile, fresh)
		}
		if look%confirmTmuxEvery == 0 {
			if alive, _ := l.Tmux.HasSession(ctx, tmuxName); !alive {
				return endedAtOnce(lay, errFile, fresh)
			}
		}
		if time.Now().After(deadline) {
			return StatusStarting, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// confirmTmuxEvery: confirmStart asks tmux whether the engine's session
// still exists every this many 20 ms looks (100 ms).
const confirmTmuxEvery = 5

// holdersRun reports whether st is the run of the engine holding the lock:
// an engine takes the lock before it starts (or resumes) its run, so its
// run starts after its hold. A run that started before is another's — one
// that finished between this start's look and its engine's: the engine
// holds the lock only while it refuses to start over that run, and taking
// it for this start's made a losing start report "running".
func holdersRun(ls state.LockStatus, st state.State) bool {
	return ls.Info != nil && !state.LastStart(&st).Before(ls.Info.StartedAt)
}

// endedAtOnce judges an engine whose tmux session is gone before
// confirmStart saw it run: it said why it could not start, or it ran and
// finished already, or it died at once.
func endedAtOnce(lay state.Layout, errFile string, fresh func(state.State) bool) (string, error) {
	// An engine that said why it could not start did not start, whatever
	// state is there: it may be another start's, one that ran and
	// finished before this one's tmux session could exist.
	if err := engine.ReadStartFailure(errFile); err != nil {
		return "", &StartFailure{Msg: "the engine could not start: " + err.Error(), Err: err}
	}
	if ls, _ := state.ProbeLock(lay.LockFile()); ls.Held {
		return state.StatusRunning, nil
	}
	if st, _, err := state.Load(lay); err == nil && fresh(st) && (state.Terminal(st.Status) || st.Status == state.StatusRunning) {
		if st.Status == state.StatusFailed {
			return "", &StartFailure{Msg: fmt.Sprintf("the engine started but the session failed at once: %s", Truncate(st.Error, 2000))}
		}
		return st.Status, nil
	}
	msg := "the engine exited at once without saying why"
	if data, err := os.ReadFile(lay.LogFile()); err == nil && len(data) > 0 {
		tail, _ := TailText(string(data), 4000)
		msg += "; last lines of " + filepath.Base(lay.LogFile()) + ":\n" + tail
	}
	return "", &StartFailure{Msg: msg}
}
