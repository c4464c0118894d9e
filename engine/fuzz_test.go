package engine

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Fuzz targets for the definitions users write (stage.yaml, pipeline YAML)
// and for prompt rendering. CI runs each for a few seconds (.ci/run);
// locally:
//
//	go test -run '^$' -fuzz '^FuzzParseStage$' -fuzztime 60s -fuzzminimizetime 2s ./engine

// malformed are variants every definition seed is also tried with.
var malformed = []string{
	"", "\n", "---\n", "--- |\n  text\n", "[a, b]\n", "just text\n", "~\n", "name: [unclosed\n",
	"name: \"unclosed\n", "\tname: tab\n", "a: b\n  c: d\n", "name: x\nname: y\n", "nmae: x\n",
	"completion: fixed-n\ndelay: nan\n", "completion: fixed-n\ndelay: inf\n", "completion: fixed-n\ndelay: -0\n",
	"completion: fixed-n\ndelay: 1e300\n", "completion: fixed-n\ntimeout: 99999999999999\n",
	"completion: fixed-n\nmax_iterations: 9223372036854775807\n", "completion: fixed-n\nmax_iterations: -1\n",
	"completion: all-items\nitems: []\n", "completion: all-items\nitems: [a, ~, [b]]\n",
	"completion: plateau\nmin_iterations: 9\nmax_iterations: 2\n", "completion: fixed-n\noutput_parse: bogus\n",
	"completion: fixed-n\ncommand: \"\"\n", "completion: fixed-n\ncommand: []\n", "completion: fixed-n\nprovider: bash\n",
	"name: ../../etc\ncompletion: fixed-n\n", "name: \"a;b\"\ncompletion: fixed-n\n", "completion: &a fixed-n\nmodel: *a\n",
	"a: &x [*x]\n", "completion: fixed-n\ncheck_before: maybe\n", "completion: !!binary aGk=\n",
	"stages:\n  - name: a\n    prompt: hi\n    runs: 999999999999\n    parallel: true\n",
	"stages:\n  - name: a\n    prompt: hi\n    delay: nan\n", "stages:\n  - name: a\n    prompt: hi\n  - name: a\n    prompt: ho\n",
	"stages:\n  - name: a\n    stage: x\n    loop: y\n", "stages: []\n", "stages: {}\n", "stages:\n  - ~\n",
	"defaults:\n  provider: nope\nstages:\n  - name: a\n    prompt: p\n", "stages:\n  - name: a\n    prompt: p\n    timeout: 0\n",
	"\xff\xfe\x00", "name: \x01\n", "'unclosed\r\r\r", "name: x\rcompletion: [\r\r", "a: b\u2028c: [", strings.Repeat("[", 5000), strings.Repeat("a: ", 2000) + "b\n",
}

func builtinSeeds(f *testing.F, pattern string) {
	f.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		f.Fatalf("no built-in definitions match %s: %v", pattern, err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		// The same file cut short, and with a line broken.
		f.Add(data[:len(data)/2])
		f.Add([]byte(strings.Replace(string(data), ": ", ":", 1)))
	}
	for _, m := range malformed {
		f.Add([]byte(m))
	}
}

// yamlLine is the line yaml.v3 names in a syntax error.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+):`)

// checkProblems asserts what every definition error must be: a list of
// problems, each naming the file, with a line inside the file when there
// is one, and saying something; a YAML syntax error keeps yaml's line.
func checkProblems(t *testing.T, file string, data []byte, err error) {
	t.Helper()
	ps, ok := AsProblems(err)
	if !ok || len(ps) == 0 {
		t.Fatalf("error %v (%T) carries no problems", err, err)
	}
	lines := yamlLines(data)
	for _, p := range ps {
		if p.File != file {
			t.Errorf("problem %q names file %q, want %q", p, p.File, file)
		}
		if strings.TrimSpace(p.Msg) == "" {
			t.Errorf("problem without a message: %+v", p)
		}
		if p.Line < 0 || p.Line > lines+1 {
			t.Errorf("problem %q: line %d outside a file of %d lines", p, p.Line, lines)
		}
		if !strings.HasPrefix(p.String(), file+":") {
			t.Errorf("problem %q does not start with the file", p)
		}
	}
	if !strings.HasPrefix(err.Error(), file+":") {
		t.Errorf("error %q does not start with the file", err)
	}
	var doc yaml.Node
	if yerr := yaml.Unmarshal(data, &doc); yerr != nil {
		if m := yamlLine.FindStringSubmatch(yerr.Error()); m != nil {
			n, _ := strconv.Atoi(m[1])
			if ps[0].Line != n {
				t.Errorf("YAML error %q reported on line %d, want %d", yerr, ps[0].Line, n)
			}
		}
	}
}

// yamlLines counts lines as YAML does: "\r\n", "\r" and "\n" each end one
// (an old Mac file is all "\r"), as do NEL, LS and PS.
func yamlLines(data []byte) int {
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	n := 1
	for _, r := range s {
		switch r {
		case '\n', '\r', '\u0085', '\u2028', '\u2029':
			n++
		}
	}
	return n
}

