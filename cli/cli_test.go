package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-sessions/agent-sessions/remote"
	"github.com/agent-sessions/agent-sessions/tools"
)

// testEnv is an Env whose NewDeps must not be reached: the commands tested
// with it stop at their flags.
func testEnv(t *testing.T) (Env, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	return Env{
		Version: "test",
		NewDeps: func(string) (*tools.Deps, error) {
			t.Error("NewDeps called for a command line that is wrong")
			return nil, errors.New("not here")
		},
		Stdin:  strings.NewReader(""),
		Stdout: &stdout,
		Stderr: &stderr,
	}, &stdout, &stderr
}

func isUsage(err error) bool {
	var u interface{ Usage() bool }
	return errors.As(err, &u) && u.Usage()
}

// TestBadCommandLinesAreUsage: every command refuses a wrong command line
// as the caller's to fix (exit 2), saying why, before building anything.
func TestBadCommandLinesAreUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cmd  func(Env, []string) error
		args []string
		want string
	}{
		{"serve", Serve, []string{"--bogus"}, "flag provided but not defined: -bogus"},
		{"debug", Debug, []string{"--bogus"}, "flag provided but not defined: -bogus"},
		{"demo", Demo, []string{"--bogus"}, "flag provided but not defined: -bogus"},
		{"list", List, []string{"extra"}, `agent-sessions list: unexpected argument "extra"`},
		{"kill", Kill, nil, "usage: agent-sessions kill"},
		{"kill", Kill, []string{"a", "b"}, "usage: agent-sessions kill"},
		{"kill", Kill, []string{"a", "--bogus"}, "flag provided but not defined: -bogus"},
		{"reminder", Reminder, []string{"--bogus"}, "flag provided but not defined: -bogus"},
		{"install", Install, []string{"--bogus"}, "flag provided but not defined: -bogus"},
		{"hosts", Hosts, []string{"--timeout", "soon"}, `invalid value "soon" for flag -timeout`},
	} {
		e, _, stderr := testEnv(t)
		err := tc.cmd(e, tc.args)
		if !isUsage(err) || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s %q: error %v, stderr %q; want a usage error saying %q", tc.name, tc.args, err, stderr.String(), tc.want)
		}
	}
}

// TestNewDepsErrorIsUsage: a project directory that cannot be used is the
// caller's to fix, named with the command.
func TestNewDepsErrorIsUsage(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	e := Env{
		NewDeps: func(p string) (*tools.Deps, error) {
			return nil, errors.New("project directory " + p + " does not exist")
		},
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
	}
	if err := List(e, []string{"--project", "/gone"}); !isUsage(err) || !strings.Contains(stderr.String(), "agent-sessions list: project directory /gone does not exist") {
		t.Errorf("list: error %v, stderr %q", err, stderr.String())
	}
	// The reminder never fails: it says why on stdout and ends well.
	if err := Reminder(e, []string{"--project", "/gone"}); err != nil || !strings.Contains(stdout.String(), "agent-sessions reminder: project directory /gone") {
		t.Errorf("reminder: error %v, stdout %q", err, stdout.String())
	}
	stdout.Reset()
	if err := Reminder(e, []string{"--hook", "--project", "/gone"}); err != nil || stdout.Len() != 0 {
		t.Errorf("reminder --hook: error %v, stdout %q; want silence", err, stdout.String())
	}
}

// TestHostProject: with another host, --project is a path there, and this
// machine's server gets its own default.
func TestHostProject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		host, project, wantLocal string
		wantCall                 map[string]any
	}{
		{"", "/p", "/p", map[string]any{}},
		{remote.Local, "/p", "/p", map[string]any{"host": remote.Local}},
		{"box", "/p", "", map[string]any{"host": "box", "project_dir": "/p"}},
		{"box", "", "", map[string]any{"host": "box"}},
	} {
		call := map[string]any{}
		if got := hostProject(tc.host, tc.project, call); got != tc.wantLocal || len(call) != len(tc.wantCall) {
			t.Errorf("hostProject(%q, %q) = %q with %v, want %q with %v", tc.host, tc.project, got, call, tc.wantLocal, tc.wantCall)
		}
		for k, v := range tc.wantCall {
			if call[k] != v {
				t.Errorf("hostProject(%q, %q): call[%s] = %v, want %v", tc.host, tc.project, k, call[k], v)
			}
		}
	}
}

// TestInstallLocal writes the skill, registers the server in a project and
// names the binary in the hints.
func TestInstallLocal(t *testing.T) {
	t.Parallel()
	e, stdout, stderr := testEnv(t)
	skillDir, project := filepath.Join(t.TempDir(), "skill"), t.TempDir()
	err := Install(e, []string{"--skill-dir", skillDir, "--project", project, "--command", "/opt/bin/agent-sessions"})
	if err != nil {
		t.Fatalf("install: %v (stderr %q)", err, stderr.String())
	}
	for _, want := range []string{"skill: wrote ", `mcp: registered "agent-sessions" in ` + filepath.Join(project, ".mcp.json"),
		"claude mcp add --scope user agent-sessions -- /opt/bin/agent-sessions serve", `"command": "/opt/bin/agent-sessions reminder --hook"`} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("install output lacks %q:\n%s", want, stdout.String())
		}
	}
	if _, err := os.Stat(filepath.Join(skillDir, "SKILL.md")); err != nil {
		t.Errorf("no SKILL.md written: %v", err)
	}
	err = Install(e, []string{"--skill-dir", skillDir, "--project", filepath.Join(project, "gone"), "--command", "/x"})
	if !isUsage(err) || !strings.Contains(stderr.String(), "agent-sessions install: ") {
		t.Errorf("install into a missing project: error %v, stderr %q; want a usage error", err, stderr.String())
	}
}
