package engine

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/agent-sessions/agent-sessions/state"
)

// Completion strategies (SPEC §8).
const (
	CompletionFixedN     = "fixed-n"
	CompletionPlateau    = "plateau"
	CompletionBeadsEmpty = "beads-empty"
	CompletionAllItems   = "all-items"
)

var completions = []string{CompletionFixedN, CompletionPlateau, CompletionBeadsEmpty, CompletionAllItems}

// Defaults of a stage definition.
const (
	DefaultModel         = "opus"
	DefaultProvider      = "claude"
	DefaultDelay         = 3.0
	DefaultMaxIterations = 25
	DefaultTimeout       = 3600
	// MaxParallel bounds how many runs of a parallel stage run at once.
	MaxParallel = 4
	// MaxCount bounds max_iterations, min_iterations and runs in YAML (as
	// start_session's schema bounds max_iterations): a parallel stage
	// lists its runs up front, so runs: 1e12 would exhaust memory.
	MaxCount = 100000
	// MaxSeconds bounds timeout and delay: seconds that still fit a
	// time.Duration (about 292 years); more would overflow into a
	// negative duration, that is no timeout and no delay.
	MaxSeconds = int(math.MaxInt64 / int64(time.Second))
)

// definitionName is what stage and pipeline names may look like: they
// become directory names and are looked up on disk, so no path syntax.
// Letters, digits, '.', '_' and '-', starting with a letter or digit, at
// most 64 characters.
func definitionName(name string) bool {
	return state.MatchName(name, 64, state.Letters+"0123456789", state.Letters+"0123456789._-")
}

// ValidateDefinitionName reports whether name can name a stage or pipeline.
func ValidateDefinitionName(kind, name string) error {
	if definitionName(name) && !strings.Contains(name, "..") {
		return nil
	}
	return fmt.Errorf("%w: %s name %q: use letters, digits, '.', '_' and '-' (no slashes, at most 64 characters)", ErrInvalid, kind, truncate(name, 60))
}

// Stage is a stage definition: stage.yaml (or loop.yaml) and its prompt.
type Stage struct {
	Name          string   `json:"name"`
	Description   string   `json:"description"`
	Completion    string   `json:"completion"`
	Model         string   `json:"model,omitempty"`
	Provider      string   `json:"provider,omitempty"`
	Delay         *float64 `json:"delay,omitempty"`
	CheckBefore   bool     `json:"check_before,omitempty"`
	OutputParse   string   `json:"output_parse,omitempty"`
	MinIterations int      `json:"min_iterations,omitempty"`
	Items         []string `json:"items,omitempty"`
	Prompt        string   `json:"prompt,omitempty"`
	MaxIterations int      `json:"max_iterations,omitempty"`
	Timeout       int      `json:"timeout,omitempty"`
	Command       []string `json:"command,omitempty"`
	// Guardrails (SPEC §15): a spending cap, a wall-clock cap and how long
	// the session may stay parked in all.
	MaxCostUSD *float64      `json:"max_cost_usd,omitempty"`
	MaxRuntime time.Duration `json:"max_runtime,omitempty"`
	MaxPark    time.Duration `json:"max_park,omitempty"`
	IsolationDef

	// PromptText is the template, read from prompt.md or prompts/<prompt>.md.
	PromptText string `json:"-"`
	// PromptFile is where PromptText came from.
	PromptFile string `json:"-"`
	// File is the stage.yaml path; Source says which catalog root held it.
	File   string `json:"-"`
	Source string `json:"-"`
}

