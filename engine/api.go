package engine

import (
	"context"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// StopEngine stops the engine holding a session's lock: SIGTERM to the pid
// its lock names (the engine then records `killed` and stops its agents),
// SIGKILL when it still holds the lock after wait — which should cover the
// engine's agent grace and a margin to record its end. It returns nil at
// once when no engine holds the lock.
func StopEngine(ctx context.Context, l state.Layout, wait time.Duration) error {
	_, err := stopLiveEngine(ctx, l, wait)
	return err
}

// StopEngineSignal is StopEngine, also saying which signal ended the
// engine: "SIGTERM", "SIGKILL" (it outlived the wait), or "" (no engine
// held the lock).
func StopEngineSignal(ctx context.Context, l state.Layout, wait time.Duration) (string, error) {
	return stopLiveEngine(ctx, l, wait)
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
