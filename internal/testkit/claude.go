package testkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// ClaudeCodeVersion is the Claude Code CLI release the tests run against;
// SPEC §13's facts were measured with it.
const ClaudeCodeVersion = "2.1.332"

// installTimeout bounds the npm install: a machine without a registry must
// skip (or fail under CI) in minutes, not hang the suite.
const installTimeout = 5 * time.Minute

// ClaudeCacheDir is the npm prefix the pinned CLI is installed into:
// ${XDG_CACHE_HOME:-$HOME/.cache}/agent-sessions-ci/npm-<version>. .ci/run
// installs into the same directory.
func ClaudeCacheDir() string {
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "agent-sessions-ci", "npm-"+ClaudeCodeVersion)
}

var (
	locateOnce sync.Once
	locatePath string
	locateErr  error
)

// ClaudeCLI returns the path of the real Claude Code CLI: the env var
// AGENT_SESSIONS_CLAUDE_CLI, else the cache dir's node_modules/.bin/claude,
// installing it there with npm when it is missing. The install is tried at
// most once per test binary.
func ClaudeCLI() (string, error) {
	locateOnce.Do(func() { locatePath, locateErr = locateClaude() })
	return locatePath, locateErr
}

func locateClaude() (string, error) {
	if p := os.Getenv("AGENT_SESSIONS_CLAUDE_CLI"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("AGENT_SESSIONS_CLAUDE_CLI=%s: %w", p, err)
		}
		return p, nil
	}
	prefix := ClaudeCacheDir()
	bin := filepath.Join(prefix, "node_modules", ".bin", "claude")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", errors.New("npm is not on PATH to install @anthropic-ai/claude-code@" + ClaudeCodeVersion)
	}
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return "", fmt.Errorf("making the npm cache dir: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--prefix", prefix, "--no-audit", "--no-fund",
		"--loglevel=error", "@anthropic-ai/claude-code@"+ClaudeCodeVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm install @anthropic-ai/claude-code@%s into %s: %w: %s", ClaudeCodeVersion, prefix, err, out)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("npm installed no %s: %w", bin, err)
	}
	return bin, nil
}

// RequireClaudeCLI returns the real CLI's path. When it cannot be found or
// installed the test is skipped with a plain message — but under CI (the env
// var CI set) that is a failure, as SPEC §12 requires.
func RequireClaudeCLI(t testing.TB) string {
	t.Helper()
	p, err := ClaudeCLI()
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("the real Claude Code CLI %s is not available (%v); set AGENT_SESSIONS_CLAUDE_CLI or let npm reach its registry", ClaudeCodeVersion, err)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip("skipped: " + msg)
	return ""
}

// Env is a hermetic environment for the real CLI: a private HOME and temp
// dirs, the fake API as its base URL, no telemetry, no updater, no
// nonessential traffic.
type Env struct {
	Home string // the temp HOME (also XDG_CONFIG_HOME's parent)
	Dir  string // the temp root holding every dir below

	BaseURL string // ANTHROPIC_BASE_URL
	// OAuthToken, when set, is sent as CLAUDE_CODE_OAUTH_TOKEN (subscriber
	// mode) instead of ANTHROPIC_API_KEY=dummy.
	OAuthToken string
	// MaxRetries, when >= 0, is CLAUDE_CODE_MAX_RETRIES (the CLI retries a
	// transient error ten times, ~3 min, by default). -1 leaves it unset.
	MaxRetries int
	// Extra are appended last (KEY=VALUE), so they win.
	Extra []string
}

// NewEnv makes the temp dirs for a hermetic CLI run against baseURL, with
// retries capped at 0 by default so an error turn fails at once.
func NewEnv(t testing.TB, baseURL string) *Env {
	t.Helper()
	dir := t.TempDir()
	e := &Env{Dir: dir, Home: filepath.Join(dir, "home"), BaseURL: baseURL}
	for _, d := range []string{e.Home, filepath.Join(dir, "tmp"), filepath.Join(dir, "claude-tmp"), filepath.Join(dir, "run")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// List is the environment as KEY=VALUE pairs, PATH kept from this process
// (node must be found) unless Extra overrides it.
func (e *Env) List() []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + e.Home,
		"USER=" + os.Getenv("USER"),
		"LANG=C.UTF-8",
		"TERM=dumb",
		"TMPDIR=" + filepath.Join(e.Dir, "tmp"),
		"CLAUDE_CODE_TMPDIR=" + filepath.Join(e.Dir, "claude-tmp"),
		"XDG_RUNTIME_DIR=" + filepath.Join(e.Dir, "run"),
		"XDG_CONFIG_HOME=" + filepath.Join(e.Home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(e.Home, ".cache"),
		"XDG_DATA_HOME=" + filepath.Join(e.Home, ".local", "share"),
		"ANTHROPIC_BASE_URL=" + e.BaseURL,
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
		"DISABLE_TELEMETRY=1",
		"DISABLE_AUTOUPDATER=1",
		"DISABLE_ERROR_REPORTING=1",
		// The CLI is a Bun binary: JavaScriptCore's optimizing JIT tiers
		// (DFG, FTL) compile on background threads for a process that
		// lives seconds here. Without them a run costs about a fifth less
		// CPU (cpuof over five runs: 9.0–11.1 → 8.2–8.8 CPU-s) and behaves
		// the same: the tiers change how fast the code runs, not what it does.
		"BUN_JSC_useDFGJIT=0",
		"BUN_JSC_useFTLJIT=0",
	}
	if e.OAuthToken != "" {
		env = append(env, "CLAUDE_CODE_OAUTH_TOKEN="+e.OAuthToken)
	} else {
		env = append(env, "ANTHROPIC_API_KEY=dummy")
	}
	if e.MaxRetries >= 0 {
		env = append(env, "CLAUDE_CODE_MAX_RETRIES="+strconv.Itoa(e.MaxRetries))
	}
	if os.Geteuid() == 0 {
		// As root the CLI refuses --dangerously-skip-permissions without it.
		env = append(env, "IS_SANDBOX=1")
	}
	return append(env, e.Extra...)
}
