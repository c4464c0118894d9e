package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// An engine in a plain directory (no .git in it or above) runs no git to
// learn that: a git on PATH that leaves a mark when run is never run, while
// in a repository it is. Not parallel: it replaces PATH.
func TestExcludeEngineFilesNoGitOutsideRepo(t *testing.T) {
	bin, marks := t.TempDir(), t.TempDir()
	fake := "#!/bin/sh\necho run >> \"" + filepath.Join(marks, "git-ran") + "\"\nexit 128\n"
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	ctx := context.Background()
	if added, err := ExcludeEngineFiles(ctx, t.TempDir()); added != nil || err != nil {
		t.Errorf("outside git: added %v, err %v; want nothing", added, err)
	}
	if _, err := os.Stat(filepath.Join(marks, "git-ran")); err == nil {
		t.Error("git ran for a directory with no .git in it or above")
	}
	repo := t.TempDir()
	if err := os.Mkdir(filepath.Join(repo, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	ExcludeEngineFiles(ctx, filepath.Join(repo))
	if _, err := os.Stat(filepath.Join(marks, "git-ran")); err != nil {
		t.Errorf("git did not run for a directory with .git (the fake is not used?): %v", err)
	}
}
