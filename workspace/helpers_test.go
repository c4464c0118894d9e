package workspace

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
)

// testGit runs git for a test's setup: a fixed identity, no user or system
// config (a signing or hook setting of the machine's must not leak in).
func testGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := gitCmd(dir, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func gitCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	return cmd
}

// newRepo makes a repository with one commit (README.md) on main.
func newRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	testGit(t, dir, "init", "-q")
	write(t, filepath.Join(dir, "README.md"), "hello\n")
	testGit(t, dir, "add", "README.md")
	testGit(t, dir, "commit", "-q", "-m", "initial")
	return dir
}

func commitFile(t *testing.T, dir, name, content, msg string) string {
	t.Helper()
	write(t, filepath.Join(dir, name), content)
	testGit(t, dir, "add", name)
	testGit(t, dir, "commit", "-q", "-m", msg)
	return testGit(t, dir, "rev-parse", "HEAD")
}

// write is testkit.WriteFile: content written, its directory made.
var write = testkit.WriteFile

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

var bg = context.Background()
