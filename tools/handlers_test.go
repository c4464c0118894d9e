package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
	"github.com/agent-sessions/agent-sessions/workspace"
)

// fakeHost is a Host of function fields: each test sets what its handler
// should call. A call to a method left nil fails the test that made it.
type fakeHost struct {
	t *testing.T

	resolveFn    func(arg string) (string, error)
	findFn       func(name, project string) (sessions.Info, error)
	discoverFn   func(project string, dp sessions.Depth) ([]sessions.Info, []string)
	waitFn       func(info sessions.Info, kind string, timeout time.Duration) (sessions.Info, sessions.Waited, error)
	lookFn       func(info sessions.Info, lines int) sessions.View
	startFn      func(r sessions.StartRequest) (sessions.Started, error)
	killFn       func(info sessions.Info) sessions.Killed
	stopFn       func(info sessions.Info) []string
	closeTmuxFn  func(name string) error
	markFn       func(info sessions.Info) (string, error)
	answerFn     func(info sessions.Info, answer string) (state.Status, error)
	worktreesFn  func(project string) ([]workspace.WorktreeInfo, error)
	agentsLeftFn func(info sessions.Info) int
}

func (f *fakeHost) unexpected(method string) {
	f.t.Helper()
	f.t.Fatalf("unexpected Host call: %s", method)
}

func (f *fakeHost) ResolveProject(arg string) (string, error) {
	if f.resolveFn == nil {
		return "/project", nil
	}
	return f.resolveFn(arg)
}

func (f *fakeHost) Find(_ context.Context, name, project string) (sessions.Info, error) {
	if f.findFn == nil {
		f.unexpected("Find")
	}
	return f.findFn(name, project)
}

func (f *fakeHost) Discover(_ context.Context, project string, dp sessions.Depth) ([]sessions.Info, []string) {
	if f.discoverFn == nil {
		f.unexpected("Discover")
	}
	return f.discoverFn(project, dp)
}

func (f *fakeHost) Wait(_ context.Context, info sessions.Info, kind string, timeout time.Duration, _ sessions.Progress) (sessions.Info, sessions.Waited, error) {
	if f.waitFn == nil {
		f.unexpected("Wait")
	}
	return f.waitFn(info, kind, timeout)
}

func (f *fakeHost) Look(_ context.Context, info sessions.Info, lines int) sessions.View {
	if f.lookFn == nil {
		return sessions.View{}
	}
	return f.lookFn(info, lines)
}

func (f *fakeHost) ReadProgress(sessions.Info) (string, string, error) {
	f.unexpected("ReadProgress")
	return "", "", nil
}

func (f *fakeHost) ReadLog(sessions.Info, int) (string, error) {
	f.unexpected("ReadLog")
	return "", nil
}

func (f *fakeHost) Catalog(string) ([]engine.Entry, engine.Problems) {
	return []engine.Entry{{Kind: "stage", Name: "work", Description: "does the work", Termination: "fixed-n", DefaultMax: 5, Source: "builtin"}}, nil
}

func (f *fakeHost) Start(_ context.Context, r sessions.StartRequest) (sessions.Started, error) {
	if f.startFn == nil {
		f.unexpected("Start")
	}
	return f.startFn(r)
}

func (f *fakeHost) Kill(_ context.Context, info sessions.Info) sessions.Killed {
	if f.killFn == nil {
		f.unexpected("Kill")
	}
	return f.killFn(info)
}

func (f *fakeHost) Stop(_ context.Context, info sessions.Info) []string {
	if f.stopFn == nil {
		f.unexpected("Stop")
	}
	return f.stopFn(info)
}

func (f *fakeHost) CloseTmux(_ context.Context, name string) error {
	if f.closeTmuxFn == nil {
		f.unexpected("CloseTmux")
	}
	return f.closeTmuxFn(name)
}

func (f *fakeHost) MarkCrashed(info sessions.Info) (string, error) {
	if f.markFn == nil {
		f.unexpected("MarkCrashed")
	}
	return f.markFn(info)
}

func (f *fakeHost) RemoveStaleLock(string) (string, error) {
	f.unexpected("RemoveStaleLock")
	return "", nil
}

func (f *fakeHost) Archive(sessions.Info) (string, error) {
	f.unexpected("Archive")
	return "", nil
}

