package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
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
