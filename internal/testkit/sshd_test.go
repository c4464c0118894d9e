package testkit

import (
	"os/exec"
	"strings"
	"testing"
)

// TestSSHDFixture: ssh -F reaches the fixture with the pinned host key and
// the test's key; a stopped sshd refuses; a restarted one answers again.
func TestSSHDFixture(t *testing.T) {
	t.Parallel()
	s := StartSSHD(t)
	run := func() (string, error) {
		out, err := exec.Command("ssh", append(s.SSHArgs(), s.Alias, "--", "echo", "hello")...).CombinedOutput()
		return string(out), err
	}
	if out, err := run(); err != nil || strings.TrimSpace(out) != "hello" {
		t.Fatalf("ssh: %v %q\n%s", err, out, s.Log())
	}
	s.Stop()
	if out, err := run(); err == nil {
		t.Fatalf("ssh to a stopped sshd succeeded: %q", out)
	}
	s.Restart()
	if out, err := run(); err != nil || strings.TrimSpace(out) != "hello" {
		t.Fatalf("ssh after restart: %v %q\n%s", err, out, s.Log())
	}
}

// TestSSHDPortTaken: a port found free but taken before sshd binds it (by
// another test's sshd) is not mistaken for ours — something answered there,
// so a banner check passed, and the tests' ssh met another server's host key
// ("Host key verification failed", seen in TestRemoteTwoHosts). The fixture
// sees sshd's own word, and moves to another port.
func TestSSHDPortTaken(t *testing.T) {
	// Not parallel: its port moves must not meet TestSSHDFixture's restart,
	// which needs its port free again (a restart cannot move).
	s := StartSSHD(t)
	other := StartSSHD(t)
	// other's port is taken (by other's sshd): ours must say so, not take
	// other's banner for its own.
	s.Stop()
	s.Port = other.Port
	s.writeConfigs()
	if s.startOnce() {
		t.Fatalf("sshd started on a taken port\n%s", s.Log())
	}
	s.Port = sshFreePort(t)
	s.writeConfigs()
	s.startOnFreePort()
	out, err := exec.Command("ssh", append(s.SSHArgs(), s.Alias, "--", "echo", "hello")...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "hello" {
		t.Fatalf("ssh after the move: %v %q\n%s", err, out, s.Log())
	}
}