func (f *fakeHost) AgentsLeft(info sessions.Info) int {
	if f.agentsLeftFn == nil {
		return 0
	}
	return f.agentsLeftFn(info)
}

func (f *fakeHost) Worktrees(_ context.Context, project string, _ []sessions.Info) ([]workspace.WorktreeInfo, error) {
	if f.worktreesFn == nil {
		return nil, nil
	}
	return f.worktreesFn(project)
}

func (f *fakeHost) RemoveWorktree(context.Context, string, string) error {
	f.unexpected("RemoveWorktree")
	return nil
}

func (f *fakeHost) Answer(_ context.Context, info sessions.Info, answer string) (state.Status, error) {
	if f.answerFn == nil {
		f.unexpected("Answer")
	}
	return f.answerFn(info, answer)
}

func (f *fakeHost) AttachCommand(name string, readOnly bool) []string {
	if readOnly {
		return []string{"tmux", "-L", "t", "attach", "-r", "-t", "=" + name}
	}
	return []string{"tmux", "-L", "t", "attach", "-t", "=" + name}
}

func (f *fakeHost) SwitchCommand(name string) []string {
	return []string{"tmux", "-L", "t", "switch-client", "-t", "=" + name}
}

func (f *fakeHost) Socket() string { return "t" }

// callFake calls a tool of All through its registered handler (strict
// argument binding and host routing included) on a fake Host, and returns
// whether it was an error and its structuredContent as JSON.
func callFake(t *testing.T, h *fakeHost, tool string, args map[string]any) (bool, map[string]any) {
	t.Helper()
	d := &Deps{Host: h, Settings: sessions.Settings{ProjectDir: "/project"}}
	for _, st := range All(d) {
		if st.Tool.Name != tool {
			continue
		}
		var req mcp.CallToolRequest
		req.Params.Name, req.Params.Arguments = tool, args
		res, err := st.Handler(context.Background(), req)
		if err != nil {
			t.Fatalf("%s: Go error %v", tool, err)
		}
		raw, err := json.Marshal(res.StructuredContent)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: structuredContent %s: %v", tool, raw, err)
		}
		return res.IsError, m
	}
	t.Fatalf("no tool %s", tool)
	return false, nil
}

// wantError checks an error answer's code and the tools of its options.
func wantError(t *testing.T, isErr bool, m map[string]any, code string, optionTools ...string) {
	t.Helper()
	if !isErr || m["code"] != code {
		t.Fatalf("got isError %v, %v; want code %s", isErr, m, code)
	}
	opts, _ := m["options"].([]any)
	if opts == nil {
		t.Fatalf("options missing (want a list, even empty): %v", m)
	}
	var got []string
	for _, o := range opts {
		got = append(got, fmt.Sprint(o.(map[string]any)["tool"]))
	}
	if strings.Join(got, ",") != strings.Join(optionTools, ",") {
		t.Errorf("option tools %v, want %v (%v)", got, optionTools, opts)
	}
}

func option(m map[string]any, i int) map[string]any {
	return m["options"].([]any)[i].(map[string]any)["arguments"].(map[string]any)
}

func runningInfo(name string) sessions.Info {
	return sessions.Info{Name: name, ProjectDir: "/project", HasRunDir: true,
		Layout: state.NewLayout("/project", name),
		Lock:   state.LockStatus{Exists: true, Held: true},
		Tmux:   &tmux.Session{Name: "loop-" + name},
		State: &state.State{Session: name, Type: engine.KindLoop, Stage: "work", Status: state.StatusRunning, StartedAt: time.Now(),
			MaxIterations: 5, IterationCompleted: 2, Stages: []state.StageState{{Name: "work"}}},
		Live: state.Liveness{Status: state.LiveRunning, Why: "the engine holds the session lock"}}
}

func notFound(name, _ string) (sessions.Info, error) {
	return sessions.Info{}, &sessions.NotFoundError{Session: name, ProjectDir: "/project"}
}