// checkSeconds asserts a duration in seconds is one the runner can use.
func checkSeconds(t *testing.T, what string, v float64) {
	t.Helper()
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v*float64(time.Second) >= math.MaxInt64 {
		t.Errorf("%s = %v accepted: not a usable number of seconds", what, v)
	}
}

// checkPlan compiles one resolved stage into a plan and makes sure the plan
// can be stored in state.json (resume depends on it) and run.
func checkPlan(t *testing.T, sp StagePlan) {
	t.Helper()
	checkSeconds(t, "delay", sp.Delay)
	if sp.Timeout <= 0 || int64(sp.Timeout) > math.MaxInt64/int64(time.Second) {
		t.Errorf("timeout %d seconds overflows a time.Duration", sp.Timeout)
	}
	if sp.MaxIterations < 0 || sp.MaxIterations > MaxCount || sp.MinIterations < 0 || sp.MinIterations > sp.MaxIterations {
		t.Errorf("iterations min %d max %d", sp.MinIterations, sp.MaxIterations)
	}
	if !slices.Contains(completions, sp.Completion) {
		t.Errorf("completion %q", sp.Completion)
	}
	plan := &Plan{Version: PlanVersion, Session: "fuzz", Kind: KindLoop, Stages: []StagePlan{sp}}
	back, err := PlanFromSpec(plan.MarshalSpec())
	if err != nil {
		t.Fatalf("a compiled plan does not read back: %v", err)
	}
	if back.Stages[0].Delay != sp.Delay || back.Stages[0].MaxIterations != sp.MaxIterations {
		t.Errorf("plan round trip: %+v, want %+v", back.Stages[0], sp)
	}
}

// FuzzParseStage: any stage.yaml either parses into a sane, runnable
// stage or fails with problems naming the file (and the line).
func FuzzParseStage(f *testing.F) {
	builtinSeeds(f, filepath.Join("builtin", "stages", "*", "stage.yaml"))
	const file = "/p/.claude/stages/fuzz/stage.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseStage(file, data)
		if err != nil {
			if s != nil {
				t.Error("ParseStage returned a stage with an error")
			}
			checkProblems(t, file, data, err)
			return
		}
		if s == nil {
			t.Fatal("ParseStage returned neither a stage nor an error")
		}
		if !slices.Contains(completions, s.Completion) {
			t.Errorf("completion %q accepted", s.Completion)
		}
		if s.MaxIterations < 0 || s.MinIterations < 0 || s.Timeout < 0 {
			t.Errorf("negative counts accepted: max %d min %d timeout %d", s.MaxIterations, s.MinIterations, s.Timeout)
		}
		if s.Delay != nil {
			checkSeconds(t, "delay", *s.Delay)
		}
		if s.Provider != "" && !knownProvider(s.Provider) {
			t.Errorf("provider %q accepted", s.Provider)
		}
		if s.Name != "" && ValidateDefinitionName("stage", s.Name) != nil {
			t.Errorf("name %q accepted", s.Name)
		}
		if s.Completion == CompletionAllItems && len(s.Items) == 0 {
			t.Error("all-items without items accepted")
		}
		if _, err := json.Marshal(s); err != nil {
			t.Errorf("a parsed stage cannot be encoded: %v", err)
		}
		s.PromptText = "Do ${ITEM} for ${SESSION}."
		sp, problems := stagePlan(s, nil, StageDefaults{}, Options{})
		if len(problems) == 0 {
			checkPlan(t, sp)
		}
	})
}

// FuzzParsePipeline: any pipeline YAML either parses into a sane pipeline
// or fails with problems naming the file (and the line).
func FuzzParsePipeline(f *testing.F) {
	builtinSeeds(f, filepath.Join("builtin", "pipelines", "*.yaml"))
	const file = "/p/.claude/pipelines/fuzz.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePipeline(file, data)
		if err != nil {
			if p != nil {
				t.Error("ParsePipeline returned a pipeline with an error")
			}
			checkProblems(t, file, data, err)
			return
		}
		if p == nil {
			t.Fatal("ParsePipeline returned neither a pipeline nor an error")
		}
		if len(p.Stages) == 0 {
			t.Error("a pipeline without stages accepted")
		}
		if string(p.Raw) != string(data) {
			t.Error("Raw is not the file's content")
		}
		seen := map[string]bool{}
		for i, s := range p.Stages {
			if s.Name == "" || ValidateDefinitionName("stage", s.Name) != nil || seen[s.Name] {
				t.Errorf("stages[%d]: name %q accepted", i, s.Name)
			}
			seen[s.Name] = true
			if s.Stage == "" && s.Prompt == "" {
				t.Errorf("stages[%d]: neither stage nor prompt", i)
			}
			if s.Completion != "" && !slices.Contains(completions, s.Completion) {
				t.Errorf("stages[%d]: completion %q accepted", i, s.Completion)
			}
			if s.Runs < 0 || s.MinIterations < 0 || s.Timeout < 0 {
				t.Errorf("stages[%d]: negative counts accepted", i)
			}
			if s.Delay != nil {
				checkSeconds(t, "delay", *s.Delay)
			}
			if s.Line <= 0 {
				t.Errorf("stages[%d]: no line", i)
			}
			if s.Stage != "" {
				continue
			}
			sp, problems := stagePlan(nil, &s, p.Defaults, Options{})
			if len(problems) == 0 {
				checkPlan(t, sp)
			}
		}
		if _, err := json.Marshal(p); err != nil {
			t.Errorf("a parsed pipeline cannot be encoded: %v", err)
		}
	})
}

