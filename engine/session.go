package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/workspace"
)

// Start modes.
const (
	ModeNew    = "new"
	ModeResume = "resume"
	ModeForce  = "force"
)

// RunOptions is everything `agent-sessions run` is told.
type RunOptions struct {
	Session    string
	Stage      string
	Pipeline   string
	ProjectDir string
	Mode       string // new (default), resume or force
	Compile    Options
	// Foreground: not inside tmux (no tmux session is recorded).
	Foreground bool
	// Stdout is the pane (os.Stdout); session.log receives the same.
	Stdout io.Writer
	// Env is the agents' base environment; nil means os.Environ().
	Env []string
	// LockWait is how long to retry a held lock (probes hold it for an
	// instant); Grace the SIGTERM→SIGKILL wait; Heartbeat the lock's.
	LockWait  time.Duration
	Grace     time.Duration
	Heartbeat time.Duration
	// Notify sends the desktop notification; nil means Notify.
	Notify func(title, body string)
	// Config is config.yaml (SPEC §15); nil means LoadConfig().
	Config *Config
	// HostDir holds host-wide parks and the spend ledger; "" means
	// state.HostDir().
	HostDir string
	// AnswerPoll is how often a waiting session looks for its answer
	// (0: DefaultAnswerPoll).
	AnswerPoll time.Duration
	// NewProvider replaces the providers (tests); nil means NewProvider.
	NewProvider func(name string) (Provider, error)
	// BackoffBase is the first backoff of a park without a reset time
	// (0: AGENT_SESSIONS_BACKOFF_BASE, else DefaultBackoffBase).
	BackoffBase time.Duration
	// Beads overrides BeadsReady (tests).
	Beads func(ctx context.Context, dir, label string) (int, error)
	// Workspace is where agents run and what they changed; nil means the
	// project directory with a change record (workspace.NewLocal).
	Workspace Workspace
	// WorktreeReady: start_session made the session's worktree already;
	// WorktreeNote is what to log about it (the setup's output).
	WorktreeReady bool
	WorktreeNote  string
}

// Prepared is a validated session, ready to run: nothing has been written.
type Prepared struct {
	Plan   *Plan
	Layout state.Layout
	// Pipeline is the definition when the session is a pipeline.
	Pipeline *Pipeline
}

// Prepare validates a new session without creating anything: the name, the
// project directory, the definition (compiled into a plan), the agent CLIs
// and bd. Errors wrap the package's sentinels.
func Prepare(o RunOptions) (*Prepared, error) {
	if err := state.ValidateSession(o.Session); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	dir, err := ProjectDir(o.ProjectDir)
	if err != nil {
		return nil, err
	}
	if (o.Stage == "") == (o.Pipeline == "") {
		return nil, fmt.Errorf("%w: give exactly one of a stage (--stage) or a pipeline (--pipeline)", ErrInvalid)
	}
	cat := NewCatalog(dir)
	var plan *Plan
	var pl *Pipeline
	if o.Stage != "" {
		plan, err = cat.CompileStage(o.Session, o.Stage, o.Compile)
	} else {
		plan, err = cat.CompilePipeline(o.Session, o.Pipeline, o.Compile)
		if err == nil {
			pl, err = cat.Pipeline(o.Pipeline)
		}
	}
	if err != nil {
		return nil, err
	}
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	if err := applyIsolation(plan, o.Compile); err != nil {
		return nil, err
	}
	if err := CheckPlan(plan, envPath(env)); err != nil {
		return nil, err
	}
	return &Prepared{Plan: plan, Layout: state.NewLayout(dir, o.Session), Pipeline: pl}, nil
}

// CheckPlan reports a missing agent CLI or bd before anything starts.
func CheckPlan(p *Plan, path string) error {
	for _, sp := range p.Stages {
		if err := CheckAgent(sp, path); err != nil {
			return err
		}
	}
	return CheckBeads(p, path)
}

func envPath(env []string) string { return EnvValue(env, "PATH") }

// ProjectDir validates a project directory and returns its absolute,
// symlink-resolved path ("" means the current directory).
func ProjectDir(dir string) (string, error) {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("%w: current directory: %w", ErrInvalid, err)
		}
		dir = wd
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("%w: project directory %q: %w", ErrInvalid, dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%w: project directory %s does not exist; create it or pass an existing directory", ErrInvalid, abs)
		}
		return "", fmt.Errorf("%w: project directory %s: %w", ErrInvalid, abs, err)
	}
	info, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("%w: project directory %s: %w", ErrInvalid, abs, err)
	}
	if !info.IsDir() {
		return "", fmt.Errorf("%w: project directory %s is a file, not a directory", ErrInvalid, abs)
	}
	return real, nil
}

