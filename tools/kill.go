package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/state"
)

// KillArgs are kill's arguments.
type KillArgs struct {
	Session    string `json:"session" jsonschema:"session name (matched exactly: killing a never touches auth)"`
	ProjectDir string `json:"project_dir,omitempty" jsonschema:"project of the session (default: the server's, else where its tmux session runs)"`
}

// KillResult is kill's result.
type KillResult struct {
	Session          string       `json:"session" jsonschema:"session name"`
	Killed           bool         `json:"killed" jsonschema:"something was running and was stopped; false means it was a no-op"`
	StatusBefore     state.Status `json:"status_before" jsonschema:"classifier status before the kill"`
	Status           state.Status `json:"status" jsonschema:"status after the kill"`
	RemainingWork    string       `json:"remaining_work" jsonschema:"where it stopped and what was left to do"`
	BeadsRemaining   *int         `json:"beads_remaining,omitempty" jsonschema:"beads-empty stages: ready beads left"`
	AgentsStopped    int          `json:"agents_stopped,omitempty" jsonschema:"agent processes kill itself had to stop (the engine normally does)"`
	StoppedProcesses int          `json:"stopped_processes,omitempty" jsonschema:"agent processes of the session that were running when kill began and were ended (by the engine or by kill itself)"`
	ProcessesLeft    []int        `json:"processes_left,omitempty" jsonschema:"pids of agent processes still running after the kill (should be empty)"`
	Containment      string       `json:"containment,omitempty" jsonschema:"how the session's agents are contained: cgroup, subreaper, pgroup, marker (a run without containment info, found by environment) or none"`
	EngineSignal     string       `json:"engine_signal,omitempty" jsonschema:"the signal that ended the engine: SIGTERM, or SIGKILL when it outlived the grace; empty when no engine ran"`
	Worktree         string       `json:"worktree,omitempty" jsonschema:"isolation worktree: the worktree, kept as it is"`
	Branch           string       `json:"branch,omitempty" jsonschema:"isolation worktree: the session's branch, kept"`
	BranchCommits    *int         `json:"branch_commits,omitempty" jsonschema:"commits the branch holds that the branch it came from lacks"`
	Steps            []string     `json:"steps" jsonschema:"what kill did, in order"`
	NextSteps        []Option     `json:"next_steps,omitempty" jsonschema:"calls to make next, with complete arguments: continue it, or run it again"`

	// For the text and the tests, not sent: the numbers are in
	// remaining_work, and final-output.txt lives in the run dir.
	Stage              string `json:"-"`
	StageNumber        int    `json:"-"`
	StageCount         int    `json:"-"`
	Iteration          int    `json:"-"`
	IterationCompleted int    `json:"-"`
	MaxIterations      int    `json:"-"`
	FinalOutputFile    string `json:"-"`
}

// Kill is the kill tool.
func Kill(d *Deps) server.ServerTool {
	tool := mcp.NewTool("kill",
		mcp.WithToolTitle("Stop a session"),
		mcp.WithDescription("Stop a session: save its last screen to final-output.txt, stop the engine gracefully (it records killed and ends its agents), fall back to closing the tmux session and killing leftover agent processes. Reports the stage and iteration it stopped at, what work remained and how to resume. Killing a session that is not running is a calm no-op."),
		inputSchema[KillArgs](nil),
		outputSchema[KillResult](),
		annotations("Stop a session", false, true, true, false),
	)
	return server.ServerTool{Tool: tool, Handler: typed(d.kill)}
}

func (d *Deps) kill(ctx context.Context, _ mcp.CallToolRequest, a KillArgs) (KillResult, string, error) {
	info, err := d.resolve(ctx, a.Session, a.ProjectDir)
	if err != nil {
		return KillResult{}, "", err
	}
	k := d.host().Kill(ctx, info)
	res := KillResult{Session: a.Session, StatusBefore: info.Live.Status, Killed: k.Killed, Containment: k.Containment,
		EngineSignal: k.EngineSignal, Steps: k.Steps, AgentsStopped: k.AgentsStopped, StoppedProcesses: k.StoppedProcesses,
		ProcessesLeft: k.ProcessesLeft, FinalOutputFile: k.FinalOutputFile, BeadsRemaining: k.BeadsRemaining}
	if res.Steps == nil {
		res.Steps = []string{}
	}
	fillKill(&res, k.Final, k.BranchCommits)
	res.Status = k.Final.Live.Status
	if !k.Killed {
		res.Steps = append(res.Steps, fmt.Sprintf("nothing to do: %s is not running (%s)", a.Session, info.Live.Why))
		if info.Live.StaleLock {
			res.Steps = append(res.Steps, "its lock file is stale; cleanup with remove_stale_locks removes it")
		}
	} else if k.Final.State != nil {
		res.Status = state.Status(k.Final.State.Status)
	}
	return res, killText(res), nil
}

