package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// Provider names (SPEC §7).
const (
	ProviderClaude  = "claude"
	ProviderCodex   = "codex"
	ProviderCommand = "command"
	ProviderMock    = "mock"
)

// ProviderNames lists the providers, aliases excluded.
func ProviderNames() []string {
	return []string{ProviderClaude, ProviderCodex, ProviderCommand, ProviderMock}
}

func canonicalProvider(name string) string {
	if name == "claude-code" {
		return ProviderClaude
	}
	return name
}

func knownProvider(name string) bool {
	return slices.Contains(ProviderNames(), canonicalProvider(name))
}

// claudeAliases are the model aliases Claude Code understands; they mean
// nothing to other CLIs.
var claudeAliases = []string{"opus", "sonnet", "haiku"}

// Call is one iteration's agent invocation.
type Call struct {
	Stage     StagePlan
	Prompt    string
	Dir       string
	Env       []string
	Iteration int
	// Output receives the agent's final text (output.md and the signal
	// scanner); Transcript receives what the pane shows.
	Output     io.Writer
	Transcript io.Writer
	Timeout    time.Duration
	Grace      time.Duration
	Started    func(pgid int)
	// Container holds the agent and everything it starts; a provider may
	// Stop it early (say, once the agent's final result arrived).
	Container *Container
	// ProgressFile is where the agent keeps its notes (the mock appends).
	ProgressFile string
	// ResultGrace is how long claude may linger after its result line
	// (0: resultGrace).
	ResultGrace time.Duration
}

// Outcome is how an agent invocation ended.
type Outcome struct {
	ExitCode     int
	TimedOut     bool
	Stopped      bool
	CostUSD      float64
	InputTokens  int64
	OutputTokens int64
	// Problem explains a failure in a sentence (start failure, agent error).
	Problem string
	// Failure classifies a failure (nil on success), for result.json, the
	// event log and the guardrails that park on usage and rate limits.
	Failure *state.Failure
}

// Provider runs agents of one kind.
type Provider interface {
	// Argv is the command line for a stage (nil for in-process agents).
	Argv(sp StagePlan) []string
	// Run runs one iteration's agent to its end.
	Run(ctx context.Context, c Call) Outcome
}

// NewProvider returns the provider of a stage plan.
func NewProvider(name string) (Provider, error) {
	switch canonicalProvider(name) {
	case ProviderClaude:
		return claudeProvider{}, nil
	case ProviderCodex:
		return execProvider{argv: codexArgv}, nil
	case ProviderCommand:
		return execProvider{argv: func(sp StagePlan) []string { return slices.Clone(sp.Command) }}, nil
	case ProviderMock:
		return mockProvider{}, nil
	}
	return nil, fmt.Errorf("%w: unknown provider %q (use one of %s)", ErrInvalid, name, strings.Join(ProviderNames(), ", "))
}

// CheckAgent reports, before anything starts, whether a stage's agent CLI
// can be found. The error wraps ErrAgentUnavailable and says how to install.
func CheckAgent(sp StagePlan, path string) error {
	p, err := NewProvider(sp.Provider)
	if err != nil {
		return err
	}
	argv := p.Argv(sp)
	if argv == nil {
		return nil
	}
	if _, err := lookPath(argv[0], path); err != nil {
		return fmt.Errorf("%w: %s (needed by stage %s, provider %s) was not found on PATH; %s",
			ErrAgentUnavailable, argv[0], sp.Name, sp.Provider, InstallHint(sp.Provider, argv[0]))
	}
	return nil
}

// SandboxHint is how to let Claude Code run as root: it refuses
// --dangerously-skip-permissions for root unless IS_SANDBOX=1 (SPEC §13).
const SandboxHint = "as root, Claude Code refuses --dangerously-skip-permissions unless IS_SANDBOX=1 is set: " +
	"give the server that variable (e.g. `claude mcp add --scope user agent-sessions -e IS_SANDBOX=1 -- /full/path/to/agent-sessions serve`, " +
	"or export IS_SANDBOX=1 before `agent-sessions run`) — only on a machine or container you are content to let agents control"

