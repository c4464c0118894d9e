package enginecmd

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
)

func TestRunOptionsFromFlags(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	o, err := runOptions([]string{"--session", "a", "--stage", "s", "--max", "3", "--input", "x.md", "--input", "y.md",
		"--agent-cmd", `["my-agent", "--fast"]`, "--max-runtime", "8h", "--max-cost-usd", "2.50", "--resume",
		"--worktree-setup", `["npm","ci"]`}, &stderr)
	if err != nil {
		t.Fatalf("runOptions: %v (stderr %q)", err, stderr.String())
	}
	if o.Session != "a" || o.Stage != "s" || o.Compile.Max != 3 || o.Mode != engine.ModeResume {
		t.Errorf("got session %q stage %q max %d mode %q, want a s 3 resume", o.Session, o.Stage, o.Compile.Max, o.Mode)
	}
	if got, want := o.Compile.Inputs, []string{"x.md", "y.md"}; !slices.Equal(got, want) {
		t.Errorf("inputs %q, want %q", got, want)
	}
	if got, want := o.Compile.AgentCmd, []string{"my-agent", "--fast"}; !slices.Equal(got, want) {
		t.Errorf("agent argv %q, want %q", got, want)
	}
	if got, want := o.Compile.WorktreeSetup, []string{"npm", "ci"}; !slices.Equal(got, want) {
		t.Errorf("worktree setup %q, want %q", got, want)
	}
	if o.Compile.MaxRuntime != 8*time.Hour || o.Compile.MaxCostUSD == nil || *o.Compile.MaxCostUSD != 2.5 {
		t.Errorf("max runtime %v, max cost %v; want 8h and 2.50", o.Compile.MaxRuntime, o.Compile.MaxCostUSD)
	}
}

// TestRunOptionsRefusesBadFlags: each mistake is named on stderr and is the
// caller's to fix.
func TestRunOptionsRefusesBadFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--session", "a", "extra"}, `unexpected argument "extra" (flags only)`},
		{[]string{"--max", "0"}, "--max must be at least 1, got 0"},
		{[]string{"--resume", "--force"}, "--resume and --force exclude each other"},
		{[]string{"--agent-cmd", "[]"}, "--agent-cmd: empty"},
		{[]string{"--agent-cmd", "[1]"}, "--agent-cmd: not a JSON array of strings"},
		{[]string{"--worktree-setup", "npm ci"}, "--worktree-setup: want a JSON array of strings"},
		{[]string{"--max-park", "soon"}, "--max-park: "},
	} {
		var stderr bytes.Buffer
		_, err := runOptions(tc.args, &stderr)
		if err == nil || !strings.Contains(stderr.String(), "agent-sessions run: "+tc.want) {
			t.Errorf("%q: error %v, stderr %q; want it to say %q", tc.args, err, stderr.String(), tc.want)
		} else if u, ok := err.(interface{ Usage() bool }); !ok || !u.Usage() {
			t.Errorf("%q: error %v is not a usage error", tc.args, err)
		}
	}
}

// TestRunOptionsReadsHandoff: the handoff's context and inputs come in,
// after the command line's inputs, and the file is gone once read.
func TestRunOptionsReadsHandoff(t *testing.T) {
	t.Parallel()
	path, err := engine.WriteHandoff(engine.Handoff{Context: "from the tool", Inputs: []string{"b.md"}})
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	o, err := runOptions([]string{"--session", "a", "--input", "a.md", "--context", "flag", "--handoff", path}, &stderr)
	if err != nil {
		t.Fatalf("runOptions: %v (stderr %q)", err, stderr.String())
	}
	if o.Compile.Context != "from the tool" || !slices.Equal(o.Compile.Inputs, []string{"a.md", "b.md"}) {
		t.Errorf("context %q inputs %q; want the handoff's context and a.md, b.md", o.Compile.Context, o.Compile.Inputs)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("handoff file still there after reading (stat: %v)", err)
	}
}

func TestLintNamesProblemsAsUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := Lint([]string{"--project", dir, "nosuch"}, &stdout, &stderr)
	if u, ok := err.(interface{ Usage() bool }); !ok || !u.Usage() {
		t.Fatalf("Lint of a missing definition: error %v, want a usage error", err)
	}
	if !strings.Contains(stdout.String(), `no stage or pipeline named "nosuch"`) {
		t.Errorf("stdout %q does not name the problem", stdout.String())
	}
	err = Lint([]string{"--project", filepath.Join(dir, "gone")}, &stdout, &stderr)
	if err == nil || !strings.Contains(stderr.String(), "agent-sessions lint: ") {
		t.Errorf("Lint of a missing project: error %v, stderr %q", err, stderr.String())
	}
}