// Run is `agent-sessions run`: it prepares (or, for resume, reloads) the
// session, takes its lock, runs it to the end in this process and releases
// the lock on every path. A returned error means the session never started
// (exit code 2); otherwise the Result says how it ended.
//
// Its steps: prepareRun (validate and compile, nothing written),
// lockSession, openSession (create, or reopen to resume), announce, and
// drive (the Runner, to the session's end).
func Run(ctx context.Context, o RunOptions) (Result, error) {
	cfg, prep, err := prepareRun(&o)
	if err != nil {
		return Result{}, err
	}
	layout := state.NewLayout(o.ProjectDir, o.Session)
	// Before the first file of ours is made: an agent's git must never
	// see them (see engineDirs). A failure is reported, not fatal.
	excluded, excludeErr := ExcludeEngineFiles(ctx, o.ProjectDir)
	lock, err := lockSession(ctx, o, layout)
	if err != nil {
		return Result{}, err
	}
	defer lock.Release()
	s, err := openSession(ctx, &o, layout, prep)
	if err != nil {
		return Result{}, err
	}
	if lock.Stale != nil {
		// For the audit trail only: a failure to record it stops nothing.
		s.store.Record(state.Event{Type: state.EventStaleLockRemoved, Data: state.MustData(lock.Stale)})
	}
	if !s.plan.Multi() {
		if err := state.InitProgress(layout.Progress(len(s.plan.Stages), 0, s.plan.Stages[0].Name), o.Session); err != nil {
			return Result{}, err
		}
	}
	logw := newSessionLog(layout.LogFile(), o.Stdout)
	defer logw.Close()
	s.announce(logw, o, layout, excluded, excludeErr)
	scope, err := NewScope(o.ProjectDir, o.Session, layout.RunDir())
	if err != nil {
		return Result{}, err
	}
	defer scope.Close()
	if err := writeContainment(layout, scope); err != nil {
		return Result{}, err
	}
	fmt.Fprintf(logw, "■ containment: %s\n", scope.describe())
	return s.drive(ctx, o, cfg, logw, scope), nil
}