// CheckSandbox reports, before anything starts, a claude stage that would
// run as root (euid 0) without IS_SANDBOX=1 in env: every iteration would
// exit 1 at once. The error wraps ErrAgentUnavailable and names the fix.
func CheckSandbox(p *Plan, euid int, env []string) error {
	if euid != 0 || envValue(env, "IS_SANDBOX") == "1" {
		return nil
	}
	for _, sp := range p.Stages {
		if canonicalProvider(sp.Provider) == ProviderClaude {
			return fmt.Errorf("%w: stage %s runs claude as root without IS_SANDBOX=1; %s", ErrAgentUnavailable, sp.Name, SandboxHint)
		}
	}
	return nil
}

// envValue is the value a process given env sees for key: the last one
// wins, as in exec.Cmd.
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// InstallHint says how to get a provider's CLI.
func InstallHint(provider, bin string) string {
	switch canonicalProvider(provider) {
	case ProviderClaude:
		return "install Claude Code with `npm install -g @anthropic-ai/claude-code` and run `claude` once to log in"
	case ProviderCodex:
		return "install the Codex CLI with `npm install -g @openai/codex`"
	case ProviderCommand:
		return fmt.Sprintf("fix command: in the stage (or --agent-cmd) so %q names an installed program", bin)
	}
	return "check the provider"
}

// lookPath resolves bin against the given PATH value (the environment the
// agent will see), or the process's PATH when empty.
func lookPath(bin, path string) (string, error) {
	if strings.ContainsRune(bin, '/') || path == "" {
		return exec.LookPath(bin)
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		full := dir + "/" + bin
		if info, err := os.Stat(full); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
			return full, nil
		}
	}
	return "", exec.ErrNotFound
}

func claudeArgv(sp StagePlan) []string {
	argv := []string{"claude", "-p", "--model", sp.Model, "--dangerously-skip-permissions", "--output-format", "stream-json", "--verbose"}
	if sp.budgetLeft > 0 {
		// The CLI stops itself at what is left of the session's cap, so
		// one iteration cannot overspend it by much (SPEC §15).
		argv = append(argv, "--max-budget-usd", budgetArg(sp.budgetLeft))
	}
	return argv
}

func codexArgv(sp StagePlan) []string {
	argv := []string{"codex", "exec", "--dangerously-bypass-approvals-and-sandbox"}
	if sp.Model != "" && !slices.Contains(claudeAliases, sp.Model) {
		argv = append(argv, "-m", sp.Model)
	}
	return append(argv, "-")
}

// execProvider runs a CLI whose stdout is the agent's text (codex, command).
type execProvider struct {
	argv func(StagePlan) []string
}

func (p execProvider) Argv(sp StagePlan) []string { return p.argv(sp) }

func (p execProvider) Run(ctx context.Context, c Call) Outcome {
	stderr := &lastLine{w: c.Transcript}
	res := runProcess(ctx, procSpec{
		Argv: p.argv(c.Stage), Dir: c.Dir, Env: c.Env, Stdin: c.Prompt,
		Stdout: io.MultiWriter(c.Output, c.Transcript), Stderr: stderr,
		Timeout: c.Timeout, Grace: c.Grace, Started: c.Started, Container: c.Container,
	})
	return outcomeOf(res, stderr.String())
}

// lastLine passes stderr on to the pane and keeps its last non-empty line:
// an agent that exits at once usually says why there (claude as root).
type lastLine struct {
	w    io.Writer
	buf  []byte // the unfinished line
	last string
}

func (l *lastLine) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(l.buf[:i])); line != "" {
			l.last = line
		}
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 4096 {
		l.buf = l.buf[len(l.buf)-4096:]
	}
	return l.w.Write(p)
}

// String is the last complete (or pending) non-empty line, shortened.
func (l *lastLine) String() string {
	if line := strings.TrimSpace(string(l.buf)); line != "" {
		return truncate(line, 300)
	}
	return truncate(l.last, 300)
}

