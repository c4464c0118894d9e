package testkit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// validFull accepts only the full content the writers below write.
func validFull(data []byte) string {
	if string(data) != strings.Repeat("x", 4096)+"\n" {
		return "incomplete"
	}
	return ""
}

// An atomic replace (temporary file renamed over) is never reported.
func TestFileWatchAtomicReplaceIsClean(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	w := WatchFile(path, validFull)
	for range 50 {
		tmp := filepath.Join(dir, ".state.json.tmp")
		WriteFile(t, tmp, strings.Repeat("x", 4096)+"\n")
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	if reads, bad := w.Finish(); len(bad) > 0 {
		t.Errorf("atomic replaces reported (%d reads): %q", reads, bad)
	}
}

// A removal after the file was seen is reported.
func TestFileWatchCatchesRemoval(t *testing.T) {
	t.Parallel()
	catches(t, "vanished", os.Remove)
}

// catches starts a watch on a whole file, does act to it, and checks that
// the watch reports a problem containing want.
func catches(t *testing.T, want string, act func(path string) error) {
	t.Helper()
	const within = 10 * time.Second
	path := filepath.Join(t.TempDir(), "state.json")
	WriteFile(t, path, strings.Repeat("x", 4096)+"\n")
	w := WatchFile(path, validFull)
	// The watch must have seen the file first (one never seen cannot vanish).
	if !WaitUntil(within, func() bool { return w.reads.Load() > 0 }) {
		t.Fatal("the watch never read the file")
	}
	if err := act(path); err != nil {
		t.Fatal(err)
	}
	WaitUntil(within, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.bad) > 0
	})
	if _, bad := w.Finish(); !strings.Contains(strings.Join(bad, "; "), want) {
		t.Errorf("the watch reported %q, want a problem saying %q", bad, want)
	}
}
