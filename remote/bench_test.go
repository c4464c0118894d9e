package remote

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
)

// benchHost is a host on its own sshd with n live sessions: each engine
// has run one iteration of the mock agent and sleeps before the next (a
// one-hour delay), so the host is as a long-running fleet looks to list.
func benchHost(b *testing.B, name string, n int, opts Options) (*Conn, string) {
	b.Helper()
	sshd := testkit.StartSSHD(b)
	sock := "as-bench-" + randHex(6)
	h := Host{Name: name, SSH: sshd.Alias, SSHArgs: sshd.SSHArgs(), Binary: binary, Env: map[string]string{
		"HOME": b.TempDir(), "AGENT_SESSIONS_TMUX_SOCKET": sock, "AGENT_SESSIONS_NOTIFY": "0", "AGENT_SESSIONS_MOCK_STEP": "1ms",
	}}
	// Not b.TempDir: the engines ended by kill-server still write their
	// last state as the directory is removed, so removal is retried.
	project, err := os.MkdirTemp("", "as-bench-project-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		testkit.KillTmuxServer(sock)
		for range 50 {
			if os.RemoveAll(project) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	dir := filepath.Join(project, ".claude", "stages", "idle")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "stage.yaml"), []byte("completion: fixed-n\nprovider: mock\nmax_iterations: 3\ndelay: 3600\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "prompt.md"), []byte("idle ${ITERATION}\n"), 0o644)
	c, err := Dial(context.Background(), h, opts)
	if err != nil {
		b.Fatalf("dial: %v\n%s", err, sshd.Log())
	}
	b.Cleanup(func() { c.Close() })
	for i := range n {
		args := map[string]any{"session": fmt.Sprintf("s%02d", i), "stage": "idle", "project_dir": project}
		if _, err := c.CallTool(context.Background(), "start_session", args); err != nil {
			b.Fatalf("start_session: %v", err)
		}
	}
	return c, project
}

// BenchmarkRemote: calls through a warm connection (ssh up, remote server
// initialized). list/host=1 and monitor are one host; list/hosts=3 calls
// three hosts at once and waits for the slowest, as list's fan-out will.
func BenchmarkRemote(b *testing.B) {
	opts := testOptionsB(b)
	var conns []*Conn
	var projects []string
	for i := range 3 {
		c, p := benchHost(b, fmt.Sprintf("h%d", i), 20, opts)
		conns, projects = append(conns, c), append(projects, p)
	}
	ctx := context.Background()
	b.Run("list/host=1", func(b *testing.B) {
		measure(b, "ms/list", func() error {
			_, err := conns[0].CallTool(ctx, "list", map[string]any{"project_dir": projects[0]})
			return err
		})
	})
	b.Run("list/hosts=3", func(b *testing.B) {
		measure(b, "ms/list", func() error {
			var wg sync.WaitGroup
			errs := make([]error, 3)
			for i := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = conns[i].CallTool(ctx, "list", map[string]any{"project_dir": projects[i]})
				}()
			}
			wg.Wait()
			return errorsJoin(errs)
		})
	})
	b.Run("monitor", func(b *testing.B) {
		measure(b, "ms/monitor", func() error {
			_, err := conns[0].CallTool(ctx, "monitor", map[string]any{"session": "s00", "project_dir": projects[0]})
			return err
		})
	})
	b.Run("dial/warm-master", func(b *testing.B) {
		// Only the dial is sampled: each connection is closed before the
		// next sample starts, outside the clock.
		var last *Conn
		closeLast := func() {
			if last != nil {
				last.Close()
			}
		}
		defer closeLast()
		measureWith(b, "ms/dial", closeLast, func() error {
			c, err := Dial(ctx, conns[0].Host(), opts)
			last = c
			return err
		})
	})
}

// measure runs f b.N times and reports the median, not the mean: one slow
// sample on a shared machine would move the mean a lot.
func measure(b *testing.B, unit string, f func() error) { measureWith(b, unit, nil, f) }

// measureWith is measure with prep run before each sample, unsampled.
func measureWith(b *testing.B, unit string, prep func(), f func() error) {
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		if prep != nil {
			prep()
		}
		t0 := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(samples)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(samples[len(samples)/2])/1e6, unit)
	b.ReportMetric(float64(samples[len(samples)*9/10])/1e6, "p90-"+unit)
}
