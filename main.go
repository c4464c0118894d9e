// Command agent-sessions runs autonomous agent sessions in tmux and lets
// Claude Code drive them over MCP. main only parses subcommands, wires the
// packages together and maps errors to exit codes.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/remote"
	"github.com/agent-sessions/agent-sessions/skill"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
	"github.com/agent-sessions/agent-sessions/tools"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

// Exit codes of `run` (SPEC §3).
const (
	exitComplete = 0
	exitFailed   = 1
	exitUsage    = 2
	exitKilled   = 3
)

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func dispatch(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serveCmd(args, stdin, stdout, stderr)
	case "reminder":
		return reminderCmd(args, stdin, stdout, stderr)
	case "debug":
		return debugCmd(args, stdin, stdout, stderr)
	case "demo":
		return demoCmd(args, stdout, stderr)
	case "install":
		return installCmd(args, stdout, stderr)
	case "run":
		return runCmd(args, stdout, stderr)
	case "lint":
		return lintCmd(args, stdout, stderr)
	case "hosts":
		return hostsCmd(args, stdout, stderr)
	case "list":
		return listCmd(args, stdout, stderr)
	case "kill":
		return killCmd(args, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "agent-sessions %s\n", version)
		return 0
	case "help", "--help", "-h":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "agent-sessions: unknown command %q\n\n", cmd)
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: agent-sessions [command] [flags]

commands:
  serve     (default) the stdio MCP server for Claude Code
  demo      a one-minute tour: start, monitor, list, kill, resume a mock session
  debug     drive the same tools by hand, one command per line on stdin
  install   install the skill and register the server with Claude Code
  run       run one session in this process until it ends (what tmux executes)
  reminder  print the orphan reminder (--hook: as a Claude Code Stop hook)
  list      list the sessions (what the list tool answers Claude)
  kill      stop a session: agent-sessions kill [--host H] NAME (the kill tool)
  lint      validate stages and pipelines
  hosts     check the hosts of hosts.yaml (reachable, versions, tmux, claude)
  version   print the version

