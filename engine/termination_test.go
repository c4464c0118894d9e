package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-sessions/agent-sessions/state"
)

// TestTerminationStrategies runs real sessions of fake agents through the
// engine and checks how many times the agent ran and how the session ended
// (SPEC §8).
func TestTerminationStrategies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		completion string
		agent      string
		yaml       []string
		env        []string
		wantRuns   int
		wantStatus string
		wantReason string
		wantErr    string // substring of state.json error
		wantFailed int    // state.json failed_iterations
	}{
		{name: "fixed-n runs exactly max", completion: "fixed-n", agent: "echo-agent",
			yaml: []string{"max_iterations: 4"}, wantRuns: 4, wantStatus: "complete", wantReason: "fixed-n"},
		{name: "fixed-n of one", completion: "fixed-n", agent: "echo-agent",
			yaml: []string{"max_iterations: 1"}, wantRuns: 1, wantStatus: "complete", wantReason: "fixed-n"},
		{name: "plateau waits for min_iterations", completion: "plateau", agent: "echo-agent",
			yaml: []string{"min_iterations: 3", "max_iterations: 10"}, env: []string{"ECHO_PLATEAU_AT=1 2 3"},
			wantRuns: 3, wantStatus: "complete", wantReason: "plateau"},
		{name: "plateau stops at the second consecutive vote", completion: "plateau", agent: "echo-agent",
			yaml: []string{"max_iterations: 10"}, env: []string{"ECHO_PLATEAU_AT=2 3 4"},
			wantRuns: 3, wantStatus: "complete", wantReason: "plateau"},
		{name: "plateau ignores isolated votes", completion: "plateau", agent: "echo-agent",
			yaml: []string{"max_iterations: 7"}, env: []string{"ECHO_PLATEAU_AT=2 4 6"},
			wantRuns: 7, wantStatus: "complete", wantReason: "max_iterations"},
		{name: "plateau without votes runs to max", completion: "plateau", agent: "echo-agent",
			yaml: []string{"max_iterations: 3"}, env: []string{"ECHO_PLATEAU_AT=99"},
			wantRuns: 3, wantStatus: "complete", wantReason: "max_iterations"},
		{name: "status.json stop is a plateau vote", completion: "plateau", agent: "status-agent",
			yaml: []string{"min_iterations: 2", "max_iterations: 6"}, env: []string{"STATUS_DECISION=stop", "STATUS_AT=3 4"},
			wantRuns: 4, wantStatus: "complete", wantReason: "plateau"},
		{name: "status.json continue is no vote", completion: "plateau", agent: "status-agent",
			yaml: []string{"max_iterations: 3"}, env: []string{"STATUS_DECISION=continue"},
			wantRuns: 3, wantStatus: "complete", wantReason: "max_iterations"},
		{name: "status.json error fails with the agent's reason", completion: "fixed-n", agent: "status-agent",
			yaml: []string{"max_iterations: 5"}, env: []string{"STATUS_DECISION=error", "STATUS_REASON=the database is on fire", "STATUS_AT=2"},
			wantRuns: 2, wantStatus: "failed", wantReason: "agent_error", wantErr: "the database is on fire"},
		{name: "three consecutive failures fail the session", completion: "fixed-n", agent: "fail-agent",
			yaml: []string{"max_iterations: 10"}, wantRuns: 3, wantStatus: "failed", wantReason: "agent_failures", wantErr: "3 consecutive agent failures", wantFailed: 3},
		{name: "scattered failures do not, and are counted", completion: "fixed-n", agent: "fail-agent",
			yaml: []string{"max_iterations: 6"}, env: []string{"FAIL_AT=1 2 4 5"},
			wantRuns: 6, wantStatus: "complete", wantReason: "fixed-n", wantFailed: 4},
		// Shorter than the three-in-a-row rule: these read complete before.
		{name: "a stage whose two iterations both failed fails", completion: "fixed-n", agent: "fail-agent",
			yaml: []string{"max_iterations: 2"}, wantRuns: 2, wantStatus: "failed", wantReason: "agent_failures",
			wantErr: "all 2 iterations of stage s failed; the last: the agent exited with code 1", wantFailed: 2},
		{name: "a one-iteration plateau stage that failed fails", completion: "plateau", agent: "fail-agent",
			yaml: []string{"max_iterations: 1"}, wantRuns: 1, wantStatus: "failed", wantReason: "agent_failures",
			wantErr: "the only iteration of stage s failed", wantFailed: 1},
		{name: "all-items runs each item", completion: "all-items", agent: "echo-agent",
			yaml: []string{"items: [alpha, beta, gamma]"}, wantRuns: 3, wantStatus: "complete", wantReason: "all-items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			project := t.TempDir()
			logFile := filepath.Join(t.TempDir(), "agent.log")
			writeStage(t, project, "s", commandStage(tt.completion, tt.agent, tt.yaml...), "Iteration ${ITERATION} of ${MAX_ITERATIONS}.\n")
			res, out := runSession(t, context.Background(), RunOptions{
				Session: "t", Stage: "s", ProjectDir: project, Foreground: true,
				Env: agentEnv(append([]string{"FAKE_AGENT_LOG=" + logFile}, tt.env...)...),
			})
			if got := agentRuns(t, logFile); !equalInts(got, seq(tt.wantRuns)) {
				t.Errorf("agent ran iterations %v, want %v\n%s", got, seq(tt.wantRuns), out)
			}
			if res.Status != tt.wantStatus || res.Reason != tt.wantReason {
				t.Errorf("Run = %s/%s, want %s/%s\n%s", res.Status, res.Reason, tt.wantStatus, tt.wantReason, out)
			}
			st := loadState(t, project, "t")
			if st.Status != tt.wantStatus || st.CompletionReason != tt.wantReason {
				t.Errorf("state.json = %s/%s, want %s/%s", st.Status, st.CompletionReason, tt.wantStatus, tt.wantReason)
			}
			if st.IterationCompleted != tt.wantRuns || !equalInts(historyIterations(st), seq(tt.wantRuns)) {
				t.Errorf("state.json iteration_completed %d, history %v; want %d", st.IterationCompleted, historyIterations(st), tt.wantRuns)
			}
			if !strings.Contains(st.Error, tt.wantErr) || (tt.wantErr == "" && st.Error != "") {
				t.Errorf("state.json error = %q, want it to contain %q", st.Error, tt.wantErr)
			}
			if st.FailedIterations != tt.wantFailed || st.Stages[0].FailedIterations != tt.wantFailed {
				t.Errorf("state.json failed_iterations %d (stage %d), want %d", st.FailedIterations, st.Stages[0].FailedIterations, tt.wantFailed)
			}
			if got := completedIterations(readEvents(t, project, "t")); !equalInts(got, seq(tt.wantRuns)) {
				t.Errorf("events.jsonl iteration_complete %v, want %v", got, seq(tt.wantRuns))
			}
		})
	}
}

