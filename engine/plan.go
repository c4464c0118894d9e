package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// PlanVersion is the version of the Plan stored in state.json's spec.
const PlanVersion = 1

// Kinds of session.
const (
	KindLoop     = "loop"
	KindPipeline = "pipeline"
)

// Plan is a fully resolved session: what to run, stage by stage. It is
// stored in state.json (spec) so a resumed session runs exactly what was
// started, whatever happened to the definitions since.
type Plan struct {
	Version int    `json:"version"`
	Session string `json:"session"`
	Kind    string `json:"kind"`
	Name    string `json:"name"`   // the stage or pipeline
	Source  string `json:"source"` // where the definition was found
	File    string `json:"file"`
	// ProjectDir is the control directory: the project whose .claude/
	// holds the session's run directory, lock and worktree, and whose
	// definitions and inputs the plan was compiled from. The agents work
	// in the Runner's Workspace (under isolation worktree, inside
	// Worktree) — never assume that is ProjectDir.
	ProjectDir string      `json:"project_dir"`
	Context    string      `json:"context,omitempty"`
	Inputs     []string    `json:"inputs,omitempty"` // absolute paths
	Stages     []StagePlan `json:"stages"`
	// Isolation is "" (none) or worktree (SPEC §16); Worktree and Branch
	// are recorded once the engine has the worktree, for list, monitor
	// and resume.
	Isolation     string   `json:"isolation,omitempty"`
	BaseRef       string   `json:"base_ref,omitempty"`
	WorktreeSetup []string `json:"worktree_setup,omitempty"`
	Worktree      string   `json:"worktree,omitempty"`
	Branch        string   `json:"branch,omitempty"`
}

// StagePlan is one resolved stage.
type StagePlan struct {
	Name          string      `json:"name"`
	Ref           string      `json:"ref,omitempty"` // the stage definition reused, if any
	Description   string      `json:"description,omitempty"`
	Completion    string      `json:"completion"`
	MaxIterations int         `json:"max_iterations"`
	MinIterations int         `json:"min_iterations,omitempty"`
	Delay         float64     `json:"delay"`
	Timeout       int         `json:"timeout"`
	CheckBefore   bool        `json:"check_before,omitempty"`
	Provider      string      `json:"provider"`
	Model         string      `json:"model"`
	Command       []string    `json:"command,omitempty"`
	Prompt        string      `json:"prompt"`
	PromptFile    string      `json:"prompt_file,omitempty"`
	Perspectives  []string    `json:"perspectives,omitempty"`
	Items         []string    `json:"items,omitempty"`
	Parallel      bool        `json:"parallel,omitempty"`
	OutputParse   OutputParse `json:"output_parse"`
	// Guardrails (SPEC §15): MaxCostUSD caps the session's spend while
	// this stage runs (0: none); MaxRuntime the session's wall-clock time
	// since it started (0: none); MaxPark its time parked in all.
	MaxCostUSD float64       `json:"max_cost_usd,omitempty"`
	MaxRuntime time.Duration `json:"max_runtime,omitempty"`
	MaxPark    time.Duration `json:"max_park,omitempty"`

	// budgetLeft is what remains of MaxCostUSD for this iteration, handed
	// to the claude CLI as --max-budget-usd (0: no flag). Not stored.
	budgetLeft float64
}

// Multi reports whether the plan has more than one stage, which is what
// state.TmuxName and state.Layout.Progress are told.
func (p *Plan) Multi() bool { return len(p.Stages) > 1 }

// Options tailor a compiled plan.
type Options struct {
	Max      int      // caps iterations (loops: the count; pipelines: each stage's runs)
	Provider string   // overrides every stage's provider
	Model    string   // overrides every stage's model
	AgentCmd []string // argv for the command provider; implies provider command
	Context  string
	Inputs   []string // files; resolved against the project directory
	// Guardrails for every stage, over what the definitions say.
	MaxCostUSD *float64
	MaxRuntime time.Duration
	MaxPark    time.Duration
	// Isolation, BaseRef and WorktreeSetup override the definition's.
	Isolation     string
	BaseRef       string
	WorktreeSetup []string
}