// ParseStage parses stage.yaml content. file names it in problems. The
// prompt is not read here (see Catalog).
func ParseStage(file string, data []byte) (*Stage, error) {
	d := &decoder{file: file}
	root := d.parseDocument(data)
	if root == nil {
		return nil, d.problems
	}
	s := &Stage{File: file}
	seen := d.mapping(root, "stage", []field{
		{"name", str(&s.Name, "name")},
		{"description", str(&s.Description, "description")},
		{"completion", str(&s.Completion, "completion")},
		{"model", str(&s.Model, "model")},
		{"provider", str(&s.Provider, "provider")},
		{"delay", seconds(&s.Delay, "delay")},
		{"check_before", boolean(&s.CheckBefore, "check_before")},
		{"output_parse", str(&s.OutputParse, "output_parse")},
		{"min_iterations", integer(&s.MinIterations, "min_iterations", 0, MaxCount)},
		{"items", strList(&s.Items, "items")},
		{"prompt", str(&s.Prompt, "prompt")},
		{"max_iterations", integer(&s.MaxIterations, "max_iterations", 1, MaxCount)},
		{"timeout", integer(&s.Timeout, "timeout", 1, MaxSeconds)},
		{"command", argv(&s.Command, "command")},
		{"max_cost_usd", optDollars(&s.MaxCostUSD, "max_cost_usd")},
		{"max_runtime", duration(&s.MaxRuntime, "max_runtime")},
		{"max_park", duration(&s.MaxPark, "max_park")},
		isolationField(&s.IsolationDef), baseRefField(&s.IsolationDef), setupField(&s.IsolationDef),
	})
	d.checkIsolation(seen, s.IsolationDef)
	if n, ok := seen["completion"]; ok && s.Completion != "" && !slices.Contains(completions, s.Completion) {
		d.addf(n, "completion: %q is not a strategy (use one of %s)", s.Completion, strings.Join(completions, ", "))
	}
	if s.Completion == "" && len(d.problems) == 0 {
		d.addf(root, "completion: missing (use one of %s)", strings.Join(completions, ", "))
	}
	if n, ok := seen["provider"]; ok && s.Provider != "" && !knownProvider(s.Provider) {
		d.addf(n, "provider: %q is not a provider (use one of %s)", s.Provider, strings.Join(ProviderNames(), ", "))
	}
	if n, ok := seen["output_parse"]; ok {
		if _, err := parseOutputParse(s.OutputParse); err != nil {
			d.addf(n, "output_parse: %v", err)
		}
	}
	if n, ok := seen["name"]; ok && s.Name != "" {
		if err := ValidateDefinitionName("stage", s.Name); err != nil {
			d.addf(n, "name: %v", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
		}
	}
	if s.Completion == CompletionAllItems && len(s.Items) == 0 {
		d.addf(root, "completion all-items needs a non-empty items: list")
	}
	if s.MaxIterations > 0 && s.MinIterations > s.MaxIterations {
		d.addf(seen["min_iterations"], "min_iterations (%d) is greater than max_iterations (%d)", s.MinIterations, s.MaxIterations)
	}
	if len(d.problems) > 0 {
		return nil, d.problems
	}
	return s, nil
}

// Pipeline is a multi-stage definition.
type Pipeline struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Version     string          `json:"version,omitempty"`
	Defaults    StageDefaults   `json:"defaults"`
	Stages      []PipelineStage `json:"stages"`
	IsolationDef

	// File is where it was read from; Source says which catalog root held it.
	File   string `json:"-"`
	Source string `json:"-"`
	// Raw is the file content, copied into the run directory.
	Raw []byte `json:"-"`
}

// StageDefaults are a pipeline's defaults for its stages.
type StageDefaults struct {
	Provider   string        `json:"provider,omitempty"`
	Model      string        `json:"model,omitempty"`
	Command    []string      `json:"command,omitempty"`
	MaxCostUSD *float64      `json:"max_cost_usd,omitempty"`
	MaxRuntime time.Duration `json:"max_runtime,omitempty"`
	MaxPark    time.Duration `json:"max_park,omitempty"`
}

