package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// TestPromptReachesTheAgentVerbatim puts shell syntax in a prompt template
// and in --context, and checks the agent's stdin holds exactly the expected
// rendering and that nothing was run by a shell.
func TestPromptReachesTheAgentVerbatim(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	cwd := t.TempDir() // the engine's working directory
	prompts := t.TempDir()
	template := "Session ${SESSION}, iteration ${ITERATION} of ${MAX_ITERATIONS}.\n" +
		"Never run $(touch pwned) nor `touch pwned-tick`; echo x | tee pwned-pipe && rm -rf pwned || true > pwned-redirect\n" +
		"Quotes: 'single' \"double\" \\\"escaped\\\" \\\\ and a lone ' and \"\n" +
		"Literal: $${HOME} $${X} $${SESSION} $HOME $X $$ $ $5 ${ not a var } $(( 1 + 2 ))\n" +
		"Tabs:\tone\t\ttwo\r\n" +
		"Unicode: héllo wörld 日本語 🚀 ∑ \u00a0nbsp \u200bzwsp\n" +
		"Context: <<${CONTEXT}>>\n" +
		"\n\nEnd without newline"
	context := "$(touch pwned-ctx) `touch pwned-ctx-tick`; ${HOME} ${SESSION} $${X} 'q' \"dq\"\nsecond line\twith a tab ✓"
	want := "Session shell, iteration 1 of 1.\n" +
		"Never run $(touch pwned) nor `touch pwned-tick`; echo x | tee pwned-pipe && rm -rf pwned || true > pwned-redirect\n" +
		"Quotes: 'single' \"double\" \\\"escaped\\\" \\\\ and a lone ' and \"\n" +
		"Literal: ${HOME} ${X} ${SESSION} $HOME $X $$ $ $5 ${ not a var } $(( 1 + 2 ))\n" +
		"Tabs:\tone\t\ttwo\r\n" +
		"Unicode: héllo wörld 日本語 🚀 ∑ \u00a0nbsp \u200bzwsp\n" +
		"Context: <<" + context + ">>\n" +
		"\n\nEnd without newline"
	writeStage(t, project, "quote", commandStage("fixed-n", "echo-agent", "max_iterations: 1"), template)

	p := startBinaryIn(t, cwd, engineEnv(true, "FAKE_AGENT_PROMPT_DIR="+prompts),
		"run", "--session", "shell", "--stage", "quote", "--project", project, "--foreground", "--context", context)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, p.stdout.String(), p.stderr.String())
	}
	got := readFile(t, filepath.Join(prompts, "prompt-shell-quote-1.txt"))
	if got != want {
		t.Errorf("the agent read:\n%q\nwant:\n%q", got, want)
	}
	l := state.NewLayout(project, "shell")
	if saved := readFile(t, l.Iteration(0, "quote", 1).Prompt); saved != want {
		t.Errorf("prompt.md:\n%q\nwant:\n%q", saved, want)
	}
	// echo-agent prints "iteration=1\n" and then its stdin.
	if out := readFile(t, l.Iteration(0, "quote", 1).Output); out != "iteration=1\n"+want {
		t.Errorf("output.md:\n%q\nwant:\n%q", out, "iteration=1\n"+want)
	}
	for _, dir := range []string{project, cwd, prompts, l.RunDir()} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "pwned") {
				t.Errorf("%s was created: a shell ran part of the prompt", filepath.Join(dir, e.Name()))
			}
		}
	}
}
