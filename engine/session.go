package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
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

func envPath(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			return v
		}
	}
	return ""
}

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
func Run(ctx context.Context, o RunOptions) (Result, error) {
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
	if err := state.ValidateSession(o.Session); err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	cfg, err := runConfig(&o)
	if err != nil {
		return Result{}, err
	}
	dir, err := ProjectDir(o.ProjectDir)
	if err != nil {
		return Result{}, err
	}
	if err := CheckPathRoom(dir); err != nil {
		return Result{}, err
	}
	o.ProjectDir = dir
	layout := state.NewLayout(dir, o.Session)

	var prep *Prepared
	switch o.Mode {
	case ModeNew, ModeForce:
		if prep, err = Prepare(o); err != nil {
			return Result{}, err
		}
	case ModeResume:
	default:
		return Result{}, fmt.Errorf("%w: mode %q: use new, resume or force", ErrInvalid, o.Mode)
	}

	// Before the first file of ours is made: an agent's git must never
	// see them (see engineDirs). A failure is reported, not fatal.
	excluded, excludeErr := ExcludeEngineFiles(ctx, dir)

	if o.Mode == ModeForce {
		if _, err := stopLiveEngine(ctx, layout, o.Grace); err != nil {
			return Result{}, err
		}
	}
	lock, err := state.AcquireLock(ctx, layout.LockFile(), o.Session, o.LockWait, o.Heartbeat)
	if err != nil {
		if errors.Is(err, state.ErrLocked) {
			return Result{}, fmt.Errorf("%w: %w; watch it with monitor, stop it with kill, or start it over with --force", ErrConflictRunning, err)
		}
		return Result{}, err
	}
	defer lock.Release()

	var store *state.Store
	var plan *Plan
	var left Leftovers
	resumeNote := ""
	switch o.Mode {
	case ModeNew:
		if st, _, err := state.Load(layout); err == nil {
			return Result{}, existingConflict(st)
		} else if !errors.Is(err, state.ErrNoState) {
			return Result{}, fmt.Errorf("%w: %s exists but cannot be read (%w); resume with --resume or start over with --force (the old run is moved aside)", ErrConflictCrashed, layout.RunDir(), err)
		}
	case ModeForce:
		// A crashed run's agents would work on beside the new one.
		left = stopLeftoverAgents(layout, o.Grace)
		if _, err := os.Lstat(layout.RunDir()); err == nil {
			moved, err := state.MoveAside(layout.RunDir(), time.Now().UTC().Format("20060102T150405"))
			if err != nil {
				return Result{}, err
			}
			fmt.Fprintf(o.Stdout, "■ moved the previous run aside to %s\n", moved)
		}
	case ModeResume:
		s, rec, err := state.Open(layout, nil)
		if err != nil {
			if errors.Is(err, state.ErrNoState) {
				return Result{}, fmt.Errorf("%w: no session %s to resume in %s; start it without --resume", ErrNotFound, o.Session, dir)
			}
			if errors.Is(err, state.ErrDiskFull) {
				return Result{}, err
			}
			return Result{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		st := s.State()
		if st.Status == state.StatusComplete && !ResumableComplete(st.CompletionReason) {
			return Result{}, fmt.Errorf("%w: session %s already completed (%s); nothing to resume — start it over with --force or choose a new name", ErrConflictComplete, o.Session, st.CompletionReason)
		}
		plan, err = PlanFromSpec(st.Spec)
		if err != nil {
			return Result{}, err
		}
		if (o.Stage != "" && o.Stage != plan.Name && plan.Kind == KindLoop) || (o.Pipeline != "" && o.Pipeline != plan.Name && plan.Kind == KindPipeline) || (o.Stage != "" && plan.Kind != KindLoop) || (o.Pipeline != "" && plan.Kind != KindPipeline) {
			return Result{}, fmt.Errorf("%w: session %s ran %s %q; resume it with the same definition or start over with --force", ErrInvalid, o.Session, plan.Kind, plan.Name)
		}
		applyResumeOverrides(plan, o.Compile)
		if err := CheckPlan(plan, envPath(o.Env)); err != nil {
			return Result{}, err
		}
		left = stopLeftoverAgents(layout, o.Grace)
		store = s
		resumeNote = recoveryNote(rec)
		data := state.ResumeData{Recovered: resumeNote}
		if o.Compile.Max > 0 && plan.Kind == KindLoop {
			data.MaxIterations = o.Compile.Max
		}
		if o.Compile.MaxCostUSD != nil {
			data.MaxCostUSD = *o.Compile.MaxCostUSD
		}
		if err := store.Record(state.Event{Type: state.EventSessionResume, StageIndex: st.CurrentStage, Stage: plan.Stages[st.CurrentStage].Name, Data: state.MustData(data)}); err != nil {
			return Result{}, err
		}
	}

	if plan == nil {
		plan = prep.Plan
	}
	var notes strings.Builder
	if plan.Isolation == IsolationWorktree && o.Workspace == nil {
		wt, err := openWorktree(ctx, o, plan, func(f string, a ...any) { fmt.Fprintf(&notes, f, a...) })
		if err != nil {
			return Result{}, err
		}
		o.Workspace = wt.Workspace()
	}
	if store == nil {
		plan = prep.Plan
		tmuxName := ""
		if !o.Foreground {
			tmuxName = state.TmuxName(o.Session, plan.Multi())
		}
		stages := make([]state.StagePlan, len(plan.Stages))
		for i, sp := range plan.Stages {
			stages[i] = state.StagePlan{Name: sp.Name, MaxIterations: sp.MaxIterations, Parallel: sp.Parallel}
		}
		start := state.SessionStartData{
			Type: plan.Kind, ProjectDir: dir, TmuxSession: tmuxName,
			Provider: plan.Stages[0].Provider, Model: plan.Stages[0].Model, Stages: stages, Spec: plan.MarshalSpec(),
			MaxCostUSD: plan.Stages[0].MaxCostUSD,
		}
		if plan.Kind == KindLoop {
			start.Stage = plan.Name
		} else {
			start.Pipeline = plan.Name
		}
		store, err = state.Create(layout, nil, start)
		if err != nil {
			return Result{}, err
		}
		if prep.Pipeline != nil {
			if err := state.WriteFileAtomic(layout.PipelineCopy(), prep.Pipeline.Raw, 0o644); err != nil {
				return Result{}, err
			}
		}
	}
	if lock.Stale != nil {
		store.Record(state.Event{Type: state.EventStaleLockRemoved, Data: state.MustData(lock.Stale)})
	}
	if !plan.Multi() {
		if err := state.InitProgress(layout.Progress(len(plan.Stages), 0, plan.Stages[0].Name), o.Session); err != nil {
			return Result{}, err
		}
	}

	logw := newSessionLog(layout.LogFile(), o.Stdout)
	defer logw.Close()
	st := store.State()
	verb := "starting"
	if o.Mode == ModeResume {
		verb = fmt.Sprintf("resuming at stage %d/%d, iteration %d", st.CurrentStage+1, len(plan.Stages), st.IterationCompleted+1)
	}
	fmt.Fprintf(logw, "■ agent-sessions %s session %s (%s %s) in %s\n", verb, o.Session, plan.Kind, plan.Name, dir)
	if resumeNote != "" {
		fmt.Fprintf(logw, "■ recovered: %s\n", resumeNote)
	}
	fmt.Fprintf(logw, "■ run dir %s · engine pid %d\n", layout.RunDir(), os.Getpid())
	if plan.Worktree != "" {
		fmt.Fprintf(logw, "■ worktree %s · branch %s\n%s%s", plan.Worktree, plan.Branch, o.WorktreeNote, notes.String())
	}
	if len(excluded) > 0 {
		fmt.Fprintf(logw, "■ kept out of git (info/exclude): %s\n", strings.Join(excluded, " "))
	}
	if excludeErr != nil {
		fmt.Fprintf(logw, "■ warning: %v; add .claude/pipeline-runs/, .claude/locks/ and .claude/worktrees/ to .gitignore by hand\n", excludeErr)
	}
	if n := len(left.Pids); n > 0 {
		fmt.Fprintf(logw, "■ stopped %d agent process(es) the previous engine left running (found by %s)\n", n, left.Mechanism)
	}
	scope, err := NewScope(dir, o.Session, layout.RunDir())
	if err != nil {
		return Result{}, err
	}
	defer scope.Close()
	if err := writeContainment(layout, scope); err != nil {
		return Result{}, err
	}
	fmt.Fprintf(logw, "■ containment: %s\n", scope.describe())

	ws := o.Workspace
	if ws == nil {
		ws = workspace.NewLocal(plan.ProjectDir)
	}
	notifier := &Notifier{Command: cfg.Notify, Desktop: o.Notify, Log: func(format string, args ...any) { fmt.Fprintf(logw, format, args...) }}
	runner := &Runner{Plan: plan, Store: store, Out: logw, Env: o.Env, Grace: o.Grace, Beads: o.Beads, Workspace: ws, Scope: scope,
		HostDir: o.HostDir, DailyBudgetUSD: cfg.DailyBudgetUSD, DefaultMaxPark: cfg.MaxPark, Notifier: notifier, AnswerPoll: o.AnswerPoll,
		NewProvider: o.NewProvider, BackoffBase: o.BackoffBase}
	runCtx, stop := context.WithCancelCause(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		watchRunDir(runCtx, store, stop)
	}()
	res := runner.Run(runCtx)
	stop(nil)
	<-watched
	store.ReleaseReserve()
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
	return res, nil
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

// applyResumeOverrides lets a resume change the provider, model or agent
// command (say, after installing a CLI) without changing what runs.
func applyResumeOverrides(p *Plan, o Options) {
	for i := range p.Stages {
		if o.Provider != "" {
			p.Stages[i].Provider = canonicalProvider(o.Provider)
		}
		if o.Model != "" {
			p.Stages[i].Model = o.Model
		}
		// A resume may raise (or lower) the guardrails: a session that
		// stopped at its budget goes on with a bigger one.
		if o.MaxCostUSD != nil {
			p.Stages[i].MaxCostUSD = *o.MaxCostUSD
		}
		if o.MaxRuntime > 0 {
			p.Stages[i].MaxRuntime = o.MaxRuntime
		}
		if o.MaxPark > 0 {
			p.Stages[i].MaxPark = o.MaxPark
		}
		if len(o.AgentCmd) > 0 {
			p.Stages[i].Command = o.AgentCmd
			if o.Provider == "" {
				p.Stages[i].Provider = ProviderCommand
			}
		}
	}
}

func recoveryNote(rec state.Recovery) string {
	var parts []string
	if rec.Rebuilt {
		s := "state.json rebuilt from events.jsonl"
		if rec.CorruptMovedTo != "" {
			s += " (the corrupt file was kept as " + filepath.Base(rec.CorruptMovedTo) + ")"
		}
		parts = append(parts, s)
	}
	if rec.Replayed > 0 {
		parts = append(parts, fmt.Sprintf("%d event(s) newer than state.json replayed", rec.Replayed))
	}
	if rec.SkippedLines > 0 {
		parts = append(parts, fmt.Sprintf("%d unreadable line(s) of events.jsonl skipped", rec.SkippedLines))
	}
	return strings.Join(parts, "; ")
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

// stopLiveEngine stops the engine holding a session's lock (for --force):
// SIGTERM to the pid its lock names, then SIGKILL after the grace. It
// returns the signal that ended the engine ("" when none held the lock).
func stopLiveEngine(ctx context.Context, l state.Layout, grace time.Duration) (string, error) {
	ls, err := state.ProbeLock(l.LockFile())
	if err != nil || !ls.Held {
		return "", err
	}
	if ls.Info == nil || ls.Info.PID <= 0 || ls.Info.PID == os.Getpid() {
		return "", fmt.Errorf("%w: session %s is locked but its lock file does not name a process to stop", ErrConflictRunning, l.Session)
	}
	if grace <= 0 {
		grace = DefaultGrace
	}
	pid := ls.Info.PID
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace + 5*time.Second)
	for time.Now().Before(deadline) {
		if ls, _ := state.ProbeLock(l.LockFile()); !ls.Held {
			return "SIGTERM", nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if ls, _ := state.ProbeLock(l.LockFile()); !ls.Held {
			return "SIGKILL", nil
		}
	}
	return "SIGKILL", fmt.Errorf("%w: the engine of session %s (pid %d) did not stop", ErrConflictRunning, l.Session, pid)
}

// FindAgents lists the live processes whose environment says they are an
// agent of the run directory (AGENT_SESSIONS_RUN_DIR). Unlike a stored PID
// this cannot mistake an unrelated process for ours. Linux only; elsewhere
// it finds nothing.
func FindAgents(runDir string) []int {
	if runtime.GOOS != "linux" {
		return nil
	}
	marker := []byte("AGENT_SESSIONS_RUN_DIR=" + runDir + "\x00")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	self := os.Getpid()
	for _, e := range entries {
		pid := 0
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !containsBytes(env, marker) {
			continue
		}
		if st, err := procStat(pid); err == nil && st.state != 'Z' {
			pids = append(pids, pid)
		}
	}
	return pids
}

func containsBytes(hay, needle []byte) bool {
	return strings.Contains(string(hay), string(needle))
}

// StopAgents stops every agent process of a run directory (a crashed
// engine's leftovers): SIGTERM to each one's process group, grace, SIGKILL.
func StopAgents(runDir string, grace time.Duration) int {
	pids := FindAgents(runDir)
	groups := map[int]bool{}
	for _, pid := range pids {
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid > 1 && pgid != syscall.Getpgrp() {
			groups[pgid] = true
		} else {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for pgid := range groups {
		StopProcessGroup(pgid, grace)
	}
	return len(pids)
}

// stopLeftoverAgents stops what a crashed run of the session left running
// (resume and force, under the session's lock).
func stopLeftoverAgents(l state.Layout, grace time.Duration) Leftovers {
	if grace <= 0 {
		grace = DefaultGrace
	}
	return StopLeftovers(l.ProjectDir, l.Session, l.RunDir(), grace)
}

// Notify shows a desktop notification where the platform has a way to
// (notify-send, osascript); it is best effort and quiet. Setting
// AGENT_SESSIONS_NOTIFY=0 turns it off.
func Notify(title, body string) {
	if os.Getenv("AGENT_SESSIONS_NOTIFY") == "0" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var cmd *exec.Cmd
	switch {
	case runtime.GOOS == "darwin":
		if _, err := exec.LookPath("osascript"); err != nil {
			return
		}
		script := fmt.Sprintf("display notification %q with title %q", body, title)
		cmd = exec.CommandContext(ctx, "osascript", "-e", script)
	default:
		if _, err := exec.LookPath("notify-send"); err != nil {
			return
		}
		cmd = exec.CommandContext(ctx, "notify-send", "--app-name=agent-sessions", title, body)
	}
	cmd.Run()
}

// sessionLog writes the transcript to the pane and appends it to
// session.log. Pane write errors are ignored (tmux may be gone); the log is
// reopened if the run directory was removed under the session.
type sessionLog struct {
	mu   sync.Mutex
	path string
	pane io.Writer
	f    *os.File
}

func newSessionLog(path string, pane io.Writer) *sessionLog {
	l := &sessionLog{path: path, pane: pane}
	l.open()
	return l
}

func (l *sessionLog) open() {
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err == nil {
		l.f = f
	}
}

func (l *sessionLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pane != nil {
		l.pane.Write(p)
	}
	if l.f != nil {
		if _, err := l.f.Write(p); err != nil || l.gone() {
			l.f.Close()
			l.f = nil
			l.open()
			if l.f != nil {
				l.f.Write(p)
			}
		}
	}
	return len(p), nil
}

// gone reports whether the log file was removed (its inode has no links).
func (l *sessionLog) gone() bool {
	info, err := l.f.Stat()
	if err != nil {
		return true
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Nlink == 0
	}
	return false
}

func (l *sessionLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	return l.f.Close()
}

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
