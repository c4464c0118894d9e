package engine

import (
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	vars := map[string]string{
		"SESSION":      "s1",
		"ITERATION":    "3",
		"CONTEXT":      "${SESSION} $(touch pwned) `id` $${ITERATION} ${HOME}",
		"INPUTS.first": "first's output",
		"EMPTY":        "",
	}
	tests := []struct {
		name, tmpl, want string
	}{
		{"plain text", "no variables here", "no variables here"},
		{"substitution", "session ${SESSION}, iteration ${ITERATION}", "session s1, iteration 3"},
		{"adjacent", "${SESSION}${ITERATION}", "s13"},
		{"single pass: substituted text is not scanned again", "ctx: ${CONTEXT}", "ctx: ${SESSION} $(touch pwned) `id` $${ITERATION} ${HOME}"},
		{"escape", "literal $${SESSION} and ${SESSION}", "literal ${SESSION} and s1"},
		{"escape of an unknown name", "$${HOME}", "${HOME}"},
		{"unknown names are left", "${HOME} ${NOPE} ${lower}", "${HOME} ${NOPE} ${lower}"},
		{"dotted names", "${INPUTS.first} / ${INPUTS.second}", "first's output / ${INPUTS.second}"},
		{"empty value", "[${EMPTY}]", "[]"},
		{"unterminated", "a ${SESSION", "a ${SESSION"},
		{"not a name", "${ SESSION } ${A B} ${}", "${ SESSION } ${A B} ${}"},
		{"lone dollars", "$SESSION $ $$ $5 $(x)", "$SESSION $ $$ $5 $(x)"},
		{"brace after a bad name", "${a b}${SESSION}", "${a b}s1"},
		{"multi-line and unicode", "é ${SESSION}\n\t世界 🚀 ${ITERATION}\n", "é s1\n\t世界 🚀 3\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Render(tt.tmpl, vars); got != tt.want {
				t.Errorf("Render(%q) = %q, want %q", tt.tmpl, got, tt.want)
			}
		})
	}
}

func TestReferences(t *testing.T) {
	got := References("a ${SESSION}\n$${ESCAPED}\n\nb ${INPUTS.x} ${bad name} ${ITERATION")
	want := []VarRef{{"SESSION", 1}, {"INPUTS.x", 4}}
	if len(got) != len(want) {
		t.Fatalf("References = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ref %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestCheckTemplate(t *testing.T) {
	tests := []struct {
		name    string
		tmpl    string
		earlier []string
		want    []string // each problem's "file:line: message" must contain these, in order
	}{
		{"every known variable", "${SESSION} ${SESSION_NAME} ${ITERATION} ${INDEX} ${MAX_ITERATIONS} ${STAGE} ${PERSPECTIVE} ${ITEM} ${OUTPUT} ${PROGRESS} ${PROGRESS_FILE} ${STATUS} ${RUN_DIR} ${CONTEXT} ${INPUTS}", nil, nil},
		{"escaped names are fine", "$${HOME} $${ANYTHING}", nil, nil},
		{"unknown variable names the escape", "line one\n${HOME}\n", nil,
			[]string{"p.md:12: unknown variable ${HOME} (known: SESSION SESSION_NAME ITERATION"}},
		{"close misspelling is suggested", "${ITERATON}", nil,
			[]string{"p.md:11: unknown variable ${ITERATON}; did you mean ${ITERATION}? (write $${ITERATON} for a literal ${ITERATON})"}},
		{"inputs of an earlier stage", "${INPUTS.plan}", []string{"plan"}, nil},
		{"inputs of a later stage", "${INPUTS.later}", []string{"plan", "draft"},
			[]string{`p.md:11: ${INPUTS.later} refers to stage "later", which is not an earlier stage of this pipeline (earlier stages: plan, draft)`}},
		{"inputs in a loop", "x\n${INPUTS.plan}", nil,
			[]string{`p.md:12: ${INPUTS.plan} refers to stage "plan", which is not an earlier stage of this pipeline`}},
		{"every problem is listed", "${A1}\n${B2}\n${C3}", nil, []string{"p.md:11: unknown variable ${A1}", "p.md:12: unknown variable ${B2}", "p.md:13: unknown variable ${C3}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := CheckTemplate("p.md", 10, tt.tmpl, tt.earlier)
			if len(ps) != len(tt.want) {
				t.Fatalf("CheckTemplate = %d problems, want %d:\n%v", len(ps), len(tt.want), ps)
			}
			for i, w := range tt.want {
				if got := ps[i].String(); !strings.Contains(got, w) {
					t.Errorf("problem %d = %q\nwant it to contain %q", i, got, w)
				}
			}
		})
	}
}

// TestPromptVariablesOnce: each prompt variable is listed once (lint and the
// README's table are made from this list).
func TestPromptVariablesOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range PromptVariables() {
		if seen[v] {
			t.Errorf("prompt variable %s listed twice", v)
		}
		seen[v] = true
	}
}