func TestHandlerStartSession(t *testing.T) {
	t.Parallel()
	t.Run("started", func(t *testing.T) {
		var got sessions.StartRequest
		h := &fakeHost{t: t, startFn: func(r sessions.StartRequest) (sessions.Started, error) {
			got = r
			return sessions.Started{Session: r.Session, Status: "running", RunDir: "/project/.claude/pipeline-runs/s",
				Plan:          &engine.Plan{Kind: engine.KindLoop, Name: "work", Stages: []engine.StagePlan{{Name: "work", Completion: "fixed-n", MaxIterations: 3, Provider: "mock"}}},
				AttachCommand: []string{"tmux", "attach", "-t", "=loop-s"}, TmuxSession: "loop-s"}, nil
		}}
		isErr, m := callFake(t, h, "start_session", map[string]any{"session": "s", "stage": "work", "max_iterations": 3, "context": "c"})
		if isErr {
			t.Fatalf("error: %v", m)
		}
		if got.Session != "s" || got.Stage != "work" || got.MaxIterations != 3 || got.Context != "c" || got.Mode != engine.ModeNew {
			t.Errorf("request %+v", got)
		}
		if m["status"] != "running" || m["type"] != "loop" || m["definition"] != "work" || m["attach_command"] != "tmux attach -t =loop-s" {
			t.Errorf("result %v", m)
		}
		if _, sent := m["mode"]; sent {
			t.Errorf("a new session's mode is left out: %v", m)
		}
		steps := m["next_steps"].([]any)
		if len(steps) != 2 || steps[0].(map[string]any)["tool"] != "monitor" || steps[1].(map[string]any)["tool"] != "kill" {
			t.Errorf("next_steps %v", steps)
		}
	})
	t.Run("dry run", func(t *testing.T) {
		h := &fakeHost{t: t, startFn: func(r sessions.StartRequest) (sessions.Started, error) {
			if !r.DryRun {
				t.Errorf("DryRun not passed: %+v", r)
			}
			return sessions.Started{Session: r.Session, Status: sessions.StatusDryRun, FirstPrompt: strings.Repeat("p", 20<<10),
				Plan: &engine.Plan{Kind: engine.KindLoop, Name: "work", Stages: []engine.StagePlan{{Name: "work", Delay: 2}}}}, nil
		}}
		_, m := callFake(t, h, "start_session", map[string]any{"session": "s", "stage": "work", "dry_run": true})
		if m["status"] != "dry_run" || len(m["first_prompt"].(string)) > 8<<10 {
			t.Errorf("dry run %v: first_prompt %d bytes (want bounded to 8 KB)", m["status"], len(fmt.Sprint(m["first_prompt"])))
		}
		step := m["next_steps"].([]any)[0].(map[string]any)
		if args := step["arguments"].(map[string]any); step["tool"] != "start_session" || args["dry_run"] != nil || args["stage"] != "work" {
			t.Errorf("next step %v: want the same call without dry_run", step)
		}
	})
	t.Run("conflict", func(t *testing.T) {
		h := &fakeHost{t: t, startFn: func(r sessions.StartRequest) (sessions.Started, error) {
			return sessions.Started{}, &sessions.ConflictError{Reason: sessions.ConflictResumable, Session: "s", Status: state.LiveCrashed,
				Stopped: 4, FreeName: "s-2", Failure: "boom"}
		}}
		isErr, m := callFake(t, h, "start_session", map[string]any{"session": "s", "stage": "work"})
		wantError(t, isErr, m, CodeConflictCrashed, "start_session", "start_session", "start_session")
		if option(m, 0)["mode"] != "resume" || option(m, 1)["mode"] != "force" || option(m, 1)["stage"] != "work" || option(m, 2)["session"] != "s-2" {
			t.Errorf("options %v", m["options"])
		}
		if !strings.Contains(m["message"].(string), "stopped at iteration 5") || !strings.Contains(m["message"].(string), "crashed: boom") {
			t.Errorf("message %q", m["message"])
		}
	})
	t.Run("agent missing", func(t *testing.T) {
		h := &fakeHost{t: t, startFn: func(r sessions.StartRequest) (sessions.Started, error) {
			return sessions.Started{}, &sessions.PlanError{Err: fmt.Errorf("%w: claude is not on PATH", engine.ErrAgentUnavailable)}
		}}
		isErr, m := callFake(t, h, "start_session", map[string]any{"session": "s", "stage": "work", "model": "opus"})
		wantError(t, isErr, m, CodeAgentUnavailable, "start_session")
		if args := option(m, 0); args["provider"] != "mock" || args["dry_run"] != true || args["model"] != nil {
			t.Errorf("option %v: want the mock dry run without model", args)
		}
	})
	t.Run("worktree kept", func(t *testing.T) {
		h := &fakeHost{t: t, startFn: func(r sessions.StartRequest) (sessions.Started, error) {
			return sessions.Started{}, &sessions.KeptWorktreeError{Err: &sessions.StartFailure{Msg: "the engine exited at once"}, Dir: "/wt", Why: errors.New("busy")}
		}}
		isErr, m := callFake(t, h, "start_session", map[string]any{"session": "s", "stage": "work"})
		wantError(t, isErr, m, CodeInternal)
		if m["message"] != "the engine exited at once (its worktree /wt was kept: busy)" {
			t.Errorf("message %q", m["message"])
		}
	})
	for _, tc := range []struct {
		name string
		args map[string]any
		want string
	}{
		{"bad mode", map[string]any{"session": "s", "stage": "work", "mode": "again"}, "mode \"again\""},
		{"bad name", map[string]any{"session": "Bad Name", "stage": "work"}, "session"},
		{"zero iterations", map[string]any{"session": "s", "stage": "work", "max_iterations": 0}, "max_iterations must be between"},
		{"both definitions", map[string]any{"session": "s", "stage": "work", "pipeline": "p"}, "not both"},
		{"no definition", map[string]any{"session": "s"}, "give a stage"},
		{"NUL", map[string]any{"session": "s", "stage": "work", "context": "a\x00b"}, "NUL"},
		{"bad runtime", map[string]any{"session": "s", "stage": "work", "max_runtime": "soon"}, "max_runtime"},
		{"unknown argument", map[string]any{"session": "s", "stag": "work"}, "did you mean \"stage\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isErr, m := callFake(t, &fakeHost{t: t}, "start_session", tc.args) // Start must not be called
			if !isErr || m["code"] != CodeInvalidArgument || !strings.Contains(fmt.Sprint(m["message"]), tc.want) {
				t.Errorf("got %v, want invalid_argument naming %q", m, tc.want)
			}
		})
	}
}