// TestPlateauVotesAreRecorded checks what each plateau iteration recorded:
// its vote and the agent's reasoning.
func TestPlateauVotesAreRecorded(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "s", commandStage("plateau", "echo-agent", "max_iterations: 4"), "go\n")
	runSession(t, context.Background(), RunOptions{Session: "v", Stage: "s", ProjectDir: project, Foreground: true,
		Env: agentEnv("ECHO_PLATEAU_AT=2 4")})
	st := loadState(t, project, "v")
	var got []bool
	for _, h := range st.History {
		got = append(got, h.Plateau)
		if h.Reasoning != "because" {
			t.Errorf("iteration %d reasoning = %q, want %q", h.Iteration, h.Reasoning, "because")
		}
	}
	if want := []bool{false, true, false, true}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("plateau votes %v, want %v", got, want)
	}
}

// TestAllItemsRendersEachItem checks that each all-items iteration gets its
// own ${ITEM} (and ${INDEX}) in the prompt the agent actually read.
func TestAllItemsRendersEachItem(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	prompts := t.TempDir()
	items := []string{"alpha", "beta two", "gamma/3"}
	writeStage(t, project, "walk", commandStage("all-items", "echo-agent", `items: ["alpha", "beta two", "gamma/3"]`),
		"item=${ITEM} index=${INDEX} iteration=${ITERATION}/${MAX_ITERATIONS}\n")
	res, out := runSession(t, context.Background(), RunOptions{Session: "items", Stage: "walk", ProjectDir: project, Foreground: true,
		Env: agentEnv("FAKE_AGENT_PROMPT_DIR=" + prompts)})
	if res.Status != state.StatusComplete || res.Reason != CompletionAllItems {
		t.Fatalf("Run = %+v\n%s", res, out)
	}
	for i, item := range items {
		got := readFile(t, filepath.Join(prompts, fmt.Sprintf("prompt-items-walk-%d.txt", i+1)))
		want := fmt.Sprintf("item=%s index=%d iteration=%d/3\n", item, i, i+1)
		if got != want {
			t.Errorf("prompt %d = %q, want %q", i+1, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(prompts, "prompt-items-walk-4.txt")); err == nil {
		t.Error("a fourth iteration ran for three items")
	}
}

// TestBeadsEmpty drives beads-empty stages with the fake bd and work-agent.
// The engine finds bd, and runs `bd ready`, with the session's environment
// (RunOptions.Env: testdata/agents first on PATH, FAKE_BD_FILE), not its
// own, so the cases share nothing and run in parallel.
func TestBeadsEmpty(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		checkBefore bool
		agent       string
		prompt      string
		beads       string
		wantRuns    int
		wantReason  string
		wantLeft    int // beads left in the file at the end
	}{
		{name: "check_before with no beads runs no agent", checkBefore: true, agent: "work-agent",
			beads: "b-9\tloop/other\tnot ours\n", wantRuns: 0, wantReason: "beads-empty", wantLeft: 1},
		{name: "check_before with two beads", checkBefore: true, agent: "work-agent",
			beads: "b-1\tloop/beads\tfirst\nb-2\tloop/beads\tsecond\n", wantRuns: 2, wantReason: "beads-empty"},
		{name: "without check_before, checks after each iteration", checkBefore: false, agent: "work-agent",
			beads: "b-1\tloop/beads\tfirst\nb-2\tloop/beads\tsecond\nb-3\tloop/other\tother\n", wantRuns: 2, wantReason: "beads-empty", wantLeft: 1},
		{name: "completion signal from work-agent", checkBefore: false, agent: "work-agent",
			beads: "", wantRuns: 1, wantReason: "completion_signal"},
		{name: "completion signal stops it with beads left", checkBefore: false, agent: "echo-agent",
			prompt: "Say <promise>COMPLETE</promise> when done.\n",
			beads:  "b-1\tloop/beads\tfirst\nb-2\tloop/beads\tsecond\n", wantRuns: 1, wantReason: "completion_signal", wantLeft: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			project := t.TempDir()
			tmp := t.TempDir()
			logFile := filepath.Join(tmp, "agent.log")
			db := filepath.Join(tmp, "beads.tsv")
			writeFile(t, db, tt.beads)
			prompt := tt.prompt
			if prompt == "" {
				prompt = "Work on one bead labelled loop/${SESSION}.\n"
			}
			writeStage(t, project, "w", commandStage("beads-empty", tt.agent, "max_iterations: 10", fmt.Sprintf("check_before: %v", tt.checkBefore)), prompt)
			res, out := runSession(t, context.Background(), RunOptions{Session: "beads", Stage: "w", ProjectDir: project, Foreground: true,
				Env: agentEnv("FAKE_AGENT_LOG="+logFile, "FAKE_BD_FILE="+db)})
			if got := agentRuns(t, logFile); !equalInts(got, seq(tt.wantRuns)) {
				t.Errorf("agent ran iterations %v, want %v\n%s", got, seq(tt.wantRuns), out)
			}
			if res.Status != state.StatusComplete || res.Reason != tt.wantReason {
				t.Errorf("Run = %s/%s, want complete/%s\n%s", res.Status, res.Reason, tt.wantReason, out)
			}
			if st := loadState(t, project, "beads"); st.CompletionReason != tt.wantReason || st.Status != state.StatusComplete {
				t.Errorf("state.json = %s/%s, want complete/%s", st.Status, st.CompletionReason, tt.wantReason)
			}
			left := strings.Count(readFile(t, db), "\n")
			if left != tt.wantLeft {
				t.Errorf("%d beads left, want %d", left, tt.wantLeft)
			}
		})
	}
}
