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
	session := "demo-" + time.Now().Format("150405")
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	say("agent-sessions demo — a one-minute tour.")
	say("The built-in `demo` stage runs a deterministic mock agent: no Claude, API key or network needed.")
	say("Project directory: %s (the run's files stay there for you to read)", d.ProjectDir)
	say("")

	if err := d.Tmux.Available(); err != nil {
		return demoForeground(ctx, d, session, out, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lc, err := newLocalClient(ctx, NewServer(ctx, d, version), nil)
	if err != nil {
		return err
	}
	defer lc.Close()
	// Whatever happens, leave nothing running.
	defer func() {
		var k KillResult
		lc.callInto(context.Background(), "kill", map[string]any{"session": session, "project_dir": d.ProjectDir}, &k)
	}()

	step := func(n int, call, why string) { say("%d/7  %s\n     %s", n, call, why) }
	res := func(format string, args ...any) { say("     → "+format, args...) }

	step(1, fmt.Sprintf(`start_session {"session": %q, "stage": "demo"}`, session), "validates everything, starts the engine in tmux, returns once it holds its lock")
	var st StartResult
	if _, err := lc.callInto(ctx, "start_session", map[string]any{"session": session, "stage": "demo", "project_dir": d.ProjectDir}, &st); err != nil {
		return fmt.Errorf("start_session: %w", err)
	}
	res("%s; files in %s", st.Status, st.RunDir)
	res("watch it live from another terminal: %s -r   (detach: Ctrl+b d)", strings.TrimSuffix(st.AttachCommand, " -r"))
	say("")

	step(2, fmt.Sprintf(`monitor {"session": %q, "wait": "iteration"}`, session), "blocks until the next iteration completes; each iteration is a fresh agent")
	for range 2 {
		var m MonitorResult
		if _, err := lc.callInto(ctx, "monitor", map[string]any{"session": session, "wait": "iteration", "timeout_seconds": 60, "project_dir": d.ProjectDir}, &m); err != nil {
			return fmt.Errorf("monitor: %w", err)
		}
		if li := m.LastIteration; li != nil {
			vote := "no"
			if li.Plateau {
				vote = "yes"
			}
			res("iteration %d/%d done: %s · plateau vote: %s · %q", li.Iteration, m.MaxIterations, li.Decision, vote, li.Reasoning)
		}
	}
	say("")

	step(3, "list {}", "every session with its status, iteration and age — one tmux call, no screen captures")
	var l ListResult
	if _, err := lc.callInto(ctx, "list", map[string]any{"project_dir": d.ProjectDir}, &l); err != nil {
		return fmt.Errorf("list: %w", err)
	}
	for _, s := range l.Sessions {
		res("%s [%s] %s iterations %s · %s", s.Session, s.Status, s.Definition, s.Iterations, s.Age)
	}
	say("")

	step(4, fmt.Sprintf(`kill {"session": %q}`, session), "stops the engine and its agent gracefully; everything stays on disk")
	var k KillResult
	if _, err := lc.callInto(ctx, "kill", map[string]any{"session": session, "project_dir": d.ProjectDir}, &k); err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	res("%s: %s; last screen saved to final-output.txt in the run dir", k.Status, k.RemainingWork)
	for _, n := range k.NextSteps {
		res("next: %s", callText(n))
	}
	say("")

	step(5, fmt.Sprintf(`start_session {"session": %q, "mode": "resume"}`, session), "continues exactly where it stopped: history is kept, nothing is redone twice")
	if _, err := lc.callInto(ctx, "start_session", map[string]any{"session": session, "mode": "resume", "project_dir": d.ProjectDir}, &st); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	res("%s, continuing at %s", st.Status, st.ResumeAt)
	say("")

	step(6, fmt.Sprintf(`monitor {"session": %q, "wait": "complete"}`, session), "the demo stage ends when two agents in a row vote PLATEAU: true")
	var m MonitorResult
	if _, err := lc.callInto(ctx, "monitor", map[string]any{"session": session, "wait": "complete", "timeout_seconds": 120, "project_dir": d.ProjectDir}, &m); err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	res("%s: %s after %d iterations", m.Status, m.CompletionReason, m.IterationCompleted)
	say("")

	step(7, "read sessions://reminder", "what Claude reads before ending a conversation, so no session is forgotten")
	text, err := d.ReminderText(ctx, d.ProjectDir)
	if err != nil {
		return err
	}
	res("%s", strings.TrimSpace(strings.TrimPrefix(text, "# Agent sessions\n\n")))
	say("")
	demoNext(out, d, state.NewLayout(d.ProjectDir, session).IterationDir(0, "demo", 1))
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
		fmt.Fprintf(out, "  - build a binary that stays: go build -o %s .\n", exe)
	}
	fmt.Fprintf(out, "  - drive the same tools by hand: %s debug\n", exe)
	fmt.Fprintf(out, "  - connect Claude Code (every project): claude mcp add --scope user %s -- %s serve\n", ServerName, exe)
	fmt.Fprintf(out, "  - install the skill that teaches Claude the workflows: %s install\n", exe)
	fmt.Fprintln(out, "Nothing is left running.")
}
