package main

import (
	"encoding/json"
	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// binary is the agent-sessions binary built once for the tests that drive
// it as a user (or tmux) would.
var binary string

func TestMain(m *testing.M) { os.Exit(testkit.MainWithBinary(m, &binary)) }

// The shared helpers of internal/testkit, under the names this package's
// tests use.
var (
	agentsDir    = testkit.AgentsDir()
	agentPath    = testkit.AgentPath
	writeFile    = testkit.WriteFile
	writeStage   = testkit.WriteStage
	commandStage = testkit.CommandStage
	readFile     = testkit.ReadFile
	pathExists   = testkit.PathExists
	processAlive = testkit.ProcessAlive
	waitDead     = testkit.WaitDead
	waitFor      = testkit.Eventually
)

// engineEnv is the environment of an engine under test: the test's own
// (minus CLAUDECODE and AGENT_SESSIONS_*), no desktop notifications, a 2 s
// kill grace, testdata/agents first on PATH when fakes is set, then extra.
func engineEnv(fakes bool, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "CLAUDECODE", strings.HasPrefix(k, "AGENT_SESSIONS_"):
			continue
		case k == "PATH" && fakes:
			kv = "PATH=" + agentsDir + ":" + v
		}
		env = append(env, kv)
	}
	// IS_SANDBOX=1 is what the README tells a root user to give the server
	// (claude stages are refused as root without it).
	env = append(env, "AGENT_SESSIONS_NOTIFY=0", "AGENT_SESSIONS_KILL_GRACE=2s", "IS_SANDBOX=1")
	return append(env, extra...)
}

// withPath replaces PATH in env.
func withPath(env []string, path string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PATH=") {
			out = append(out, kv)
		}
	}
	return append(out, "PATH="+path)
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer = testkit.SyncBuffer

// binaryProc is a running agent-sessions process.
type binaryProc struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{}
	err            error
}

// startBinary starts the binary with args in its own process group. The test's
// cleanup SIGKILLs it should it still run.
func startBinary(t *testing.T, env []string, args ...string) *binaryProc {
	t.Helper()
	return startBinaryIn(t, "", env, args...)
}

// startBinaryIn is startBinary with the process's working directory set to dir.
func startBinaryIn(t *testing.T, dir string, env []string, args ...string) *binaryProc {
	t.Helper()
	p := prepareBinary(t, dir, env, args...)
	if err := p.begin(); err != nil {
		t.Fatal(err)
	}
	return p
}

// prepareBinary sets up a process without starting it; begin starts it (and may
// be called from any goroutine). The test's cleanup SIGKILLs it should it
// still run.
func prepareBinary(t *testing.T, dir string, env []string, args ...string) *binaryProc {
	t.Helper()
	p := &binaryProc{cmd: exec.Command(binary, args...), done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.Cleanup(func() {
		if p.cmd.Process == nil {
			return
		}
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *binaryProc) begin() error {
	if err := p.cmd.Start(); err != nil {
		return err
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	return nil
}

// wait waits for the process to exit and returns its exit code (-1 when
// killed by a signal).
func (p *binaryProc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("agent-sessions %s did not exit within %s\nstdout:\n%s\nstderr:\n%s", strings.Join(p.cmd.Args[1:], " "), within, p.stdout.String(), p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// runBinary runs the binary to its end.
func runBinary(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p := startBinary(t, env, args...)
	code = p.wait(t, 90*time.Second)
	return code, p.stdout.String(), p.stderr.String()
}

// runBinaryIn runs the binary to its end in dir.
func runBinaryIn(t *testing.T, dir string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p := startBinaryIn(t, dir, env, args...)
	code = p.wait(t, 90*time.Second)
	return code, p.stdout.String(), p.stderr.String()
}

// loadState reads and parses a session's state.json.
func loadState(t *testing.T, project, session string) state.State {
	t.Helper()
	var st state.State
	if err := json.Unmarshal([]byte(readFile(t, state.NewLayout(project, session).StateFile())), &st); err != nil {
		t.Fatalf("state.json does not parse: %v", err)
	}
	return st
}

// readEvents reads events.jsonl, failing on unreadable lines.
func readEvents(t *testing.T, project, session string) []state.Event {
	t.Helper()
	evs, skipped, err := state.ReadEvents(state.NewLayout(project, session).EventsFile())
	if err != nil {
		t.Fatal(err)
	}
	if skipped > 0 {
		t.Errorf("events.jsonl has %d unreadable lines", skipped)
	}
	return evs
}

// countEvents counts events of one type (tolerating a torn last line).
func countEvents(path, typ string) int {
	evs, _, _ := state.ReadEvents(path)
	n := 0
	for _, ev := range evs {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// readPids reads a file of pids, one per line.
func readPids(t *testing.T, path string) []int {
	t.Helper()
	var pids []int
	for _, f := range strings.Fields(readFile(t, path)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		pids = append(pids, pid)
	}
	return pids
}