// PipelineStage is one entry of a pipeline's stages list.
type PipelineStage struct {
	Name          string        `json:"name"`
	Description   string        `json:"description,omitempty"`
	Stage         string        `json:"stage,omitempty"` // a stage definition to reuse ("loop" is an alias)
	Prompt        string        `json:"prompt,omitempty"`
	Runs          int           `json:"runs,omitempty"`
	Model         string        `json:"model,omitempty"`
	Provider      string        `json:"provider,omitempty"`
	Command       []string      `json:"command,omitempty"`
	Completion    string        `json:"completion,omitempty"`
	MinIterations int           `json:"min_iterations,omitempty"`
	Perspectives  []string      `json:"perspectives,omitempty"`
	Parallel      bool          `json:"parallel,omitempty"`
	Delay         *float64      `json:"delay,omitempty"`
	Items         []string      `json:"items,omitempty"`
	Timeout       int           `json:"timeout,omitempty"`
	MaxCostUSD    *float64      `json:"max_cost_usd,omitempty"`
	MaxRuntime    time.Duration `json:"max_runtime,omitempty"`
	MaxPark       time.Duration `json:"max_park,omitempty"`

	// Line is where the entry starts in the file, for problems.
	Line int `json:"-"`
}

// ParsePipeline parses a pipeline YAML file.
func ParsePipeline(file string, data []byte) (*Pipeline, error) {
	d := &decoder{file: file}
	root := d.parseDocument(data)
	if root == nil {
		return nil, d.problems
	}
	p := &Pipeline{File: file, Raw: data}
	seen := d.mapping(root, "pipeline", []field{
		{"name", str(&p.Name, "name")},
		{"description", str(&p.Description, "description")},
		{"version", str(&p.Version, "version")},
		{"defaults", func(d *decoder, n *yaml.Node) {
			d.mapping(n, "defaults", []field{
				{"provider", str(&p.Defaults.Provider, "defaults.provider")},
				{"model", str(&p.Defaults.Model, "defaults.model")},
				{"command", argv(&p.Defaults.Command, "defaults.command")},
				{"max_cost_usd", optDollars(&p.Defaults.MaxCostUSD, "defaults.max_cost_usd")},
				{"max_runtime", duration(&p.Defaults.MaxRuntime, "defaults.max_runtime")},
				{"max_park", duration(&p.Defaults.MaxPark, "defaults.max_park")},
			})
		}},
		{"stages", func(d *decoder, n *yaml.Node) {
			if n.Kind != yaml.SequenceNode {
				d.addf(n, "stages: expected a list of stages, got %s", kindName(n))
				return
			}
			for i, sn := range n.Content {
				p.Stages = append(p.Stages, d.pipelineStage(i, sn))
			}
		}},
		isolationField(&p.IsolationDef), baseRefField(&p.IsolationDef), setupField(&p.IsolationDef),
	})
	d.checkIsolation(seen, p.IsolationDef)
	if _, ok := seen["stages"]; !ok {
		d.addf(root, "pipeline: stages: missing; list at least one stage")
	} else if len(p.Stages) == 0 && len(d.problems) == 0 {
		d.addf(seen["stages"], "stages: the list is empty; add at least one stage")
	}
	if n, ok := seen["name"]; ok && p.Name != "" {
		if err := ValidateDefinitionName("pipeline", p.Name); err != nil {
			d.addf(n, "name: %v", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
		}
	}
	if p.Defaults.Provider != "" && !knownProvider(p.Defaults.Provider) {
		d.addf(seen["defaults"], "defaults.provider: %q is not a provider (use one of %s)", p.Defaults.Provider, strings.Join(ProviderNames(), ", "))
	}
	names := map[string]int{}
	for i, s := range p.Stages {
		what := fmt.Sprintf("stages[%d]", i)
		if s.Name == "" {
			d.problems = append(d.problems, Problem{File: file, Line: s.Line, Msg: what + ": name: missing"})
		} else if err := ValidateDefinitionName("stage", s.Name); err != nil {
			d.problems = append(d.problems, Problem{File: file, Line: s.Line, Msg: what + ": " + strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")})
		} else if prev, dup := names[s.Name]; dup {
			d.problems = append(d.problems, Problem{File: file, Line: s.Line, Msg: fmt.Sprintf("%s: name %q is used by stages[%d] too; stage names must be unique", what, s.Name, prev)})
		} else {
			names[s.Name] = i
		}
		if s.Stage == "" && s.Prompt == "" {
			d.problems = append(d.problems, Problem{File: file, Line: s.Line, Msg: what + ": needs stage: (a stage to reuse) or prompt: (an inline prompt)"})
		}
		if s.Stage != "" {
			if err := ValidateDefinitionName("stage", s.Stage); err != nil {
				d.problems = append(d.problems, Problem{File: file, Line: s.Line, Msg: what + ": stage: " + strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")})
			}
		}
		if s.Completion != "" && !slices.Contains(completions, s.Completion) {
			d.problems = append(d.problems, Problem{File: file, Line: s.Line, Msg: fmt.Sprintf("%s: completion %q is not a strategy (use one of %s)", what, s.Completion, strings.Join(completions, ", "))})
		}
		if s.Provider != "" && !knownProvider(s.Provider) {
			d.problems = append(d.problems, Problem{File: file, Line: s.Line, Msg: fmt.Sprintf("%s: provider %q is not a provider (use one of %s)", what, s.Provider, strings.Join(ProviderNames(), ", "))})
		}
	}
	if len(d.problems) > 0 {
		return nil, d.problems
	}
	return p, nil
}

func (d *decoder) pipelineStage(i int, n *yaml.Node) PipelineStage {
	s := PipelineStage{Line: n.Line}
	what := fmt.Sprintf("stages[%d]", i)
	var loop string
	d.mapping(n, what, []field{
		{"name", str(&s.Name, what+".name")},
		{"description", str(&s.Description, what+".description")},
		{"stage", str(&s.Stage, what+".stage")},
		{"loop", str(&loop, what+".loop")},
		{"prompt", str(&s.Prompt, what+".prompt")},
		{"runs", integer(&s.Runs, what+".runs", 1, MaxCount)},
		{"model", str(&s.Model, what+".model")},
		{"provider", str(&s.Provider, what+".provider")},
		{"command", argv(&s.Command, what+".command")},
		{"completion", str(&s.Completion, what+".completion")},
		{"min_iterations", integer(&s.MinIterations, what+".min_iterations", 0, MaxCount)},
		{"perspectives", strList(&s.Perspectives, what+".perspectives")},
		{"parallel", boolean(&s.Parallel, what+".parallel")},
		{"delay", seconds(&s.Delay, what+".delay")},
		{"items", strList(&s.Items, what+".items")},
		{"timeout", integer(&s.Timeout, what+".timeout", 1, MaxSeconds)},
		{"max_cost_usd", optDollars(&s.MaxCostUSD, what+".max_cost_usd")},
		{"max_runtime", duration(&s.MaxRuntime, what+".max_runtime")},
		{"max_park", duration(&s.MaxPark, what+".max_park")},
	})
	if loop != "" {
		if s.Stage != "" && s.Stage != loop {
			d.addf(n, "%s: stage: %q and loop: %q disagree; loop is an alias of stage, give one", what, s.Stage, loop)
		}
		s.Stage = loop
	}
	return s
}

// OutputParse maps signal names (plateau, reasoning) to the line keys the
// agent writes (PLATEAU, REASONING).
type OutputParse map[string]string

var outputParseKeys = []string{"plateau", "reasoning"}

// DefaultOutputParse is plateau:PLATEAU reasoning:REASONING.
func DefaultOutputParse() OutputParse {
	return OutputParse{"plateau": "PLATEAU", "reasoning": "REASONING"}
}

func parseOutputParse(s string) (OutputParse, error) {
	op := DefaultOutputParse()
	for _, pair := range strings.Fields(s) {
		k, v, ok := strings.Cut(pair, ":")
		if !ok || v == "" {
			return nil, fmt.Errorf("%q is not signal:KEY (example: plateau:PLATEAU reasoning:REASONING)", pair)
		}
		if !slices.Contains(outputParseKeys, k) {
			return nil, fmt.Errorf("unknown signal %q (known: %s)", k, strings.Join(outputParseKeys, ", "))
		}
		op[k] = v
	}
	return op, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
