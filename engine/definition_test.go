package engine

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseStage(t *testing.T) {
	s, err := ParseStage("stage.yaml", []byte(`name: polish
description: Polish things.
completion: plateau
model: sonnet
provider: claude-code
delay: 0.5
check_before: false
output_parse: plateau:DONE reasoning:WHY
min_iterations: 2
max_iterations: 7
timeout: 60
command: my-agent --fast
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "polish" || s.Completion != CompletionPlateau || s.Model != "sonnet" || s.Provider != "claude-code" ||
		s.Delay == nil || *s.Delay != 0.5 || s.MinIterations != 2 || s.MaxIterations != 7 || s.Timeout != 60 ||
		!reflect.DeepEqual(s.Command, []string{"my-agent", "--fast"}) || s.OutputParse != "plateau:DONE reasoning:WHY" {
		t.Errorf("ParseStage = %+v", s)
	}
}

// TestParseStageProblems checks that every problem carries file:line and
// says what to do; an unknown field names the allowed ones.
func TestParseStageProblems(t *testing.T) {
	allowed := "(allowed: name, description, completion, model, provider, delay, check_before, output_parse, min_iterations, items, prompt, max_iterations, timeout, command, max_cost_usd, max_runtime, max_park, isolation, base_ref, worktree_setup)"
	tests := []struct {
		name, yaml string
		want       []string // whole problem lines
	}{
		{"unknown field with a suggestion", "name: x\ncompletion: plateau\ncompletoin: fixed-n\n",
			[]string{`stage.yaml:3: stage: unknown field "completoin" ` + allowed + `; did you mean "completion"?`}},
		{"unknown field without a suggestion", "completion: plateau\nflavour: vanilla\n",
			[]string{`stage.yaml:2: stage: unknown field "flavour" ` + allowed}},
		{"wrong types, each listed", "completion: plateau\ndelay: soon\nmax_iterations: many\ncheck_before: maybe\nitems: one\n",
			[]string{
				`stage.yaml:2: delay: expected a number of seconds, got "soon"`,
				`stage.yaml:3: max_iterations: expected a whole number, got "many"`,
				`stage.yaml:4: check_before: expected true or false, got "maybe"`,
				`stage.yaml:5: items: expected a list, got "one"`,
			}},
		{"bad values", "completion: forever\nprovider: gpt\nmax_iterations: 0\n",
			[]string{
				`stage.yaml:3: max_iterations: must be at least 1, got 0`,
				`stage.yaml:1: completion: "forever" is not a strategy (use one of fixed-n, plateau, beads-empty, all-items)`,
				`stage.yaml:2: provider: "gpt" is not a provider (use one of claude, codex, command, mock)`,
			}},
		{"missing completion", "name: x\n", []string{`stage.yaml:1: completion: missing (use one of fixed-n, plateau, beads-empty, all-items)`}},
		{"all-items without items", "completion: all-items\n", []string{`stage.yaml:1: completion all-items needs a non-empty items: list`}},
		{"min above max", "completion: plateau\nmin_iterations: 5\nmax_iterations: 3\n",
			[]string{`stage.yaml:2: min_iterations (5) is greater than max_iterations (3)`}},
		{"duplicate field", "completion: plateau\ncompletion: fixed-n\n", []string{`stage.yaml:2: stage: field "completion" appears twice (first on line 1)`}},
		{"bad output_parse", "completion: plateau\noutput_parse: plateau\n",
			[]string{`stage.yaml:2: output_parse: "plateau" is not signal:KEY (example: plateau:PLATEAU reasoning:REASONING)`}},
		{"bad name", "name: ../etc\ncompletion: plateau\n",
			[]string{`stage.yaml:1: name: stage name "../etc": use letters, digits, '.', '_' and '-' (no slashes, at most 64 characters)`}},
		{"not a mapping", "- a\n- b\n", []string{`stage.yaml:1: expected a mapping of fields (name: …, description: …), got a list`}},
		{"empty", "", []string{`stage.yaml: file is empty: expected a mapping of fields such as name: and description:`}},
		{"empty command", "completion: fixed-n\ncommand: []\n", []string{`stage.yaml:2: command: is empty`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseStage("stage.yaml", []byte(tt.yaml))
			ps, ok := AsProblems(err)
			if !ok {
				t.Fatalf("ParseStage error = %v, want Problems", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("problems do not wrap ErrInvalid")
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseStageInvalidYAML(t *testing.T) {
	for _, y := range []string{"completion: [fixed-n\n", "name: x\n  bad: indent\n", "\tname: x\n"} {
		_, err := ParseStage("dir/stage.yaml", []byte(y))
		ps, ok := AsProblems(err)
		if !ok || len(ps) != 1 {
			t.Fatalf("ParseStage(%q) = %v, want one problem", y, err)
		}
		if got := ps[0].String(); !strings.HasPrefix(got, "dir/stage.yaml") || !strings.Contains(got, "invalid YAML: ") {
			t.Errorf("ParseStage(%q) problem = %q, want the file and \"invalid YAML\"", y, got)
		}
	}
}

func TestParsePipeline(t *testing.T) {
	p, err := ParsePipeline("p.yaml", []byte(`name: p
description: d
version: "2"
defaults:
  provider: command
  model: haiku
  command: [agent, --flag]
stages:
  - name: plan
    loop: improve-plan
    runs: 2
  - name: ideas
    prompt: "Think as ${PERSPECTIVE}."
    perspectives: [a, b, c]
    parallel: true
    delay: 0
    timeout: 9
`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "p" || p.Version != "2" || p.Defaults.Provider != "command" || !reflect.DeepEqual(p.Defaults.Command, []string{"agent", "--flag"}) {
		t.Errorf("pipeline = %+v", p)
	}
	if len(p.Stages) != 2 || p.Stages[0].Stage != "improve-plan" || p.Stages[0].Runs != 2 || p.Stages[0].Line != 9 ||
		!p.Stages[1].Parallel || len(p.Stages[1].Perspectives) != 3 || p.Stages[1].Line != 12 || p.Stages[1].Timeout != 9 {
		t.Errorf("stages = %+v", p.Stages)
	}
}

func TestParsePipelineProblems(t *testing.T) {
	stageAllowed := "(allowed: name, description, stage, loop, prompt, runs, model, provider, command, completion, min_iterations, perspectives, parallel, delay, items, timeout, max_cost_usd, max_runtime, max_park)"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown stage field", "name: p\nstages:\n  - name: a\n    prompt: hi\n    runz: 3\n",
			[]string{`p.yaml:5: stages[0]: unknown field "runz" ` + stageAllowed + `; did you mean "runs"?`}},
		{"unknown top-level field", "name: p\nsteps: []\nstages:\n  - name: a\n    prompt: hi\n",
			[]string{`p.yaml:2: pipeline: unknown field "steps" (allowed: name, description, version, defaults, stages, isolation, base_ref, worktree_setup)`}},
		{"unknown defaults field", "defaults:\n  providr: mock\nstages:\n  - name: a\n    prompt: hi\n",
			[]string{`p.yaml:2: defaults: unknown field "providr" (allowed: provider, model, command, max_cost_usd, max_runtime, max_park); did you mean "provider"?`}},
		{"stage entry problems", "stages:\n  - name: a\n    prompt: hi\n  - name: a\n    stage: ../x\n    completion: nope\n  - description: nameless\n",
			[]string{
				`p.yaml:4: stages[1]: name "a" is used by stages[0] too; stage names must be unique`,
				`p.yaml:4: stages[1]: stage: stage name "../x": use letters, digits, '.', '_' and '-' (no slashes, at most 64 characters)`,
				`p.yaml:4: stages[1]: completion "nope" is not a strategy (use one of fixed-n, plateau, beads-empty, all-items)`,
				`p.yaml:7: stages[2]: name: missing`,
				`p.yaml:7: stages[2]: needs stage: (a stage to reuse) or prompt: (an inline prompt)`,
			}},
		{"no stages", "name: p\n", []string{`p.yaml:1: pipeline: stages: missing; list at least one stage`}},
		{"empty stages", "name: p\nstages: []\n", []string{`p.yaml:2: stages: the list is empty; add at least one stage`}},
		{"stages not a list", "stages: plan\n", []string{`p.yaml:1: stages: expected a list of stages, got "plan"`}},
		{"stage and loop disagree", "stages:\n  - name: a\n    stage: x\n    loop: y\n",
			[]string{`p.yaml:2: stages[0]: stage: "x" and loop: "y" disagree; loop is an alias of stage, give one`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePipeline("p.yaml", []byte(tt.yaml))
			ps, ok := AsProblems(err)
			if !ok {
				t.Fatalf("ParsePipeline error = %v, want Problems", err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
