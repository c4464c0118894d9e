package remote

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func TestParseHosts(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("hosts.yaml", []byte(`hosts:
  - name: build
    ssh: me@build-box
    ssh_args: [-p, 2222, -i, ~/.ssh/build]
    binary: /opt/bin/agent-sessions
    env: {IS_SANDBOX: "1", MY_VAR: "it's $HOME"}
  - name: gpu-2
    ssh: gpu2
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Host{
		{Name: "build", SSH: "me@build-box", SSHArgs: []string{"-p", "2222", "-i", "~/.ssh/build"}, Binary: "/opt/bin/agent-sessions",
			Env: map[string]string{"IS_SANDBOX": "1", "MY_VAR": "it's $HOME"}},
		{Name: "gpu-2", SSH: "gpu2", Binary: DefaultBinary},
	}
	if !reflect.DeepEqual(cfg.Hosts, want) {
		t.Fatalf("got %#v\nwant %#v", cfg.Hosts, want)
	}
	if _, err := cfg.Lookup("gpu-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Lookup(Local); !errors.Is(err, ErrUnknownHost) || !strings.Contains(err.Error(), "is this machine itself") {
		t.Fatalf("lookup of local: %v", err)
	}
	_, err = cfg.Lookup("biuld")
	if !errors.Is(err, ErrUnknownHost) || !strings.Contains(err.Error(), `did you mean "build"?`) || !strings.Contains(err.Error(), "configured: build, gpu-2") {
		t.Fatalf("unknown host: %v", err)
	}
}

// TestParseHostsProblems: every problem is reported at once, with its line
// and, for a misspelt field, the closest one.
func TestParseHostsProblems(t *testing.T) {
	t.Parallel()
	_, err := Parse("h.yaml", []byte(`hosts:
  - name: build
    ssh: me@build
    binray: x
  - name: build
    ssh: other
  - name: local
    ssh: x
  - name: Bad_Name
    ssh: "-oProxyCommand=evil"
    ssh_args: -p 22
    env: {"1BAD": x, GOOD: [a]}
  - ssh: nameless
  - name: nossh
`))
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("got %v, want Problems", err)
	}
	for _, want := range []string{
		`h.yaml:4: host "build": unknown field "binray" (allowed: name, ssh, ssh_args, binary, env); did you mean "binary"?`,
		`h.yaml:5: hosts[1]: name "build" is used twice (first on line 2)`,
		`h.yaml:7: hosts[2]: name "local" is reserved for this machine`,
		`h.yaml:9: hosts[3]: invalid host name "Bad_Name"`, `try "bad-name"`,
		`h.yaml:10: hosts[3]: ssh: "-oProxyCommand=evil" starts with '-'`,
		`h.yaml:11: hosts[3]: ssh_args: expected a list`,
		`h.yaml:12: hosts[3]: env: "1BAD" is not a variable name`,
		`h.yaml:12: hosts[3]: env: GOOD: expected a string, got a list`,
		`h.yaml:13: hosts[4]: name is missing`,
		`h.yaml:14: host "nossh": ssh is missing`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
	for _, tc := range []struct{ yaml, want string }{
		{"hosts: {name: x}\n", "h.yaml:1: hosts: expected a list of hosts, got a mapping"},
		{"host:\n  - name: x\n", `h.yaml:1: unknown field "host" (the file holds one field, hosts); did you mean "hosts"?`},
		{"hosts: [\n", "h.yaml: invalid YAML"},
		{"- a\n", "h.yaml:1: expected a mapping with a hosts: list, got a list"},
	} {
		if _, err := Parse("h.yaml", []byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// TestLoadRefusesOddFiles: a missing file is only local; a FIFO, a
// directory, a device or a huge file is refused with what it is, never read
// (a FIFO would hang).
func TestLoadRefusesOddFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg, err := LoadFile(filepath.Join(dir, "none.yaml"))
	if err != nil || len(cfg.Hosts) != 0 {
		t.Fatalf("missing file: %v %v", cfg, err)
	}
	if _, err := cfg.Lookup("build"); !errors.Is(err, ErrUnknownHost) || !strings.Contains(err.Error(), "no hosts are configured") {
		t.Fatalf("lookup with no hosts: %v", err)
	}
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.yaml")
	if err := os.WriteFile(huge, make([]byte, maxConfigSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		fifo: "is not a regular file", huge: "over the 1048576-byte limit", dir: "is not a regular file", "/dev/zero": "is not a regular file",
	} {
		if _, err := LoadFile(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", path, err, want)
		}
	}
}

func TestConfigPath(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/x/cfg")
	if p, _ := ConfigPath(); p != "/x/cfg/agent-sessions/hosts.yaml" {
		t.Errorf("XDG_CONFIG_HOME: %s", p)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "/x/home")
	if p, _ := ConfigPath(); p != "/x/home/.config/agent-sessions/hosts.yaml" {
		t.Errorf("default: %s", p)
	}
}

// TestRemoteArgv: the exact ssh argv, and every remote word quoted so the
// far side's shell reads back the same bytes.
func TestRemoteArgv(t *testing.T) {
	t.Parallel()
	h := Host{Name: "b", SSH: "me@box", SSHArgs: []string{"-p", "2222"}, Binary: "/opt/my bin/agent-sessions",
		Env: map[string]string{"B": "it's; $(rm -rf ~) `x` \"q\"", "A": "1"}}
	got := sshArgv(h, "/run/ctl", 3e9, remoteCommand(h, "serve"))
	want := []string{"ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-o", "ControlMaster=auto",
		"-o", "ControlPath=/run/ctl/%C", "-o", "ControlPersist=60s", "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3", "-p", "2222", "me@box", "--",
		"env", "A=1", `'B=it'\''s; $(rm -rf ~) ` + "`x`" + ` "q"'`, `'/opt/my bin/agent-sessions'`, "serve"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	// What a POSIX shell makes of the joined words is the original argv.
	words := remoteCommand(h, "serve")
	out, err := execShell(strings.Join(words[:len(words)-2], " ") + ` sh -c 'printf "%s" "$B"'`)
	if err != nil || out != h.Env["B"] {
		t.Fatalf("sh read back %q (%v), want %q", out, err, h.Env["B"])
	}
}
