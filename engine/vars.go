package engine

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/agent-sessions/agent-sessions/state"
)

// This file is what an iteration is told: the prompt variables of SPEC §6
// (with ${INPUTS}, the earlier stages' outputs) and the agent's
// AGENT_SESSIONS_* environment of SPEC §7.

// inputsLimit bounds how much text ${INPUTS} expands to; past it the
// remaining outputs are listed by path for the agent to read.
const inputsLimit = 256 << 10

// agentVars are the AGENT_SESSIONS_* variables of SPEC §7.
func (r *Runner) agentVars(i, it int, files state.IterationFiles) map[string]string {
	return map[string]string{
		"AGENT_SESSIONS_SESSION":   r.Plan.Session,
		"AGENT_SESSIONS_STAGE":     r.Plan.Stages[i].Name,
		"AGENT_SESSIONS_ITERATION": strconv.Itoa(it),
		"AGENT_SESSIONS_RUN_DIR":   r.layout.RunDir(),
		"AGENT_SESSIONS_OUTPUT":    files.Output,
		"AGENT_SESSIONS_PROGRESS":  r.progressFile(i),
		"AGENT_SESSIONS_STATUS":    files.Status,
		"CLAUDE_LOOP_AGENT":        "1",
		"CLAUDE_LOOP_SESSION":      r.Plan.Session,
	}
}

// vars are the prompt variables of SPEC §6 for one iteration.
func (r *Runner) vars(i, it, max int, files state.IterationFiles) (map[string]string, error) {
	sp := r.Plan.Stages[i]
	v := map[string]string{
		"SESSION":        r.Plan.Session,
		"SESSION_NAME":   r.Plan.Session,
		"ITERATION":      strconv.Itoa(it),
		"INDEX":          strconv.Itoa(it - 1),
		"MAX_ITERATIONS": strconv.Itoa(max),
		"STAGE":          sp.Name,
		"PERSPECTIVE":    "",
		"ITEM":           "",
		"OUTPUT":         files.Output,
		"PROGRESS":       r.progressFile(i),
		"PROGRESS_FILE":  r.progressFile(i),
		"STATUS":         files.Status,
		"RUN_DIR":        r.layout.RunDir(),
		"WORKTREE":       r.worktreeDir(),
		"BRANCH":         r.Plan.Branch,
		"CONTEXT":        r.Plan.Context,
		"ANSWER":         "",
	}
	if r.Store != nil { // a preview (dry run) has no store and no answer
		if a := r.Store.State().Answer; a != nil {
			v["ANSWER"] = a.Answer
		}
	}
	if n := len(sp.Perspectives); n > 0 {
		v["PERSPECTIVE"] = sp.Perspectives[(it-1)%n]
	}
	if it-1 < len(sp.Items) {
		v["ITEM"] = sp.Items[it-1]
	}
	// ${INPUTS}: the previous stage's outputs, or the session's input files
	// for the first stage. Only expanded when the prompt asks for it.
	if strings.Contains(sp.Prompt, "${INPUTS") {
		in, err := r.stageInputs(i)
		if err != nil {
			return nil, err
		}
		v["INPUTS"] = in
		for j := 0; j < i; j++ {
			name := r.Plan.Stages[j].Name
			if strings.Contains(sp.Prompt, "${INPUTS."+name+"}") {
				out, err := r.stageOutputs(j)
				if err != nil {
					return nil, err
				}
				v["INPUTS."+name] = out
			}
		}
	}
	return v, nil
}

func (r *Runner) stageInputs(i int) (string, error) {
	if i > 0 {
		return r.stageOutputs(i - 1)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.inputs["input files"]; ok {
		return s, nil
	}
	var parts []inputPart
	for _, p := range r.Plan.Inputs {
		parts = append(parts, inputPart{title: "input: " + r.inputName(p), path: p})
	}
	s := joinInputs(parts)
	r.inputs["input files"] = s
	return s, nil
}

// stageOutputs concatenates the outputs of stage j's completed iterations.
func (r *Runner) stageOutputs(j int) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := "stage " + strconv.Itoa(j)
	if s, ok := r.inputs[key]; ok {
		return s, nil
	}
	st := r.Store.State()
	name := r.Plan.Stages[j].Name
	ss := st.Stages[j]
	its := ss.Completed
	if !ss.Parallel {
		its = nil
		for k := 1; k <= ss.Iterations; k++ {
			its = append(its, k)
		}
	}
	var parts []inputPart
	for _, it := range sortedInts(its) {
		f := r.layout.Iteration(j, name, it)
		parts = append(parts, inputPart{title: fmt.Sprintf("%s · iteration %d", name, it), path: f.Output})
	}
	s := joinInputs(parts)
	r.inputs[key] = s
	return s, nil
}

type inputPart struct{ title, path string }

func joinInputs(parts []inputPart) string {
	var b strings.Builder
	for k, p := range parts {
		// Inputs are the user's files or earlier agents' outputs: never
		// more than what still fits, never a FIFO or device.
		data, err := state.ReadRegularFile(p.path, int64(max(inputsLimit-b.Len(), 0)))
		if err != nil && !errors.Is(err, state.ErrTooLarge) {
			fmt.Fprintf(&b, "## %s\n\n(unreadable: %v)\n\n", p.title, err)
			continue
		}
		if err != nil || b.Len()+len(data) > inputsLimit {
			fmt.Fprintf(&b, "## More inputs, too long to include — read them from disk:\n\n")
			for _, rest := range parts[k:] {
				fmt.Fprintf(&b, "- %s: %s\n", rest.title, rest.path)
			}
			break
		}
		fmt.Fprintf(&b, "## %s (%s)\n\n%s\n\n", p.title, p.path, strings.TrimRight(string(data), "\n"))
	}
	return strings.TrimRight(b.String(), "\n")
}

// inputName names an input file for ${INPUTS} relative to the directory
// it is read in: the agents' (a worktree session's inputs were mapped
// into its worktree), else the project's.
func (r *Runner) inputName(p string) string {
	if r.Workspace != nil {
		if rel, ok := within(r.agentDir(), p); ok {
			return rel
		}
	}
	return relTo(r.controlDir(), p)
}

// within is p relative to dir, when p is inside dir.
func within(dir, p string) (string, bool) {
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return rel, true
}

func relTo(base, p string) string {
	if rel, err := filepath.Rel(base, p); err == nil {
		return rel
	}
	return p
}

func sortedInts(in []int) []int {
	out := append([]int(nil), in...)
	for a := 1; a < len(out); a++ {
		for b := a; b > 0 && out[b] < out[b-1]; b-- {
			out[b], out[b-1] = out[b-1], out[b]
		}
	}
	return out
}

// worktreeDir is ${WORKTREE}: the session's worktree, else the directory
// the agents work in (a preview has no workspace yet: the project).
func (r *Runner) worktreeDir() string {
	switch {
	case r.Plan.Worktree != "":
		return r.Plan.Worktree
	case r.Workspace != nil:
		return r.agentDir()
	}
	return r.controlDir()
}
