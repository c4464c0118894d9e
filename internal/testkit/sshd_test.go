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
