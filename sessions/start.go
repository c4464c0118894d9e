package sessions

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
	"github.com/agent-sessions/agent-sessions/workspace"
)

// Environment variables of nested sessions (SPEC §13).
const (
	// SessionEnv is set in every agent's environment; a server that sees
	// it runs inside an agent (Claude Code loads the user's MCP servers in
	// every iteration).
	SessionEnv = "AGENT_SESSIONS_SESSION"
	// AllowNestedEnv=1 lets such a server start sessions anyway.
	AllowNestedEnv = "AGENT_SESSIONS_ALLOW_NESTED"
)

// StartRequest is a start: what to run, where and how. Its values are the
// caller's, checked for form (name, mode, counts, NUL bytes) already.
type StartRequest struct {
	Session       string
	Stage         string // a single-stage session (a loop); or
	Pipeline      string // a multi-stage one
	MaxIterations int    // 0: the definition's own
	ProjectDir    string // "": the default project
	Mode          string // engine.ModeNew ("" too), ModeResume or ModeForce
	Provider      string
	Model         string
	Context       string
	Inputs        []string
	DryRun        bool    // plan and preview only: nothing is created
	MaxCostUSD    float64 // 0: none given
	MaxRuntime    string  // "": none given
	Isolation     string
	BaseRef       string
	WorktreeSetup []string
}

// Started is what a start did (or, for a dry run, would do).
type Started struct {
	Session string
	// Status is running once the engine holds its lock; complete or failed
	// if it already ended; starting if it had not yet; dry_run.
	Status   string
	Mode     string // the request's (new, resume or force)
	Plan     *engine.Plan
	ResumeAt string // resume: where it continues
	// MovedAside is where force moved the previous run.
	MovedAside string
	Worktree   string
	Branch     string
	// BranchAside is the previous worktree's branch, renamed by force.
	BranchAside   string
	RunDir        string
	ProjectDir    string
	ProgressFile  string
	TmuxSession   string
	AttachCommand []string
	// FirstPrompt is a dry run's first prompt, whole.
	FirstPrompt   string
	EngineCommand []string
	Warnings      []string

	made *workspace.Worktree // the worktree this start made, until it starts
}

// StatusDryRun is a dry run's Started.Status; StatusStarting a start whose
// engine had not taken its lock within the start timeout.
const (
	StatusDryRun   = "dry_run"
	StatusStarting = "starting"
)

// Start starts a session's engine in tmux and waits (within StartTimeout)
// for it to hold its lock; with DryRun it plans and previews only.
// Everything is checked before anything is created.
func (l *Local) Start(ctx context.Context, r StartRequest) (Started, error) {
	if r.Mode == "" {
		r.Mode = engine.ModeNew
	}
	if !r.DryRun {
		if err := l.refuseNested(); err != nil {
			return Started{}, err
		}
	}
	project, err := l.ResolveProject(r.ProjectDir)
	if err != nil {
		return Started{}, err
	}
	// What would make the engine die at once is refused here, where the
	// caller can still be told, not after the engine was handed over.
	if err := engine.CheckPathRoom(project); err != nil {
		return Started{}, err
	}
	if _, err := engine.GraceFromEnv(l.environ()); err != nil {
		return Started{}, err
	}
	tmuxErr := l.Tmux.Available()
	if tmuxErr != nil && !r.DryRun {
		return Started{}, &NoTmuxError{Err: tmuxErr}
	}
	var tmuxList []tmux.Session
	if tmuxErr == nil {
		// A list with unreadable records still holds every session it could read.
		if tmuxList, err = l.Tmux.ListSessions(ctx); err != nil && !errors.Is(err, tmux.ErrNoServer) && !errors.Is(err, tmux.ErrUnparsable) {
			return Started{}, fmt.Errorf("list tmux sessions: %w", err)
		}
	}
	info := l.Inspect(project, r.Session, tmuxList, Full)
	res, err := l.plan(ctx, r, info)
	if err != nil {
		return Started{}, err
	}
	if r.DryRun {
		l.preview(&res, r, tmuxErr)
		return res, nil
	}
	return l.launch(ctx, r, info, res)
}

