// Command agent-sessions runs autonomous agent sessions in tmux and lets
// Claude Code drive them over MCP. main only parses the subcommand, builds
// the concrete pieces (the tmux client, the tools' dependencies, the hosts)
// and maps how a command ended onto an exit code; the commands live in
// enginecmd (run, lint: the engine's own) and cli (everything a person or
// Claude Code calls).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/agent-sessions/agent-sessions/cli"
	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/enginecmd"
	"github.com/agent-sessions/agent-sessions/remote"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
	"github.com/agent-sessions/agent-sessions/tools"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

// Exit codes (SPEC §3): `run` uses all four; every other command exits 0
// done, 1 failed (or a tool answered with an error), 2 bad usage.
const (
	exitComplete = 0
	exitFailed   = 1
	exitUsage    = 2
	exitKilled   = 3
)

// commands are the subcommands that report how they ended as an error.
var commands = map[string]func(cli.Env, []string) error{
	"serve":    cli.Serve,
	"reminder": cli.Reminder,
	"debug":    cli.Debug,
	"demo":     cli.Demo,
	"install":  cli.Install,
	"list":     cli.List,
	"kill":     cli.Kill,
	"hosts":    cli.Hosts,
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func dispatch(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	if run, ok := commands[cmd]; ok {
		env := cli.Env{Version: version, NewDeps: newDeps, Stdin: stdin, Stdout: stdout, Stderr: stderr,
			StdinTerminal: stdinIsTerminal(stdin)}
		return exitCode(run(env, args))
	}
	switch cmd {
	case "run":
		return runExitCode(enginecmd.Run(args, stdout, stderr))
	case "lint":
		return exitCode(enginecmd.Lint(args, stdout, stderr))
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

// exitCode maps how a command ended: it printed its own words already.
// An error the caller can fix by calling differently says so with a
// Usage method.
func exitCode(err error) int {
	var usage interface{ Usage() bool }
	switch {
	case err == nil:
		return 0
	case errors.As(err, &usage) && usage.Usage():
		return exitUsage
	}
	return exitFailed
}

// runExitCode maps how `run` ended: the session's status, or an error
// (printed already), which is the caller's to fix unless the machine is
// out of room.
func runExitCode(res engine.Result, err error) int {
	switch {
	case errors.Is(err, state.ErrDiskFull):
		return exitFailed
	case err != nil:
		return exitUsage
	case res.Status == state.StatusComplete:
		return exitComplete
	case res.Status == state.StatusKilled:
		return exitKilled
	}
	return exitFailed
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
	poll, err := tools.PollFromEnv(os.Environ())
	if err != nil {
		return nil, err
	}
	d := &tools.Deps{Hosts: hosts}
	d.Tmux, d.Executable, d.ProjectDir, d.Poll = tmux.NewFromEnv(), exe, dir, poll
	return d, nil
}

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
