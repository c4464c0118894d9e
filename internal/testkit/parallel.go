package testkit

import (
	"flag"
	"strconv"
)

// WaitingParallel is how many tests of a package run at once by default in
// the packages whose tests mostly wait — on tmux, engines, agents, sshd —
// rather than compute. go test's default is GOMAXPROCS (2 on a small
// machine), which leaves those packages idle most of their wall time.
const WaitingParallel = 6

// SetDefaultParallel makes n the package's -test.parallel unless the command
// line gives one: call it in TestMain before m.Run (whose flag parsing then
// overrides it when -parallel was passed).
func SetDefaultParallel(n int) {
	if f := flag.Lookup("test.parallel"); f != nil {
		f.Value.Set(strconv.Itoa(n))
	}
}
