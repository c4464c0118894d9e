package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/state"
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

// Environment variables of nested sessions (SPEC §13): see sessions.
const (
	SessionEnv     = sessions.SessionEnv
	AllowNestedEnv = sessions.AllowNestedEnv
)

func (d *Deps) startSession(ctx context.Context, req mcp.CallToolRequest, a StartArgs) (StartResult, string, error) {
	if a.Mode == "" {
		a.Mode = engine.ModeNew
	}
	if err := checkStart(req, a); err != nil {
		return StartResult{}, "", err
	}
	started, err := d.host().Start(ctx, startRequest(a))
	if err != nil {
		return StartResult{}, "", startError(err, a)
	}
	res := startResult(started, a)
	return res, startText(res), nil
}

// checkStart refuses start_session arguments that cannot make a start,
// each with what to give instead.
func checkStart(req mcp.CallToolRequest, a StartArgs) error {
	if a.Mode != engine.ModeNew && a.Mode != engine.ModeResume && a.Mode != engine.ModeForce {
		return invalidf("mode %q: use new, resume or force", a.Mode)
	}
	if err := state.ValidateSession(a.Session); err != nil {
		args := startArgsMap(a)
		args["session"] = state.SuggestSession(a.Session)
		return invalidf("%v", err).with(Option{Tool: "start_session", Arguments: args, Description: "use the suggested name"})
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
		return invalidf("max_iterations must be between 1 and %d, got %d; leave it out to use the stage's own max_iterations", engine.MaxCount, a.MaxIterations).
			with(Option{Tool: "start_session", Arguments: without, Description: "start it with the stage's own max_iterations"})
	}
	if err := checkText(a); err != nil {
		return err
	}
	if err := checkGuardrails(a); err != nil {
		return err
	}
	if a.Stage != "" && a.Pipeline != "" {
		return invalidf("give stage or pipeline, not both (stage %q, pipeline %q)", a.Stage, a.Pipeline)
	}
	if a.Stage == "" && a.Pipeline == "" && a.Mode != engine.ModeResume {
		return invalidf("give a stage (a single-stage loop) or a pipeline to run").
			with(Option{Tool: "list", Arguments: map[string]any{"include_catalog": true}, Description: "see the stages and pipelines available"})
	}
	return nil
}

// startRequest is the Host's request for start_session's arguments.
func startRequest(a StartArgs) sessions.StartRequest {
	return sessions.StartRequest{Session: a.Session, Stage: a.Stage, Pipeline: a.Pipeline, MaxIterations: a.MaxIterations,
		ProjectDir: a.ProjectDir, Mode: a.Mode, Provider: a.Provider, Model: a.Model, Context: a.Context, Inputs: a.Inputs,
		DryRun: a.DryRun, MaxCostUSD: a.MaxCostUSD, MaxRuntime: a.MaxRuntime, Isolation: a.Isolation, BaseRef: a.BaseRef,
		WorktreeSetup: a.WorktreeSetup}
}

// startResult shapes what the Host started (or previewed).
func startResult(st sessions.Started, a StartArgs) StartResult {
	res := StartResult{Session: st.Session, Status: st.Status, Type: st.Plan.Kind, Definition: st.Plan.Name, ResumeAt: st.ResumeAt,
		MovedAside: st.MovedAside, Worktree: st.Worktree, Branch: st.Branch, BranchAside: st.BranchAside, RunDir: st.RunDir,
		AttachCommand: strings.Join(st.AttachCommand, " "), Warnings: st.Warnings, TmuxSession: st.TmuxSession,
		ProjectDir: st.ProjectDir, ProgressFile: st.ProgressFile, EngineCommand: st.EngineCommand}
	if a.Mode != engine.ModeNew {
		res.Mode = a.Mode
	}
	for _, sp := range st.Plan.Stages {
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
	if st.Status == sessions.StatusDryRun {
		if st.FirstPrompt != "" {
			res.FirstPrompt = sessions.BoundText(st.FirstPrompt, 8<<10)
		}
		res.NextSteps = []Option{{Tool: "start_session", Arguments: startArgsMap(a), Description: "start it for real"}}
		return res
	}
	res.NextSteps = []Option{
		{Tool: "monitor", Arguments: map[string]any{"session": a.Session, "wait": WaitIteration}, Description: "wait for the first iteration and see how it went"},
		{Tool: "kill", Arguments: map[string]any{"session": a.Session}, Description: "stop it"},
	}
	return res
}

// startError is a failed start's answer: the Host's error with its code,
// and the options that repeat this call with a change.
func startError(err error, a StartArgs) error {
	var (
		kept     *sessions.KeptWorktreeError
		conflict *sessions.ConflictError
		plan     *sessions.PlanError
		wt       *sessions.WorktreeError
	)
	switch {
	case errors.As(err, &kept):
		te := toolError(startError(kept.Err, a))
		te.Message += fmt.Sprintf(" (its worktree %s was kept: %v)", kept.Dir, kept.Why)
		return te
	case errors.As(err, &conflict):
		return newConflict(conflict, a)
	case errors.As(err, &plan):
		return prepareError(plan.Err, a)
	case errors.As(err, &wt):
		args := startArgsMap(a)
		delete(args, "isolation")
		delete(args, "base_ref")
		delete(args, "worktree_setup")
		return invalidf("%v", wt).
			with(Option{Tool: "start_session", Arguments: args, Description: "run it in the project directory itself (no isolation)"})
	}
	return toolError(err)
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

// newConflict answers a start whose session's name is taken, with the
// calls that resolve it. Options carry complete arguments: the original
// call's, with what changes.
func newConflict(c *sessions.ConflictError, a StartArgs) *ToolError {
	te := conflictError(c)
	name := c.Session
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
	other := Option{Tool: "start_session", Arguments: call(map[string]any{"session": c.FreeName}), Description: "use another name"}
	switch c.Reason {
	case sessions.ConflictRunning:
		return te.with(monitor, Option{Tool: "kill", Arguments: map[string]any{"session": name}, Description: "stop it"}, force, other)
	case sessions.ConflictLeftover:
		return te.with(Option{Tool: "cleanup", Arguments: map[string]any{"dry_run": false, "kill_orphans": true}, Description: "close orphan and zombie tmux sessions"}, force, other)
	case sessions.ConflictComplete:
		return te.with(force, other)
	case sessions.ConflictResumable:
		return te.with(resume, force, other)
	case sessions.ConflictLocked:
		return te.with(monitor, force, other)
	}
	return te
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

func startText(r StartResult) string {
	var b strings.Builder
	if r.Status == sessions.StatusDryRun {
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
	if r.Status != sessions.StatusDryRun {
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
