package tools

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
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
	res := KillResult{Session: a.Session, StatusBefore: info.Live.Status, Steps: []string{}}
	before := engine.SessionAgents(info.ProjectDir, info.Name, info.Layout.RunDir())
	res.Containment = containmentOf(info, before)
	switch {
	case info.Live.Status.Active():
		res.Killed = true
		res.EngineSignal = d.stopSession(ctx, info, &res.Steps, &res.AgentsStopped)
	default:
		if len(before.Pids) == 0 {
			fillKill(&res, info)
			res.Status = info.Live.Status
			res.Steps = append(res.Steps, fmt.Sprintf("nothing to do: %s is not running (%s)", a.Session, info.Live.Why))
			if info.Live.StaleLock {
				res.Steps = append(res.Steps, "its lock file is stale; cleanup with remove_stale_locks removes it")
			}
			return res, killText(res), nil
		}
		// No engine, but its agents live on (the engine was kill -9'd).
		res.Killed = true
		d.stopLeftovers(info, &res.Steps, &res.AgentsStopped)
		d.markKilled(info, &res.Steps)
	}
	res.StoppedProcesses, res.ProcessesLeft = stoppedSince(info, before)
	res.StoppedProcesses = max(res.StoppedProcesses, res.AgentsStopped)
	if len(res.ProcessesLeft) > 0 {
		res.Steps = append(res.Steps, fmt.Sprintf("%d agent process(es) still running: %v", len(res.ProcessesLeft), res.ProcessesLeft))
	}
	final := d.inspect(info.ProjectDir, info.Name, nil)
	if info.HasRunDir {
		res.FinalOutputFile = info.Layout.FinalOutput()
	}
	fillKill(&res, final)
	res.Status = final.Live.Status
	if final.State != nil {
		res.Status = state.Status(final.State.Status)
		if plan, err := engine.PlanFromSpec(final.State.Spec); err == nil && final.State.CurrentStage < len(plan.Stages) &&
			plan.Stages[final.State.CurrentStage].Completion == engine.CompletionBeadsEmpty {
			bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if n, err := engine.BeadsReady(bctx, final.ProjectDir, "loop/"+final.Name); err == nil {
				res.BeadsRemaining = &n
			}
			cancel()
		}
	}
	return res, killText(res), nil
}

// stopSession stops everything of a session, most graceful first:
//  1. save the last screen;
//  2. SIGTERM the engine (it kills its agents' process group and records
//     killed), SIGKILL after the grace;
//  3. close the tmux session (SIGHUP) if it is still there;
//  4. stop any agent process still carrying the run directory's marker;
//  5. if the engine could not record killed itself, record it.
func (d *Deps) stopSession(ctx context.Context, info sessionInfo, steps *[]string, agentsStopped *int) (engineSignal string) {
	name := info.tmuxName()
	if info.TmuxErr != nil {
		*steps = append(*steps, "tmux did not answer (its server may be stopped or hung): the screen was not saved and the tmux session, if any, was left; the engine is stopped by signal")
	}
	if info.Tmux != nil {
		if screen, err := d.Tmux.CapturePane(ctx, info.Tmux.Name, 2000); err == nil && info.HasRunDir {
			if err := state.WriteFileAtomic(info.Layout.FinalOutput(), []byte(screen+"\n"), 0o644); err == nil {
				*steps = append(*steps, "saved the last screen to final-output.txt in the run dir")
			}
		}
	}
	if info.Lock.Held {
		pid := 0
		if info.Lock.Info != nil {
			pid = info.Lock.Info.PID
		}
		sig, err := engine.StopEngineSignal(ctx, info.Layout, d.grace())
		engineSignal = sig
		switch {
		case err != nil:
			*steps = append(*steps, "the engine did not stop: "+err.Error())
		case sig == "SIGKILL":
			*steps = append(*steps, fmt.Sprintf("the engine (pid %d) did not stop within %s of SIGTERM and was killed with SIGKILL; its agents are stopped below", pid, d.grace()))
		case sig == "SIGTERM":
			*steps = append(*steps, fmt.Sprintf("stopped the engine (pid %d) with SIGTERM; it stopped its agents and released its lock", pid))
		}
	}
	if info.Tmux != nil {
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(25 * time.Millisecond) {
			if ok, _ := d.Tmux.HasSession(ctx, name); !ok {
				break
			}
		}
		if ok, _ := d.Tmux.HasSession(ctx, name); ok {
			if err := d.Tmux.KillSession(ctx, name); err == nil {
				*steps = append(*steps, "closed tmux session "+name)
			} else if !errors.Is(err, tmux.ErrSessionNotFound) {
				*steps = append(*steps, "closing tmux session "+name+" failed: "+err.Error())
			}
		} else {
			*steps = append(*steps, "tmux session "+name+" closed with its engine")
		}
	}
	d.stopLeftovers(info, steps, agentsStopped)
	d.markKilled(info, steps)
	return engineSignal
}

