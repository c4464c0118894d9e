package remote

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckHostsWithoutHosts(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	var out bytes.Buffer
	ok, err := CheckHosts(context.Background(), &out, &Config{}, nil, time.Second, Options{ClientVersion: "1.0.0"})
	if !ok || err != nil || !strings.Contains(out.String(), "no hosts configured: sessions run on this machine only.") {
		t.Errorf("CheckHosts with none: ok %v, err %v, out %q", ok, err, out.String())
	}
	out.Reset()
	cfg := &Config{Hosts: []Host{{Name: "box", SSH: "me@box"}}}
	if ok, err := CheckHosts(context.Background(), &out, cfg, []string{"bx"}, time.Second, Options{}); ok || !errors.Is(err, ErrUnknownHost) || out.Len() != 0 {
		t.Errorf("CheckHosts of an unknown name: ok %v, err %v, out %q; want ErrUnknownHost and nothing checked", ok, err, out.String())
	}
}

func TestInstallResultDescribe(t *testing.T) {
	t.Parallel()
	h := Host{Name: "box"}
	var out bytes.Buffer
	InstallResult{Target: "/b/agent-sessions", Report: Report{Version: "1.0.0", Compare: "same"}}.Describe(&out, h, "1.0.0")
	InstallResult{Target: "/b/agent-sessions", Installed: true, Backup: "/b/old", Report: Report{Version: "0.9.0"}, BinaryHint: "name it in hosts.yaml"}.Describe(&out, h, "1.0.0")
	want := `host box: /b/agent-sessions is 1.0.0 (same), nothing to do (--force copies anyway)
check it with: agent-sessions hosts box
host box: installed agent-sessions 1.0.0 as /b/agent-sessions
host box: the previous binary (0.9.0) is kept as /b/old
host box: name it in hosts.yaml
check it with: agent-sessions hosts box
`
	if got := out.String(); got != want {
		t.Errorf("Describe wrote\n%s\nwant\n%s", got, want)
	}
}