// renderVars are the variables FuzzRender renders with: A and B are fuzzed
// values, each wrapped in markers (\x00A<…>A\x00) so the output shows which
// variables were substituted.
func renderVars(a, b string) map[string]string {
	clean := func(s string) string { return strings.ReplaceAll(s, "\x00", "") }
	return map[string]string{
		"A":         "\x00A<" + clean(a) + ">A\x00",
		"B":         "\x00B<" + clean(b) + ">B\x00",
		"SESSION":   "\x00S<s>S\x00",
		"INPUTS.x":  "\x00I<i>I\x00",
		"PROGRESS":  "\x00P<${A}$${B}$(id)>P\x00",
		"EMPTY":     "",
		"lower-ok_": "\x00L<l>L\x00",
	}
}

// referenceRender is an independent statement of Render's contract, for
// comparison: scan left to right; "$${" is a literal "${"; "${NAME}" with a
// valid name is its value when NAME is set and stays as it is otherwise;
// anything else is copied.
func referenceRender(tmpl string, vars map[string]string) string {
	var out []byte
	for i := 0; i < len(tmpl); {
		if strings.HasPrefix(tmpl[i:], "$${") {
			out = append(out, "${"...)
			i += 3
			continue
		}
		if strings.HasPrefix(tmpl[i:], "${") {
			if end := strings.IndexByte(tmpl[i+2:], '}'); end >= 0 && validVarName(tmpl[i+2:i+2+end]) {
				name := tmpl[i+2 : i+2+end]
				if v, ok := vars[name]; ok {
					out = append(out, v...)
				} else {
					out = append(out, tmpl[i:i+2+end+1]...)
				}
				i += 2 + end + 1
				continue
			}
			out = append(out, "${"...)
			i += 2
			continue
		}
		out = append(out, tmpl[i])
		i++
	}
	return string(out)
}

// FuzzRender: rendering is one pass of literal replacement. A template
// without "${" comes back unchanged; a variable's value appears only where
// the template names it (values are never expanded again); $${X} is a
// literal ${X}; the output is what the reference scanner gives.
func FuzzRender(f *testing.F) {
	for _, s := range []string{
		"", "plain text", "${A}", "${B}", "$${A}", "$$${A}", "${A}${B}", "${ A }", "${}", "${A", "A}", "$A", "${${A}}",
		"${PROGRESS}", "${INPUTS.x}", "${lower-ok_}", "${EMPTY}x", "${UNKNOWN} ${A}", "$(touch /tmp/x) `id` ${A}",
		"${A}$${B}$$", "${" + strings.Repeat("N", 200) + "}", "ünï ${A} ✓\n${B}\r\n", "${$${A}", "$${${A}}",
	} {
		f.Add(s, "value", "${A} $${B} ${SESSION}")
	}
	f.Fuzz(func(t *testing.T, tmpl, a, b string) {
		vars := renderVars(a, b)
		out := Render(tmpl, vars)
		if !strings.Contains(tmpl, "${") && out != tmpl {
			t.Fatalf("Render(%q) = %q: a template without ${ must come back unchanged", tmpl, out)
		}
		if want := referenceRender(tmpl, vars); out != want {
			t.Fatalf("Render(%q) = %q, want %q", tmpl, out, want)
		}
		// A value appears exactly as often as the template references it:
		// substituted text is never scanned again.
		if !strings.Contains(tmpl, "\x00") {
			counts := map[string]int{}
			for _, r := range References(tmpl) {
				counts[r.Name]++
			}
			for name, v := range vars {
				if v == "" {
					continue
				}
				marker := v[:3] // "\x00A<"
				got := strings.Count(out, marker)
				if want := counts[name]; got != want {
					t.Errorf("Render(%q): %s substituted %d times, referenced %d times", tmpl, name, got, want)
				}
			}
		}
		// The escape, whatever follows it: "$${" + rest renders as "${" +
		// the rendering of rest.
		if esc := Render("$${"+a, vars); esc != "${"+Render(a, vars) {
			t.Errorf("Render(%q) = %q, want %q", "$${"+a, esc, "${"+Render(a, vars))
		}
		if got := Render("$${"+"A}", vars); got != "${A}" {
			t.Errorf("$${A} rendered %q", got)
		}
	})
}
