// Package cli owns the person-facing subcommands and the server's own:
// serve, debug, demo, list, kill, reminder, install and hosts. Each reads
// its flags, makes one call into tools (through the one registry,
// tools.All), skill or remote, and prints the words; main builds the
// concrete pieces (Env.NewDeps) and maps how a command ended onto an exit
// code. The engine's own commands (run, lint) are in enginecmd.
package cli

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/agent-sessions/agent-sessions/tools"
)

// Env is what main hands every command.
type Env struct {
	Version string
	// NewDeps builds the tools' dependencies with project as the default
	// project directory ("" the current directory).
	NewDeps func(project string) (*tools.Deps, error)
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	// StdinTerminal: a person at a terminal is typing into stdin.
	StdinTerminal bool
}

// usageErr marks an error the caller can fix by calling differently (bad
// flags, an unknown host, a missing directory): main exits 2 for it, 1 for
// any other error.
type usageErr struct{ error }

func (usageErr) Usage() bool     { return true }
func (e usageErr) Unwrap() error { return e.error }

// fail prints err as command's and returns it: commands say their own
// words, main only maps the error onto an exit code.
func (e Env) fail(command string, err error) error {
	fmt.Fprintf(e.Stderr, "agent-sessions %s: %v\n", command, err)
	return err
}

// usage is fail for an error the caller can fix.
func (e Env) usage(command string, err error) error {
	return usageErr{e.fail(command, err)}
}

// interruptible is the context of a command a person may stop with
// Ctrl+C or a service manager with SIGTERM.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}
