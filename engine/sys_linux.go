package engine

import "syscall"

// The process attributes of containment that only Linux has; sys_other.go
// is the rest of the Unix family, where containment is the process group
// and the environment marker (SPEC §14's fallback).

// agentProcAttr starts an agent in a process group of its own, killed by
// the kernel should the engine die (Pdeathsig).
func agentProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// spawnIntoCgroup has the kernel create the process inside the cgroup fd
// names (clone3 CLONE_INTO_CGROUP).
func spawnIntoCgroup(attr *syscall.SysProcAttr, fd int) {
	attr.UseCgroupFD = true
	attr.CgroupFD = fd
}

// setSubreaper makes this process adopt its orphaned descendants
// (PR_SET_CHILD_SUBREAPER), so a double-forked agent child stays findable.
func setSubreaper() error {
	const prSetChildSubreaper = 36
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		return e
	}
	return nil
}
