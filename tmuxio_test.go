package main

// A stopped tmux server and hostile files around the engine (issue 11,
// items 5 and 7): the engine never blocks on its pane, the Stop hook always
// answers, and devices, FIFOs and huge files are refused, not read.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
)

// stoppableTmux starts a private tmux server with env and returns its
// socket and pid. It is continued and killed when the test ends.
func stoppableTmux(t *testing.T, env []string) (socket string, pid int) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skipf("tmux not installed: %v", err)
	}
	socket = fmt.Sprintf("as-main-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
	start := exec.Command("tmux", "-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", "sentinel", "--", "sleep", "600")
	start.Env = env
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("start tmux: %v: %s", err, out)
	}
	out, err := exec.Command("tmux", "-L", socket, "display-message", "-p", "#{pid}\t#{socket_path}").Output()
	if err != nil {
		t.Fatal(err)
	}
	pidText, socketPath, _ := strings.Cut(strings.TrimSpace(string(out)), "\t")
	if pid, err = strconv.Atoi(pidText); err != nil {
		t.Fatalf("tmux pid %q: %v", out, err)
	}
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGCONT)
		exec.Command("tmux", "-L", socket, "kill-server").Run()
		os.Remove(socketPath)
	})
	return socket, pid
}

// TestStoppedTmux runs an engine whose agent floods the pane, inside tmux,
// and SIGSTOPs the tmux server: iterations go on (the pane's output is
// dropped, session.log keeps it), the Stop hook exits 0 within 5 s naming
// the running session, and SIGTERM still ends the engine.
func TestStoppedTmux(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	// A delay between iterations: the test needs five iterations with tmux
	// stopped and an engine still running at the SIGTERM; with none, the
	// engine ran about 280 floods (3 CPU-s) while the test looked on.
	writeStage(t, project, "s", fmt.Sprintf("completion: fixed-n\nprovider: command\ncommand: [%q]\nmax_iterations: 1000\ndelay: 0.1\n", agentPath("flood-agent")), "go\n")
	env := engineEnv(true, "FLOOD_BYTES=200000")
	socket, tmuxPid := stoppableTmux(t, env)
	c := tmux.New(socket)
	err := c.NewSession(t.Context(), tmux.NewSessionOptions{Name: "loop-hung", Dir: project,
		Argv: []string{binary, "run", "--session", "hung", "--stage", "s", "--project", project}})
	if err != nil {
		t.Fatal(err)
	}
	l := state.NewLayout(project, "hung")
	done := func() int { return countEvents(l.EventsFile(), state.EventIterationDone) }
	waitFor(t, 30*time.Second, "a first iteration", func() bool { return done() >= 1 })
	lock, err := state.ProbeLock(l.LockFile())
	if err != nil || !lock.Held || lock.Info == nil {
		t.Fatalf("lock %+v, %v; want held", lock, err)
	}
	enginePid := lock.Info.PID

	if err := syscall.Kill(tmuxPid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// 200 KB a time into a pty nobody reads: without a non-blocking pane
	// the engine stops within the first.
	n0 := done()
	waitFor(t, 60*time.Second, "iterations to go on with tmux stopped", func() bool { return done() >= n0+5 })

	hook := prepareBinary(t, "", append(engineEnv(false), tmux.SocketEnv+"="+socket), "reminder", "--hook")
	hook.cmd.Stdin = strings.NewReader(fmt.Sprintf(`{"cwd": %q}`, project))
	if err := hook.begin(); err != nil {
		t.Fatal(err)
	}
	if code := hook.wait(t, 5*time.Second); code != 0 {
		t.Errorf("reminder --hook exit %d, want 0; stderr %s", code, hook.stderr.String())
	}
	if out := hook.stdout.String(); !strings.Contains(out, "systemMessage") || !strings.Contains(out, "hung") {
		t.Errorf("reminder --hook printed %q, want the running session named", out)
	}

	if err := syscall.Kill(enginePid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if live := waitDead([]int{enginePid}, 20*time.Second); len(live) > 0 {
		t.Fatalf("engine %d still running 20 s after SIGTERM with tmux stopped", enginePid)
	}
	if st := loadState(t, project, "hung"); st.Status != state.StatusKilled {
		t.Errorf("status %s, want killed", st.Status)
	}
	if log := readFile(t, l.LogFile()); !strings.Contains(log, "killed") {
		t.Errorf("session.log does not record the end: %s", tail(log, 300))
	}
}

// TestHostileStatusFiles: an agent that makes its status.json a FIFO, then
// a 300 MB (sparse) file: both are refused with a warning naming what they
// are, and the session runs to its end.
func TestHostileStatusFiles(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeStage(t, project, "s", `completion: fixed-n
provider: command
command: ["sh", "-c", 'cat >/dev/null; if [ "$AGENT_SESSIONS_ITERATION" = 1 ]; then mkfifo "$AGENT_SESSIONS_STATUS"; else truncate -s 300M "$AGENT_SESSIONS_STATUS"; fi; echo done']
max_iterations: 2
delay: 0
`, "go\n")
	code, stdout, stderr := runBinary(t, engineEnv(false), "run", "--session", "st", "--stage", "s", "--project", project, "--foreground")
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstdout %s\nstderr %s", code, tail(stdout, 2000), stderr)
	}
	events := readFile(t, state.NewLayout(project, "st").EventsFile())
	for _, want := range []string{"is a named pipe (FIFO)", "is too large (314572800 bytes or more; limit 65536)"} {
		if !strings.Contains(events, want) {
			t.Errorf("events.jsonl does not say %q", want)
		}
	}
}

// TestHostileDefinitionFiles: a device or FIFO as the pipeline path, and a
// FIFO as a stage's prompt, are refused at once with what they are.
func TestHostileDefinitionFiles(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	fifo := filepath.Join(project, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	writeStage(t, project, "piped", "completion: fixed-n\nprovider: mock\n", "unused\n")
	prompt := filepath.Join(project, ".claude", "stages", "piped", "prompt.md")
	if err := os.Remove(prompt); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(prompt, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"run", "--session", "z", "--pipeline", "/dev/zero", "--project", project, "--foreground"}, "/dev/zero is a character device"},
		{[]string{"run", "--session", "f", "--pipeline", fifo, "--project", project, "--foreground"}, fifo + " is a named pipe (FIFO)"},
		{[]string{"run", "--session", "p", "--stage", "piped", "--project", project, "--foreground"}, "is a named pipe (FIFO)"},
		{[]string{"lint", "--project", project, "piped"}, "is a named pipe (FIFO)"},
	} {
		p := startBinary(t, engineEnv(false), tt.args...)
		if code := p.wait(t, 20*time.Second); code != 2 {
			t.Errorf("%s: exit %d, want 2", strings.Join(tt.args, " "), code)
		}
		if out := p.stdout.String() + p.stderr.String(); !strings.Contains(out, tt.says) {
			t.Errorf("%s: output %q does not say %q", strings.Join(tt.args, " "), out, tt.says)
		}
	}
}
