package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/remote"
	"github.com/agent-sessions/agent-sessions/skill"
	"github.com/agent-sessions/agent-sessions/tools"
)

// Install is `agent-sessions install`: the skill and the server's
// registration on this machine, or with --host this binary on a host.
func Install(e Env, args []string) error {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	skillDir := fs.String("skill-dir", "", "where to write the skill (default: ~/.claude/skills/sessions)")
	project := fs.String("project", "", "also register the server in this project's .mcp.json (merged; other servers are kept)")
	command := fs.String("command", "", "path of the agent-sessions binary to register (default: this binary)")
	host := fs.String("host", "", "instead: copy this binary to the host NAME of hosts.yaml when it is missing or older there")
	force := fs.Bool("force", false, "with --host: copy even when the host's binary is as new as this one")
	if err := fs.Parse(args); err != nil {
		return usageErr{err}
	}
	if *host != "" {
		return e.installHost(*host, *force)
	}
	return e.installLocal(*skillDir, *project, *command)
}

// installLocal writes the skill, registers the server in a project's
// .mcp.json when asked, and says what is left to the person.
func (e Env) installLocal(skillDir, project, command string) error {
	exe, err := skill.Binary(command)
	if errors.Is(err, skill.ErrTemporaryBinary) {
		return e.usage("install", err)
	}
	if err != nil {
		return e.fail("install", err)
	}
	if skillDir == "" {
		if skillDir, err = skill.DefaultDir(); err != nil {
			return e.usage("install", err)
		}
	}
	res, err := skill.Install(skillDir)
	if err != nil {
		return e.fail("install", err)
	}
	res.Describe(e.Stdout)
	if project != "" {
		dir, err := engine.ProjectDir(project)
		if err != nil {
			return e.usage("install", err)
		}
		if err := skill.Register(e.Stdout, dir, tools.ServerName, exe); err != nil {
			return e.fail("install", err)
		}
	}
	skill.WriteHints(e.Stdout, tools.ServerName, exe)
	return nil
}

// installHost copies this binary to the host name of hosts.yaml.
func (e Env) installHost(name string, force bool) error {
	cfg, err := remote.Load()
	var h remote.Host
	if err == nil {
		h, err = cfg.Lookup(name)
	}
	if err != nil {
		return e.usage("install", err)
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return e.fail("install", fmt.Errorf("find this binary: %w", err))
	}
	ctx, stop := interruptible()
	defer stop()
	res, err := remote.Install(ctx, h, exe, e.Version, force, remote.Options{ClientVersion: e.Version})
	if err != nil {
		return e.fail("install", err)
	}
	res.Describe(e.Stdout, h, e.Version)
	return nil
}

// Hosts is `agent-sessions hosts`: the check of the hosts of hosts.yaml.
func Hosts(e Env, args []string) error {
	fs := flag.NewFlagSet("hosts", flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	timeout := fs.Duration("timeout", remote.DefaultCheckTimeout, "time limit for checking each host")
	if err := fs.Parse(args); err != nil {
		return usageErr{err}
	}
	cfg, err := remote.Load()
	if err != nil {
		return e.usage("hosts", err)
	}
	ctx, stop := interruptible()
	defer stop()
	ok, err := remote.CheckHosts(ctx, e.Stdout, cfg, fs.Args(), *timeout, remote.Options{ClientVersion: e.Version})
	if err != nil {
		return e.usage("hosts", err)
	}
	if !ok {
		return errors.New("a host is not ready")
	}
	return nil
}
