package tools

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

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
	"github.com/agent-sessions/agent-sessions/workspace"
)

// StartArgs are start_session's arguments.
type StartArgs struct {
	Session       string   `json:"session" jsonschema:"session name: lowercase letters, digits and hyphens, starting with a letter or digit, at most 48 characters"`
	Stage         string   `json:"stage,omitempty" jsonschema:"stage to run as a single-stage session (a loop), e.g. work, improve-plan, demo; give stage or pipeline"`
	Pipeline      string   `json:"pipeline,omitempty" jsonschema:"pipeline to run (a name such as quick-refine, or a path to a YAML file); give stage or pipeline"`
	MaxIterations int      `json:"max_iterations,omitempty" jsonschema:"iterations for a loop (default: the stage's max_iterations); for a pipeline a cap on each stage's runs; on resume it raises or lowers the current stage's limit"`
	ProjectDir    string   `json:"project_dir,omitempty" jsonschema:"project directory the agents work in (default: the server's working directory)"`
	Mode          string   `json:"mode,omitempty" jsonschema:"new (default): refuse if the name exists; resume: continue a crashed, failed or killed session where it stopped; force: stop a running one and start over, moving the old run aside"`
	Provider      string   `json:"provider,omitempty" jsonschema:"agent CLI for every stage: claude, codex, command or mock (default: each stage's own)"`
	Model         string   `json:"model,omitempty" jsonschema:"model for every stage: opus, sonnet, haiku or a full model name (default: each stage's own)"`
	Context       string   `json:"context,omitempty" jsonschema:"free text handed to prompts as ${CONTEXT}, e.g. which plan file to work on"`
	Inputs        []string `json:"inputs,omitempty" jsonschema:"files inside the project whose contents the first stage receives as ${INPUTS}"`
	DryRun        bool     `json:"dry_run,omitempty" jsonschema:"validate and show the plan and the first prompt without creating anything"`
	MaxCostUSD    float64  `json:"max_cost_usd,omitempty" jsonschema:"spending cap in US dollars: checked before every iteration, at or past it the session ends complete with reason budget (default: the stage's or pipeline's cap, if any); on resume a new cap"`
	MaxRuntime    string   `json:"max_runtime,omitempty" jsonschema:"wall-clock cap since the session started, a duration such as 8h or 90m: past it the session ends complete with reason max_runtime; on resume a new cap"`
	Isolation     string   `json:"isolation,omitempty" jsonschema:"none (default): agents work in project_dir; worktree: in their own git worktree <project>/.claude/worktrees/<session> on branch agent-sessions/<session> — for two sessions on one repository or agents that commit"`
	BaseRef       string   `json:"base_ref,omitempty" jsonschema:"isolation worktree: branch, tag or commit the worktree starts from (default HEAD)"`
	WorktreeSetup []string `json:"worktree_setup,omitempty" jsonschema:"isolation worktree: argv run once in the new worktree, e.g. [npm, ci] (no shell); its failure fails the start"`
}

// StagePreview describes a stage of the plan.
type StagePreview struct {
	Name          string   `json:"name" jsonschema:"stage name"`
	Uses          string   `json:"uses,omitempty" jsonschema:"the stage definition it reuses, when named differently"`
	Completion    string   `json:"completion" jsonschema:"termination strategy: fixed-n, plateau, beads-empty or all-items"`
	MaxIterations int      `json:"max_iterations" jsonschema:"iteration limit"`
	MinIterations int      `json:"min_iterations,omitempty" jsonschema:"plateau: iterations before a plateau may end the stage"`
	Provider      string   `json:"provider" jsonschema:"agent CLI"`
	Model         string   `json:"model,omitempty" jsonschema:"model"`
	Parallel      bool     `json:"parallel,omitempty" jsonschema:"runs execute concurrently (at most 4 at once)"`
	Perspectives  []string `json:"perspectives,omitempty" jsonschema:"perspectives handed to runs as ${PERSPECTIVE}"`
	Items         int      `json:"items,omitempty" jsonschema:"all-items: number of items"`
	DelaySeconds  float64  `json:"delay_seconds,omitempty" jsonschema:"dry_run: pause between iterations"`
	TimeoutSecond int      `json:"timeout_seconds,omitempty" jsonschema:"dry_run: per-iteration timeout"`
	CheckBefore   bool     `json:"check_before,omitempty" jsonschema:"beads-empty: check for ready beads before each iteration"`
}

