package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Environment knobs of the mock agent (read by the engine process).
const (
	// MockPlateauAfterEnv: the mock votes PLATEAU: true from this iteration
	// on (default 3, so a plateau stage with min 2 stops at iteration 4).
	MockPlateauAfterEnv = "AGENT_SESSIONS_MOCK_PLATEAU_AFTER"
	// MockStepEnv: pause between the mock's lines (default 300ms), to look
	// like an agent at work.
	MockStepEnv = "AGENT_SESSIONS_MOCK_STEP"
)

// mockProvider is a deterministic fake agent built into the binary, for the
// demo and for tests: it needs no external process and no API key. It
// "works" for a few lines, appends a note to the progress file and votes.
type mockProvider struct{}

func (mockProvider) Argv(StagePlan) []string { return nil }

func (mockProvider) Run(ctx context.Context, c Call) Outcome {
	after := 3
	if v, err := strconv.Atoi(os.Getenv(MockPlateauAfterEnv)); err == nil && v > 0 {
		after = v
	}
	step := 300 * time.Millisecond
	if d, err := time.ParseDuration(os.Getenv(MockStepEnv)); err == nil && d >= 0 {
		step = d
	}
	plateau := c.Iteration >= after
	lines := []string{
		fmt.Sprintf("[mock agent] iteration %d of stage %s: prompt received (%d bytes)", c.Iteration, c.Stage.Name, len(c.Prompt)),
		"[mock agent] reading the progress file to see what earlier iterations did",
		"[mock agent] making one small, simulated improvement",
		"[mock agent] appending a note to the progress file",
	}
	for _, l := range lines {
		fmt.Fprintln(c.Transcript, l)
		if err := sleepCtx(ctx, step); err != nil {
			return Outcome{ExitCode: ExitKilled, Stopped: true, Problem: "the agent was stopped because the session was killed"}
		}
	}
	if c.ProgressFile != "" {
		if f, err := os.OpenFile(c.ProgressFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			fmt.Fprintf(f, "\n### Iteration %d (%s, mock agent)\n- Simulated one small improvement.\n", c.Iteration, c.Stage.Name)
			f.Close()
		}
	}
	reason := "there is still something worth improving"
	if plateau {
		reason = "the remaining changes would be cosmetic"
	}
	text := strings.Join([]string{
		fmt.Sprintf("Iteration %d: made one simulated improvement and noted it in the progress file.", c.Iteration),
		"",
		fmt.Sprintf("PLATEAU: %v", plateau),
		"REASONING: " + reason,
		"",
	}, "\n")
	io.WriteString(c.Output, text)
	io.WriteString(c.Transcript, text)
	return Outcome{}
}

// sleepCtx sleeps for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return errStopped
	case <-t.C:
		return nil
	}
}
