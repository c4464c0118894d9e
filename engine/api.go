package engine

import (
	"context"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// StopEngine stops the engine holding a session's lock: SIGTERM to the pid
// its lock names (the engine then records `killed` and stops its agents),
// SIGKILL after grace. It returns nil at once when no engine holds the lock.
func StopEngine(ctx context.Context, l state.Layout, grace time.Duration) error {
	_, err := stopLiveEngine(ctx, l, grace)
	return err
}

// StopEngineSignal is StopEngine, also saying which signal ended the
// engine: "SIGTERM", "SIGKILL" (it outlived the grace), or "" (no engine
// held the lock).
func StopEngineSignal(ctx context.Context, l state.Layout, grace time.Duration) (string, error) {
	return stopLiveEngine(ctx, l, grace)
}

// PreviewPrompt renders the first prompt of a plan (stage 1, iteration 1)
// exactly as the engine would, without writing anything.
func PreviewPrompt(p *Plan) (string, error) {
	l := state.NewLayout(p.ProjectDir, p.Session)
	r := &Runner{Plan: p, layout: l, inputs: map[string]string{}}
	sp := p.Stages[0]
	vars, err := r.vars(0, 1, sp.MaxIterations, l.Iteration(0, sp.Name, 1))
	if err != nil {
		return "", err
	}
	return Render(sp.Prompt, vars), nil
}
