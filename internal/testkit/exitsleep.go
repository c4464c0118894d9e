package testkit

import (
	"os"
	"strings"
	"syscall"
)

// raceExitSleepOff makes a race-enabled test binary run again, as the same
// process (exec), with GORACE's atexit_sleep_ms=0 added: the race runtime
// reads GORACE before main, and by default it sleeps a whole second after
// the tests have ended, idle, before the process exits. Every package's
// test binary paid that second of wall time on every `go test -race` run
// (twelve seconds of the suite's package slots). A race is still reported
// the moment it happens, in a test; the sleep only gave goroutines still
// running after m.Run returned a last second to race, and ours end with
// their tests. A GORACE that already sets atexit_sleep_ms is left as it is;
// where exec fails the binary simply goes on.
func raceExitSleepOff() {
	gorace := os.Getenv("GORACE")
	if !raceEnabled || strings.Contains(gorace, "atexit_sleep_ms") {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	env := []string{"GORACE=" + strings.TrimSpace(gorace+" atexit_sleep_ms=0")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	syscall.Exec(exe, os.Args, env) // returns only when it failed
}