// StartResult is start_session's result: what Claude needs to report the
// start and act next, nothing that follows from it (every file of the
// session lives in run_dir; monitor reads them).
type StartResult struct {
	Session       string         `json:"session" jsonschema:"session name"`
	Status        string         `json:"status" jsonschema:"running once the engine holds its lock; complete or failed if it already ended; starting if it had not yet; dry_run when nothing was created"`
	Type          string         `json:"type" jsonschema:"loop (one stage) or pipeline"`
	Definition    string         `json:"definition" jsonschema:"the stage or pipeline"`
	Mode          string         `json:"mode,omitempty" jsonschema:"resume or force (a new session leaves it out)"`
	ResumeAt      string         `json:"resume_at,omitempty" jsonschema:"resume: where it continues"`
	MovedAside    string         `json:"moved_aside,omitempty" jsonschema:"force: where the previous run was moved (nothing is deleted)"`
	Worktree      string         `json:"worktree,omitempty" jsonschema:"isolation worktree: the directory the agents work in"`
	Branch        string         `json:"branch,omitempty" jsonschema:"isolation worktree: the session's branch, to review and merge when it ends"`
	BranchAside   string         `json:"branch_aside,omitempty" jsonschema:"force: the previous worktree's branch, renamed and kept with its commits"`
	RunDir        string         `json:"run_dir" jsonschema:"run directory: state.json, session.log, the progress file, stage-NN-name/iterations/NNN/output.md"`
	AttachCommand string         `json:"attach_command,omitempty" jsonschema:"command for the user to watch it live (detach with Ctrl+b d; Ctrl+C stops it)"`
	Stages        []StagePreview `json:"stages" jsonschema:"the resolved plan"`
	FirstPrompt   string         `json:"first_prompt,omitempty" jsonschema:"dry_run: the first prompt exactly as the agent would receive it"`
	Warnings      []string       `json:"warnings,omitempty" jsonschema:"things worth knowing"`
	NextSteps     []Option       `json:"next_steps" jsonschema:"calls to make next, with complete arguments"`

	// For the text and the tests, not sent: tmux_session is in the attach
	// command, the project and the progress file follow from run_dir, and
	// the engine's argv and handoff file are plumbing.
	TmuxSession   string   `json:"-"`
	ProjectDir    string   `json:"-"`
	ProgressFile  string   `json:"-"`
	EngineCommand []string `json:"-"`
	made          *workspace.Worktree
}

// StartSession is the start_session tool.
func StartSession(d *Deps) server.ServerTool {
	tool := mcp.NewTool("start_session",
		mcp.WithToolTitle("Start a session"),
		mcp.WithDescription("Start an autonomous agent session in the background, in tmux: a single stage (a loop, e.g. work or improve-plan) or a multi-stage pipeline (e.g. quick-refine). Everything is validated before anything is created (name, definition, project, agent CLI, bd). Existing names are refused with options (resume, force, another name). Use dry_run to preview the plan and the first prompt. Returns once the engine holds its lock."),
		inputSchema[StartArgs](map[string]propPatch{
			"mode":           {Enum: []any{engine.ModeNew, engine.ModeResume, engine.ModeForce}, Default: engine.ModeNew},
			"provider":       {Enum: []any{"claude", "claude-code", "codex", "command", "mock"}},
			"max_iterations": {Min: num(1), Max: num(100000)},
			"max_cost_usd":   {Min: num(0)},
			"dry_run":        {Default: false},
			"isolation":      {Enum: []any{engine.IsolationNone, engine.IsolationWorktree}, Default: engine.IsolationNone},
		}),
		outputSchema[StartResult](),
		annotations("Start a session", false, false, false, true),
	)
	return server.ServerTool{Tool: tool, Handler: typed(d.startSession)}
}

// Environment variables of nested sessions (SPEC §13).
const (
	// SessionEnv is set in every agent's environment; a server that sees
	// it runs inside an agent (Claude Code loads the user's MCP servers in
	// every iteration).
	SessionEnv = "AGENT_SESSIONS_SESSION"
	// AllowNestedEnv=1 lets such a server start sessions anyway.
	AllowNestedEnv = "AGENT_SESSIONS_ALLOW_NESTED"
)

