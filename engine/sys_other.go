//go:build !linux

package engine

import (
	"errors"
	"syscall"
)

// agentProcAttr starts an agent in a process group of its own. Without
// Pdeathsig, an agent outlives an engine killed with SIGKILL until the
// next start or resume of its session stops it (StopLeftovers).
func agentProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// spawnIntoCgroup is never called here: no cgroup is ever opened.
func spawnIntoCgroup(*syscall.SysProcAttr, int) {}

// setSubreaper: child subreapers are Linux's; the containment falls back to
// the process group.
func setSubreaper() error { return errors.New("child subreapers exist only on Linux") }
