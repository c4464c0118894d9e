package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"github.com/agent-sessions/agent-sessions/state"
)

// TestHostsCommand: `hosts` checks every host of hosts.yaml against a real
// sshd (exit 1 while one is missing our binary or unreachable), `install
// --host` refuses an unknown name with did-you-mean, copies the binary, and
// then `hosts box` is all green (exit 0).
func TestHostsCommand(t *testing.T) {
	t.Parallel()
	sshd := testkit.StartSSHD(t)
	cfg := t.TempDir()
	fakeBin := t.TempDir()
	writeFile(t, filepath.Join(fakeBin, "claude"), "#!/bin/sh\necho '2.1.332 (Claude Code)'\n")
	chmodX(t, filepath.Join(fakeBin, "claude"))
	target := filepath.Join(t.TempDir(), "bin", "agent-sessions")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()
	writeFile(t, filepath.Join(cfg, "agent-sessions", "hosts.yaml"), fmt.Sprintf(`hosts:
  - name: box
    ssh: %s
    ssh_args: [-F, %s]
    binary: %s
    env: {PATH: "%s:/usr/bin:/bin", IS_SANDBOX: "1"}
  - name: gone
    ssh: 127.0.0.1
    ssh_args: [-F, /dev/null, -p, "%d"]
`, sshd.Alias, sshd.ConfigFile, target, fakeBin, closed))
	env := engineEnv(false, "XDG_CONFIG_HOME="+cfg)

	// A generous --timeout: the test proves what is checked, not how fast
	// (a loaded machine takes seconds for a cold ssh login).
	code, out, errOut := runBinary(t, env, "hosts", "--timeout", "30s")
	if code != 1 {
		t.Fatalf("hosts: exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"box   yes        missing", "gone  no ",
		"box: " + target + " is not found there", "run: agent-sessions install --host box",
		"gone: cannot reach 127.0.0.1 over ssh",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("hosts output lacks %q:\n%s", want, out)
		}
	}

	code, _, errOut = runBinary(t, env, "install", "--host", "bx")
	if code != exitUsage || !strings.Contains(errOut, `unknown host "bx" (configured: box, gone, and local for this machine); did you mean "box"?`) {
		t.Fatalf("install --host bx: exit %d\n%s", code, errOut)
	}
	code, out, errOut = runBinary(t, env, "install", "--host", "box")
	if code != 0 || !strings.Contains(out, "host box: installed agent-sessions") {
		t.Fatalf("install --host box: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runBinary(t, env, "hosts", "--timeout", "30s", "box")
	if code != 0 || !strings.Contains(out, "(same)") || !strings.Contains(out, " ok\n") {
		t.Fatalf("hosts box after install: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("\n%s", out)
}

func chmodX(t *testing.T, path string) {
	t.Helper()
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

// silentListener accepts connections and never says a word: ssh waits for
// a banner that never comes, so only a time limit ends the call.
func silentListener(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}

// TestReminderHookWithSilentHost: the Stop hook covers every host and
// still exits 0 within its bound when a host never answers; the reminder
// names the hosts that did not answer, and still shows this machine's
// sessions.
func TestReminderHookWithSilentHost(t *testing.T) {
	t.Parallel()
	sock := tmuxSocket(t)
	cfg, project := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(cfg, "agent-sessions", "hosts.yaml"), fmt.Sprintf(`hosts:
  - name: mute
    ssh: 127.0.0.1
    ssh_args: [-F, /dev/null, -p, "%d"]
`, silentListener(t)))
	env := cliEnv(sock, "XDG_CONFIG_HOME="+cfg, "XDG_RUNTIME_DIR="+t.TempDir())
	writeStage(t, project, "slow", commandStage("fixed-n", "sleep-agent", "max_iterations: 1"), "sleep\n")
	p := startBinary(t, engineEnv(true, "SLEEP_SECONDS=30"), "run", "--session", "busy", "--stage", "slow", "--project", project, "--foreground")
	defer p.wait(t, 20*time.Second)
	defer p.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, 10*time.Second, "the engine to take its lock", func() bool {
		ls, _ := state.ProbeLock(state.NewLayout(project, "busy").LockFile())
		return ls.Held
	})

	hook := prepareBinary(t, "", env, "reminder", "--hook")
	hook.cmd.Stdin = strings.NewReader(fmt.Sprintf(`{"cwd": %q}`, project))
	if err := hook.begin(); err != nil {
		t.Fatal(err)
	}
	if code := hook.wait(t, 5*time.Second); code != 0 {
		t.Errorf("reminder --hook exit %d, want 0; stderr %s", code, hook.stderr.String())
	}
	if out := hook.stdout.String(); !strings.Contains(out, "busy") || !strings.Contains(out, "host mute") {
		t.Errorf("reminder --hook printed %q, want busy and a warning naming host mute", out)
	}
}

// TestCLIHostFlag: `kill --host` with a name hosts.yaml lacks is the
// tool's invalid_argument (exit 1) with did-you-mean; the path given with
// --project is not looked for on this machine.
func TestCLIHostFlag(t *testing.T) {
	t.Parallel()
	cfg := t.TempDir()
	writeFile(t, filepath.Join(cfg, "agent-sessions", "hosts.yaml"), "hosts:\n  - name: box\n    ssh: me@box.invalid\n")
	env := cliEnv(tmuxSocket(t), "XDG_CONFIG_HOME="+cfg)
	code, out, errOut := runBinary(t, env, "kill", "--host", "bxo", "--project", "/only/on/the/host", "s1")
	if code != 1 || !strings.Contains(out, `did you mean "box"?`) {
		t.Errorf("kill --host bxo: exit %d, want 1 with did-you-mean\n%s%s", code, out, errOut)
	}
}