// refuseNested stops an agent from starting sessions of its own: each one
// would run agents that can start more, without a person watching.
func (d *Deps) refuseNested() error {
	env := d.environ()
	outer := envValue(env, SessionEnv)
	if outer == "" || envValue(env, AllowNestedEnv) == "1" {
		return nil
	}
	return &ToolError{Code: CodeNotAllowed, Options: []Option{}, Message: fmt.Sprintf(
		"this server runs inside agent session %s (%s is set), and agents may not start sessions of their own; "+
			"a person who wants nested sessions sets %s=1 in this server's environment", outer, SessionEnv, AllowNestedEnv)}
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

func (d *Deps) startSession(ctx context.Context, req mcp.CallToolRequest, a StartArgs) (StartResult, string, error) {
	if !a.DryRun {
		if err := d.refuseNested(); err != nil {
			return StartResult{}, "", err
		}
	}
	if a.Mode == "" {
		a.Mode = engine.ModeNew
	}
	if a.Mode != engine.ModeNew && a.Mode != engine.ModeResume && a.Mode != engine.ModeForce {
		return StartResult{}, "", invalidf("mode %q: use new, resume or force", a.Mode)
	}
	if err := state.ValidateSession(a.Session); err != nil {
		args := startArgsMap(a)
		args["session"] = state.SuggestSession(a.Session)
		return StartResult{}, "", invalidf("%v", err).with(Option{Tool: "start_session", Arguments: args, Description: "use the suggested name"})
	}
	if _, given := req.GetArguments()["max_iterations"]; a.MaxIterations < 0 || a.MaxIterations > engine.MaxCount || (given && a.MaxIterations == 0) {
		// 0 was once taken silently as "the stage's default"; a user who
		// wrote 0 meant something else, so say what 0 cannot mean.
		without := map[string]any{"session": a.Session}
		for k, v := range map[string]string{"stage": a.Stage, "pipeline": a.Pipeline, "mode": a.Mode} {
			if v != "" {
				without[k] = v
			}
		}
		return StartResult{}, "", invalidf("max_iterations must be between 1 and %d, got %d; leave it out to use the stage's own max_iterations", engine.MaxCount, a.MaxIterations).
			with(Option{Tool: "start_session", Arguments: without, Description: "start it with the stage's own max_iterations"})
	}
	if err := checkText(a); err != nil {
		return StartResult{}, "", err
	}
	if err := guardrailArgs(a, &engine.Options{}); err != nil {
		return StartResult{}, "", err
	}
	if a.Stage != "" && a.Pipeline != "" {
		return StartResult{}, "", invalidf("give stage or pipeline, not both (stage %q, pipeline %q)", a.Stage, a.Pipeline)
	}
	if a.Stage == "" && a.Pipeline == "" && a.Mode != engine.ModeResume {
		return StartResult{}, "", invalidf("give a stage (a single-stage loop) or a pipeline to run").
			with(Option{Tool: "list", Arguments: map[string]any{"include_catalog": true}, Description: "see the stages and pipelines available"})
	}
	project, err := d.projectDir(a.ProjectDir)
	if err != nil {
		return StartResult{}, "", err
	}
	// What would make the engine die at once is refused here, where the
	// caller can still be told, not after the engine was handed over.
	if err := engine.CheckPathRoom(project); err != nil {
		return StartResult{}, "", toolError(err)
	}
	if _, err := engine.GraceFromEnv(d.environ()); err != nil {
		return StartResult{}, "", toolError(err)
	}
	tmuxErr := d.Tmux.Available()
	if tmuxErr != nil && !a.DryRun {
		return StartResult{}, "", &ToolError{Code: CodeTmuxUnavailable, Options: []Option{},
			Message: "tmux is not installed, and sessions run in tmux; " + tmux.InstallHint() + " (or run `agent-sessions run` in a terminal yourself)"}
	}
	var tmuxList []tmux.Session
	if tmuxErr == nil {
		// A list with unreadable records still holds every session it could read.
		if tmuxList, err = d.Tmux.ListSessions(ctx); err != nil && !errors.Is(err, tmux.ErrNoServer) && !errors.Is(err, tmux.ErrUnparsable) {
			return StartResult{}, "", toolError(fmt.Errorf("list tmux sessions: %w", err))
		}
	}
	info := d.inspect(project, a.Session, tmuxList)
	opts := engine.RunOptions{
		Session: a.Session, Stage: a.Stage, Pipeline: a.Pipeline, ProjectDir: project, Mode: a.Mode, Env: d.environ(),
		Compile: engine.Options{Max: a.MaxIterations, Provider: a.Provider, Model: a.Model, Context: a.Context, Inputs: a.Inputs,
			Isolation: a.Isolation, BaseRef: a.BaseRef, WorktreeSetup: a.WorktreeSetup},
	}
	if err := guardrailArgs(a, &opts.Compile); err != nil {
		return StartResult{}, "", err
	}

	var plan *engine.Plan
	res := StartResult{Session: a.Session, ProjectDir: project}
	if a.Mode != engine.ModeNew {
		res.Mode = a.Mode
	}
	switch a.Mode {
	case engine.ModeNew:
		if err := newConflict(info, a); err != nil {
			return StartResult{}, "", err
		}
		prep, err := engine.Prepare(opts)
		if err != nil {
			return StartResult{}, "", prepareError(err, a)
		}
		plan = prep.Plan
	case engine.ModeForce:
		prep, err := engine.Prepare(opts)
		if err != nil {
			return StartResult{}, "", prepareError(err, a)
		}
		plan = prep.Plan
		if info.HasRunDir && a.DryRun {
			res.Warnings = append(res.Warnings, fmt.Sprintf("starting would move the previous run of %s aside to %s.%s (the start time, UTC; nothing is deleted)",
				a.Session, info.Layout.RunDir(), d.now().UTC().Format("20060102T150405")))
		}
	case engine.ModeResume:
		plan, err = d.resumePlan(info, a)
		if err != nil {
			return StartResult{}, "", err
		}
		res.ResumeAt = fmt.Sprintf("stage %d/%d (%s), iteration %d", info.State.CurrentStage+1, len(plan.Stages),
			plan.Stages[info.State.CurrentStage].Name, info.State.IterationCompleted+1)
	}
	if err := engine.CheckSandbox(plan, d.geteuid(), d.environ()); err != nil {
		return StartResult{}, "", prepareError(err, a)
	}
	if err := checkWorktree(ctx, plan, a); err != nil {
		return StartResult{}, "", err
	}
	res.Warnings = append(res.Warnings, sharedDirWarning(project, a.Session, plan)...)
	res.Type, res.Definition = plan.Kind, plan.Name
	res.TmuxSession = state.TmuxName(a.Session, plan.Multi())
	if a.Mode == engine.ModeResume && info.State != nil && info.State.TmuxSession != "" {
		res.TmuxSession = info.State.TmuxSession
	}
	l := info.Layout
	res.RunDir = l.RunDir()
	cur := 0
	if a.Mode == engine.ModeResume {
		cur = info.State.CurrentStage
	}
	res.ProgressFile = l.Progress(len(plan.Stages), cur, plan.Stages[cur].Name)
	res.AttachCommand = strings.Join(d.Tmux.AttachCommand(res.TmuxSession, false), " ")
	for _, sp := range plan.Stages {
		p := StagePreview{Name: sp.Name, Completion: sp.Completion, MaxIterations: sp.MaxIterations,
			MinIterations: sp.MinIterations, Provider: sp.Provider, Model: sp.Model, Parallel: sp.Parallel, Perspectives: sp.Perspectives,
			Items: len(sp.Items), CheckBefore: sp.CheckBefore}
		if sp.Ref != sp.Name {
			p.Uses = sp.Ref
		}
		if sp.Provider == "mock" {
			p.Model = "" // the mock uses none
		}
		if a.DryRun {
			p.DelaySeconds, p.TimeoutSecond = sp.Delay, sp.Timeout
		}
		res.Stages = append(res.Stages, p)
	}
	if a.DryRun {
		res.EngineCommand = d.engineArgv(plan, a, project, "")
		res.Status = "dry_run"
		if tmuxErr != nil {
			res.Warnings = append(res.Warnings, "tmux is not installed: starting for real would fail; "+tmux.InstallHint())
		}
		if p, err := engine.PreviewPrompt(plan); err == nil {
			res.FirstPrompt = boundText(p, 8<<10)
		} else {
			res.Warnings = append(res.Warnings, "could not render the first prompt: "+err.Error())
		}
		res.AttachCommand = ""
		args := startArgsMap(a)
		res.NextSteps = []Option{{Tool: "start_session", Arguments: args, Description: "start it for real"}}
		return res, startText(res), nil
	}

	if err := d.clearForStart(ctx, info, a.Mode); err != nil {
		return StartResult{}, "", err
	}
	// force: the engine moves the old run aside; say where it went.
	var asideBefore map[string]bool
	if a.Mode == engine.ModeForce && info.HasRunDir {
		asideBefore = asideDirs(l.RunDir())
	}
	note, err := d.makeWorktree(ctx, plan, a, &res)
	if err != nil {
		return StartResult{}, "", err
	}
	errFile, err := os.CreateTemp("", "agent-sessions-start-*.json")
	if err != nil {
		return StartResult{}, "", toolError(err)
	}
	errFile.Close()
	defer os.Remove(errFile.Name())
	handoff := engine.Handoff{Env: engineEnv(d.environ())}
	if a.Mode != engine.ModeResume {
		handoff.Context, handoff.Inputs = a.Context, plan.Inputs
	}
	handoff.WorktreeReady, handoff.WorktreeNote = res.Worktree != "", note
	handoffFile, err := engine.WriteHandoff(handoff)
	if err != nil {
		return StartResult{}, "", toolError(err)
	}
	// The handoff holds the server's whole environment, API keys included:
	// it must not outlive this call. An engine that started has read and
	// removed it already; on every other path (tmux failed, the engine
	// never ran or died first) it goes here.
	defer os.Remove(handoffFile)
	res.EngineCommand = d.engineArgv(plan, a, project, handoffFile)
	env := []string{engine.StartErrorFileEnv + "=" + errFile.Name()}
	err = d.Tmux.NewSession(ctx, tmux.NewSessionOptions{Name: res.TmuxSession, Dir: project, Env: env, Argv: res.EngineCommand, Width: 200, Height: 50})
	if errors.Is(err, tmux.ErrSessionExists) {
		return StartResult{}, "", discardWorktree(ctx, &res, (&ToolError{Code: CodeConflictRunning, Message: fmt.Sprintf("tmux session %s already exists (another start won the race, or a hand-made session has the name)", res.TmuxSession)}).
			with(Option{Tool: "monitor", Arguments: map[string]any{"session": a.Session}, Description: "look at the session that is running"},
				Option{Tool: "list", Description: "see every session"}))
	}
	if err != nil {
		return StartResult{}, "", discardWorktree(ctx, &res, toolError(fmt.Errorf("start tmux session %s: %w", res.TmuxSession, err)))
	}
	// The engine takes its lock before it writes the new state (and, for
	// force, before it moves the old run aside): wait for state of this run.
	var previous *time.Time
	if a.Mode == engine.ModeForce && info.State != nil {
		previous = &info.State.StartedAt
	}
	status, err := d.confirmStart(ctx, l, res.TmuxSession, errFile.Name(), previous)
	if err != nil {
		return StartResult{}, "", discardWorktree(ctx, &res, err)
	}
	if status == "starting" && os.Remove(handoffFile) == nil {
		// The engine has not even read its handoff: it never ran, and now
		// that the file is gone it cannot. Close its tmux session and say
		// so, rather than report a session that will never start.
		d.Tmux.KillSession(context.WithoutCancel(ctx), res.TmuxSession)
		return StartResult{}, "", &ToolError{Code: CodeInternal, Options: []Option{},
			Message: fmt.Sprintf("the engine did not start within %s (tmux session %s never ran it); its tmux session was closed — try again, and check that %s runs", d.startTimeout(), res.TmuxSession, d.Executable)}
	}
	if asideBefore != nil {
		res.MovedAside = newAside(l.RunDir(), asideBefore)
	}
	res.Status = status
	res.NextSteps = []Option{
		{Tool: "monitor", Arguments: map[string]any{"session": a.Session, "wait": WaitIteration}, Description: "wait for the first iteration and see how it went"},
		{Tool: "kill", Arguments: map[string]any{"session": a.Session}, Description: "stop it"},
	}
	if status == "starting" {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the engine had not taken its lock after %s; check it with monitor", d.startTimeout()))
	}
	return res, startText(res), nil
}

// checkText refuses arguments holding a NUL byte, before anything is
// created: names, paths and flags reach the engine on its command line,
// where a NUL ends the C string (exec fails, or the text is cut short), and
// context becomes prompt text, which agent CLIs read as a C string too.
func checkText(a StartArgs) error {
	fields := []struct{ name, value string }{
		{"context", a.Context}, {"stage", a.Stage}, {"pipeline", a.Pipeline}, {"project_dir", a.ProjectDir},
		{"provider", a.Provider}, {"model", a.Model}, {"isolation", a.Isolation}, {"base_ref", a.BaseRef},
	}
	for i, s := range a.WorktreeSetup {
		fields = append(fields, struct{ name, value string }{fmt.Sprintf("worktree_setup[%d]", i), s})
	}
	for i, in := range a.Inputs {
		fields = append(fields, struct{ name, value string }{fmt.Sprintf("inputs[%d]", i), in})
	}
	for _, f := range fields {
		if i := strings.IndexByte(f.value, 0); i >= 0 {
			return invalidf("%s contains a NUL byte (at byte %d), which no path, command-line argument or prompt can carry; remove it", f.name, i)
		}
	}
	return nil
}

// newConflict refuses a new session whose name is taken, with the calls
// that resolve it. Options carry complete arguments: the original call's,
// with what changes.
func newConflict(info sessionInfo, a StartArgs) error {
	name := info.Name
	call := func(changes map[string]any) map[string]any {
		args := startArgsMap(a)
		for k, v := range changes {
			args[k] = v
		}
		return args
	}
	monitor := Option{Tool: "monitor", Arguments: map[string]any{"session": name}, Description: "look at it"}
	force := Option{Tool: "start_session", Arguments: call(map[string]any{"mode": "force"}), Description: "stop it and start over (the old run is moved aside, nothing is deleted)"}
	resume := Option{Tool: "start_session", Arguments: map[string]any{"session": name, "mode": "resume"}, Description: "continue where it stopped"}
	other := Option{Tool: "start_session", Arguments: call(map[string]any{"session": freeName(info.ProjectDir, name)}), Description: "use another name"}
	switch info.Live.Status {
	case "":
		if info.Lock.Exists && info.Lock.Held {
			break
		}
		return nil
	case state.LiveRunning, state.LiveStarting, state.LiveWaiting, state.LiveParked:
		return (&ToolError{Code: CodeConflictRunning, Message: fmt.Sprintf("session %s is already running (%s)", name, info.Live.Why)}).
			with(monitor, Option{Tool: "kill", Arguments: map[string]any{"session": name}, Description: "stop it"}, force, other)
	case state.LiveOrphan, state.LiveZombie:
		return (&ToolError{Code: CodeConflictRunning, Message: fmt.Sprintf("tmux session %s exists without a live engine (%s: %s)", info.tmuxName(), info.Live.Status, info.Live.Why)}).
			with(Option{Tool: "cleanup", Arguments: map[string]any{"dry_run": false, "kill_orphans": true}, Description: "close orphan and zombie tmux sessions"}, force, other)
	case state.LiveComplete:
		return (&ToolError{Code: CodeConflictComplete, Message: fmt.Sprintf("session %s already completed (%s)", name, info.State.CompletionReason)}).with(force, other)
	default:
		what := string(info.Live.Status)
		if info.State != nil && info.State.Error != "" {
			what += ": " + truncate(info.State.Error, 300)
		}
		return (&ToolError{Code: CodeConflictCrashed, Message: fmt.Sprintf("session %s exists and can be resumed (%s; stopped at iteration %d)", name, what, iterationOf(info)+1)}).
			with(resume, force, other)
	}
	return (&ToolError{Code: CodeConflictRunning, Message: fmt.Sprintf("session %s is locked by a running engine", name)}).with(monitor, force, other)
}

// startArgsMap is a start_session call's arguments as given (zero values
// left out), for options that repeat the call with a change.
func startArgsMap(a StartArgs) map[string]any {
	data, _ := json.Marshal(a)
	m := map[string]any{}
	json.Unmarshal(data, &m)
	delete(m, "dry_run")
	return m
}

func iterationOf(info sessionInfo) int {
	if info.State == nil {
		return 0
	}
	return info.State.IterationCompleted
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
// project uses, so that the option succeeds as given.
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

func prepareError(err error, a StartArgs) error {
	te := toolError(err)
	switch te.Code {
	case CodeAgentUnavailable:
		args := startArgsMap(a)
		args["provider"], args["dry_run"] = "mock", true
		delete(args, "model")
		te.with(Option{Tool: "start_session", Arguments: args, Description: "preview the same session with the built-in mock agent (no CLI needed)"})
	case CodeNotFound, CodeInvalidArgument:
		te.with(Option{Tool: "list", Arguments: map[string]any{"include_catalog": true}, Description: "see the stages and pipelines that can be started"})
	}
	return te
}

// resumePlan validates a resume: the session must exist, not be running or
// complete, and its agents must be available.
func (d *Deps) resumePlan(info sessionInfo, a StartArgs) (*engine.Plan, error) {
	name := a.Session
	switch {
	case info.Lock.Held:
		return nil, (&ToolError{Code: CodeConflictRunning, Message: fmt.Sprintf("session %s is running; there is nothing to resume", name)}).
			with(Option{Tool: "monitor", Arguments: map[string]any{"session": name}, Description: "look at it"})
	case info.State == nil && info.StateErr != nil:
		return nil, (&ToolError{Code: CodeInternal, Message: fmt.Sprintf("session %s cannot be read: %v; start it over with mode force and its stage or pipeline (the old run is moved aside)", name, info.StateErr)}).
			with(Option{Tool: "monitor", Arguments: map[string]any{"session": name}, Description: "look at what is left of it"})
	case info.State == nil:
		return nil, (&ToolError{Code: CodeNotFound, Message: fmt.Sprintf("no session %s to resume in %s; to start it new, give a stage or pipeline and no mode", name, info.ProjectDir)}).
			with(Option{Tool: "list", Arguments: map[string]any{"include_catalog": true}, Description: "see the sessions that exist and what can be started"})
	case info.State.Status == state.StatusComplete && !engine.ResumableComplete(info.State.CompletionReason):
		return nil, (&ToolError{Code: CodeConflictComplete, Message: fmt.Sprintf("session %s already completed (%s); nothing to resume", name, info.State.CompletionReason)}).
			with(Option{Tool: "start_session", Arguments: definitionArgs(name, "force", info.State), Description: "start it over (the old run is moved aside)"})
	}
	plan, err := engine.PlanFromSpec(info.State.Spec)
	if err != nil {
		return nil, toolError(err)
	}
	if (a.Stage != "" && (plan.Kind != engine.KindLoop || a.Stage != plan.Name)) || (a.Pipeline != "" && (plan.Kind != engine.KindPipeline || a.Pipeline != plan.Name)) {
		return nil, invalidf("session %s ran %s %q; resume it without stage/pipeline (or with the same one)", name, plan.Kind, plan.Name)
	}
	for i := range plan.Stages {
		if a.Provider != "" {
			plan.Stages[i].Provider = a.Provider
		}
		if a.Model != "" {
			plan.Stages[i].Model = a.Model
		}
	}
	if err := engine.CheckPlan(plan, pathOf(d.environ())); err != nil {
		return nil, prepareError(err, a)
	}
	return plan, nil
}

// definitionArgs are start_session arguments that rerun what a state ran.
func definitionArgs(name, mode string, st *state.State) map[string]any {
	args := map[string]any{"session": name, "mode": mode}
	if st.Stage != "" {
		args["stage"] = st.Stage
	} else if st.Pipeline != "" {
		args["pipeline"] = st.Pipeline
	}
	return args
}

func pathOf(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			return v
		}
	}
	return ""
}