// refuseNested stops an agent from starting sessions of its own: each one
// would run agents that can start more, without a person watching.
func (l *Local) refuseNested() error {
	env := l.environ()
	outer := envValue(env, SessionEnv)
	if outer == "" || envValue(env, AllowNestedEnv) == "1" {
		return nil
	}
	return &NestedError{Outer: outer}
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// plan resolves what the start runs and where its files go, and refuses
// what cannot run: a taken name, a bad definition, a missing agent, a
// worktree where none can be made.
func (l *Local) plan(ctx context.Context, r StartRequest, info Info) (Started, error) {
	project := info.ProjectDir
	opts := engine.RunOptions{
		Session: r.Session, Stage: r.Stage, Pipeline: r.Pipeline, ProjectDir: project, Mode: r.Mode, Env: l.environ(),
		Compile: engine.Options{Max: r.MaxIterations, Provider: r.Provider, Model: r.Model, Context: r.Context, Inputs: r.Inputs,
			Isolation: r.Isolation, BaseRef: r.BaseRef, WorktreeSetup: r.WorktreeSetup},
	}
	if err := guardrails(r, &opts.Compile); err != nil {
		return Started{}, err
	}
	res := Started{Session: r.Session, ProjectDir: project, Mode: r.Mode}
	var plan *engine.Plan
	var err error
	switch r.Mode {
	case engine.ModeNew, engine.ModeForce:
		if r.Mode == engine.ModeNew {
			if err := newConflict(info); err != nil {
				return Started{}, err
			}
		}
		prep, err := engine.Prepare(opts)
		if err != nil {
			return Started{}, &PlanError{Err: err}
		}
		plan = prep.Plan
		if r.Mode == engine.ModeForce && info.HasRunDir && r.DryRun {
			res.Warnings = append(res.Warnings, fmt.Sprintf("starting would move the previous run of %s aside to %s.%s (the start time, UTC; nothing is deleted)",
				r.Session, info.Layout.RunDir(), l.now().UTC().Format("20060102T150405")))
		}
	case engine.ModeResume:
		if plan, err = l.resumePlan(info, r); err != nil {
			return Started{}, err
		}
		res.ResumeAt = fmt.Sprintf("stage %d/%d (%s), iteration %d", info.State.CurrentStage+1, len(plan.Stages),
			plan.Stages[info.State.CurrentStage].Name, info.State.IterationCompleted+1)
	default:
		return Started{}, fmt.Errorf("%w: mode %q: use new, resume or force", engine.ErrInvalid, r.Mode)
	}
	if err := engine.CheckSandbox(plan, l.geteuid(), l.environ()); err != nil {
		return Started{}, &PlanError{Err: err}
	}
	if err := checkWorktree(ctx, plan, r.Mode); err != nil {
		return Started{}, err
	}
	res.Plan = plan
	res.Warnings = append(res.Warnings, sharedDirWarning(project, r.Session, plan)...)
	res.TmuxSession = state.TmuxName(r.Session, plan.Multi())
	if r.Mode == engine.ModeResume && info.State != nil && info.State.TmuxSession != "" {
		res.TmuxSession = info.State.TmuxSession
	}
	res.RunDir = info.Layout.RunDir()
	cur := 0
	if r.Mode == engine.ModeResume {
		cur = info.State.CurrentStage
	}
	res.ProgressFile = info.Layout.Progress(len(plan.Stages), cur, plan.Stages[cur].Name)
	res.AttachCommand = l.Tmux.AttachCommand(res.TmuxSession, false)
	return res, nil
}

// guardrails puts the request's spending cap and runtime cap (SPEC §15)
// in the engine's options.
func guardrails(r StartRequest, o *engine.Options) error {
	if r.MaxCostUSD != 0 {
		if err := engine.CheckDollars("max_cost_usd", r.MaxCostUSD); err != nil {
			return err
		}
		v := r.MaxCostUSD
		o.MaxCostUSD = &v
	}
	if r.MaxRuntime != "" {
		d, err := engine.ParseDuration(r.MaxRuntime)
		if err != nil {
			return fmt.Errorf("max_runtime: %w", err)
		}
		o.MaxRuntime = d
	}
	return nil
}

// preview fills a dry run's answer: the engine's command line (flags, as a
// person would run it by hand) and the first prompt.
func (l *Local) preview(res *Started, r StartRequest, tmuxErr error) {
	res.EngineCommand = l.engineArgv(res.Plan, r, res.ProjectDir, "")
	res.Status = StatusDryRun
	if tmuxErr != nil {
		res.Warnings = append(res.Warnings, "tmux is not installed: starting for real would fail; "+tmux.InstallHint())
	}
	if p, err := engine.PreviewPrompt(res.Plan); err == nil {
		res.FirstPrompt = p
	} else {
		res.Warnings = append(res.Warnings, "could not render the first prompt: "+err.Error())
	}
	res.AttachCommand = nil
}
