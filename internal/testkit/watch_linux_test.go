package testkit

import (
	"os"
	"strings"
	"testing"
)

// A write into the file in place is reported every time (inotify), however
// short the torn moment — even when the content it leaves is whole.
func TestFileWatchCatchesInPlaceWrite(t *testing.T) {
	t.Parallel()
	catches(t, "written in place", func(path string) error {
		return os.WriteFile(path, []byte(strings.Repeat("x", 4096)+"\n"), 0o644)
	})
}
