package remote

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
)

const ourVersion = "0.1.0-dev" // main.version of the test binary

// readyHost is testHost with what `hosts` wants: a claude on the PATH (a
// fake) and IS_SANDBOX=1, since the tests run as root.
func readyHost(t *testing.T, s *testkit.SSHD, name string) Host {
	t.Helper()
	h := testHost(t, s, name)
	bin := t.TempDir()
	writeExec(t, filepath.Join(bin, "claude"), "#!/bin/sh\necho '2.1.332 (Claude Code)'\n")
	h.Env["PATH"] = bin + ":/usr/local/bin:/usr/bin:/bin"
	h.Env["IS_SANDBOX"] = "1"
	return h
}

func writeExec(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestCheckHosts: a ready host, one with an older binary, no claude and
// root without IS_SANDBOX, and an unreachable one, checked in parallel.
func TestCheckHosts(t *testing.T) {
	t.Parallel()
	sshd := testkit.StartSSHD(t)
	ready := readyHost(t, sshd, "ready")
	old := testHost(t, sshd, "old")
	old.Binary = filepath.Join(t.TempDir(), "agent-sessions")
	writeExec(t, old.Binary, "#!/bin/sh\necho agent-sessions 0.0.9\n")
	gone := Host{Name: "gone", SSH: "127.0.0.1", SSHArgs: []string{"-F", "/dev/null", "-p", closedPort(t)}, Binary: DefaultBinary}

	reports := CheckAll(context.Background(), []Host{ready, old, gone}, ourVersion, 30*time.Second, testOptions(t))
	var out bytes.Buffer
	WriteReports(&out, ourVersion, reports)
	t.Logf("\n%s", out.String())
	r := reports[0]
	if !r.OK() || r.Compare != "same" || r.Version != ourVersion || !strings.HasPrefix(r.Tmux, "3.") || r.Claude != "2.1.332" || !r.Sandbox {
		t.Errorf("ready host: %+v", r)
	}
	r = reports[1]
	if r.OK() || r.Compare != "older" {
		t.Errorf("old host: %+v", r)
	}
	for _, want := range []string{
		"old: agent-sessions there is 0.0.9, older than ours (0.1.0-dev): run: agent-sessions install --host old",
		"old: claude (Claude Code) is not on the PATH there",
		"old: sessions there run as root without IS_SANDBOX=1",
		"gone: cannot reach 127.0.0.1 over ssh",
		"ready  yes        0.1.0-dev (same)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if !errors.Is(reports[2].Err, ErrUnreachable) {
		t.Errorf("unreachable host: %v", reports[2].Err)
	}
}

// installHost is a ready host on a private sshd, whose binary is to go to
// a path where there is none yet, and the options that reach it.
func installHost(t *testing.T) (Host, Options) {
	t.Helper()
	h := readyHost(t, testkit.StartSSHD(t), "box")
	h.Binary = filepath.Join(t.TempDir(), "bin", "agent-sessions")
	return h, testOptions(t)
}

// TestInstall: a missing binary is copied; an older one is replaced and
// kept aside; a current one is left alone; a host of another
// architecture is refused before anything is copied.
func TestInstall(t *testing.T) {
	t.Parallel()
	h, opts := installHost(t)
	ctx := context.Background()

	res, err := Install(ctx, h, binary, ourVersion, false, opts)
	if err != nil || !res.Installed || res.Target != h.Binary || res.Backup != "" {
		t.Fatalf("install where missing: %+v %v", res, err)
	}
	if r := Check(ctx, h, ourVersion, 30*time.Second, opts); !r.OK() {
		t.Fatalf("after install: %+v", r)
	}
	res, err = Install(ctx, h, binary, ourVersion, false, opts)
	if err != nil || res.Installed {
		t.Fatalf("install when current: %+v %v", res, err)
	}

	old := "#!/bin/sh\necho agent-sessions 0.0.9\n"
	writeExec(t, h.Binary, old)
	res, err = Install(ctx, h, binary, ourVersion, false, opts)
	if err != nil || !res.Installed || res.Backup == "" {
		t.Fatalf("install over an older one: %+v %v", res, err)
	}
	if data, err := os.ReadFile(res.Backup); err != nil || string(data) != old {
		t.Fatalf("the old binary was not kept aside: %q %v", data, err)
	}
	if r := Check(ctx, h, ourVersion, 30*time.Second, opts); r.Compare != "same" {
		t.Fatalf("after replacing: %+v", r)
	}
	if left, _ := filepath.Glob(h.Binary + ".new"); len(left) != 0 {
		t.Errorf("temporary file left: %v", left)
	}

	if err := sameTarget(h, "Linux aarch64"); err == nil || !strings.Contains(err.Error(), "GOARCH=arm64") {
		t.Errorf("another architecture: %v", err)
	}
}

// TestInstallTakesBackACopyThatDoesNotRun: a copy that cannot run there (as
// a cgo build linked to a newer glibc than the host's) is taken back — the
// previous binary renamed back over it, or, on a fresh install, the copy
// removed — and the error says what the copy said and what to build.
func TestInstallTakesBackACopyThatDoesNotRun(t *testing.T) {
	t.Parallel()
	h, opts := installHost(t)
	ctx := context.Background()
	broken := filepath.Join(t.TempDir(), "agent-sessions")
	writeExec(t, broken, "#!/bin/sh\necho \"$0: /lib/x86_64-linux-gnu/libc.so.6: version 'GLIBC_2.99' not found\" >&2\nexit 1\n")

	// A fresh install: nothing is left at the target.
	_, err := Install(ctx, h, broken, ourVersion, false, opts)
	if !errors.Is(err, ErrBinaryMissing) || !strings.Contains(err.Error(), "GLIBC_2.99") || !strings.Contains(err.Error(), "nothing of it was left there") {
		t.Fatalf("fresh install of a copy that does not run: %v", err)
	}
	if _, err := os.Lstat(h.Binary); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the copy that does not run was left at %s: %v", h.Binary, err)
	}

	// Over a working binary: it is back, whole, and no backup is left.
	if _, err := Install(ctx, h, binary, ourVersion, false, opts); err != nil {
		t.Fatal(err)
	}
	_, err = Install(ctx, h, broken, ourVersion, true, opts)
	if !errors.Is(err, ErrBinaryMissing) || !strings.Contains(err.Error(), "the previous binary is back in place") {
		t.Fatalf("install of a copy that does not run over a working one: %v", err)
	}
	if r := Check(ctx, h, ourVersion, 30*time.Second, opts); r.Compare != "same" {
		t.Fatalf("the working binary is not back: %+v", r)
	}
	if left, _ := filepath.Glob(h.Binary + ".*"); len(left) != 0 {
		t.Errorf("left beside the binary: %v", left)
	}
}

