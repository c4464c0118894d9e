package tmux

import (
	"os/exec"
	"testing"
)

// TestListSessionsWithoutLocale: with no UTF-8 locale in the environment
// (as over ssh to a host without one) list-sessions still parses; without
// -u tmux printed its 0x1f separators as '_' and every line was refused.
// Not parallel: it changes the process environment.
func TestListSessionsWithoutLocale(t *testing.T) {
	c := realClient(t)
	for _, k := range []string{"LANG", "LC_ALL", "LC_CTYPE"} {
		t.Setenv(k, "")
	}
	name := "as-locale-check"
	if out, err := exec.Command("tmux", "-L", testSocket, "new-session", "-d", "-s", name, "--", "sleep", "60").CombinedOutput(); err != nil {
		t.Fatalf("new-session: %v %s", err, out)
	}
	defer exec.Command("tmux", "-L", testSocket, "kill-session", "-t", "="+name).Run()
	sessions, err := c.ListSessions(t.Context())
	if err != nil {
		t.Fatalf("ListSessions without a UTF-8 locale: %v", err)
	}
	for _, s := range sessions {
		if s.Name == name {
			return
		}
	}
	t.Fatalf("ListSessions lacks %s: %+v", name, sessions)
}