// CompileStage compiles a single-stage session.
func (c *Catalog) CompileStage(session, name string, o Options) (*Plan, error) {
	s, err := c.Stage(name)
	if err != nil {
		return nil, err
	}
	return c.CompileStageDef(session, s, o)
}

// CompileStageDef compiles a single-stage session from a loaded stage.
func (c *Catalog) CompileStageDef(session string, s *Stage, o Options) (*Plan, error) {
	inputs, err := c.resolveInputs(o.Inputs)
	if err != nil {
		return nil, err
	}
	sp, ps := stagePlan(s, nil, StageDefaults{}, o)
	for i := range ps {
		// The stage's own file is where its plan problems live (they were
		// printed with an empty location, ": stage x: …").
		if ps[i].File == "" {
			ps[i].File = s.File
		}
	}
	ps = append(ps, CheckTemplate(s.PromptFile, 0, sp.Prompt, nil)...)
	if len(ps) > 0 {
		return nil, ps
	}
	return &Plan{Version: PlanVersion, Session: session, Kind: KindLoop, Name: s.Name, Source: s.Source, File: s.File,
		ProjectDir: c.ProjectDir, Context: o.Context, Inputs: inputs, Stages: []StagePlan{sp},
		Isolation: s.Isolation, BaseRef: s.BaseRef, WorktreeSetup: s.WorktreeSetup}, nil
}

// CompilePipeline compiles a pipeline (by name or path).
func (c *Catalog) CompilePipeline(session, ref string, o Options) (*Plan, error) {
	pl, err := c.Pipeline(ref)
	if err != nil {
		return nil, err
	}
	inputs, err := c.resolveInputs(o.Inputs)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Version: PlanVersion, Session: session, Kind: KindPipeline, Name: pl.Name, Source: pl.Source, File: pl.File,
		ProjectDir: c.ProjectDir, Context: o.Context, Inputs: inputs,
		Isolation: pl.Isolation, BaseRef: pl.BaseRef, WorktreeSetup: pl.WorktreeSetup}
	var problems Problems
	var earlier []string
	for i := range pl.Stages {
		ps := &pl.Stages[i]
		var def *Stage
		if ps.Stage != "" {
			def, err = c.Stage(ps.Stage)
			if err != nil {
				if sub, ok := AsProblems(err); ok {
					problems = append(problems, sub...)
				} else {
					problems = append(problems, Problem{File: pl.File, Line: ps.Line, Msg: fmt.Sprintf("stages[%d] (%s): %s", i, ps.Name, strings.TrimPrefix(err.Error(), ErrNotFound.Error()+": "))})
				}
				continue
			}
		}
		sp, sub := stagePlan(def, ps, pl.Defaults, o)
		for _, p := range sub {
			if p.File == "" {
				p.File, p.Line = pl.File, ps.Line
			}
			problems = append(problems, p)
		}
		file, offset := sp.PromptFile, 0
		if ps.Prompt != "" {
			file, offset = pl.File, ps.Line
		}
		problems = append(problems, CheckTemplate(file, offset, sp.Prompt, earlier)...)
		earlier = append(earlier, sp.Name)
		plan.Stages = append(plan.Stages, sp)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return plan, nil
}

// stagePlan resolves one stage. Precedence, most specific first: the
// session's options, the pipeline's entry, the pipeline's defaults, the
// stage definition, the built-in defaults. Problems carry no file when they
// belong to the pipeline entry (the caller fills it in).
func stagePlan(def *Stage, ps *PipelineStage, defaults StageDefaults, o Options) (StagePlan, Problems) {
	if def == nil {
		def = &Stage{}
	}
	if ps == nil {
		ps = &PipelineStage{}
	}
	sp := resolveStage(def, ps, defaults, o)
	sp.MaxIterations = maxIterations(sp, def, ps, o)
	if sp.MinIterations > sp.MaxIterations {
		sp.MinIterations = sp.MaxIterations
	}
	return sp, checkStagePlan(sp)
}