// setRunDefaults fills in what the caller of Run left out.
func setRunDefaults(o *RunOptions) {
	if o.Mode == "" {
		o.Mode = ModeNew
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Env == nil {
		o.Env = os.Environ()
	}
	if o.LockWait == 0 {
		o.LockWait = 1500 * time.Millisecond
	}
	if o.Notify == nil {
		o.Notify = Notify
	}
}

// prepareRun fills in the options' defaults and validates what the
// session is told — its name, config.yaml, the project directory (made
// absolute in o) and the mode — and compiles a new session's plan (nil
// for a resume, which runs the plan it stored). Nothing is written.
func prepareRun(o *RunOptions) (Config, *Prepared, error) {
	setRunDefaults(o)
	if err := state.ValidateSession(o.Session); err != nil {
		return Config{}, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	cfg, err := runConfig(o)
	if err != nil {
		return Config{}, nil, err
	}
	dir, err := ProjectDir(o.ProjectDir)
	if err != nil {
		return Config{}, nil, err
	}
	if err := CheckPathRoom(dir); err != nil {
		return Config{}, nil, err
	}
	o.ProjectDir = dir
	switch o.Mode {
	case ModeNew, ModeForce:
		prep, err := Prepare(*o)
		return cfg, prep, err
	case ModeResume:
		return cfg, nil, nil
	}
	return Config{}, nil, fmt.Errorf("%w: mode %q: use new, resume or force", ErrInvalid, o.Mode)
}

// lockSession takes the session's lock; force first stops the engine that
// holds it.
func lockSession(ctx context.Context, o RunOptions, layout state.Layout) (*state.Lock, error) {
	if o.Mode == ModeForce {
		// The engine being replaced ends its agents with their grace
		// (ours: the same environment) and records its end.
		if _, err := stopLiveEngine(ctx, layout, StopWait(o.Grace)); err != nil {
			return nil, err
		}
	}
	lock, err := state.AcquireLock(ctx, layout.LockFile(), o.Session, o.LockWait, o.Heartbeat)
	if err != nil {
		if errors.Is(err, state.ErrLocked) {
			return nil, fmt.Errorf("%w: %w; watch it with monitor, stop it with kill, or start it over with --force", ErrConflictRunning, err)
		}
		return nil, err
	}
	return lock, nil
}

// opened is a session ready to run under its lock: its store, the plan it
// runs, and what opening it found and did (for the transcript).
type opened struct {
	store      *state.Store
	plan       *Plan
	left       Leftovers // agents a previous engine left running, stopped
	resumeNote string    // what resuming had to repair
	notes      string    // what making the worktree said
}

// openSession opens the session's store under its lock: a new session
// checks that its name is free, force moves the previous run aside, resume
// reopens the run and records the resume. Then it opens the worktree if
// the plan asks for one (setting o.Workspace) and creates the store of a
// session that has none yet.
func openSession(ctx context.Context, o *RunOptions, layout state.Layout, prep *Prepared) (*opened, error) {
	s := &opened{}
	var err error
	switch o.Mode {
	case ModeNew:
		err = checkNameFree(layout)
	case ModeForce:
		s.left, err = clearForForce(*o, layout)
	case ModeResume:
		err = s.reopen(*o, layout)
	}
	if err != nil {
		return nil, err
	}
	if s.plan == nil {
		s.plan = prep.Plan
	}
	if s.plan.Isolation == IsolationWorktree && o.Workspace == nil {
		var notes strings.Builder
		wt, err := openWorktree(ctx, *o, s.plan, func(f string, a ...any) { fmt.Fprintf(&notes, f, a...) })
		if err != nil {
			return nil, err
		}
		o.Workspace = wt.Workspace()
		s.notes = notes.String()
	}
	if s.store == nil {
		if s.store, err = createSession(*o, layout, prep); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// checkNameFree refuses a new session whose name a run already has.
func checkNameFree(layout state.Layout) error {
	st, _, err := state.Load(layout)
	switch {
	case err == nil:
		return existingConflict(st)
	case errors.Is(err, state.ErrNoState):
		return nil
	}
	return fmt.Errorf("%w: %s exists but cannot be read (%w); resume with --resume or start over with --force (the old run is moved aside)", ErrConflictCrashed, layout.RunDir(), err)
}

// clearForForce makes room for a forced start: it stops the agents a
// crashed run left (they would work on beside the new one) and moves the
// previous run directory aside.
func clearForForce(o RunOptions, layout state.Layout) (Leftovers, error) {
	left := stopLeftoverAgents(layout, o.Grace)
	if _, err := os.Lstat(layout.RunDir()); err != nil {
		return left, nil
	}
	moved, err := state.MoveAside(layout.RunDir(), time.Now().UTC().Format("20060102T150405"))
	if err != nil {
		return left, err
	}
	fmt.Fprintf(o.Stdout, "■ moved the previous run aside to %s\n", moved)
	return left, nil
}

// createSession creates a new session's store (state.json and its
// session_start event) and keeps a copy of the pipeline definition.
func createSession(o RunOptions, layout state.Layout, prep *Prepared) (*state.Store, error) {
	plan := prep.Plan
	tmuxName := ""
	if !o.Foreground {
		tmuxName = state.TmuxName(o.Session, plan.Multi())
	}
	stages := make([]state.StagePlan, len(plan.Stages))
	for i, sp := range plan.Stages {
		stages[i] = state.StagePlan{Name: sp.Name, MaxIterations: sp.MaxIterations, Parallel: sp.Parallel}
	}
	start := state.SessionStartData{
		Type: plan.Kind, ProjectDir: o.ProjectDir, TmuxSession: tmuxName,
		Provider: plan.Stages[0].Provider, Model: plan.Stages[0].Model, Stages: stages, Spec: plan.MarshalSpec(),
		MaxCostUSD: plan.Stages[0].MaxCostUSD,
	}
	if plan.Kind == KindLoop {
		start.Stage = plan.Name
	} else {
		start.Pipeline = plan.Name
	}
	store, err := state.Create(layout, nil, start)
	if err != nil {
		return nil, err
	}
	if prep.Pipeline != nil {
		if err := state.WriteFileAtomic(layout.PipelineCopy(), prep.Pipeline.Raw, 0o644); err != nil {
			return nil, err
		}
	}
	return store, nil
}

// announce writes the session's opening lines: what starts (or resumes)
// where, what was recovered, stopped or kept out of git.
func (s *opened) announce(w io.Writer, o RunOptions, layout state.Layout, excluded []string, excludeErr error) {
	plan, st := s.plan, s.store.State()
	verb := "starting"
	if o.Mode == ModeResume {
		verb = fmt.Sprintf("resuming at stage %d/%d, iteration %d", st.CurrentStage+1, len(plan.Stages), st.IterationCompleted+1)
	}
	fmt.Fprintf(w, "■ agent-sessions %s session %s (%s %s) in %s\n", verb, o.Session, plan.Kind, plan.Name, o.ProjectDir)
	if s.resumeNote != "" {
		fmt.Fprintf(w, "■ recovered: %s\n", s.resumeNote)
	}
	fmt.Fprintf(w, "■ run dir %s · engine pid %d\n", layout.RunDir(), os.Getpid())
	if plan.Worktree != "" {
		fmt.Fprintf(w, "■ worktree %s · branch %s\n%s%s", plan.Worktree, plan.Branch, o.WorktreeNote, s.notes)
	}
	if len(excluded) > 0 {
		fmt.Fprintf(w, "■ kept out of git (info/exclude): %s\n", strings.Join(excluded, " "))
	}
	if excludeErr != nil {
		fmt.Fprintf(w, "■ warning: %v; add %s to .gitignore by hand\n", excludeErr, engineDirsText())
	}
	if n := len(s.left.Pids); n > 0 {
		fmt.Fprintf(w, "■ stopped %d agent process(es) the previous engine left running (found by %s)\n", n, s.left.Mechanism)
	}
}

// drive runs the plan to the session's end with a Runner in the session's
// workspace, stops it early if the run directory is taken away, and
// reports how it ended (transcript and notifications).
func (s *opened) drive(ctx context.Context, o RunOptions, cfg Config, logw io.Writer, scope Scope) Result {
	ws := o.Workspace
	if ws == nil {
		ws = workspace.NewLocal(s.plan.ProjectDir)
	}
	notifier := &Notifier{Command: cfg.Notify, Desktop: o.Notify, Log: func(format string, args ...any) { fmt.Fprintf(logw, format, args...) }}
	runner := &Runner{Plan: s.plan, Store: s.store, Out: logw, Env: o.Env, Grace: o.Grace, Beads: o.Beads, Workspace: ws, Scope: scope,
		HostDir: o.HostDir, DailyBudgetUSD: cfg.DailyBudgetUSD, DefaultMaxPark: cfg.MaxPark, Notifier: notifier, AnswerPoll: o.AnswerPoll,
		NewProvider: o.NewProvider, BackoffBase: o.BackoffBase}
	runCtx, stop := context.WithCancelCause(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		watchRunDir(runCtx, s.store, stop)
	}()
	res := runner.Run(runCtx)
	stop(nil)
	<-watched
	s.store.ReleaseReserve()
	switch res.Status {
	case state.StatusComplete:
		fmt.Fprintf(logw, "■ session %s complete: %s\n", o.Session, res.Reason)
	case state.StatusFailed:
		fmt.Fprintf(logw, "■ session %s failed (%s): %s\n", o.Session, res.Reason, res.Err)
	case state.StatusKilled:
		fmt.Fprintf(logw, "■ session %s killed: %s\n", o.Session, res.Err)
	}
	runner.notifyEnd(res)
	notifier.Wait()
	return res
}

// runDirPoll is how often a running engine checks its run directory.
const runDirPoll = 2 * time.Second

// watchRunDir stops the session (cancels ctx with the cause) as soon as its
// run directory is removed or replaced, so that an agent working for an
// hour does not go on after its session's files were taken away. One stat
// per poll.
func watchRunDir(ctx context.Context, store *state.Store, stop context.CancelCauseFunc) {
	t := time.NewTicker(runDirPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := store.CheckRunDir(); err != nil {
				stop(err)
				return
			}
		}
	}
}

// existingConflict explains why a new session cannot reuse a name.
func existingConflict(st state.State) error {
	switch st.Status {
	case state.StatusComplete:
		return fmt.Errorf("%w: session %s already completed (%s); start it over with --force (the old run is moved aside, nothing is deleted) or choose a new name", ErrConflictComplete, st.Session, st.CompletionReason)
	case state.StatusRunning:
		return fmt.Errorf("%w: session %s crashed at stage %d, iteration %d (no engine holds its lock); continue it with --resume or start over with --force", ErrConflictCrashed, st.Session, st.CurrentStage+1, st.IterationCompleted+1)
	default:
		return fmt.Errorf("%w: session %s was %s (%s); continue it with --resume or start over with --force", ErrConflictCrashed, st.Session, st.Status, firstNonEmpty(st.Error, st.CompletionReason))
	}
}

func firstNonEmpty(vals ...string) string { return first(vals...) }

// runConfig loads config.yaml (unless given) and finds the host state
// directory. A config with problems stops the session before it starts; a
// host without a state directory only loses the host-wide guardrails.
func runConfig(o *RunOptions) (Config, error) {
	if o.Config == nil {
		cfg, err := LoadConfig()
		if err != nil {
			return Config{}, err
		}
		o.Config = &cfg
	}
	if o.HostDir == "" {
		if d, err := state.HostDir(); err == nil {
			o.HostDir = d
		} else {
			fmt.Fprintf(o.Stdout, "■ no host-wide parks or daily budget: %v\n", err)
		}
	}
	return *o.Config, nil
}
