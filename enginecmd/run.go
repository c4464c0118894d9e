package enginecmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
)

// runFlags is what `run` reads from its command line besides what goes
// straight into engine.RunOptions.
type runFlags struct {
	resume, force                bool
	agentCmd, setup, handoff     string
	maxCost, maxRuntime, maxPark string
	inputs                       listFlag
}

// Run is `agent-sessions run`: it runs one session in this process until
// it ends. Its errors are printed on stderr (and, for a start_session
// launch, into the start-error file) before it returns them: inside tmux
// the pane closes with the engine, so main must not print them again.
func Run(args []string, stdout, stderr io.Writer) (engine.Result, error) {
	// Inside tmux both are the pane's pty, which a stopped or hung tmux
	// server never drains: nothing the engine prints may wait for it
	// (session.log keeps the record). At exit the pane gets a second to
	// show the last lines.
	paneOut := engine.NewPaneWriter(stdout, engine.PaneBuffer)
	defer paneOut.Close(time.Second)
	paneErr := engine.NewPaneWriter(stderr, engine.PaneBuffer)
	defer paneErr.Close(time.Second)
	o, err := runOptions(args, paneErr)
	if err != nil {
		return engine.Result{}, err
	}
	o.Stdout = paneOut
	ctx, stop := signalContext()
	defer stop()
	res, err := engine.Run(ctx, o)
	if err != nil {
		return res, report(paneErr, err)
	}
	return res, nil
}

// runOptions parses run's command line into the engine's options; its
// errors are printed on stderr already.
func runOptions(args []string, stderr io.Writer) (engine.RunOptions, error) {
	var o engine.RunOptions
	var f runFlags
	fs := runFlagSet(&o, &f)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return o, err // flag printed it
	}
	if f.handoff != "" {
		if err := applyHandoff(&o, &f, f.handoff); err != nil {
			return o, report(stderr, err)
		}
	}
	if err := checkFlags(fs, &o, &f); err != nil {
		fmt.Fprintf(stderr, "agent-sessions run: %v\n", err)
		return o, err
	}
	o.Compile.Inputs = f.inputs
	grace, err := engine.GraceFromEnv(os.Environ())
	if err != nil {
		return o, report(stderr, err) // the pane closes with us: tell start_session why
	}
	o.Grace = grace
	return o, nil
}

// runFlagSet declares run's flags (SPEC §3) into o and f.
func runFlagSet(o *engine.RunOptions, f *runFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&o.Session, "session", "", "session name (lowercase letters, digits, hyphens)")
	fs.StringVar(&o.Stage, "stage", "", "stage to run as a single-stage session (a loop)")
	fs.StringVar(&o.Pipeline, "pipeline", "", "pipeline to run (a name or a YAML path)")
	fs.IntVar(&o.Compile.Max, "max", 0, "iterations (loops) or a cap on each stage's runs (pipelines)")
	fs.StringVar(&o.ProjectDir, "project", "", "project directory (default: current directory)")
	fs.BoolVar(&f.resume, "resume", false, "continue a crashed or killed session where it stopped")
	fs.BoolVar(&f.force, "force", false, "stop a running engine and start over, moving the old run aside")
	fs.StringVar(&o.Compile.Provider, "provider", "", "agent provider for every stage: claude, codex, command or mock")
	fs.StringVar(&o.Compile.Model, "model", "", "model for every stage (opus, sonnet, haiku or a full name)")
	fs.StringVar(&o.Compile.Context, "context", "", "text available to prompts as ${CONTEXT}")
	fs.Var(&f.inputs, "input", "input file for the first stage's ${INPUTS} (repeatable)")
	fs.StringVar(&f.agentCmd, "agent-cmd", "", `argv of the command provider: a JSON array, or words split on spaces (no shell)`)
	fs.BoolVar(&o.Foreground, "foreground", false, "not running inside tmux (records no tmux session)")
	fs.StringVar(&o.Compile.Isolation, "isolation", "", "none (default) or worktree: run the agents in the session's own git worktree")
	fs.StringVar(&o.Compile.BaseRef, "base-ref", "", "isolation worktree: the branch, tag or commit the worktree starts from (default HEAD)")
	fs.StringVar(&f.setup, "worktree-setup", "", "isolation worktree: argv run once in a new worktree, a JSON array (no shell)")
	fs.StringVar(&f.handoff, "handoff", "", "file from start_session with the environment, context and inputs (read once, then removed)")
	fs.StringVar(&f.maxCost, "max-cost-usd", "", "end the session (complete, reason budget) once its agents spent this many US dollars")
	fs.StringVar(&f.maxRuntime, "max-runtime", "", "end the session (complete, reason max_runtime) after this long, e.g. 8h")
	fs.StringVar(&f.maxPark, "max-park", "", "fail the session once it was parked this long in all (default 12h), e.g. 6h")
	return fs
}

