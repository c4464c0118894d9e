package testkit

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// PollInterval is how often WaitUntil and Eventually look again: short,
// what the tests wait for (an engine's lock, a file, a process's end) mostly
// end) mostly comes within milliseconds, and each look is cheap.
const PollInterval = 20 * time.Millisecond

// WaitUntil polls cond until it holds (true) or within has passed (false).
// cond is always asked once more at the deadline.
func WaitUntil(within time.Duration, cond func() bool) bool {
	for end := time.Now().Add(within); ; time.Sleep(PollInterval) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// Eventually is WaitUntil that fails the test, naming what it waited for.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !WaitUntil(within, cond) {
		t.Fatalf("timed out after %s waiting for %s", within, what)
	}
}

// ProcessAlive reports whether pid is a live process: a zombie (state Z,
// exited but not yet reaped) or a dying one (X) is not.
func ProcessAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] != 'Z' && s[i+2] != 'X'
}

// WaitDead polls until every pid is dead (or a zombie) or within has
// passed, and returns the pids still alive.
func WaitDead(pids []int, within time.Duration) []int {
	var live []int
	WaitUntil(within, func() bool {
		live = live[:0]
		for _, pid := range pids {
			if ProcessAlive(pid) {
				live = append(live, pid)
			}
		}
		return len(live) == 0
	})
	return live
}
