package testkit

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// ScratchEnv names the directory under which a test process makes its
// scratch directory, overriding the choice Scratch makes.
const ScratchEnv = "AGENT_SESSIONS_TEST_TMPDIR"

// minScratchFree is the free space a tmpfs must have to hold a test
// process's files (the suite writes a few hundred MB at most).
const minScratchFree = 1 << 30

// Main is the TestMain of a package: it runs the tests in a scratch
// directory of their own (see Scratch), off the user's config and host-wide
// state (see hermeticHost), and removes the scratch directory at the end.
// Under -race it first drops the race runtime's idle second at exit (see
// raceExitSleepOff).
func Main(m *testing.M) int {
	raceExitSleepOff()
	cleanup, err := Scratch()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	if err := hermeticHost(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// Scratch makes a private directory for this test process and points
// TMPDIR at it, so that every t.TempDir, os.MkdirTemp and child process
// (engines, tmux, git, the real CLI) writes there; cleanup removes it,
// with whatever a test left behind.
//
// The directory is made under, in order: $AGENT_SESSIONS_TEST_TMPDIR; an
// explicit $TMPDIR; /dev/shm when it is a tmpfs with a GiB free; else the
// system's temp dir. The suite creates and deletes tens of thousands of
// small files (state.json replaces, logs, run dirs, repositories); on the
// 2-core VM the suite's figures come from (ext4 without a journal), the
// inode allocator's scan for recently deleted inodes made that a third of
// the suite's system CPU; in memory it costs next to nothing.
func Scratch() (cleanup func(), err error) {
	parent := scratchParent()
	dir, err := os.MkdirTemp(parent, "as-test-")
	if err != nil {
		return nil, fmt.Errorf("testkit: a scratch directory under %s: %w (set %s to a writable directory)", parent, err, ScratchEnv)
	}
	// Resolved, so that paths the tests compare (a session's project
	// directory, a worktree) are the ones processes report.
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	old, had := os.LookupEnv("TMPDIR")
	os.Setenv("TMPDIR", dir)
	return func() {
		if had {
			os.Setenv("TMPDIR", old)
		} else {
			os.Unsetenv("TMPDIR")
		}
		os.RemoveAll(dir)
	}, nil
}

// scratchParent is the directory Scratch makes its directory under.
func scratchParent() string {
	if d := os.Getenv(ScratchEnv); d != "" {
		return d
	}
	if os.Getenv("TMPDIR") != "" {
		return os.TempDir() // the user chose it
	}
	if roomyTmpfs("/dev/shm", minScratchFree) {
		return "/dev/shm"
	}
	return os.TempDir()
}

// hermeticHost keeps every test of the process, and every engine it starts,
// off the user's config.yaml and host-wide state (provider parks, the daily
// spend ledger): both go to the scratch directory.
func hermeticHost() error {
	dir, err := os.MkdirTemp("", "host-")
	if err != nil {
		return fmt.Errorf("testkit: a host directory: %w", err)
	}
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	os.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	return nil
}