// clearForStart makes way for the new engine's tmux session: for force it
// stops a live engine; a leftover tmux session (zombie) is closed after its
// screen is saved.
func (d *Deps) clearForStart(ctx context.Context, info sessionInfo, mode string) error {
	if mode == engine.ModeForce && info.Lock.Held {
		if err := engine.StopEngine(ctx, info.Layout, d.grace()); err != nil {
			return toolError(err)
		}
	}
	if info.Tmux == nil || mode == engine.ModeNew {
		return nil
	}
	if screen, err := d.Tmux.CapturePane(ctx, info.Tmux.Name, 2000); err == nil && info.HasRunDir {
		if _, err := os.Stat(info.Layout.FinalOutput()); errors.Is(err, os.ErrNotExist) {
			state.WriteFileAtomic(info.Layout.FinalOutput(), []byte(screen+"\n"), 0o644)
		}
	}
	// The engine is gone; give its tmux session a moment to close itself.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(25 * time.Millisecond) {
		if ok, _ := d.Tmux.HasSession(ctx, info.Tmux.Name); !ok {
			return nil
		}
	}
	if err := d.Tmux.KillSession(ctx, info.Tmux.Name); err != nil && !errors.Is(err, tmux.ErrSessionNotFound) {
		return toolError(err)
	}
	return nil
}

