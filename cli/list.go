package cli

import (
	"errors"
	"flag"
	"fmt"

	"github.com/agent-sessions/agent-sessions/remote"
	"github.com/agent-sessions/agent-sessions/tools"
)

// errToolAnswered ends a command whose tool answered with an error: the
// answer is printed already, the exit code says it was one.
var errToolAnswered = errors.New("the tool answered with an error")

// List is `agent-sessions list`: what the list tool answers, as text —
// the same handler, through the registry, for a person at a terminal.
func List(e Env, args []string) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	project := fs.String("project", "", "project directory (default: current directory)")
	catalog := fs.Bool("catalog", false, "also list the stages and pipelines that can be started")
	active := fs.Bool("active", false, "only sessions still running (or needing attention)")
	offset := fs.Int("offset", 0, "skip this many sessions (paging)")
	host := fs.String("host", "", "only this host of hosts.yaml, or local (default: this machine and every host)")
	if err := fs.Parse(args); err != nil {
		return usageErr{err}
	}
	if fs.NArg() > 0 {
		return e.usage("list", fmt.Errorf("unexpected argument %q (flags only: --project, --catalog, --active, --offset, --host)", fs.Arg(0)))
	}
	call := map[string]any{"include_catalog": *catalog, "offset": *offset}
	if *active {
		call["include_finished"] = false
	}
	return e.tool("list", hostProject(*host, *project, call), call)
}

// Kill is `agent-sessions kill NAME`: it stops a session as the kill tool
// does.
func Kill(e Env, args []string) error {
	fs := flag.NewFlagSet("kill", flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	project := fs.String("project", "", "project directory of the session (default: current directory, else where its tmux session runs)")
	host := fs.String("host", "", "the host of hosts.yaml the session runs on (default: this machine)")
	if err := fs.Parse(args); err != nil {
		return usageErr{err}
	}
	rest := fs.Args()
	if len(rest) > 1 { // flags after the name
		if err := fs.Parse(rest[1:]); err != nil {
			return usageErr{err}
		}
		rest = append(rest[:1], fs.Args()...)
	}
	if len(rest) != 1 {
		fmt.Fprintln(e.Stderr, "usage: agent-sessions kill [--host NAME] [--project DIR] NAME   (agent-sessions list shows the names)")
		return usageErr{errors.New("kill needs one session name")}
	}
	call := map[string]any{"session": rest[0]}
	if *project != "" {
		call["project_dir"] = *project
	}
	return e.tool("kill", hostProject(*host, *project, call), call)
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

// tool runs one tool for a person: a usage error when it could not be
// asked, errToolAnswered when it answered with an error.
func (e Env) tool(name, project string, call map[string]any) error {
	d, err := e.NewDeps(project)
	if err != nil {
		return e.usage(name, err)
	}
	ctx, stop := interruptible()
	defer stop()
	isErr, err := tools.CLI(ctx, d, e.Version, name, call, e.Stdout)
	if err != nil {
		return e.usage(name, err)
	}
	if isErr {
		return errToolAnswered
	}
	return nil
}
