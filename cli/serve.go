package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/agent-sessions/agent-sessions/tools"
)

// Serve is `agent-sessions serve`: the stdio MCP server Claude Code starts.
func Serve(e Env, args []string) error {
	d, err := e.serverDeps("serve", args)
	if err != nil {
		return err
	}
	if e.StdinTerminal {
		// A person ran it by hand: without a word it would look hung.
		fmt.Fprint(e.Stderr, serveTerminalNote)
	}
	ctx, stop := interruptible()
	defer stop()
	if err := tools.Serve(ctx, d, e.Version, e.Stdin, e.Stdout, e.Stderr); err != nil && !errors.Is(err, context.Canceled) {
		return e.fail("serve", err)
	}
	return nil
}

// serveTerminalNote is what serve says when a person starts it in a
// terminal: it is a server speaking JSON-RPC on stdin, not a prompt.
const serveTerminalNote = `agent-sessions: this is the MCP server (stdio) that Claude Code starts; it reads JSON-RPC on stdin and has nothing to show here.
  Stop it with Ctrl+C (or Ctrl+D).
  Try it by hand instead: agent-sessions demo (a one-minute tour), agent-sessions debug (call the tools), agent-sessions list.
  Connect Claude Code: claude mcp add --scope user agent-sessions -- /full/path/to/agent-sessions serve
`

// Debug is `agent-sessions debug`: the tools by hand, one call a line.
func Debug(e Env, args []string) error {
	d, err := e.serverDeps("debug", args)
	if err != nil {
		return err
	}
	prompt := ""
	if e.StdinTerminal {
		prompt = "> "
	}
	ctx, stop := interruptible()
	defer stop()
	if err := tools.Debug(ctx, d, e.Version, e.Stdin, e.Stdout, prompt); err != nil {
		return e.fail("debug", err)
	}
	return nil
}

// serverDeps reads the one flag serve and debug share (--project) and
// builds the tools' dependencies for that project.
func (e Env) serverDeps(name string, args []string) (*tools.Deps, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	project := fs.String("project", "", "default project directory (default: current directory)")
	if err := fs.Parse(args); err != nil {
		return nil, usageErr{err}
	}
	d, err := e.NewDeps(*project)
	if err != nil {
		return nil, e.usage(name, err)
	}
	return d, nil
}

// Demo is `agent-sessions demo`: the one-minute tour.
func Demo(e Env, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	project := fs.String("project", "", "project directory for the demo session (default: a new scratch directory)")
	if err := fs.Parse(args); err != nil {
		return usageErr{err}
	}
	dir := *project
	if dir == "" {
		tmp, err := os.MkdirTemp("", "agent-sessions-demo-")
		if err != nil {
			return e.fail("demo", err)
		}
		dir = tmp
	}
	d, err := e.NewDeps(dir)
	if err != nil {
		return e.usage("demo", err)
	}
	ctx, stop := interruptible()
	defer stop()
	if err := tools.Demo(ctx, d, e.Version, e.Stdout); err != nil {
		return e.fail("demo", err)
	}
	return nil
}
