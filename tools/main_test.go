package tools_test

import (
	"fmt"
	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/agent-sessions/agent-sessions/tmux"
)

// socketBase is this test process's private tmux socket. Each test that
// needs tmux gets its own server on a socket derived from it (socketBase-N),
// so parallel tests never see one another's sessions; every one of them is
// killed when the test ends, and again in TestMain as a safety net. The
// user's default tmux server is never touched.
var socketBase = fmt.Sprintf("as-tools-%d", os.Getpid())

var (
	socketsMu sync.Mutex
	socketsN  int             // sockets handed out
	sockets   map[string]bool // sockets whose test has not killed its server yet
)

func TestMain(m *testing.M) {
	if os.Getenv(tapEnv) != "" {
		// This test binary was started by Claude Code as its MCP server:
		// be the recording stand-in for `agent-sessions serve`.
		os.Exit(tapServe())
	}
	// Before anything else: whatever reads the environment (tmux.NewFromEnv,
	// engines, the built binary) must land on the private server.
	os.Setenv(tmux.SocketEnv, socketBase)
	testkit.SetDefaultParallel(testkit.WaitingParallel)
	code := testkit.Main(m)
	// Only the servers no test cleanup killed (a test that panicked): one
	// tmux client per socket more was a tmux call per test for nothing.
	socketsMu.Lock()
	all := []string{socketBase}
	for s := range sockets {
		all = append(all, s)
	}
	socketsMu.Unlock()
	for _, s := range all {
		killServer(s)
	}
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// binary builds agent-sessions once per test process; start_session runs
// `<binary> run …` inside tmux, and the end-to-end test serves with it.
func binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() { binPath, binDir, binErr = testkit.BuildBinary() })
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// requireTmux skips a test when tmux is missing, except under CI, where a
// missing tmux is a failure.
func requireTmux(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("tmux is required under CI: %v", err)
		}
		t.Skipf("tmux not installed: %v", err)
	}
}

// newSocket returns a fresh private tmux socket name whose server is killed
// when the test ends.
func newSocket(t testing.TB) string {
	t.Helper()
	socketsMu.Lock()
	socketsN++
	name := fmt.Sprintf("%s-%d", socketBase, socketsN)
	if sockets == nil {
		sockets = map[string]bool{}
	}
	sockets[name] = true
	socketsMu.Unlock()
	t.Cleanup(func() {
		killServer(name)
		socketsMu.Lock()
		delete(sockets, name)
		socketsMu.Unlock()
	})
	return name
}

// killServer kills the tmux server on a private socket and removes the
// socket file, which tmux leaves behind.
var killServer = testkit.KillTmuxServer
