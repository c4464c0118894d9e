package tools

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
)

// Demo is a newcomer's first run: it starts a short session of the
// built-in demo stage (mock agent, no Claude needed) and walks it through
// start → monitor → list → kill → resume → complete, calling the real
// tools through an in-process client and explaining each step. It leaves
// nothing running. Without tmux it says so and runs the engine in the
// foreground instead.
func Demo(ctx context.Context, d *Deps, version string, out io.Writer) error {
	t := &demoTour{d: d, out: out, session: "demo-" + time.Now().Format("150405")}
	t.say("agent-sessions demo — a one-minute tour.")
	t.say("The built-in `demo` stage runs a deterministic mock agent: no Claude, API key or network needed.")
	t.say("Project directory: %s (the run's files stay there for you to read)", d.ProjectDir)
	t.say("")

	if err := d.Tmux.Available(); err != nil {
		return demoForeground(ctx, d, t.session, out, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lc, err := newLocalClient(ctx, NewServer(ctx, d, version), nil)
	if err != nil {
		return err
	}
	defer lc.Close()
	t.lc = lc
	// Whatever happens, leave nothing running.
	defer func() {
		var k KillResult
		lc.callInto(context.Background(), "kill", t.args(nil), &k)
	}()
	for _, step := range []func(context.Context) error{t.start, t.watch, t.list, t.kill, t.resume, t.finish} {
		if err := step(ctx); err != nil {
			return err
		}
		t.say("")
	}
	demoNext(out, d, state.NewLayout(d.ProjectDir, t.session).IterationDir(0, "demo", 1))
	return nil
}

// demoTour is one run of the tour: its session, its client and what it
// prints on.
type demoTour struct {
	d       *Deps
	lc      *localClient
	out     io.Writer
	session string
}

func (t *demoTour) say(format string, args ...any) { fmt.Fprintf(t.out, format+"\n", args...) }

// step announces tour step n: the call it makes and why.
func (t *demoTour) step(n int, call, why string) { t.say("%d/7  %s\n     %s", n, call, why) }

// result says what a step's call answered.
func (t *demoTour) result(format string, args ...any) { t.say("     → "+format, args...) }

// args are a call's arguments for the tour's session in its project.
func (t *demoTour) args(more map[string]any) map[string]any {
	args := map[string]any{"session": t.session, "project_dir": t.d.ProjectDir}
	for k, v := range more {
		args[k] = v
	}
	return args
}

func (t *demoTour) start(ctx context.Context) error {
	t.step(1, fmt.Sprintf(`start_session {"session": %q, "stage": "demo"}`, t.session), "validates everything, starts the engine in tmux, returns once it holds its lock")
	var st StartResult
	if _, err := t.lc.callInto(ctx, "start_session", t.args(map[string]any{"stage": "demo"}), &st); err != nil {
		return fmt.Errorf("start_session: %w", err)
	}
	t.result("%s; files in %s", st.Status, st.RunDir)
	t.result("watch it live from another terminal: %s -r   (detach: Ctrl+b d)", strings.TrimSuffix(st.AttachCommand, " -r"))
	return nil
}

func (t *demoTour) watch(ctx context.Context) error {
	t.step(2, fmt.Sprintf(`monitor {"session": %q, "wait": "iteration"}`, t.session), "blocks until the next iteration completes; each iteration is a fresh agent")
	for range 2 {
		var m MonitorResult
		if _, err := t.lc.callInto(ctx, "monitor", t.args(map[string]any{"wait": "iteration", "timeout_seconds": 60}), &m); err != nil {
			return fmt.Errorf("monitor: %w", err)
		}
		if li := m.LastIteration; li != nil {
			vote := "no"
			if li.Plateau {
				vote = "yes"
			}
			t.result("iteration %d/%d done: %s · plateau vote: %s · %q", li.Iteration, m.MaxIterations, li.Decision, vote, li.Reasoning)
		}
	}
	return nil
}

func (t *demoTour) list(ctx context.Context) error {
	t.step(3, "list {}", "every session with its status, iteration and age — one tmux call, no screen captures")
	var l ListResult
	if _, err := t.lc.callInto(ctx, "list", map[string]any{"project_dir": t.d.ProjectDir}, &l); err != nil {
		return fmt.Errorf("list: %w", err)
	}
	for _, s := range l.Sessions {
		t.result("%s [%s] %s iterations %s · %s", s.Session, s.Status, s.Definition, s.Iterations, s.Age)
	}
	return nil
}

func (t *demoTour) kill(ctx context.Context) error {
	t.step(4, fmt.Sprintf(`kill {"session": %q}`, t.session), "stops the engine and its agent gracefully; everything stays on disk")
	var k KillResult
	if _, err := t.lc.callInto(ctx, "kill", t.args(nil), &k); err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	t.result("%s: %s; last screen saved to final-output.txt in the run dir", k.Status, k.RemainingWork)
	for _, n := range k.NextSteps {
		t.result("next: %s", callText(n))
	}
	return nil
}

func (t *demoTour) resume(ctx context.Context) error {
	t.step(5, fmt.Sprintf(`start_session {"session": %q, "mode": "resume"}`, t.session), "continues exactly where it stopped: history is kept, nothing is redone twice")
	var st StartResult
	if _, err := t.lc.callInto(ctx, "start_session", t.args(map[string]any{"mode": "resume"}), &st); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	t.result("%s, continuing at %s", st.Status, st.ResumeAt)
	return nil
}

// finish waits for the session to complete and shows the reminder.
func (t *demoTour) finish(ctx context.Context) error {
	t.step(6, fmt.Sprintf(`monitor {"session": %q, "wait": "complete"}`, t.session), "the demo stage ends when two agents in a row vote PLATEAU: true")
	var m MonitorResult
	if _, err := t.lc.callInto(ctx, "monitor", t.args(map[string]any{"wait": "complete", "timeout_seconds": 120}), &m); err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	t.result("%s: %s after %d iterations", m.Status, m.CompletionReason, m.IterationCompleted)
	t.say("")

	t.step(7, "read sessions://reminder", "what Claude reads before ending a conversation, so no session is forgotten")
	text, err := t.d.ReminderText(ctx, t.d.ProjectDir)
	if err != nil {
		return err
	}
	t.result("%s", strings.TrimSpace(strings.TrimPrefix(text, "# Agent sessions\n\n")))
	return nil
}

func demoForeground(ctx context.Context, d *Deps, session string, out io.Writer, tmuxErr error) error {
	fmt.Fprintf(out, "tmux is not available (%v), so sessions cannot run in the background here.\n", tmuxErr)
	fmt.Fprintf(out, "%s. Running the engine in the foreground instead:\n\n", tmux.InstallHint())
	res, err := engine.Run(ctx, engine.RunOptions{Session: session, Stage: "demo", ProjectDir: d.ProjectDir, Foreground: true, Stdout: out, Env: d.environ()})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nThe session ended %s (%s).\n\n", res.Status, res.Reason)
	demoNext(out, d, state.NewLayout(d.ProjectDir, session).IterationDir(0, "demo", 1))
	if res.Status != "complete" {
		return errors.New("demo session did not complete: " + res.Status)
	}
	return nil
}

// demoNext says what to try next. iterationDir is the first iteration's
// directory (the one real path a newcomer wants to open).
func demoNext(out io.Writer, d *Deps, iterationDir string) {
	fmt.Fprintln(out, "What to try next:")
	if iterationDir != "" {
		fmt.Fprintf(out, "  - read what the first agent was given and wrote: ls %s  (prompt.md, output.md, result.json;\n"+
			"    the run dir above it has state.json, events.jsonl, session.log)\n", iterationDir)
	}
	exe := d.Executable
	if strings.Contains(exe, "/go-build") || !filepath.IsAbs(exe) {
		// Built by `go run` into a directory that is about to vanish:
		// point at where a lasting binary goes, as an absolute path, since
		// Claude Code starts the server without this shell's PATH.
		home, err := os.UserHomeDir()
		if err != nil {
			home = "~"
		}
		exe = filepath.Join(home, ".local", "bin", "agent-sessions")
		fmt.Fprintf(out, "  - build a binary that stays: CGO_ENABLED=0 go build -o %s .\n", exe)
	}
	fmt.Fprintf(out, "  - drive the same tools by hand: %s debug\n", exe)
	fmt.Fprintf(out, "  - connect Claude Code (every project): claude mcp add --scope user %s -- %s serve\n", ServerName, exe)
	fmt.Fprintf(out, "  - install the skill that teaches Claude the workflows: %s install\n", exe)
	fmt.Fprintln(out, "Nothing is left running.")
}
