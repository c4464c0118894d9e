package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig("c.yaml", []byte("notify:\n  command: [notify-me, --urgent]\ndaily_budget_usd: 20\nmax_park: 6h\n"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Notify, " ") != "notify-me --urgent" || c.DailyBudgetUSD != 20 || c.MaxPark != 6*time.Hour {
		t.Errorf("config = %+v", c)
	}
	for _, empty := range []string{"", "# nothing yet\n"} {
		if c, err := ParseConfig("c.yaml", []byte(empty)); err != nil || len(c.Notify) != 0 {
			t.Errorf("empty config %q: %+v, %v", empty, c, err)
		}
	}
	for _, tc := range []struct{ yaml, want string }{
		{"notfy:\n  command: [x]\n", `c.yaml:1: config: unknown field "notfy" (allowed: notify, daily_budget_usd, max_park); did you mean "notify"?`},
		{"notify:\n  cmd: [x]\n", `c.yaml:2: notify: unknown field "cmd"`},
		{"notify:\n  command: []\n", "c.yaml:2: notify.command: is empty"},
		{"daily_budget_usd: -3\n", "c.yaml:1: daily_budget_usd: must not be negative"},
		{"daily_budget_usd: .nan\n", "c.yaml:1: daily_budget_usd: must be a finite amount"},
		{"daily_budget_usd: lots\n", "c.yaml:1: daily_budget_usd: expected an amount in US dollars"},
		{"max_park: 12\n", "c.yaml:1: max_park: \"12\" is not a duration such as 8h, 90m or 1h30m (a unit is needed: 12s, 12m or 12h)"},
		{"max_park: -1h\n", "c.yaml:1: max_park: must be greater than zero"},
		{"- a list\n", "c.yaml:1: expected a mapping"},
	} {
		_, err := ParseConfig("c.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestLoadConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if c, err := LoadConfigFile(filepath.Join(dir, "none.yaml")); err != nil || c.File != "" {
		t.Errorf("no file: %+v, %v", c, err)
	}
	// A directory where the file should be is refused, not read.
	os.Mkdir(filepath.Join(dir, "config.yaml"), 0o755)
	if _, err := LoadConfigFile(filepath.Join(dir, "config.yaml")); err == nil {
		t.Error("a directory was read as the config")
	}
}

// TestGuardrailFields: max_cost_usd, max_runtime and max_park in stages,
// pipeline entries and defaults; bad values name file and line.
func TestGuardrailFields(t *testing.T) {
	t.Parallel()
	s, err := ParseStage("stage.yaml", []byte("completion: fixed-n\nmax_cost_usd: 2.5\nmax_runtime: 8h\nmax_park: 2h\n"))
	if err != nil {
		t.Fatal(err)
	}
	if *s.MaxCostUSD != 2.5 || s.MaxRuntime != 8*time.Hour || s.MaxPark != 2*time.Hour {
		t.Errorf("stage = %+v", s)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"completion: fixed-n\nmax_cost_usd: -1\n", "stage.yaml:2: max_cost_usd: must not be negative"},
		{"completion: fixed-n\nmax_cost_usd: nan\n", "stage.yaml:2: max_cost_usd: must be a finite amount"},
		{"completion: fixed-n\nmax_runtime: 8\n", "stage.yaml:2: max_runtime: \"8\" is not a duration"},
		{"completion: fixed-n\nmax_runtime: 0s\n", "stage.yaml:2: max_runtime: must be greater than zero"},
		{"completion: fixed-n\nmax_prak: 1h\n", `did you mean "max_park"?`},
	} {
		if _, err := ParseStage("stage.yaml", []byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	pl, err := ParsePipeline("p.yaml", []byte("name: p\ndefaults: {max_cost_usd: 10, max_runtime: 8h}\nstages:\n  - name: a\n    prompt: x\n    max_cost_usd: 0\n  - name: b\n    prompt: y\n    max_park: 1h\n"))
	if err != nil {
		t.Fatal(err)
	}
	// Precedence: the session's option, the entry, the defaults, the stage.
	a, _ := stagePlan(nil, &pl.Stages[0], pl.Defaults, Options{})
	b, _ := stagePlan(nil, &pl.Stages[1], pl.Defaults, Options{})
	if a.MaxCostUSD != 0 || a.MaxRuntime != 8*time.Hour || b.MaxCostUSD != 10 || b.MaxPark != time.Hour {
		t.Errorf("a = %v %v, b = %v %v", a.MaxCostUSD, a.MaxRuntime, b.MaxCostUSD, b.MaxPark)
	}
	o, _ := stagePlan(nil, &pl.Stages[1], pl.Defaults, Options{MaxCostUSD: ptr(3.0), MaxRuntime: time.Minute})
	if o.MaxCostUSD != 3 || o.MaxRuntime != time.Minute {
		t.Errorf("options: %v %v", o.MaxCostUSD, o.MaxRuntime)
	}
	if _, err := ParsePipeline("p.yaml", []byte("name: p\ndefaults:\n  max_cost_usd: -2\nstages:\n  - name: a\n    prompt: x\n    max_runtime: soon\n")); err == nil ||
		!strings.Contains(err.Error(), "p.yaml:3: defaults.max_cost_usd: must not be negative") || !strings.Contains(err.Error(), "p.yaml:7: stages[0].max_runtime:") {
		t.Errorf("bad pipeline: %v", err)
	}
}

func TestBudgetArg(t *testing.T) {
	t.Parallel()
	for in, want := range map[float64]string{1: "1", 1 - 0.8: "0.2", 0.00001: "0.0001", 2.123456: "2.1235"} {
		if got := budgetArg(in); got != want {
			t.Errorf("budgetArg(%v) = %s, want %s", in, got, want)
		}
	}
}

// TestEnvValue: the last entry of a key wins, as for an exec'd process;
// a key that is only a prefix of another does not match it.
func TestEnvValue(t *testing.T) {
	t.Parallel()
	env := []string{"PATHX=/no", "PATH=/first", "HOME=/h", "PATH=/last", "EMPTY="}
	for key, want := range map[string]string{"PATH": "/last", "HOME": "/h", "PAT": "", "EMPTY": "", "NONE": ""} {
		if got := EnvValue(env, key); got != want {
			t.Errorf("EnvValue(%s) = %q, want %q", key, got, want)
		}
	}
	if got := envPath(env); got != "/last" {
		t.Errorf("envPath = %q, want the PATH exec would use (/last)", got)
	}
}
