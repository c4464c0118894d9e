package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// DefaultCheckTimeout bounds the check of one host.
const DefaultCheckTimeout = 3 * time.Second

// probeSteps are what `hosts` asks a host, each its own argv run with the
// host's env (ssh hands a command to the far side's login shell, which is
// why envWords quotes every word; no script of ours is run there).
var probeSteps = []struct {
	key  string
	argv func(h Host) []string
}{
	{"os", func(Host) []string { return []string{"uname", "-s", "-m"} }},
	{"uid", func(Host) []string { return []string{"id", "-u"} }},
	{"sandbox", func(Host) []string { return []string{"printenv", "IS_SANDBOX"} }},
	{"version", func(h Host) []string { return []string{binaryOf(h), "version"} }},
	{"tmux", func(Host) []string { return []string{"tmux", "-V"} }},
	{"claude", func(Host) []string { return []string{"claude", "--version"} }},
}

// probeAnswer is one step's first line of output, its exit status and the
// last line it wrote on stderr.
type probeAnswer struct {
	line   string
	exit   int
	stderr string
}

// Report is what the check of one host found.
type Report struct {
	Host     string
	Err      error  // not reachable: why (an *Error)
	Path     string // the binary there as hosts.yaml names it; "" when it could not be run
	Version  string // its version ("" when missing)
	Compare  string // against ours: same, newer, older, missing or unknown
	OS       string // uname -s -m there, e.g. "Linux x86_64"
	Tmux     string
	Claude   string
	UID      int
	Sandbox  bool     // IS_SANDBOX=1 in the binary's environment there
	Problems []string // each with how to fix it; none means ready
}

// OK reports whether the host is ready for sessions.
func (r Report) OK() bool { return r.Err == nil && len(r.Problems) == 0 }

// Check probes one host within timeout: reachable, our binary's version
// against ours, tmux, the claude CLI, and root without IS_SANDBOX.
func Check(ctx context.Context, h Host, ours string, timeout time.Duration, opts Options) Report {
	r := Report{Host: h.Name}
	answers, err := probe(ctx, h, timeout, opts)
	if err != nil {
		r.Err = err
		return r
	}
	r.read(h, answers)
	r.judge(h, ours)
	return r
}

// CheckAll checks every host in parallel, each within timeout; the
// reports come back in the order of hosts.
func CheckAll(ctx context.Context, hosts []Host, ours string, timeout time.Duration, opts Options) []Report {
	reports := make([]Report, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i] = Check(ctx, h, ours, timeout, opts)
		}()
	}
	wg.Wait()
	return reports
}

// probe runs each probe step on h over one (multiplexed) ssh connection,
// all within timeout. A step whose command is missing or fails is an
// answer; only ssh failing is an error.
func probe(ctx context.Context, h Host, timeout time.Duration, opts Options) (map[string]probeAnswer, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	answers := make(map[string]probeAnswer, len(probeSteps))
	for _, step := range probeSteps {
		a, err := runStep(ctx, h, o, timeout, step.argv(h))
		if err != nil {
			return nil, err
		}
		answers[step.key] = a
	}
	return answers, nil
}

// runStep runs argv on h with the host's env, within ctx (whose limit is
// timeout). A command that fails there is an answer; only ssh failing is
// an error.
func runStep(ctx context.Context, h Host, o Options, timeout time.Duration, argv []string) (probeAnswer, error) {
	ssh := sshArgv(h, o.ControlDir, min(o.ConnectTimeout, timeout), envWords(h, argv...))
	cmd := exec.CommandContext(ctx, ssh[0], ssh[1:]...)
	var stdout bytes.Buffer
	stderr := &tail{}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return probeAnswer{}, hostErr(h, ErrTimeout, "no answer from %s within %v (%s); a slow host may need more time: agent-sessions hosts --timeout 10s", h.SSH, timeout, orNothing(lastLine(stderr.String())))
	}
	exit := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == 255:
		return probeAnswer{}, classify(h, 255, stderr.String())
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	case err != nil:
		return probeAnswer{}, hostErr(h, ErrUnreachable, "cannot run ssh: %v", err)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(stdout.String()), "\n")
	return probeAnswer{line: strings.TrimSpace(first), exit: exit, stderr: lastLine(stderr.String())}, nil
}

func orNothing(s string) string {
	if s == "" {
		return "ssh said nothing"
	}
	return s
}

// read fills the report from the probe's answers. The binary is missing
// when env could not run it (126 or 127); a command that failed says
// nothing.
func (r *Report) read(h Host, answers map[string]probeAnswer) {
	ok := func(key string) string {
		if a := answers[key]; a.exit == 0 {
			return a.line
		}
		return ""
	}
	r.UID, _ = strconv.Atoi(ok("uid"))
	r.OS = ok("os")
	r.Sandbox = ok("sandbox") == "1"
	if v := answers["version"]; v.exit != 126 && v.exit != 127 {
		r.Path = binaryOf(h)
		r.Version = strings.TrimPrefix(ok("version"), "agent-sessions ")
	}
	r.Tmux = strings.TrimPrefix(ok("tmux"), "tmux ")
	r.Claude = strings.TrimSuffix(ok("claude"), " (Claude Code)")
}