Run "agent-sessions COMMAND -h" for a command's flags.
`)
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// flagGiven reports whether a flag was set on the command line (a flag's
// zero value and an absent flag look alike otherwise).
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

func runCmd(args []string, stdout, stderr io.Writer) int {
	// Inside tmux both are the pane's pty, which a stopped or hung tmux
	// server never drains: nothing the engine prints may wait for it
	// (session.log keeps the record). At exit the pane gets a second to
	// show the last lines.
	paneOut := engine.NewPaneWriter(stdout, engine.PaneBuffer)
	defer paneOut.Close(time.Second)
	paneErr := engine.NewPaneWriter(stderr, engine.PaneBuffer)
	defer paneErr.Close(time.Second)
	stdout, stderr = paneOut, paneErr
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o engine.RunOptions
	var resume, force bool
	var agentCmd string
	var inputs listFlag
	fs.StringVar(&o.Session, "session", "", "session name (lowercase letters, digits, hyphens)")
	fs.StringVar(&o.Stage, "stage", "", "stage to run as a single-stage session (a loop)")
	fs.StringVar(&o.Pipeline, "pipeline", "", "pipeline to run (a name or a YAML path)")
	fs.IntVar(&o.Compile.Max, "max", 0, "iterations (loops) or a cap on each stage's runs (pipelines)")
	fs.StringVar(&o.ProjectDir, "project", "", "project directory (default: current directory)")
	fs.BoolVar(&resume, "resume", false, "continue a crashed or killed session where it stopped")
	fs.BoolVar(&force, "force", false, "stop a running engine and start over, moving the old run aside")
	fs.StringVar(&o.Compile.Provider, "provider", "", "agent provider for every stage: claude, codex, command or mock")
	fs.StringVar(&o.Compile.Model, "model", "", "model for every stage (opus, sonnet, haiku or a full name)")
	fs.StringVar(&o.Compile.Context, "context", "", "text available to prompts as ${CONTEXT}")
	fs.Var(&inputs, "input", "input file for the first stage's ${INPUTS} (repeatable)")
	fs.StringVar(&agentCmd, "agent-cmd", "", `argv of the command provider: a JSON array, or words split on spaces (no shell)`)
	fs.BoolVar(&o.Foreground, "foreground", false, "not running inside tmux (records no tmux session)")
	fs.StringVar(&o.Compile.Isolation, "isolation", "", "none (default) or worktree: run the agents in the session's own git worktree")
	fs.StringVar(&o.Compile.BaseRef, "base-ref", "", "isolation worktree: the branch, tag or commit the worktree starts from (default HEAD)")
	setup := fs.String("worktree-setup", "", "isolation worktree: argv run once in a new worktree, a JSON array (no shell)")
	handoff := fs.String("handoff", "", "file from start_session with the environment, context and inputs (read once, then removed)")
	maxCost := fs.String("max-cost-usd", "", "end the session (complete, reason budget) once its agents spent this many US dollars")
	maxRuntime := fs.String("max-runtime", "", "end the session (complete, reason max_runtime) after this long, e.g. 8h")
	maxPark := fs.String("max-park", "", "fail the session once it was parked this long in all (default 12h), e.g. 6h")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *handoff != "" {
		h, err := engine.ReadHandoff(*handoff)
		if err != nil {
			fmt.Fprintf(stderr, "agent-sessions run: %s\n", errorText(err))
			reportStartFailure(err)
			return exitUsage
		}
		if h.Context != "" {
			o.Compile.Context = h.Context
		}
		inputs = append(inputs, h.Inputs...)
		o.WorktreeReady, o.WorktreeNote = h.WorktreeReady, h.WorktreeNote
	}
	if *setup != "" {
		if err := json.Unmarshal([]byte(*setup), &o.Compile.WorktreeSetup); err != nil {
			fmt.Fprintf(stderr, "agent-sessions run: --worktree-setup: want a JSON array of strings such as [\"npm\",\"ci\"]: %v\n", err)
			return exitUsage
		}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agent-sessions run: unexpected argument %q (flags only)\n", fs.Arg(0))
		return exitUsage
	}
	if o.Compile.Max < 0 || (o.Compile.Max == 0 && flagGiven(fs, "max")) {
		fmt.Fprintf(stderr, "agent-sessions run: --max must be at least 1, got %d; leave it out to use the stage's own max_iterations\n", o.Compile.Max)
		return exitUsage
	}
	if resume && force {
		fmt.Fprintln(stderr, "agent-sessions run: --resume and --force exclude each other: resume continues the old run, force starts over")
		return exitUsage
	}
	switch {
	case resume:
		o.Mode = engine.ModeResume
	case force:
		o.Mode = engine.ModeForce
	}
	if agentCmd != "" {
		argv, err := parseArgv(agentCmd)
		if err != nil {
			fmt.Fprintf(stderr, "agent-sessions run: --agent-cmd: %v\n", err)
			return exitUsage
		}
		o.Compile.AgentCmd = argv
	}
	if err := guardFlags(&o.Compile, *maxCost, *maxRuntime, *maxPark); err != nil {
		fmt.Fprintf(stderr, "agent-sessions run: %v\n", err)
		return exitUsage
	}
	o.Compile.Inputs = inputs
	o.Stdout = stdout
	grace, err := engine.GraceFromEnv(os.Environ())
	if err != nil {
		fmt.Fprintf(stderr, "agent-sessions run: %s\n", errorText(err))
		reportStartFailure(err) // the pane closes with us: tell start_session why
		return exitUsage
	}
	o.Grace = grace

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 4)
	// SIGPIPE is caught so a vanished pane or pipe makes writes fail
	// instead of killing the engine before it records how it ended.
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	defer signal.Stop(sigs)
	go func() {
		for s := range sigs {
			if s == syscall.SIGPIPE {
				continue
			}
			cancel(fmt.Errorf("killed by %s", signalName(s)))
		}
	}()

	res, err := engine.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "agent-sessions run: %s\n", errorText(err))
		reportStartFailure(err)
		if errors.Is(err, state.ErrDiskFull) {
			return exitFailed // not bad input: the machine is out of room
		}
		return exitUsage
	}
	switch res.Status {
	case state.StatusComplete:
		return exitComplete
	case state.StatusKilled:
		return exitKilled
	}
	return exitFailed
}

// reportStartFailure tells start_session why the engine could not start:
// its tmux pane closes with it, so the words would otherwise be lost.
func reportStartFailure(err error) { engine.ReportStartFailure(err, errorText(err)) }

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

// parseArgv reads an argv given as a JSON array or as space-separated words.
func parseArgv(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		var argv []string
		if err := json.Unmarshal([]byte(s), &argv); err != nil {
			return nil, fmt.Errorf("not a JSON array of strings: %v", err)
		}
		if len(argv) == 0 {
			return nil, errors.New("empty")
		}
		return argv, nil
	}
	argv := strings.Fields(s)
	if len(argv) == 0 {
		return nil, errors.New("empty")
	}
	return argv, nil
}

func lintCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	project := fs.String("project", "", "project directory (default: current directory)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	dir, err := engine.ProjectDir(*project)
	if err != nil {
		fmt.Fprintf(stderr, "agent-sessions lint: %v\n", err)
		return exitUsage
	}
	res := engine.Lint(dir, fs.Args())
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else {
		for _, p := range res.Problems {
			fmt.Fprintln(stdout, p.String())
		}
		fmt.Fprintf(stdout, "checked %d definition(s): %d problem(s)\n", len(res.Checked), len(res.Problems))
	}
	if len(res.Problems) > 0 {
		return exitUsage
	}
	return 0
}

// newDeps builds the tools' dependencies for this process.
func newDeps(projectDir string) (*tools.Deps, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this binary: %w", err)
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	dir, err := engine.ProjectDir(projectDir)
	if err != nil {
		return nil, err
	}
	cfg, err := remote.Load()
	hosts := tools.NewHosts(cfg, remote.Options{ClientVersion: version})
	// A broken hosts.yaml must not take this machine's sessions away: the
	// tools still work here, and a call naming a host says what is wrong.
	hosts.LoadErr = err
	return &tools.Deps{Tmux: tmux.NewFromEnv(), Executable: exe, ProjectDir: dir, Hosts: hosts}, nil
}

func serveCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	project := fs.String("project", "", "default project directory (default: current directory)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	d, err := newDeps(*project)
	if err != nil {
		fmt.Fprintf(stderr, "agent-sessions serve: %v\n", err)
		return exitUsage
	}
	if stdinIsTerminal(stdin) {
		// A person ran it by hand: without a word it would look hung.
		fmt.Fprint(stderr, serveTerminalNote)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := tools.Serve(ctx, d, version, stdin, stdout, stderr); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "agent-sessions serve: %v\n", err)
		return 1
	}
	return 0
}

// serveTerminalNote is what serve says when a person starts it in a
// terminal: it is a server speaking JSON-RPC on stdin, not a prompt.
const serveTerminalNote = `agent-sessions: this is the MCP server (stdio) that Claude Code starts; it reads JSON-RPC on stdin and has nothing to show here.
  Stop it with Ctrl+C (or Ctrl+D).
  Try it by hand instead: agent-sessions demo (a one-minute tour), agent-sessions debug (call the tools), agent-sessions list.
  Connect Claude Code: claude mcp add --scope user agent-sessions -- /full/path/to/agent-sessions serve
