package tools_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"github.com/agent-sessions/agent-sessions/remote"
	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/tmux"
	"github.com/agent-sessions/agent-sessions/tools"
)

// BenchmarkHostTools: the tools themselves, through the routing wrapper and
// warm connections: list across 3 hosts × 20 live sessions (the fan-out,
// waiting for the slowest host and merging) and monitor of one session on a
// host. Each host is its own sshd; each session's engine has run one
// iteration and sleeps an hour before the next, as a long-running fleet
// looks to list.
//
//	go test -run '^$' -bench BenchmarkHostTools -benchtime 50x ./tools
func BenchmarkHostTools(b *testing.B) {
	benchRequireTmux(b)
	var hosts []remote.Host
	projects := map[string]string{}
	for i := range 3 {
		// The project first: its removal then runs after the host's tmux
		// server (and so its engines) is gone.
		project := idleProject(b)
		h := farHost(b, testkit.StartSSHD(b), fmt.Sprintf("h%d", i))
		h.Env["AGENT_SESSIONS_MOCK_STEP"] = "1ms"
		hosts = append(hosts, h)
		projects[h.Name] = project
	}
	ctl, err := os.MkdirTemp("", "as-ctl-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(ctl) })
	hs := tools.NewHosts(&remote.Config{Hosts: hosts}, remote.Options{ControlDir: ctl, ConnectTimeout: 5 * time.Second, CallTimeout: 30 * time.Second})
	b.Cleanup(func() { hs.Close() })
	deps := &tools.Deps{Settings: sessions.Settings{Tmux: tmux.New(newSocket(b)), Executable: binary(b), ProjectDir: b.TempDir(), Environ: os.Environ}, Hosts: hs}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	c, err := client.NewInProcessClient(tools.NewServer(ctx, deps, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	var init mcp.InitializeRequest
	init.Params.ProtocolVersion = legacyVersion
	init.Params.ClientInfo = mcp.Implementation{Name: "bench", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		b.Fatal(err)
	}
	callOK := func(name string, args map[string]any) error {
		var req mcp.CallToolRequest
		req.Params.Name, req.Params.Arguments = name, args
		res, err := c.CallTool(ctx, req)
		if err == nil && res.IsError {
			err = fmt.Errorf("%s %v: %v", name, args, res.Content)
		}
		return err
	}
	for _, h := range hosts {
		for i := range 20 {
			if err := callOK("start_session", map[string]any{"host": h.Name, "session": fmt.Sprintf("s%02d", i), "stage": "idle", "project_dir": projects[h.Name]}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("list/hosts=3x20", func(b *testing.B) {
		benchMedian(b, "ms/list", func() error { return callOK("list", map[string]any{}) })
	})
	b.Run("monitor/host", func(b *testing.B) {
		benchMedian(b, "ms/monitor", func() error {
			return callOK("monitor", map[string]any{"host": "h0", "session": "s00", "project_dir": projects["h0"]})
		})
	})
}

// idleProject is a project with an `idle` stage: one mock iteration, then
// an hour's delay before the next.
func idleProject(b *testing.B) string {
	// Not b.TempDir: engines ended by kill-server still write their last
	// state while the directory is removed, so removal is retried.
	project, err := os.MkdirTemp("", "as-bench-project-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
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
	return project
}

// benchMedian runs f b.N times and reports the median and 90th percentile:
// one slow sample on a shared machine would move a mean a lot.
func benchMedian(b *testing.B, unit string, f func() error) {
	samples := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t0 := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(t0))
	}
	slices.Sort(samples)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(samples[len(samples)/2])/1e6, unit)
	b.ReportMetric(float64(samples[len(samples)*9/10])/1e6, "p90-"+unit)
}