// fillKill says where the session stopped and what was left to do;
// branchCommits are its worktree branch's commits.
func fillKill(res *KillResult, info sessions.Info, branchCommits *int) {
	st := info.State
	if st == nil {
		res.RemainingWork = "unknown: the session has no readable state"
		return
	}
	if wt := sessions.WorktreeOf(st); wt.Dir != "" {
		res.Worktree, res.Branch = wt.Dir, wt.Branch
		res.BranchCommits = branchCommits
	}
	res.StageCount = len(st.Stages)
	if st.CurrentStage < len(st.Stages) {
		res.Stage = st.Stages[st.CurrentStage].Name
		res.StageNumber = st.CurrentStage + 1
	}
	res.Iteration, res.IterationCompleted, res.MaxIterations = st.Iteration, st.IterationCompleted, st.MaxIterations
	if st.Status == state.StatusComplete {
		res.RemainingWork = "none: the session completed (" + st.CompletionReason + ")"
		res.NextSteps = []Option{{Tool: "start_session", Arguments: definitionArgs(info.Name, engine.ModeForce, st), Description: "run it again from the start (the old run is moved aside)"}}
		return
	}
	where := ""
	if res.StageCount > 1 {
		where = fmt.Sprintf("stage %d/%d %s, ", res.StageNumber, res.StageCount, res.Stage)
	}
	res.RemainingWork = fmt.Sprintf("%s%d of %d iterations done, up to %d left", where, st.IterationCompleted, st.MaxIterations, st.MaxIterations-st.IterationCompleted)
	if later := res.StageCount - res.StageNumber; later > 0 {
		res.RemainingWork += fmt.Sprintf(", then %d more stage(s)", later)
	}
	res.NextSteps = []Option{{Tool: "start_session", Arguments: map[string]any{"session": info.Name, "mode": engine.ModeResume},
		Description: fmt.Sprintf("continue at iteration %d", st.IterationCompleted+1)}}
}

func killText(r KillResult) string {
	var b strings.Builder
	if r.Killed {
		fmt.Fprintf(&b, "Stopped %s (was %s); state is now %s. %d agent process(es) ended (containment: %s).\n", r.Session, r.StatusBefore, r.Status, r.StoppedProcesses, r.Containment)
	} else {
		fmt.Fprintf(&b, "%s is not running (status %s); nothing was stopped.\n", r.Session, r.StatusBefore)
	}
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "- %s\n", s)
	}
	if r.RemainingWork != "" {
		fmt.Fprintf(&b, "Remaining: %s\n", r.RemainingWork)
	}
	if r.BeadsRemaining != nil {
		fmt.Fprintf(&b, "Beads remaining: %d\n", *r.BeadsRemaining)
	}
	if r.Worktree != "" {
		fmt.Fprintf(&b, "Worktree kept: %s (branch %s", r.Worktree, r.Branch)
		if r.BranchCommits != nil {
			fmt.Fprintf(&b, ", %d commit(s) to review and merge", *r.BranchCommits)
		}
		b.WriteString(")\n")
	}
	for _, n := range r.NextSteps {
		fmt.Fprintf(&b, "Next: %s\n", callText(n))
	}
	return strings.TrimRight(b.String(), "\n")
}

// definitionArgs are start_session arguments that rerun what a state ran.
func definitionArgs(name, mode string, st *state.State) map[string]any {
	args := map[string]any{"session": name, "mode": mode}
	if st.Stage != "" {
		args["stage"] = st.Stage
	} else if st.Pipeline != "" {
		args["pipeline"] = st.Pipeline
	}
	return args
}
