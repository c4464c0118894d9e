package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/agent-sessions/agent-sessions/state"
)

// TestThreeStagePipeline runs a pipeline whose stages use different
// providers and commands, and checks that outputs flow into later prompts
// through ${INPUTS.<name>} and ${INPUTS}, that perspectives fill
// ${PERSPECTIVE}, and the run directory's layout.
func TestThreeStagePipeline(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	tmp := t.TempDir()
	logFile := filepath.Join(tmp, "agent.log")
	prompts := filepath.Join(tmp, "prompts")
	os.MkdirAll(prompts, 0o755)

	writeStage(t, project, "reviewer", "completion: fixed-n\nmax_iterations: 9\ndelay: 0\n",
		"Review from the ${PERSPECTIVE} perspective (run ${ITERATION} of ${MAX_ITERATIONS}).\n")
	echo := agentPath("echo-agent")
	pipelineYAML := fmt.Sprintf(`name: three
description: three stages, three ways to run an agent
defaults:
  provider: command
  command: [%q, "default-cmd"]
stages:
  - name: first
    prompt: "Say hello from ${STAGE}."
    provider: mock
    delay: 0
  - name: second
    stage: reviewer
    perspectives: [security, speed]
    command: [%q, "second-cmd"]
  - name: third
    delay: 0
    prompt: |
      From first:
      ${INPUTS.first}
      Previous:
      ${INPUTS}
`, echo, echo)
	src := filepath.Join(project, ".claude", "pipelines", "three.yaml")
	writeFile(t, src, pipelineYAML)

	res, out := runSession(t, context.Background(), RunOptions{
		Session: "pl", Pipeline: "three", ProjectDir: project, Foreground: true,
		Env: agentEnv("FAKE_AGENT_LOG="+logFile, "FAKE_AGENT_PROMPT_DIR="+prompts),
	})
	if res.Status != state.StatusComplete || res.Reason != ReasonStagesComplete {
		t.Fatalf("Run = %+v, want complete/%s\n%s", res, ReasonStagesComplete, out)
	}
	l := state.NewLayout(project, "pl")

	// Per-stage provider and command: the mock ran stage 1 (no process),
	// stage 2 ran its own command twice, stage 3 the pipeline default.
	if got, want := strings.Join(agentArgs(t, logFile), ","), "second-cmd,second-cmd,default-cmd"; got != want {
		t.Errorf("agent commands = %s, want %s", got, want)
	}
	firstOut := readFile(t, l.Iteration(0, "first", 1).Output)
	if !strings.Contains(firstOut, "made one simulated improvement") {
		t.Errorf("stage 1 output is not the mock's: %q", firstOut)
	}

	// Perspectives.
	for it, p := range []string{"security", "speed"} {
		got := readFile(t, filepath.Join(prompts, fmt.Sprintf("prompt-pl-second-%d.txt", it+1)))
		want := fmt.Sprintf("Review from the %s perspective (run %d of 2).\n", p, it+1)
		if got != want {
			t.Errorf("stage 2 prompt %d = %q, want %q", it+1, got, want)
		}
	}

	// Stage 3 received stage 1's output through ${INPUTS.first} and stage
	// 2's (both runs) through ${INPUTS}.
	third := readFile(t, filepath.Join(prompts, "prompt-pl-third-1.txt"))
	fromFirst, previous, ok := strings.Cut(third, "\nPrevious:\n")
	if !ok {
		t.Fatalf("stage 3 prompt lacks its Previous: section:\n%s", third)
	}
	if !strings.Contains(fromFirst, strings.TrimSpace(firstOut)) {
		t.Errorf("${INPUTS.first} does not hold stage 1's output %q:\n%s", firstOut, fromFirst)
	}
	for it := 1; it <= 2; it++ {
		o := strings.TrimRight(readFile(t, l.Iteration(1, "second", it).Output), "\n")
		if !strings.Contains(previous, o) {
			t.Errorf("${INPUTS} lacks stage 2 iteration %d's output %q:\n%s", it, o, previous)
		}
	}
	if strings.Contains(previous, "simulated improvement") {
		t.Errorf("${INPUTS} holds stage 1's output; it should hold only the previous stage's:\n%s", previous)
	}
	if got := readFile(t, l.Iteration(2, "third", 1).Prompt); got != third {
		t.Errorf("prompt.md differs from what the agent read:\n%q\n%q", got, third)
	}

	// Files: pipeline.yaml copy, stage-NN-name/iterations/NNN.
	if got := readFile(t, l.PipelineCopy()); got != pipelineYAML {
		t.Errorf("pipeline.yaml copy differs from the definition")
	}
	wantDirs := map[string][]string{"stage-01-first": {"001"}, "stage-02-second": {"001", "002"}, "stage-03-third": {"001"}}
	for stageDir, its := range wantDirs {
		entries, err := os.ReadDir(filepath.Join(l.RunDir(), stageDir, "iterations"))
		if err != nil {
			t.Errorf("%s: %v", stageDir, err)
			continue
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
			for _, f := range []string{"prompt.md", "output.md", "result.json"} {
				if _, err := os.Stat(filepath.Join(l.RunDir(), stageDir, "iterations", e.Name(), f)); err != nil {
					t.Errorf("%s/%s: %v", stageDir, e.Name(), err)
				}
			}
		}
		if strings.Join(got, ",") != strings.Join(its, ",") {
			t.Errorf("%s/iterations = %v, want %v", stageDir, got, its)
		}
		if _, err := os.Stat(filepath.Join(l.RunDir(), stageDir, "progress.md")); err != nil {
			t.Errorf("%s has no progress.md: %v", stageDir, err)
		}
	}
	st := loadState(t, project, "pl")
	if st.Type != KindPipeline || st.Pipeline != "three" || len(st.Stages) != 3 {
		t.Fatalf("state.json type %q pipeline %q stages %d", st.Type, st.Pipeline, len(st.Stages))
	}
	for i, want := range []struct {
		name   string
		its    int
		reason string
	}{{"first", 1, "fixed-n"}, {"second", 2, "fixed-n"}, {"third", 1, "fixed-n"}} {
		s := st.Stages[i]
		if s.Name != want.name || s.Status != state.StageComplete || s.Iterations != want.its || s.Reason != want.reason {
			t.Errorf("stage %d = %+v, want %s complete with %d iterations (%s)", i, s, want.name, want.its, want.reason)
		}
	}
}