func TestHandlerMonitor(t *testing.T) {
	t.Parallel()
	t.Run("glance", func(t *testing.T) {
		h := &fakeHost{t: t, findFn: func(name, project string) (sessions.Info, error) { return runningInfo(name), nil },
			lookFn: func(info sessions.Info, lines int) sessions.View {
				if lines != 7 {
					t.Errorf("lines %d, want 7", lines)
				}
				return sessions.View{RecentOutput: "hello", OutputSource: "pane", ProgressTail: "## progress"}
			}}
		isErr, m := callFake(t, h, "monitor", map[string]any{"session": "s", "lines": 7})
		if isErr || m["status"] != "running" || m["recent_output"] != "hello" || m["output_source"] != "pane" || m["progress_tail"] != "## progress" ||
			m["iteration_completed"] != 2.0 || m["max_iterations"] != 5.0 {
			t.Errorf("monitor %v", m)
		}
		if steps := m["next_steps"].([]any); steps[0].(map[string]any)["tool"] != "monitor" {
			t.Errorf("next_steps %v", steps)
		}
	})
	t.Run("wait", func(t *testing.T) {
		h := &fakeHost{t: t, findFn: func(name, project string) (sessions.Info, error) { return runningInfo(name), nil },
			waitFn: func(info sessions.Info, kind string, timeout time.Duration) (sessions.Info, sessions.Waited, error) {
				if kind != WaitComplete || timeout != 5*time.Second {
					t.Errorf("wait %s %s", kind, timeout)
				}
				info.Live.Status, info.Lock.Held = state.LiveComplete, false
				info.State.Status, info.State.CompletionReason = state.StatusComplete, "max_iterations"
				return info, sessions.Waited{Kind: kind, Met: true, Seconds: 1}, nil
			}}
		_, m := callFake(t, h, "monitor", map[string]any{"session": "s", "wait": "complete", "timeout_seconds": 5})
		if w, _ := m["waited"].(map[string]any); w == nil || w["met"] != true || m["status"] != "complete" {
			t.Errorf("monitor %v", m)
		}
	})
	t.Run("not found", func(t *testing.T) {
		isErr, m := callFake(t, &fakeHost{t: t, findFn: notFound}, "monitor", map[string]any{"session": "ghost"})
		wantError(t, isErr, m, CodeNotFound, "list")
	})
	for _, args := range []map[string]any{
		{"session": "s", "lines": 5000}, {"session": "s", "wait": "forever"}, {"session": "s", "timeout_seconds": 601}, {"session": "../x"},
	} {
		isErr, m := callFake(t, &fakeHost{t: t}, "monitor", args)
		if !isErr || m["code"] != CodeInvalidArgument {
			t.Errorf("monitor %v: %v, want invalid_argument", args, m)
		}
	}
}

