package main

import (
	"strings"
	"testing"
)

// TestRunMaxZero: `run --max 0` was taken silently as the stage's default;
// it is refused with what to do instead.
func TestRunMaxZero(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	code, stdout, stderr := runBinary(t, engineEnv(true), "run", "--session", "z", "--stage", "demo", "--project", project, "--foreground", "--max", "0")
	if code != exitUsage || !strings.Contains(stderr, "--max must be at least 1, got 0; leave it out to use the stage's own max_iterations") {
		t.Errorf("exit %d, stderr %q (stdout %q); want a usage error naming --max", code, stderr, stdout)
	}
}