// applyHandoff reads start_session's handoff file into o and f.
func applyHandoff(o *engine.RunOptions, f *runFlags, path string) error {
	h, err := engine.ReadHandoff(path)
	if err != nil {
		return err
	}
	if h.Context != "" {
		o.Compile.Context = h.Context
	}
	f.inputs = append(f.inputs, h.Inputs...)
	o.WorktreeReady, o.WorktreeNote = h.WorktreeReady, h.WorktreeNote
	return nil
}

// checkFlags validates the flags that need more than their type and moves
// them into o.
func checkFlags(fs *flag.FlagSet, o *engine.RunOptions, f *runFlags) error {
	if f.setup != "" {
		if err := json.Unmarshal([]byte(f.setup), &o.Compile.WorktreeSetup); err != nil {
			return usageErr{fmt.Errorf("--worktree-setup: want a JSON array of strings such as [\"npm\",\"ci\"]: %w", err)}
		}
	}
	if fs.NArg() > 0 {
		return usageErr{fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))}
	}
	if o.Compile.Max < 0 || (o.Compile.Max == 0 && flagGiven(fs, "max")) {
		return usageErr{fmt.Errorf("--max must be at least 1, got %d; leave it out to use the stage's own max_iterations", o.Compile.Max)}
	}
	switch {
	case f.resume && f.force:
		return usageErr{errors.New("--resume and --force exclude each other: resume continues the old run, force starts over")}
	case f.resume:
		o.Mode = engine.ModeResume
	case f.force:
		o.Mode = engine.ModeForce
	}
	if f.agentCmd != "" {
		argv, err := parseArgv(f.agentCmd)
		if err != nil {
			return usageErr{fmt.Errorf("--agent-cmd: %w", err)}
		}
		o.Compile.AgentCmd = argv
	}
	if err := guardFlags(&o.Compile, f.maxCost, f.maxRuntime, f.maxPark); err != nil {
		return usageErr{err}
	}
	return nil
}

// report prints why the engine could not start and tells start_session:
// its tmux pane closes with the engine, so the words would otherwise be
// lost. It returns err.
func report(stderr io.Writer, err error) error {
	text := errorText(err)
	fmt.Fprintf(stderr, "agent-sessions run: %s\n", text)
	engine.ReportStartFailure(err, text)
	return err
}

// signalContext is cancelled, with the signal as its cause, when the
// process is told to stop; the engine then records how it ended.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 4)
	// SIGPIPE is caught so a vanished pane or pipe makes writes fail
	// instead of killing the engine before it records how it ended.
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	go func() {
		// Ends when stop closes the channel.
		for s := range sigs {
			if s == syscall.SIGPIPE {
				continue
			}
			cancel(fmt.Errorf("killed by %s", signalName(s)))
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(sigs)
		cancel(nil)
	}
}

func signalName(s os.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.String()
}

// errorText prints definition problems one per line under a heading.
func errorText(err error) string {
	if ps, ok := engine.AsProblems(err); ok {
		return fmt.Sprintf("the definition has %d problem(s):\n  %s", len(ps), strings.ReplaceAll(ps.Error(), "\n", "\n  "))
	}
	return err.Error()
}
