package testkit

import (
	"flag"
	"strconv"
)

// WaitingParallel is how many tests of a package run at once by default in
// the packages whose tests mostly wait — on tmux, engines, agents, sshd —
// rather than compute. go test's default is GOMAXPROCS (2 on a small
// machine), which leaves those packages idle most of their wall time.
// Measured over the whole suite here (go test -race -count=1 ./..., runs
// of each value paired in turn): 4 → 75.0 and 76.6 s; 6 → 60.9–65.6 s
// (4 runs); 8 → 58.4–61.9 s (4 runs); 10 → 60.2 and 63.6 s; 16 → 68.4 s.
// Fewer leave the cores idle while tests wait; more make the two packages
// that run at once contend, which costs CPU as well as time. 8 was once
// held back: tools' TestHostSSHDrop failed in 2 of about 15 full runs under
// it (a fresh ssh link dying right after its MCP initialize). Since then a
// request ssh could not take (EPIPE) is sent again over a new link, and it
// passed in 24 more full runs under 8; paired with 6, 8 was 2.2–4.4 s faster in
// each of three pairs (63.9–70.5 s against 68.3–72.7 s on a busier host).
const WaitingParallel = 8

// SetDefaultParallel makes n the package's -test.parallel unless the command
// line gives one: call it in TestMain before m.Run (whose flag parsing then
// overrides it when -parallel was passed).
func SetDefaultParallel(n int) {
	if f := flag.Lookup("test.parallel"); f != nil {
		f.Value.Set(strconv.Itoa(n))
	}
}