// resolveStage takes each setting of a stage from the most specific place
// that gives it (see stagePlan); the iteration limit is maxIterations'.
func resolveStage(def *Stage, ps *PipelineStage, defaults StageDefaults, o Options) StagePlan {
	sp := StagePlan{
		Name:          first(ps.Name, def.Name),
		Description:   first(ps.Description, def.Description),
		Completion:    first(ps.Completion, def.Completion),
		MinIterations: firstInt(ps.MinIterations, def.MinIterations),
		Timeout:       firstInt(ps.Timeout, def.Timeout, DefaultTimeout),
		CheckBefore:   def.CheckBefore,
		Provider:      first(o.Provider, ps.Provider, defaults.Provider, def.Provider),
		Model:         first(o.Model, ps.Model, defaults.Model, def.Model, DefaultModel),
		Command:       firstList(o.AgentCmd, ps.Command, defaults.Command, def.Command),
		Prompt:        first(ps.Prompt, def.PromptText),
		PromptFile:    def.PromptFile,
		Perspectives:  ps.Perspectives,
		Items:         firstList(ps.Items, def.Items),
		Parallel:      ps.Parallel,
	}
	if ps.Stage != "" {
		sp.Ref = ps.Stage
	}
	if sp.Provider == "" {
		sp.Provider = DefaultProvider
		if len(o.AgentCmd) > 0 {
			sp.Provider = ProviderCommand
		}
	}
	sp.Provider = canonicalProvider(sp.Provider)
	if sp.Completion == "" {
		sp.Completion = CompletionFixedN
	}
	sp.Delay = DefaultDelay
	if d := firstFloat(ps.Delay, def.Delay); d != nil {
		sp.Delay = *d
	}
	sp.OutputParse, _ = parseOutputParse(def.OutputParse)
	if c := firstFloat(o.MaxCostUSD, ps.MaxCostUSD, defaults.MaxCostUSD, def.MaxCostUSD); c != nil {
		sp.MaxCostUSD = *c
	}
	sp.MaxRuntime = firstDuration(o.MaxRuntime, ps.MaxRuntime, defaults.MaxRuntime, def.MaxRuntime)
	sp.MaxPark = firstDuration(o.MaxPark, ps.MaxPark, defaults.MaxPark, def.MaxPark)
	return sp
}

// maxIterations is a stage's iteration limit: one per item of an
// all-items stage, else the pipeline entry's runs or perspectives, the
// definition's limit, one for an inline prompt, the default — capped (or,
// for a loop, set) by --max.
func maxIterations(sp StagePlan, def *Stage, ps *PipelineStage, o Options) int {
	var n int
	switch {
	case sp.Completion == CompletionAllItems:
		n = len(sp.Items)
	case ps.Runs > 0:
		n = ps.Runs
	case len(ps.Perspectives) > 0:
		n = len(ps.Perspectives)
	case def.MaxIterations > 0:
		n = def.MaxIterations
	case ps.Prompt != "":
		n = 1
	default:
		n = DefaultMaxIterations
	}
	if o.Max > 0 {
		// A loop takes --max as its count; a pipeline's stages and an
		// all-items stage are only capped by it.
		loop := ps.Name == "" && sp.Completion != CompletionAllItems
		if loop || o.Max < n {
			n = o.Max
		}
	}
	return n
}