// engineArgv is the command tmux runs: this binary's `run`, every value a
// separate argument (tmux execs it without a shell). With a handoff file
// the context and inputs travel in it; without one (what a dry run shows,
// for a person to run by hand) they are flags.
func (d *Deps) engineArgv(plan *engine.Plan, a StartArgs, project, handoff string) []string {
	argv := []string{d.Executable, "run", "--session", a.Session}
	if plan.Kind == engine.KindLoop {
		argv = append(argv, "--stage", plan.Name)
	} else {
		ref := a.Pipeline
		if ref == "" || a.Mode == engine.ModeResume {
			ref = plan.Name
		}
		argv = append(argv, "--pipeline", ref)
	}
	argv = append(argv, "--project", project)
	if a.MaxIterations > 0 {
		argv = append(argv, "--max", strconv.Itoa(a.MaxIterations))
	}
	if a.Provider != "" {
		argv = append(argv, "--provider", a.Provider)
	}
	if a.Model != "" {
		argv = append(argv, "--model", a.Model)
	}
	argv = append(argv, guardrailFlags(a)...)
	if plan.Isolation == engine.IsolationWorktree && a.Mode != engine.ModeResume {
		argv = append(argv, "--isolation", plan.Isolation)
		if plan.BaseRef != "" {
			argv = append(argv, "--base-ref", plan.BaseRef)
		}
		if len(plan.WorktreeSetup) > 0 {
			setup, _ := json.Marshal(plan.WorktreeSetup)
			argv = append(argv, "--worktree-setup", string(setup))
		}
	}
	if handoff != "" {
		argv = append(argv, "--handoff", handoff)
	} else if a.Mode != engine.ModeResume {
		if a.Context != "" {
			argv = append(argv, "--context", a.Context)
		}
		for _, in := range plan.Inputs {
			argv = append(argv, "--input", in)
		}
	}
	switch a.Mode {
	case engine.ModeResume:
		argv = append(argv, "--resume")
	case engine.ModeForce:
		argv = append(argv, "--force")
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
// the run's state can be read (or it already finished), so that a monitor
// right after start sees the session, not a run dir without state. previous
// is the StartedAt of a run that force replaces: its state does not count.
// An engine that dies at once is reported with its own first error lines,
// never as started.
func (d *Deps) confirmStart(ctx context.Context, l state.Layout, tmuxName, errFile string, previous *time.Time) (string, error) {
	deadline := time.Now().Add(d.startTimeout())
	for {
		if ls, _ := state.ProbeLock(l.LockFile()); ls.Held {
			if st, _, err := state.Load(l); err == nil && (previous == nil || !st.StartedAt.Equal(*previous)) {
				return state.StatusRunning, nil
			}
		}
		alive, _ := d.Tmux.HasSession(ctx, tmuxName)
		if !alive {
			// An engine that said why it could not start did not start,
			// whatever state is there: it may be another start's, one that
			// ran and finished before this one's tmux session could exist.
			if err := reportedFailure(errFile); err != nil {
				return "", err
			}
			// Did it run and finish already, or die at once?
			if ls, _ := state.ProbeLock(l.LockFile()); ls.Held {
				return state.StatusRunning, nil
			}
			if st, _, err := state.Load(l); err == nil && (previous == nil || !st.StartedAt.Equal(*previous)) &&
				(state.Terminal(st.Status) || st.Status == state.StatusRunning) {
				if st.Status == state.StatusFailed {
					return "", &ToolError{Code: CodeInternal, Options: []Option{}, Message: fmt.Sprintf("the engine started but the session failed at once: %s", truncate(st.Error, 2000))}
				}
				return st.Status, nil
			}
			return "", exitedAtOnce(l)
		}
		if time.Now().After(deadline) {
			return "starting", nil
		}
		select {
		case <-ctx.Done():
			return "", toolError(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// reportedFailure is the failure an engine wrote to its start-error file,
// or nil when it wrote none.
func reportedFailure(errFile string) error {
	err := engine.ReadStartFailure(errFile)
	if err == nil {
		return nil
	}
	te := toolError(err)
	te.Message = "the engine could not start: " + err.Error()
	return te
}

// exitedAtOnce is the answer for an engine that left no start-error file
// (checked above, once its tmux session was gone) and no state: its log's
// last lines.
func exitedAtOnce(l state.Layout) error {
	msg := "the engine exited at once without saying why"
	if data, err := os.ReadFile(l.LogFile()); err == nil && len(data) > 0 {
		tail, _ := tailText(string(data), 4000)
		msg += "; last lines of " + filepath.Base(l.LogFile()) + ":\n" + tail
	}
	return &ToolError{Code: CodeInternal, Options: []Option{}, Message: msg}
}

func startText(r StartResult) string {
	var b strings.Builder
	if r.Status == "dry_run" {
		fmt.Fprintf(&b, "Dry run — nothing was created. Session %s would run %s %s in tmux session %s:\n", r.Session, r.Type, r.Definition, r.TmuxSession)
	} else {
		verb := "Started"
		if r.Mode == engine.ModeResume {
			verb = "Resumed (at " + r.ResumeAt + ")"
		}
		fmt.Fprintf(&b, "%s session %s: %s %s in tmux session %s (status %s).\n", verb, r.Session, r.Type, r.Definition, r.TmuxSession, r.Status)
	}
	for i, s := range r.Stages {
		fmt.Fprintf(&b, "  %d. %s: %s, up to %d iterations, %s/%s", i+1, s.Name, s.Completion, s.MaxIterations, s.Provider, s.Model)
		if s.Parallel {
			b.WriteString(", parallel")
		}
		b.WriteString("\n")
	}
	if r.Status != "dry_run" {
		fmt.Fprintf(&b, "Run dir: %s\nWatch live (the user, in a terminal): %s — detach with Ctrl+b d, never Ctrl+C\n", r.RunDir, r.AttachCommand)
	}
	if r.Worktree != "" {
		fmt.Fprintf(&b, "Worktree: %s on branch %s (review with git log %s; merge it when the session ends).\n", r.Worktree, r.Branch, r.Branch)
	}
	if r.BranchAside != "" {
		fmt.Fprintf(&b, "The previous worktree's branch was kept as %s.\n", r.BranchAside)
	}
	if r.MovedAside != "" {
		fmt.Fprintf(&b, "The previous run was moved aside to %s (nothing was deleted).\n", r.MovedAside)
	}
	for _, n := range r.NextSteps {
		fmt.Fprintf(&b, "Next: %s\n", callText(n))
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "Warning: %s\n", w)
	}
	if r.FirstPrompt != "" {
		fmt.Fprintf(&b, "First prompt:\n%s\n", r.FirstPrompt)
	}
	return strings.TrimRight(b.String(), "\n")
}