func TestHandlerList(t *testing.T) {
	t.Parallel()
	crashed := runningInfo("c")
	crashed.Lock.Held, crashed.Tmux, crashed.Live = false, nil, state.Liveness{Status: state.LiveCrashed}
	waiting := runningInfo("w")
	waiting.Live.Status = state.LiveWaiting
	done := runningInfo("d")
	done.Live.Status, done.Tmux = state.LiveComplete, nil
	h := &fakeHost{t: t, discoverFn: func(project string, dp sessions.Depth) ([]sessions.Info, []string) {
		if project != "/project" || dp != sessions.Summary {
			t.Errorf("Discover(%s, %d)", project, dp)
		}
		return []sessions.Info{runningInfo("r"), done, crashed, waiting}, []string{"tmux is slow"}
	}}
	isErr, m := callFake(t, h, "list", nil)
	if isErr {
		t.Fatalf("list: %v", m)
	}
	var order []string
	for _, s := range m["sessions"].([]any) {
		order = append(order, s.(map[string]any)["session"].(string))
	}
	if strings.Join(order, ",") != "w,c,r,d" {
		t.Errorf("order %v, want waiting, crashed, running, complete", order)
	}
	counts := m["counts"].(map[string]any)
	if counts["total"] != 4.0 || counts["crashed"] != 1.0 || counts["waiting"] != 1.0 || m["warnings"].([]any)[0] != "tmux is slow" {
		t.Errorf("counts %v, warnings %v", counts, m["warnings"])
	}
	if step := m["next_steps"].([]any)[0].(map[string]any); step["tool"] != "start_session" || step["arguments"].(map[string]any)["session"] != "c" {
		t.Errorf("next step %v: want resume of the crashed one", step)
	}
	_, m = callFake(t, h, "list", map[string]any{"include_finished": false, "include_catalog": true})
	if len(m["sessions"].([]any)) != 3 {
		t.Errorf("include_finished false: %v", m["sessions"])
	}
	if c, _ := m["catalog"].([]any); len(c) != 1 || c[0].(map[string]any)["name"] != "work" || c[0].(map[string]any)["source"] != nil {
		t.Errorf("catalog %v: want work, its builtin source left out", m["catalog"])
	}
	isErr, m = callFake(t, &fakeHost{t: t, resolveFn: func(string) (string, error) {
		return "", fmt.Errorf("%w: project directory /nope does not exist", engine.ErrNotFound)
	}}, "list", map[string]any{"project_dir": "/nope"})
	wantError(t, isErr, m, CodeNotFound)
	isErr, m = callFake(t, &fakeHost{t: t}, "list", map[string]any{"limit": 31})
	wantError(t, isErr, m, CodeInvalidArgument)
}

