package engine

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"github.com/agent-sessions/agent-sessions/state"
)

// The shared helpers of internal/testkit, under the names this package's
// tests use.
var (
	agentsDir    = testkit.AgentsDir()
	agentPath    = testkit.AgentPath
	writeFile    = testkit.WriteFile
	writeStage   = testkit.WriteStage
	commandStage = testkit.CommandStage
)

// agentEnv is the environment agents see in tests: the test's own minus
// CLAUDECODE, with testdata/agents first on PATH, plus extra KEY=VALUE.
func agentEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "CLAUDECODE":
			continue
		case "PATH":
			kv = "PATH=" + agentsDir + ":" + v
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer = testkit.SyncBuffer

// runSession runs the engine in-process until the session ends and returns
// its result and what it printed. A start error fails the test.
func runSession(t *testing.T, ctx context.Context, o RunOptions) (Result, string) {
	t.Helper()
	res, out, err := tryRunSession(ctx, o)
	if err != nil {
		t.Fatalf("Run(%s): %v\noutput:\n%s", o.Session, err, out)
	}
	return res, out
}

func tryRunSession(ctx context.Context, o RunOptions) (Result, string, error) {
	var out syncBuffer
	o.Stdout = &out
	if o.Env == nil {
		o.Env = agentEnv()
	}
	if o.Grace == 0 {
		o.Grace = 2 * time.Second
	}
	o.Notify = func(string, string) {}
	res, err := Run(ctx, o)
	return res, out.String(), err
}

// loadState reads a session's state.json (strictly: no rebuild).
func loadState(t *testing.T, project, session string) state.State {
	t.Helper()
	data, err := os.ReadFile(state.NewLayout(project, session).StateFile())
	if err != nil {
		t.Fatal(err)
	}
	var st state.State
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("state.json does not parse: %v", err)
	}
	return st
}

// readEvents reads a session's events.jsonl, failing on unreadable lines.
func readEvents(t *testing.T, project, session string) []state.Event {
	t.Helper()
	evs, skipped, err := state.ReadEvents(state.NewLayout(project, session).EventsFile())
	if err != nil {
		t.Fatal(err)
	}
	if skipped > 0 {
		t.Errorf("events.jsonl has %d unreadable lines", skipped)
	}
	return evs
}

// completedIterations lists the iteration of every iteration_complete event.
func completedIterations(evs []state.Event) []int {
	var its []int
	for _, ev := range evs {
		if ev.Type == state.EventIterationDone {
			its = append(its, ev.Iteration)
		}
	}
	return its
}

// agentRuns reads a FAKE_AGENT_LOG and returns the iteration of each run.
func agentRuns(t *testing.T, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var its []int
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.SplitN(line, "\t", 3)
		n, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("agent log line %q: %v", line, err)
		}
		its = append(its, n)
	}
	return its
}

// agentArgs reads a FAKE_AGENT_LOG and returns the args of each run.
func agentArgs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) == 3 {
			args = append(args, f[2])
		}
	}
	return args
}

// seq returns 1..n.
func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}

func equalInts(a, b []int) bool { return slices.Equal(a, b) }

// historyIterations lists the iterations of a state's history.
func historyIterations(st state.State) []int {
	var its []int
	for _, h := range st.History {
		its = append(its, h.Iteration)
	}
	return its
}

var readFile = testkit.ReadFile
