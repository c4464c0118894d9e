package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/state"
)

// TestFloodingAgent lets an agent print 100 MB: the session completes, the
// engine's peak memory stays small, output.md is bounded and still ends
// with the agent's last line (its plateau vote), and session.log is capped.
func TestFloodingAgent(t *testing.T) {
	t.Parallel()
	const maxRSS = 64 << 20 // far below the 100 MB an engine holding the output would need
	for _, mode := range []string{"lines", "line"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			project := t.TempDir()
			writeStage(t, project, "s", commandStage("plateau", "flood-agent", "max_iterations: 1"), "go\n")
			p := startBinary(t, engineEnv(true, "FLOOD_MODE="+mode), "run", "--session", "flood", "--stage", "s", "--project", project, "--foreground")
			// The engine's peak RSS is VmHWM of its own address space, polled
			// until it exits (wait4's ru_maxrss would include the test
			// process's, inherited across fork and exec).
			var peak int64
			status := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
		poll:
			for {
				select {
				case <-p.done:
					break poll
				case <-time.After(5 * time.Millisecond):
				}
				if kb := vmHWM(status); kb > peak {
					peak = kb
				}
			}
			if code := p.wait(t, 2*time.Minute); code != 0 {
				t.Fatalf("exit %d\nstderr:\n%s", code, p.stderr.String())
			}
			t.Logf("engine peak RSS %d KiB", peak)
			if peak == 0 {
				t.Fatal("could not read the engine's VmHWM")
			}
			if rss := peak << 10; rss > maxRSS {
				t.Errorf("engine peak RSS %d MiB, want at most %d MiB", rss>>20, maxRSS>>20)
			}
			l := state.NewLayout(project, "flood")
			f := l.Iteration(0, "s", 1)
			info, err := os.Stat(f.Output)
			if err != nil {
				t.Fatal(err)
			}
			if limit := int64(engine.OutputHeadLimit + engine.OutputTailLimit + 1024); info.Size() > limit {
				t.Errorf("output.md is %d bytes, want at most %d", info.Size(), limit)
			}
			tail := make([]byte, 64)
			fh, _ := os.Open(f.Output)
			fh.ReadAt(tail, info.Size()-int64(len(tail)))
			fh.Close()
			if !strings.HasSuffix(string(tail), "\nPLATEAU: true\n") {
				t.Errorf("output.md ends with %q, want the agent's PLATEAU line", tail)
			}
			st := loadState(t, project, "flood")
			h := st.History[0]
			if !h.Plateau || h.ExitCode != 0 || !strings.Contains(h.Warning, "output was 104857") {
				t.Errorf("history = %+v, want the vote, exit 0 and a warning about the size", h)
			}
			if log, _ := os.Stat(l.LogFile()); log.Size() > engine.TranscriptLimit+64<<10 {
				t.Errorf("session.log is %d bytes, want about %d at most", log.Size(), engine.TranscriptLimit)
			}
		})
	}
}

// vmHWM returns the VmHWM (peak resident set, KiB) of a /proc status file,
// or 0 when it cannot be read.
func vmHWM(path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