// judge compares what was found with what sessions need.
func (r *Report) judge(h Host, ours string) {
	fix := fmt.Sprintf("run: agent-sessions install --host %s", h.Name)
	switch {
	case r.Path == "":
		r.Compare = "missing"
		r.Problems = append(r.Problems, fmt.Sprintf("%s is not found there (not on the PATH of a non-interactive ssh login): %s, or set binary: to its path in hosts.yaml", binaryOf(h), fix))
	case r.Version == "":
		r.Compare = "unknown"
		r.Problems = append(r.Problems, fmt.Sprintf("%s there printed no version: is it agent-sessions? %s", r.Path, fix))
	default:
		r.Compare = compareVersions(r.Version, ours)
		switch r.Compare {
		case "older":
			r.Problems = append(r.Problems, fmt.Sprintf("agent-sessions there is %s, older than ours (%s): %s", r.Version, ours, fix))
		case "unknown":
			r.Problems = append(r.Problems, fmt.Sprintf("agent-sessions there is %q, which cannot be compared with ours (%s): %s", r.Version, ours, fix))
		}
	}
	if r.Tmux == "" {
		r.Problems = append(r.Problems, "tmux is not installed there: install it on the host (apt-get install tmux, brew install tmux)")
	}
	if r.Claude == "" {
		r.Problems = append(r.Problems, "claude (Claude Code) is not on the PATH there: install it on the host (npm install -g @anthropic-ai/claude-code) and log in once, or use provider: mock/codex/command")
	}
	if r.UID == 0 && !r.Sandbox {
		r.Problems = append(r.Problems, fmt.Sprintf("sessions there run as root without IS_SANDBOX=1, and claude refuses --dangerously-skip-permissions as root: on a sandboxed machine add env: {IS_SANDBOX: \"1\"} to host %s in hosts.yaml, else log in as another user", h.Name))
	}
}

// compareVersions compares a remote version with ours: same, newer, older
// or unknown (not dotted numbers). A release is newer than its own
// pre-releases (0.2.0 > 0.2.0-dev).
func compareVersions(theirs, ours string) string {
	if theirs == ours {
		return "same"
	}
	tn, tpre, ok1 := splitVersion(theirs)
	on, opre, ok2 := splitVersion(ours)
	if !ok1 || !ok2 {
		return "unknown"
	}
	for i := range max(len(tn), len(on)) {
		a, b := at(tn, i), at(on, i)
		if a != b {
			return map[bool]string{true: "newer", false: "older"}[a > b]
		}
	}
	switch {
	case tpre == opre:
		return "same"
	case tpre == "":
		return "newer"
	case opre == "":
		return "older"
	case tpre > opre:
		return "newer"
	}
	return "older"
}

func splitVersion(v string) ([]int, string, bool) {
	v = strings.TrimPrefix(v, "v")
	v, pre, _ := strings.Cut(v, "-")
	var nums []int
	for p := range strings.SplitSeq(v, ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, "", false
		}
		nums = append(nums, n)
	}
	return nums, pre, true
}

func at(s []int, i int) int {
	if i < len(s) {
		return s[i]
	}
	return 0
}

// WriteReports prints the reports as a table, then each problem with its
// fix, one per line.
func WriteReports(w io.Writer, ours string, reports []Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tREACHABLE\tAGENT-SESSIONS\tTMUX\tCLAUDE\tUSER\tSTATUS")
	for _, r := range reports {
		if r.Err != nil {
			fmt.Fprintf(tw, "%s\tno\t-\t-\t-\t-\tunreachable\n", r.Host)
			continue
		}
		ver := "missing"
		if r.Path != "" {
			ver = fmt.Sprintf("%s (%s)", orDash(r.Version), r.Compare)
		}
		user := fmt.Sprintf("uid %d", r.UID)
		if r.UID == 0 {
			user = "root"
			if r.Sandbox {
				user += ", IS_SANDBOX=1"
			}
		}
		status := "ok"
		if !r.OK() {
			status = fmt.Sprintf("%d problem(s)", len(r.Problems))
		}
		fmt.Fprintf(tw, "%s\tyes\t%s\t%s\t%s\t%s\t%s\n", r.Host, ver, orDash(r.Tmux), orDash(r.Claude), user, status)
	}
	tw.Flush()
	for _, r := range reports {
		if r.Err != nil {
			fmt.Fprintf(w, "%s: %s\n", r.Host, errorMsg(r.Err))
		}
		for _, p := range r.Problems {
			fmt.Fprintf(w, "%s: %s\n", r.Host, p)
		}
	}
	fmt.Fprintf(w, "(this agent-sessions: %s, %s/%s)\n", ours, runtime.GOOS, runtime.GOARCH)
}

func errorMsg(err error) string {
	var he *Error
	if errors.As(err, &he) {
		return he.Msg
	}
	return err.Error()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