func TestHandlerKill(t *testing.T) {
	t.Parallel()
	h := &fakeHost{t: t, findFn: func(name, project string) (sessions.Info, error) { return runningInfo(name), nil },
		killFn: func(info sessions.Info) sessions.Killed {
			final := info
			final.Lock.Held, final.Tmux = false, nil
			st := *info.State
			st.Status = state.StatusKilled
			final.State, final.Live = &st, state.Liveness{Status: state.LiveKilled}
			return sessions.Killed{Killed: true, Final: final, EngineSignal: "SIGTERM", Containment: "cgroup", Steps: []string{"stopped the engine"}, StoppedProcesses: 2}
		}}
	isErr, m := callFake(t, h, "kill", map[string]any{"session": "s"})
	if isErr || m["killed"] != true || m["status_before"] != "running" || m["status"] != "killed" || m["engine_signal"] != "SIGTERM" ||
		!strings.Contains(m["remaining_work"].(string), "2 of 5 iterations done") {
		t.Errorf("kill %v", m)
	}
	if step := m["next_steps"].([]any)[0].(map[string]any); step["arguments"].(map[string]any)["mode"] != "resume" {
		t.Errorf("next step %v", step)
	}
	// Nothing running: a calm no-op that says so.
	idle := &fakeHost{t: t, findFn: func(name, project string) (sessions.Info, error) {
		i := runningInfo(name)
		i.Live = state.Liveness{Status: state.LiveFailed, Why: "failed: x"}
		return i, nil
	}, killFn: func(info sessions.Info) sessions.Killed { return sessions.Killed{Final: info, Steps: []string{}} }}
	_, m = callFake(t, idle, "kill", map[string]any{"session": "s"})
	if m["killed"] != false || !strings.Contains(fmt.Sprint(m["steps"]), "nothing to do") {
		t.Errorf("idle kill %v", m)
	}
	isErr, m = callFake(t, &fakeHost{t: t, findFn: notFound}, "kill", map[string]any{"session": "ghost"})
	wantError(t, isErr, m, CodeNotFound, "list")
	isErr, m = callFake(t, &fakeHost{t: t}, "kill", map[string]any{"session": "Bad"})
	wantError(t, isErr, m, CodeInvalidArgument, "list")
}

func TestHandlerCleanup(t *testing.T) {
	t.Parallel()
	orphan := sessions.Info{Name: "o", ProjectDir: "/project", Tmux: &tmux.Session{Name: "loop-o"}, Live: state.Liveness{Status: state.LiveOrphan, Why: "no run dir"}}
	crashed := runningInfo("c")
	crashed.Lock.Held, crashed.Tmux, crashed.Live = false, nil, state.Liveness{Status: state.LiveCrashed, Why: "engine gone"}
	discover := func(string, sessions.Depth) ([]sessions.Info, []string) { return []sessions.Info{orphan, crashed}, nil }
	isErr, m := callFake(t, &fakeHost{t: t, discoverFn: discover, agentsLeftFn: func(sessions.Info) int { return 1 }}, "cleanup", nil)
	if isErr || m["dry_run"] != true || len(m["orphans"].([]any)) != 1 || len(m["crashed"].([]any)) != 1 || m["actions"] != nil {
		t.Errorf("dry cleanup %v", m)
	}
	if d := m["crashed"].([]any)[0].(map[string]any)["detail"]; !strings.Contains(d.(string), "1 of its agent processes") {
		t.Errorf("crashed detail %q", d)
	}
	var closed []string
	var marked []string
	h := &fakeHost{t: t, discoverFn: discover,
		closeTmuxFn: func(name string) error { closed = append(closed, name); return nil },
		markFn: func(info sessions.Info) (string, error) {
			marked = append(marked, info.Name)
			return "", errors.New("locked again")
		}}
	_, m = callFake(t, h, "cleanup", map[string]any{"dry_run": false, "kill_orphans": true, "mark_crashed": true})
	if strings.Join(closed, ",") != "loop-o" || strings.Join(marked, ",") != "c" {
		t.Errorf("closed %v, marked %v", closed, marked)
	}
	acts := m["actions"].([]any)
	if a := acts[0].(map[string]any); a["action"] != "kill_orphan" || a["done"] != true {
		t.Errorf("action %v", a)
	}
	if a := acts[1].(map[string]any); a["action"] != "mark_crashed" || a["done"] != false || a["result"] != "failed: locked again" {
		t.Errorf("action %v", a)
	}
	isErr, m = callFake(t, &fakeHost{t: t}, "cleanup", map[string]any{"prune_older_than_days": -1})
	wantError(t, isErr, m, CodeInvalidArgument)
	isErr, m = callFake(t, &fakeHost{t: t, resolveFn: func(string) (string, error) {
		return "", fmt.Errorf("%w: project_dir /nope does not exist", engine.ErrNotFound)
	}}, "cleanup", map[string]any{"project_dir": "/nope"})
	wantError(t, isErr, m, CodeNotFound)
}