// TestDynamicallyLinked: the install hint for a copy that does not run
// tells a cgo build (it needs a dynamic loader) from a static one.
func TestDynamicallyLinked(t *testing.T) {
	t.Parallel()
	if dynamicallyLinked(binary) {
		t.Errorf("%s (built with CGO_ENABLED=0) read as dynamically linked", binary)
	}
	// This test binary links net (through the MCP client): with cgo on, as
	// -race requires, it is linked to libc.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cgo := false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			cgo = cgo || s.Key == "CGO_ENABLED" && s.Value == "1"
		}
	}
	if got := dynamicallyLinked(self); got != cgo {
		t.Errorf("this test binary (CGO_ENABLED=1: %v) read as dynamically linked: %v", cgo, got)
	}
	for _, notELF := range []string{filepath.Join(t.TempDir(), "none"), "/dev/null"} {
		if dynamicallyLinked(notELF) {
			t.Errorf("%s read as dynamically linked", notELF)
		}
	}
}

func TestSFTPArgs(t *testing.T) {
	t.Parallel()
	h := Host{Name: "b", SSH: "box", SSHArgs: []string{"-p", "2222", "-lme", "-i", "k", "-oUser=x", "-F", "cfg", "-4"}}
	got, err := sftpArgs(h, Options{ControlDir: "/c", ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	want := "-b - -o BatchMode=yes -o ConnectTimeout=1 -o ControlMaster=auto -o ControlPath=/c/%C -o ControlPersist=60s -o ServerAliveInterval=10 -o ServerAliveCountMax=3 -P 2222 -o User=me -i k -o User=x -F cfg -4 box"
	if strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
	h.SSHArgs = []string{"-A"}
	if _, err := sftpArgs(h, Options{ControlDir: "/c"}); err == nil || !strings.Contains(err.Error(), "-o Option=value") {
		t.Errorf("untranslatable flag: %v", err)
	}
}

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ theirs, ours, want string }{
		{"0.1.0", "0.1.0", "same"}, {"0.1.0-dev", "0.1.0-dev", "same"}, {"0.0.9", "0.1.0", "older"},
		{"0.1.0-dev", "0.1.0", "older"}, {"0.1.0", "0.1.0-dev", "newer"}, {"1.2", "1.10", "older"},
		{"v1.0.0", "1.0.0", "same"}, {"weird", "0.1.0", "unknown"},
	} {
		if got := compareVersions(tc.theirs, tc.ours); got != tc.want {
			t.Errorf("compare(%q, %q) = %s, want %s", tc.theirs, tc.ours, got, tc.want)
		}
	}
}