`

// stdinIsTerminal reports whether stdin is a terminal (a character device
// other than /dev/null, which is what a service gets). A variable so that
// tests can stand in for a terminal.
var stdinIsTerminal = func(stdin io.Reader) bool {
	f, ok := stdin.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}

// listCmd prints what the list tool answers: the same handler, through
// the registry, for a person at a terminal.
func listCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	project := fs.String("project", "", "project directory (default: current directory)")
	catalog := fs.Bool("catalog", false, "also list the stages and pipelines that can be started")
	active := fs.Bool("active", false, "only sessions still running (or needing attention)")
	offset := fs.Int("offset", 0, "skip this many sessions (paging)")
	host := fs.String("host", "", "only this host of hosts.yaml, or local (default: this machine and every host)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agent-sessions list: unexpected argument %q (flags only: --project, --catalog, --active, --offset, --host)\n", fs.Arg(0))
		return exitUsage
	}
	call := map[string]any{"include_catalog": *catalog, "offset": *offset}
	if *active {
		call["include_finished"] = false
	}
	return cliTool("list", hostProject(*host, *project, call), call, stdout, stderr)
}

// killCmd stops a session as the kill tool does: agent-sessions kill NAME.
func killCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	project := fs.String("project", "", "project directory of the session (default: current directory, else where its tmux session runs)")
	host := fs.String("host", "", "the host of hosts.yaml the session runs on (default: this machine)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	rest := fs.Args()
	if len(rest) > 1 { // flags after the name
		if err := fs.Parse(rest[1:]); err != nil {
			return exitUsage
		}
		rest = append(rest[:1], fs.Args()...)
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, "usage: agent-sessions kill [--host NAME] [--project DIR] NAME   (agent-sessions list shows the names)")
		return exitUsage
	}
	call := map[string]any{"session": rest[0]}
	if *project != "" {
		call["project_dir"] = *project
	}
	return cliTool("kill", hostProject(*host, *project, call), call, stdout, stderr)
}

// hostProject sets call's host and returns the project directory for this
// machine's server: with another host, project is a path there and this
// machine's default is used.
func hostProject(host, project string, call map[string]any) string {
	if host == "" {
		return project
	}
	call["host"] = host
	if host == remote.Local {
		return project
	}
	if project != "" {
		call["project_dir"] = project
	}
	return ""
}

// cliTool runs one tool for a person and maps its answer to an exit code:
// 0 answered, 1 the tool reported an error, 2 it could not be asked.
func cliTool(tool, project string, call map[string]any, stdout, stderr io.Writer) int {
	d, err := newDeps(project)
	if err != nil {
		fmt.Fprintf(stderr, "agent-sessions %s: %v\n", tool, err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	isErr, err := tools.CLI(ctx, d, version, tool, call, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "agent-sessions %s: %v\n", tool, err)
		return exitUsage
	}
	if isErr {
		return 1
	}
	return 0
}

func reminderCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reminder", flag.ContinueOnError)
	fs.SetOutput(stderr)
	project := fs.String("project", "", "project directory (default: current directory)")
	hook := fs.Bool("hook", false, "Claude Code Stop hook mode: print {\"systemMessage\": …} only when sessions are running")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *hook && *project == "" {
		// The hook's payload names the project Claude Code runs in.
		*project = hookCwd(stdin)
	}
	d, err := newDeps(*project)
	if err != nil {
		// A Stop hook must never break Claude Code: say why, exit 0.
		if !*hook {
			fmt.Fprintf(stdout, "agent-sessions reminder: %v\n", err)
		}
		return 0
	}
	text, err := reminderText(d, *hook)
	if err != nil {
		if !*hook {
			fmt.Fprintf(stdout, "agent-sessions reminder: %v\n", err)
		}
		return 0
	}
	if *hook {
		if strings.Contains(text, "No agent sessions are running") {
			return 0
		}
		json.NewEncoder(stdout).Encode(map[string]string{"systemMessage": text})
		return 0
	}
	fmt.Fprint(stdout, text)
	return 0
}

// hookCwd reads the Stop hook's payload for the project Claude Code runs
// in, waiting at most a second for a payload that never ends.
func hookCwd(stdin io.Reader) string {
	cwd := make(chan string, 1)
	go func() {
		var payload struct {
			Cwd string `json:"cwd"`
		}
		if data, err := io.ReadAll(io.LimitReader(stdin, 1<<20)); err == nil {
			json.Unmarshal(data, &payload)
		}
		cwd <- payload.Cwd
	}()
	select {
	case c := <-cwd:
		return c
	case <-time.After(time.Second):
		return ""
	}
}

// Bounds of the Stop hook, which Claude Code waits for: tmux gets
// hookTmuxWait (a stopped or hung server then costs that much, and the
// sessions are judged by their locks alone), the whole reminder hookWait;
// past it the hook gives up silently and exits 0 well within 5 s.
const (
	hookTmuxWait = 2 * time.Second
	hookWait     = 4 * time.Second
)

// reminderText is the reminder, within the hook's bounds when hook is set.
func reminderText(d *tools.Deps, hook bool) (string, error) {
	if !hook {
		return d.ReminderText(context.Background(), d.ProjectDir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hookTmuxWait)
	defer cancel()
	type answer struct {
		text string
		err  error
	}
	done := make(chan answer, 1)
	// Whatever else might block (a hung file system), the hook still
	// returns: the goroutine is abandoned and ends with the process.
	go func() {
		text, err := d.ReminderText(ctx, d.ProjectDir)
		done <- answer{text, err}
	}()
	select {
	case a := <-done:
		return a.text, a.err
	case <-time.After(hookWait):
		return "", errors.New("the reminder took too long")
	}
}

func debugCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("debug", flag.ContinueOnError)
	fs.SetOutput(stderr)
	project := fs.String("project", "", "default project directory (default: current directory)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	d, err := newDeps(*project)
	if err != nil {
		fmt.Fprintf(stderr, "agent-sessions debug: %v\n", err)
		return exitUsage
	}
	prompt := ""
	if f, ok := stdin.(*os.File); ok {
		if info, err := f.Stat(); err == nil && info.Mode()&os.ModeCharDevice != 0 {
			prompt = "> "
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := tools.Debug(ctx, d, version, stdin, stdout, prompt); err != nil {
		fmt.Fprintf(stderr, "agent-sessions debug: %v\n", err)
		return 1
	}
	return 0
}

func demoCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	project := fs.String("project", "", "project directory for the demo session (default: a new scratch directory)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	dir := *project
	if dir == "" {
		tmp, err := os.MkdirTemp("", "agent-sessions-demo-")
		if err != nil {
			fmt.Fprintf(stderr, "agent-sessions demo: %v\n", err)
			return 1
		}
		dir = tmp
	}
	d, err := newDeps(dir)
	if err != nil {
		fmt.Fprintf(stderr, "agent-sessions demo: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := tools.Demo(ctx, d, version, stdout); err != nil {
		fmt.Fprintf(stderr, "agent-sessions demo: %v\n", err)
		return 1
	}
	return 0
}

func installCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	fs.SetOutput(stderr)
	skillDir := fs.String("skill-dir", "", "where to write the skill (default: ~/.claude/skills/sessions)")
	project := fs.String("project", "", "also register the server in this project's .mcp.json (merged; other servers are kept)")
	command := fs.String("command", "", "path of the agent-sessions binary to register (default: this binary)")
	host := fs.String("host", "", "instead: copy this binary to the host NAME of hosts.yaml when it is missing or older there")
	force := fs.Bool("force", false, "with --host: copy even when the host's binary is as new as this one")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *host != "" {
		return installHostCmd(*host, *force, stdout, stderr)
	}
	exe := *command
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			fmt.Fprintf(stderr, "agent-sessions install: %v\n", err)
			return 1
		}
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		if strings.Contains(exe, string(filepath.Separator)+"go-build") {
			// `go run` builds into a temporary directory that vanishes.
			found, err := exec.LookPath("agent-sessions")
			if err != nil {
				fmt.Fprintln(stderr, "agent-sessions install: this binary was built by `go run` into a temporary directory that will vanish;")
				fmt.Fprintln(stderr, "  install a lasting one first (go build -o ~/.local/bin/agent-sessions . or go install .), then run it: agent-sessions install")
				return exitUsage
			}
			exe = found
		}
	}
	dir := *skillDir
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			fmt.Fprintf(stderr, "agent-sessions install: %v; pass --skill-dir\n", err)
			return exitUsage
		}
		dir = filepath.Join(home, ".claude", "skills", "sessions")
	}
	res, err := skill.Install(dir)
	if err != nil {
		fmt.Fprintf(stderr, "agent-sessions install: %v\n", err)
		return 1
	}
	switch {
	case res.Unchanged:
		fmt.Fprintf(stdout, "skill: %s is already up to date\n", dir)
	default:
		fmt.Fprintf(stdout, "skill: wrote %d files to %s\n", len(res.Written), dir)
		if res.MovedAside != "" {
			fmt.Fprintf(stdout, "skill: the previous version differed and was moved aside to %s\n", res.MovedAside)
		}
	}
	if *project != "" {
		pdir, err := engine.ProjectDir(*project)
		if err != nil {
			fmt.Fprintf(stderr, "agent-sessions install: %v\n", err)
			return exitUsage
		}
		path := filepath.Join(pdir, ".mcp.json")
		backup, err := skill.MergeMCPConfig(path, tools.ServerName, skill.ServerEntry{Type: "stdio", Command: exe, Args: []string{"serve"}})
		if err != nil {
			fmt.Fprintf(stderr, "agent-sessions install: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "mcp: registered %q in %s\n", tools.ServerName, path)
		if backup != "" {
			fmt.Fprintf(stdout, "mcp: the previous file was kept as %s\n", backup)
		}
	}
	fmt.Fprintf(stdout, "\nTo register the server for yourself in every project, run:\n  claude mcp add --scope user %s -- %s serve\n", tools.ServerName, exe)
	fmt.Fprintf(stdout, "\nOptional Stop hook (reminds you of sessions still running), in ~/.claude/settings.json:\n")
	hook := map[string]any{"hooks": map[string]any{"Stop": []any{map[string]any{"hooks": []any{map[string]any{"type": "command", "command": exe + " reminder --hook"}}}}}}
	out, _ := json.MarshalIndent(hook, "  ", "  ")
	fmt.Fprintf(stdout, "  %s\n", out)
	return 0
}

// guardFlags reads run's --max-cost-usd, --max-runtime and --max-park.
func guardFlags(c *engine.Options, cost, runtime, park string) error {
	if cost != "" {
		v, err := engine.ParseDollars(cost)
		if err != nil {
			return fmt.Errorf("--max-cost-usd: %w", err)
		}
		c.MaxCostUSD = &v
	}
	for _, f := range []struct {
		name, value string
		into        *time.Duration
	}{{"--max-runtime", runtime, &c.MaxRuntime}, {"--max-park", park, &c.MaxPark}} {
		if f.value == "" {
			continue
		}
		d, err := engine.ParseDuration(f.value)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		*f.into = d
	}
	return nil
}

func hostsCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hosts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", remote.DefaultCheckTimeout, "time limit for checking each host")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	cfg, err := remote.Load()
	if err != nil {
		fmt.Fprintf(stderr, "agent-sessions hosts: %v\n", err)
		return exitUsage
	}
	hosts := cfg.Hosts
	if fs.NArg() > 0 {
		hosts = nil
		for _, name := range fs.Args() {
			h, err := cfg.Lookup(name)
			if err != nil {
				fmt.Fprintf(stderr, "agent-sessions hosts: %v\n", err)
				return exitUsage
			}
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		path, _ := remote.ConfigPath()
		fmt.Fprintf(stdout, "no hosts configured: sessions run on this machine only.\nTo add one, write %s:\n  hosts:\n    - name: build\n      ssh: me@build-box\n", path)
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	reports := remote.CheckAll(ctx, hosts, version, *timeout, remote.Options{ClientVersion: version})
	remote.WriteReports(stdout, version, reports)
	for _, r := range reports {
		if !r.OK() {
			return 1
		}
	}
	return 0
}

func installHostCmd(name string, force bool, stdout, stderr io.Writer) int {
	cfg, err := remote.Load()
	if err == nil {
		var h remote.Host
		if h, err = cfg.Lookup(name); err == nil {
			return installHost(h, force, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "agent-sessions install: %v\n", err)
	return exitUsage
}

func installHost(h remote.Host, force bool, stdout, stderr io.Writer) int {
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		fmt.Fprintf(stderr, "agent-sessions install: find this binary: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	res, err := remote.Install(ctx, h, exe, version, force, remote.Options{ClientVersion: version})
	if err != nil {
		fmt.Fprintf(stderr, "agent-sessions install: %v\n", err)
		return 1
	}
	switch {
	case !res.Installed:
		fmt.Fprintf(stdout, "host %s: %s is %s (%s), nothing to do (--force copies anyway)\n", h.Name, res.Target, res.Report.Version, res.Report.Compare)
	default:
		fmt.Fprintf(stdout, "host %s: installed agent-sessions %s as %s\n", h.Name, version, res.Target)
		if res.Backup != "" {
			fmt.Fprintf(stdout, "host %s: the previous binary (%s) is kept as %s\n", h.Name, res.Report.Version, res.Backup)
		}
	}
	if res.BinaryHint != "" {
		fmt.Fprintf(stdout, "host %s: %s\n", h.Name, res.BinaryHint)
	}
	fmt.Fprintf(stdout, "check it with: agent-sessions hosts %s\n", h.Name)
	return 0
}