// stopLeftovers ends agent processes no engine owns any more: the
// session's cgroup killed whole, or (without one) those carrying the run
// directory's environment marker.
func (d *Deps) stopLeftovers(info sessionInfo, steps *[]string, agentsStopped *int) {
	// Leftovers had their chance at SIGTERM from their engine already (or
	// their engine is long dead): at most 5 s more.
	left := engine.StopLeftovers(info.ProjectDir, info.Name, info.Layout.RunDir(), min(d.grace(), 5*time.Second))
	if n := len(left.Pids); n > 0 {
		*agentsStopped += n
		*steps = append(*steps, fmt.Sprintf("stopped %d leftover agent process(es), found by %s", n, left.Mechanism))
	}
}

// containmentOf says how a session's agents are contained: what its engine
// recorded, else how its processes can be found.
func containmentOf(info sessionInfo, agents engine.Leftovers) string {
	if s, ok := engine.ReadContainment(info.Layout); ok {
		return s.Mechanism
	}
	if agents.Mechanism != "" {
		return agents.Mechanism
	}
	return "none"
}

// stoppedSince counts the agent processes alive before the kill that are
// gone now, and lists any still running.
func stoppedSince(info sessionInfo, before engine.Leftovers) (stopped int, left []int) {
	after := engine.SessionAgents(info.ProjectDir, info.Name, info.Layout.RunDir())
	still := map[int]bool{}
	for _, p := range after.Pids {
		still[p] = true
	}
	for _, p := range before.Pids {
		if !still[p] {
			stopped++
		}
	}
	return stopped, after.Pids
}

// markKilled records `killed` for a session whose engine died without
// recording its end (a zombie, or an engine that had to be SIGKILLed). It
// takes the session's lock first, so it never races a live engine.
func (d *Deps) markKilled(info sessionInfo, steps *[]string) {
	if !info.HasRunDir {
		return
	}
	st, _, err := state.Load(info.Layout)
	if err != nil || !state.Active(st.Status) {
		return
	}
	lock, err := state.AcquireLock(context.Background(), info.Layout.LockFile(), info.Name, time.Second, 0)
	if err != nil {
		return
	}
	defer lock.Release()
	store, _, err := state.Open(info.Layout, nil)
	if err != nil {
		*steps = append(*steps, "could not record killed: "+err.Error())
		return
	}
	cur := store.State()
	if !state.Active(cur.Status) {
		return
	}
	stage := ""
	if cur.CurrentStage < len(cur.Stages) {
		stage = cur.Stages[cur.CurrentStage].Name
	}
	err = store.Record(state.Event{Type: state.EventSessionKilled, StageIndex: cur.CurrentStage, Stage: stage,
		Data: state.MustData(state.ReasonData{Reason: engine.ReasonKilled, Error: "killed by the kill tool (the engine was gone or did not stop)"})})
	if err == nil {
		*steps = append(*steps, "recorded the session as killed (its engine could not)")
	}
}

func fillKill(res *KillResult, info sessionInfo) {
	st := info.State
	if st == nil {
		res.RemainingWork = "unknown: the session has no readable state"
		return
	}
	if wt := worktreeOf(st); wt.Worktree != "" {
		res.Worktree, res.Branch = wt.Worktree, wt.Branch
		res.BranchCommits = branchCommits(info.ProjectDir, info.Name)
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
