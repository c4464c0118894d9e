package engine

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestExcludeEngineFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	plain := t.TempDir()
	if added, err := ExcludeEngineFiles(ctx, plain); added != nil || err != nil {
		t.Errorf("outside git: added %v, err %v; want nothing", added, err)
	}
	repo := t.TempDir()
	if out, err := exec.Command("git", "init", "-q", repo).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	exclude := filepath.Join(repo, ".git", "info", "exclude")
	if err := os.WriteFile(exclude, []byte("# mine\nbuild"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Engines starting together add each line once.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := ExcludeEngineFiles(ctx, repo); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	data, _ := os.ReadFile(exclude)
	want := "# mine\nbuild\n" + excludeHeader + "\n/.claude/pipeline-runs/\n/.claude/locks/\n/.claude/worktrees/\n"
	if string(data) != want {
		t.Errorf("info/exclude =\n%s\nwant\n%s", data, want)
	}
	sub := filepath.Join(repo, "a", "b")
	os.MkdirAll(sub, 0o755)
	added, err := ExcludeEngineFiles(ctx, sub)
	if err != nil || strings.Join(added, " ") != "/a/b/.claude/pipeline-runs/ /a/b/.claude/locks/ /a/b/.claude/worktrees/" {
		t.Errorf("subdir: added %v (%v)", added, err)
	}
	data, _ = os.ReadFile(exclude)
	if strings.Count(string(data), excludeHeader) != 1 || !strings.HasPrefix(string(data), want) {
		t.Errorf("subdir lines not appended after the others:\n%s", data)
	}
}