// checkStagePlan reports what makes a resolved stage impossible to run.
func checkStagePlan(sp StagePlan) Problems {
	var problems Problems
	where := func(format string, args ...any) {
		problems = append(problems, Problem{Msg: fmt.Sprintf("stage %s: ", sp.Name) + fmt.Sprintf(format, args...)})
	}
	if sp.Completion == CompletionAllItems && len(sp.Items) == 0 {
		where("completion all-items needs a non-empty items: list")
	}
	if sp.Parallel && sp.Completion != CompletionFixedN && sp.Completion != CompletionAllItems {
		where("parallel: true runs a fixed number of runs at once, so completion must be fixed-n or all-items (got %s); set completion: fixed-n", sp.Completion)
	}
	if sp.Provider == ProviderCommand && len(sp.Command) == 0 {
		where("provider command needs command: (an argv list) in the stage or pipeline, or --agent-cmd")
	}
	if !knownProvider(sp.Provider) {
		where("provider %q is not a provider (use one of %s)", sp.Provider, strings.Join(ProviderNames(), ", "))
	}
	if strings.TrimSpace(sp.Prompt) == "" {
		where("has no prompt")
	}
	return problems
}

// resolveInputs makes input files absolute and insists they are readable
// files inside the project directory (after resolving symlinks), so a
// session can never be pointed at /etc/shadow or another user's home.
func (c *Catalog) resolveInputs(inputs []string) ([]string, error) {
	if len(inputs) == 0 {
		return nil, nil
	}
	projectReal, err := filepath.EvalSymlinks(c.ProjectDir)
	if err != nil {
		return nil, fmt.Errorf("%w: project directory %s: %w", ErrInvalid, c.ProjectDir, err)
	}
	out := make([]string, 0, len(inputs))
	for _, in := range inputs {
		if strings.TrimSpace(in) == "" {
			return nil, fmt.Errorf("%w: an input path is empty; give a path to a file inside %s", ErrInvalid, c.ProjectDir)
		}
		p := in
		if !filepath.IsAbs(p) {
			p = filepath.Join(c.ProjectDir, p)
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, fmt.Errorf("%w: input file %s: %w; give a path to a file inside %s", ErrInvalid, in, fileProblem(err), c.ProjectDir)
		}
		rel, err := filepath.Rel(projectReal, real)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return nil, fmt.Errorf("%w: input file %s is outside the project directory %s; copy it into the project first", ErrInvalid, in, c.ProjectDir)
		}
		info, err := os.Stat(real)
		if err != nil || !info.Mode().IsRegular() {
			what := "not a regular file"
			if err == nil && info.IsDir() {
				what = "a directory, not a file"
			}
			return nil, fmt.Errorf("%w: input %s is %s; give a path to a file inside %s", ErrInvalid, in, what, c.ProjectDir)
		}
		out = append(out, p)
	}
	return out, nil
}

// MarshalSpec encodes the plan for state.json.
func (p *Plan) MarshalSpec() json.RawMessage {
	b, err := json.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("engine: marshal plan: %v", err))
	}
	return b
}

// PlanFromSpec decodes a plan stored in state.json.
func PlanFromSpec(spec json.RawMessage) (*Plan, error) {
	if len(spec) == 0 {
		return nil, fmt.Errorf("%w: state has no spec to resume from", ErrInvalid)
	}
	var p Plan
	if err := json.Unmarshal(spec, &p); err != nil {
		return nil, fmt.Errorf("%w: state spec unreadable: %w", ErrInvalid, err)
	}
	if p.Version != PlanVersion || len(p.Stages) == 0 {
		return nil, fmt.Errorf("%w: state spec version %d with %d stages cannot be resumed by this build", ErrInvalid, p.Version, len(p.Stages))
	}
	return &p, nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func firstInt(vals ...int) int {
	for _, v := range vals {
		if v != 0 {
			return v
		}
	}
	return 0
}

func firstFloat(vals ...*float64) *float64 {
	for _, v := range vals {
		if v != nil {
			return v
		}
	}
	return nil
}

func firstDuration(vals ...time.Duration) time.Duration {
	for _, v := range vals {
		if v != 0 {
			return v
		}
	}
	return 0
}

func firstList(vals ...[]string) []string {
	for _, v := range vals {
		if len(v) > 0 {
			return v
		}
	}
	return nil
}
