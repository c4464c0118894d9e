package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
)

// TestContainmentEngine drives the built engine with escape-agent, whose
// four children leave its process group, session and environment (setsid,
// setsid -f, job control, env -i setsid -f), under the cgroup mechanism and
// the subreaper fallback: when iterations end by themselves and when the
// engine is stopped by SIGTERM or SIGINT, none of them survives, and the
// engine says which mechanism it used.
func TestContainmentEngine(t *testing.T) {
	t.Parallel()
	mechs := []string{engine.ContainSubreaper}
	if engine.SessionCgroup("/", "probe") != "" {
		mechs = append(mechs, engine.ContainCgroup)
	}
	for _, mech := range mechs {
		for _, end := range []string{"complete", "SIGTERM", "SIGINT"} {
			t.Run(mech+"/"+end, func(t *testing.T) {
				t.Parallel()
				project, escDir := t.TempDir(), t.TempDir()
				iterations, sleep := 1, "1000"
				if end == "complete" {
					iterations, sleep = 2, "0"
				}
				writeStage(t, project, "s", commandStage("fixed-n", "escape-agent", fmt.Sprintf("max_iterations: %d", iterations)), "go\n")
				p := startBinary(t, engineEnv(true, "ESCAPE_DIR="+escDir, "SLEEP_SECONDS="+sleep, "AGENT_SESSIONS_CONTAINMENT="+mech),
					"run", "--session", "esc", "--stage", "s", "--project", project, "--foreground")
				var pids []int
				for it := 1; it <= iterations; it++ {
					file := filepath.Join(escDir, strconv.Itoa(it))
					waitFor(t, 20*time.Second, "escape-agent's pids", func() bool { return pathExists(file) })
					got := readPids(t, file)
					if len(got) != 4 {
						t.Fatalf("escape-agent recorded %v, want 4 pids", got)
					}
					pids = append(pids, got...)
				}
				t.Cleanup(func() {
					for _, pid := range pids {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				})
				want := 0
				switch end {
				case "SIGTERM":
					p.cmd.Process.Signal(syscall.SIGTERM)
					want = 3
				case "SIGINT":
					p.cmd.Process.Signal(syscall.SIGINT)
					want = 3
				}
				if code := p.wait(t, 20*time.Second); code != want {
					t.Errorf("exit %d, want %d\n%s%s", code, want, p.stdout.String(), p.stderr.String())
				}
				if live := waitDead(pids, 5*time.Second); len(live) > 0 {
					t.Errorf("escaped children %v of %v outlived the iteration", live, pids)
				}
				if n := strings.Count(p.stdout.String(), "■ stopped 4 process(es) the agent left running (containment: "+mech+")"); end == "complete" && n != iterations {
					t.Errorf("the transcript says %d times that the 4 escapees were stopped, want %d:\n%s", n, iterations, p.stdout.String())
				}
				if !strings.Contains(p.stdout.String(), "■ containment: "+mech) {
					t.Errorf("the engine does not say it contains its agents by %s:\n%s", mech, p.stdout.String())
				}
			})
		}
	}
}
