package engine

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/agent-sessions/agent-sessions/state"
)

// This file is resuming a stopped session: reopening its run, checking it
// may resume with what it is told now, what a resume may change, and what
// it records.

// reopen opens a stopped session's store to resume it: the plan it stored,
// with what the resume overrides, its leftover agents stopped and the
// resume recorded.
func (s *opened) reopen(o RunOptions, layout state.Layout) error {
	store, rec, err := state.Open(layout, nil)
	if err != nil {
		return resumeOpenError(o, err)
	}
	plan, err := resumablePlan(o, store.State())
	if err != nil {
		return err
	}
	applyResumeOverrides(plan, o.Compile)
	if err := CheckPlan(plan, envPath(o.Env)); err != nil {
		return err
	}
	s.left = stopLeftoverAgents(layout, o.Grace)
	s.store, s.plan, s.resumeNote = store, plan, recoveryNote(rec)
	return recordResume(store, plan, o.Compile, s.resumeNote)
}

// resumeOpenError says why a session to resume could not be opened.
func resumeOpenError(o RunOptions, err error) error {
	switch {
	case errors.Is(err, state.ErrNoState):
		return fmt.Errorf("%w: no session %s to resume in %s; start it without --resume", ErrNotFound, o.Session, o.ProjectDir)
	case errors.Is(err, state.ErrDiskFull):
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalid, err)
}

// resumablePlan is the plan a stopped session ran, if it may resume with
// the definition it is given now.
func resumablePlan(o RunOptions, st state.State) (*Plan, error) {
	if st.Status == state.StatusComplete && !ResumableComplete(st.CompletionReason) {
		return nil, fmt.Errorf("%w: session %s already completed (%s); nothing to resume — start it over with --force or choose a new name", ErrConflictComplete, o.Session, st.CompletionReason)
	}
	plan, err := PlanFromSpec(st.Spec)
	if err != nil {
		return nil, err
	}
	otherStage := o.Stage != "" && (plan.Kind != KindLoop || o.Stage != plan.Name)
	otherPipeline := o.Pipeline != "" && (plan.Kind != KindPipeline || o.Pipeline != plan.Name)
	if otherStage || otherPipeline {
		return nil, fmt.Errorf("%w: session %s ran %s %q; resume it with the same definition or start over with --force", ErrInvalid, o.Session, plan.Kind, plan.Name)
	}
	return plan, nil
}

// recordResume records session_resume with the limits the resume raises.
func recordResume(store *state.Store, plan *Plan, c Options, note string) error {
	st := store.State()
	data := state.ResumeData{Recovered: note}
	if c.Max > 0 && plan.Kind == KindLoop {
		data.MaxIterations = c.Max
	}
	if c.MaxCostUSD != nil {
		data.MaxCostUSD = *c.MaxCostUSD
	}
	return store.Record(state.Event{Type: state.EventSessionResume, StageIndex: st.CurrentStage, Stage: plan.Stages[st.CurrentStage].Name, Data: state.MustData(data)})
}

// applyResumeOverrides lets a resume change the provider, model or agent
// command (say, after installing a CLI) without changing what runs.
func applyResumeOverrides(p *Plan, o Options) {
	for i := range p.Stages {
		if o.Provider != "" {
			p.Stages[i].Provider = canonicalProvider(o.Provider)
		}
		if o.Model != "" {
			p.Stages[i].Model = o.Model
		}
		// A resume may raise (or lower) the guardrails: a session that
		// stopped at its budget goes on with a bigger one.
		if o.MaxCostUSD != nil {
			p.Stages[i].MaxCostUSD = *o.MaxCostUSD
		}
		if o.MaxRuntime > 0 {
			p.Stages[i].MaxRuntime = o.MaxRuntime
		}
		if o.MaxPark > 0 {
			p.Stages[i].MaxPark = o.MaxPark
		}
		if len(o.AgentCmd) > 0 {
			p.Stages[i].Command = o.AgentCmd
			if o.Provider == "" {
				p.Stages[i].Provider = ProviderCommand
			}
		}
	}
}

func recoveryNote(rec state.Recovery) string {
	var parts []string
	if rec.Rebuilt {
		s := "state.json rebuilt from events.jsonl"
		if rec.CorruptMovedTo != "" {
			s += " (the corrupt file was kept as " + filepath.Base(rec.CorruptMovedTo) + ")"
		}
		parts = append(parts, s)
	}
	if rec.Replayed > 0 {
		parts = append(parts, fmt.Sprintf("%d event(s) newer than state.json replayed", rec.Replayed))
	}
	if rec.SkippedLines > 0 {
		parts = append(parts, fmt.Sprintf("%d unreadable line(s) of events.jsonl skipped", rec.SkippedLines))
	}
	return strings.Join(parts, "; ")
}