func TestHandlerReply(t *testing.T) {
	t.Parallel()
	waiting := func(name, project string) (sessions.Info, error) {
		i := runningInfo(name)
		i.Live.Status, i.State.Status = state.LiveWaiting, state.StatusWaiting
		i.State.Question = &state.Question{Question: "SQLite?", Iteration: 2}
		return i, nil
	}
	var answered string
	h := &fakeHost{t: t, findFn: waiting, answerFn: func(info sessions.Info, answer string) (state.Status, error) {
		answered = answer
		return state.LiveRunning, nil
	}}
	isErr, m := callFake(t, h, "reply", map[string]any{"session": "s", "answer": "yes, SQLite"})
	if isErr || answered != "yes, SQLite" || m["answered"] != true || m["status"] != "running" || m["question"] != "SQLite?" {
		t.Errorf("reply %v (answered %q)", m, answered)
	}
	if args := m["next_steps"].([]any)[0].(map[string]any)["arguments"].(map[string]any); args["wait"] != "iteration" {
		t.Errorf("next step %v", args)
	}
	// Not waiting: nothing is sent.
	_, m = callFake(t, &fakeHost{t: t, findFn: func(name, project string) (sessions.Info, error) { return runningInfo(name), nil }}, "reply", map[string]any{"session": "s", "answer": "x"})
	if m["answered"] != false {
		t.Errorf("reply to a running session %v", m)
	}
	isErr, m = callFake(t, &fakeHost{t: t, findFn: waiting, answerFn: func(sessions.Info, string) (state.Status, error) {
		return "", fmt.Errorf("hand the answer to session s: %w", errors.New("disk full"))
	}}, "reply", map[string]any{"session": "s", "answer": "x"})
	wantError(t, isErr, m, CodeInternal)
	isErr, m = callFake(t, &fakeHost{t: t}, "reply", map[string]any{"session": "s", "answer": "  "})
	wantError(t, isErr, m, CodeInvalidArgument, "monitor")
}

func TestHandlerAttachHint(t *testing.T) {
	t.Parallel()
	h := &fakeHost{t: t, findFn: func(name, project string) (sessions.Info, error) { return runningInfo(name), nil }}
	isErr, m := callFake(t, h, "attach_hint", map[string]any{"session": "s", "read_only": true})
	if isErr || m["command"] != "tmux -L t attach -r -t =loop-s" || m["read_only_command"] != nil || m["status"] != "running" ||
		!strings.Contains(fmt.Sprint(m["warnings"]), "-L t") {
		t.Errorf("attach_hint %v", m)
	}
	gone := &fakeHost{t: t, findFn: func(name, project string) (sessions.Info, error) {
		i := runningInfo(name)
		i.Tmux, i.Lock.Held = nil, false
		i.State.Status, i.Live.Status = state.StatusComplete, state.LiveComplete
		return i, nil
	}}
	isErr, m = callFake(t, gone, "attach_hint", map[string]any{"session": "s"})
	wantError(t, isErr, m, CodeNotFound, "monitor")
	isErr, m = callFake(t, &fakeHost{t: t, findFn: notFound}, "attach_hint", map[string]any{"session": "ghost"})
	wantError(t, isErr, m, CodeNotFound, "list")
	isErr, m = callFake(t, &fakeHost{t: t}, "attach_hint", map[string]any{"session": "s", "readonly": true})
	wantError(t, isErr, m, CodeInvalidArgument)
}

// TestResendableFollowsAnnotations: a call whose host connection was lost
// mid-call is sent again only when its tool is read-only or idempotent —
// never start_session or reply, which would run twice.
func TestResendableFollowsAnnotations(t *testing.T) {
	want := map[string]bool{"list": true, "monitor": true, "attach_hint": true, "kill": true, "cleanup": true, "start_session": false, "reply": false}
	tools := All(&Deps{})
	if len(tools) != len(want) {
		t.Fatalf("%d tools, the table names %d: add the new one", len(tools), len(want))
	}
	for _, st := range tools {
		if got, ok := want[st.Tool.Name]; !ok || resendable(st.Tool) != got {
			t.Errorf("%s: resendable %v, want %v (in table: %v)", st.Tool.Name, resendable(st.Tool), got, ok)
		}
	}
}