func outcomeOf(res procResult, stderrLine string) Outcome {
	o := Outcome{ExitCode: res.ExitCode, TimedOut: res.TimedOut, Stopped: res.Stopped}
	kind := ""
	switch {
	case res.Err != nil:
		o.Problem, kind = "could not start the agent: "+res.Err.Error(), state.FailureStart
	case res.TimedOut:
		o.Problem, kind = "the agent ran past the iteration timeout and was stopped", state.FailureTimeout
	case res.Stopped:
		o.Problem = "the agent was stopped because the session was killed"
	case res.ExitCode != 0:
		o.Problem, kind = fmt.Sprintf("the agent exited with code %d", res.ExitCode), state.FailureExit
		if stderrLine != "" {
			o.Problem += ": " + stderrLine
		}
	}
	if kind != "" {
		o.Failure = &state.Failure{Kind: kind, Message: o.Problem}
	}
	return o
}

// claudeProvider runs Claude Code with stream-json output, renders the
// stream in the pane and keeps the final result as the output.
type claudeProvider struct {
	// bin replaces argv[0] ("claude", found on the engine's PATH) in tests.
	bin string
}

func (p claudeProvider) Argv(sp StagePlan) []string {
	argv := claudeArgv(sp)
	if p.bin != "" {
		argv[0] = p.bin
	}
	return argv
}

// resultGrace is how long claude may take to exit by itself once its
// result line has arrived; past it the engine ends its process group (it is
// waiting for a background shell, SPEC §13).
const resultGrace = 2 * time.Second

func (p claudeProvider) Run(ctx context.Context, c Call) Outcome {
	pr, pw := io.Pipe()
	stderr := &lastLine{w: c.Transcript}
	finished := make(chan struct{})
	done := make(chan *streamResult, 1)
	go func() {
		r := renderStream(pr, c.Transcript, func() { close(finished) })
		io.Copy(io.Discard, pr)
		done <- r
	}()
	grace := c.ResultGrace
	if grace <= 0 {
		grace = resultGrace
	}
	res := runProcess(ctx, procSpec{
		Argv: p.Argv(c.Stage), Dir: c.Dir, Env: c.Env, Stdin: c.Prompt,
		Stdout: pw, Stderr: stderr,
		Timeout: c.Timeout, Grace: c.Grace, Started: c.Started, Container: c.Container,
		Finished: finished, FinishGrace: grace,
	})
	pw.Close()
	sr := <-done
	io.WriteString(c.Output, sr.Final)
	o := outcomeOf(res, stderr.String())
	o.CostUSD, o.InputTokens, o.OutputTokens = sr.CostUSD, sr.InputTokens, sr.OutputTokens
	switch {
	case sr.IsError:
		if o.ExitCode == 0 {
			o.ExitCode = 1
		}
		o.Failure = sr.Failure
		o.Problem = fmt.Sprintf("claude reported an error (%s): %s", sr.Failure.Kind, sr.Failure.Message)
	case !sr.SawResult && o.Problem == "":
		o.Problem = "claude ended without a result message"
		o.Failure = &state.Failure{Kind: state.FailureExit, Message: o.Problem}
	case res.Ended:
		c.Transcript.Write([]byte("● claude had printed its result; its leftover processes were ended\n"))
	}
	return o
}

// AgentEnv builds the environment of an agent: the engine's own, minus the
// variables that make Claude Code refuse to start inside another Claude Code
// session (the MCP server runs inside one), plus the session's variables.
func AgentEnv(base []string, extra map[string]string) []string {
	env := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if k == "CLAUDECODE" || k == "CLAUDE_CODE_ENTRYPOINT" {
			continue
		}
		if _, override := extra[k]; override {
			continue
		}
		env = append(env, kv)
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	return env
}

// errStopped is returned by in-process agents stopped by ctx.
var errStopped = errors.New("stopped")
