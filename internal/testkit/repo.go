package testkit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RepoRoot is the repository's root directory, found from this file's own
// path, so a test in any package (whatever its working directory) reaches
// testdata/ and can build the binary.
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("testkit: runtime.Caller failed")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// AgentsDir is the absolute path of testdata/agents (the fake agents).
func AgentsDir() string { return filepath.Join(RepoRoot(), "testdata", "agents") }

// AgentPath is the absolute path of one fake agent.
func AgentPath(name string) string { return filepath.Join(AgentsDir(), name) }

// MainWithBinary is the TestMain of a package whose tests drive the built
// binary: it builds it into *binary, runs the tests as Main does,
// WaitingParallel at a time (they mostly wait on engines, tmux and ssh),
// and cleans up.
func MainWithBinary(m *testing.M, binary *string) int {
	raceExitSleepOff() // before the build, which would otherwise run twice
	path, dir, err := BuildBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*binary = path
	SetDefaultParallel(WaitingParallel)
	return Main(m)
}

// BuildBinary returns the agent-sessions binary built from this tree, and a
// directory for the caller to remove when its tests are done ("" when there
// is none). The tests that drive the binary — as a user, as tmux runs it, as
// a remote host runs it — call it once, in TestMain. Three test processes
// need the same binary, and a link on a busy machine takes seconds: the
// binary is kept in the user's cache under a key of the sources it is built
// from (every file of the tree but tests and testdata, the Go version and
// the build environment), built by the first process that needs it (the
// others wait on its lock) and reused while the sources stay the same.
func BuildBinary() (path, dir string, err error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return buildInto()
	}
	key, err := sourceKey(RepoRoot())
	if err != nil {
		return "", "", err
	}
	root := filepath.Join(cache, "agent-sessions-test")
	final := filepath.Join(root, key)
	path = filepath.Join(final, "agent-sessions")
	if isExecutable(path) {
		now := time.Now()
		os.Chtimes(final, now, now) // in use: not pruned
		return path, "", nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return buildInto()
	}
	unlock, err := lockFile(final + ".lock")
	if err != nil {
		return buildInto() // a cache we cannot lock is one we do without
	}
	defer unlock()
	if isExecutable(path) {
		return path, "", nil // another test process built it while we waited
	}
	built, tmp, err := buildInto()
	if err != nil {
		return "", "", err
	}
	// The directory appears whole or not at all.
	if err := os.Rename(tmp, final); err != nil {
		return built, tmp, nil // the caller removes it as before
	}
	pruneBinaries(root, key)
	return filepath.Join(final, filepath.Base(built)), "", nil
}

// buildInto builds the binary into a new temporary directory and returns
// its path and that directory.
func buildInto() (path, dir string, err error) {
	dir, err = os.MkdirTemp("", "agent-sessions-bin-")
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, "agent-sessions")
	// Without the symbol table and DWARF (-s -w): the binary runs the same,
	// links faster, and is a third smaller to copy to a test's ssh host.
	// Static (CGO_ENABLED=0), as the README builds it, so that the binary
	// under test is the one users copy to their hosts.
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", path, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Dir = RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return path, dir, nil
}

// sourceKey hashes what the binary is built from: every file under root
// except .git, tests and testdata (names and contents), the Go toolchain of
// this test binary and the environment go build reads.
func sourceKey(root string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	for _, k := range []string{"GOFLAGS", "GOOS", "GOARCH", "CGO_ENABLED", "GOEXPERIMENT", "GOTOOLCHAIN", "CC"} {
		fmt.Fprintf(h, "%s=%s\n", k, os.Getenv(k))
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		switch {
		case name == ".git" || d.IsDir() && name == "testdata":
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		case d.IsDir() || !d.Type().IsRegular() || strings.HasSuffix(name, "_test.go"):
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(h, "%s %d\n", rel, len(data))
		h.Write(data)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash the sources under %s: %w", root, err)
	}
	return hex.EncodeToString(h.Sum(nil))[:20], nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// lockFile takes an exclusive flock on path (made when missing) and
// returns its release.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// pruneBinaries removes the binaries of other sources not used for a day
// (each is a few MB; a tree edited all day leaves one per test run).
func pruneBinaries(root, keep string) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".lock")
		if name == keep {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

// CommandStage is the YAML of a stage run by one fake agent (a name in
// testdata/agents) with no delay, each of extra a further line.
func CommandStage(completion, agent string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "completion: %s\nprovider: command\ncommand: [%q]\ndelay: 0\n", completion, AgentPath(agent))
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	return b.String()
}

// WriteStage writes .claude/stages/<name>/{stage.yaml,prompt.md} in project.
func WriteStage(t testing.TB, project, name, yaml, prompt string) {
	t.Helper()
	dir := filepath.Join(project, ".claude", "stages", name)
	WriteFile(t, filepath.Join(dir, "stage.yaml"), yaml)
	WriteFile(t, filepath.Join(dir, "prompt.md"), prompt)
}