// TestParallelRunsOverlap checks that `parallel: true` really runs a
// stage's runs at the same time, and never more than MaxParallel at once.
func TestParallelRunsOverlap(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	times := filepath.Join(t.TempDir(), "times")
	writeFile(t, filepath.Join(project, ".claude", "pipelines", "fan.yaml"), fmt.Sprintf(`name: fan
stages:
  - name: fan
    prompt: "run ${ITERATION}"
    provider: command
    command: [%q]
    runs: 6
    parallel: true
    delay: 0
`, agentPath("sleep-agent")))
	res, out := runSession(t, context.Background(), RunOptions{Session: "fan", Pipeline: "fan", ProjectDir: project, Foreground: true,
		Env: agentEnv("SLEEP_SECONDS=1", "SLEEP_AGENT_TIMES="+times)})
	if res.Status != state.StatusComplete {
		t.Fatalf("Run = %+v\n%s", res, out)
	}
	type span struct{ start, end int64 }
	spans := map[int]*span{}
	for _, line := range strings.Split(strings.TrimSpace(readFile(t, times)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("bad times line %q", line)
		}
		it, _ := strconv.Atoi(f[0])
		ns, _ := strconv.ParseInt(f[2], 10, 64)
		if spans[it] == nil {
			spans[it] = &span{}
		}
		if f[1] == "start" {
			spans[it].start = ns
		} else {
			spans[it].end = ns
		}
	}
	if len(spans) != 6 {
		t.Fatalf("%d runs recorded times, want 6", len(spans))
	}
	// Sweep the start and end points for the largest number running at once.
	type point struct {
		at    int64
		delta int
	}
	var points []point
	for it, s := range spans {
		if s.start == 0 || s.end == 0 || s.end < s.start {
			t.Fatalf("run %d has a bad span %+v", it, *s)
		}
		points = append(points, point{s.start, +1}, point{s.end, -1})
	}
	sort.Slice(points, func(i, j int) bool {
		if points[i].at != points[j].at {
			return points[i].at < points[j].at
		}
		return points[i].delta < points[j].delta // an end before a start at the same instant
	})
	cur, peak := 0, 0
	for _, p := range points {
		cur += p.delta
		peak = max(peak, cur)
	}
	if peak < 2 {
		t.Errorf("runs never overlapped (at most %d at once)", peak)
	}
	if peak > MaxParallel {
		t.Errorf("%d runs at once, want at most %d", peak, MaxParallel)
	}
	st := loadState(t, project, "fan")
	if got := sortedInts(st.Stages[0].Completed); !equalInts(got, seq(6)) {
		t.Errorf("stage completed runs %v, want 1..6", got)
	}
	if got := sortedInts(completedIterations(readEvents(t, project, "fan"))); !equalInts(got, seq(6)) {
		t.Errorf("events iteration_complete %v, want 1..6", got)
	}
}
