package remote

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultConnectTimeout bounds ssh's TCP connect and login.
const DefaultConnectTimeout = 3 * time.Second

// Sentinel errors: what went wrong reaching a host. Errors carry the host
// and what to do; errors.Is tells the kind.
var (
	ErrUnreachable    = errors.New("host unreachable")
	ErrAuth           = errors.New("ssh login needs a password or an unknown key")
	ErrBinaryMissing  = errors.New("agent-sessions missing on the host")
	ErrConnectionLost = errors.New("connection lost")
	ErrTimeout        = errors.New("no answer in time")
)

// Error is a failure to reach or use a host: which host, what kind (one
// of the sentinels above), and what ssh said.
type Error struct {
	Host string
	Kind error
	Msg  string // what happened and how to fix it
}

func (e *Error) Error() string { return fmt.Sprintf("host %q: %s", e.Host, e.Msg) }
func (e *Error) Unwrap() error { return e.Kind }
func hostErr(h Host, kind error, format string, args ...any) *Error {
	return &Error{Host: h.Name, Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// checkDestination refuses what ssh would read as an option (a leading
// '-' would turn a destination into -oProxyCommand=…) or what cannot be
// one word.
func checkDestination(s string) error {
	switch {
	case s == "":
		return errors.New("empty: give user@machine or a Host alias from ~/.ssh/config")
	case strings.HasPrefix(s, "-"):
		return fmt.Errorf("%q starts with '-', which ssh reads as an option: put options in ssh_args", s)
	case strings.ContainsAny(s, " \t\r\n"):
		return fmt.Errorf("%q has white space: a destination is one word (user@machine)", s)
	}
	return checkWord(s)
}

// checkWord refuses control characters: they cannot be passed through the
// far side's command line intact (NUL at all).
func checkWord(s string) error {
	for _, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return fmt.Errorf("%q holds a control character, which cannot reach the host intact", s)
		}
	}
	return nil
}

// shellQuote quotes one word for a POSIX shell: single quotes, with each
// embedded ' written as '\”. Needed because ssh does not pass an argv: it
// joins the remote command's words with spaces and the far side's login
// shell parses the line again. Hosts need a POSIX login shell (sh, bash,
// dash, zsh); csh and fish parse quotes differently.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:@%+,") == "" {
		return s // nothing the shell would read specially
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// remoteCommand is `env K=V … <binary> args…`, each word quoted for the far
// side's shell (see envWords).
func remoteCommand(h Host, args ...string) []string {
	return envWords(h, append([]string{binaryOf(h)}, args...)...)
}

// envWords is `env K=V … argv…` with each word quoted for the far side's
// shell. env(1) sets the variables without the shell evaluating their
// values; the names are validated when hosts.yaml is read.
func envWords(h Host, argv ...string) []string {
	words := []string{"env"}
	keys := make([]string, 0, len(h.Env))
	for k := range h.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		words = append(words, k+"="+h.Env[k])
	}
	words = append(words, argv...)
	for i, w := range words {
		words[i] = shellQuote(w)
	}
	return words
}

func binaryOf(h Host) string {
	if h.Binary == "" {
		return DefaultBinary
	}
	return h.Binary
}

// sshOptions are the options every ssh call to a host gets: no prompts
// (BatchMode: a password prompt would hang a tool call; it fails at once
// instead), a bounded connect, one reused connection per host, and
// keepalives, so that a host that vanished without a word (no RST) ends
// the connection within 30 s and the next call dials again.
func sshOptions(controlDir string, connect time.Duration) []string {
	secs := max(1, int((connect+time.Second-1)/time.Second))
	return []string{
		"-o", "BatchMode=yes",
		"-o", "ConnectTimeout=" + strconv.Itoa(secs),
		"-o", "ControlMaster=auto",
		"-o", "ControlPath=" + filepath.Join(controlDir, "%C"),
		"-o", "ControlPersist=60s",
		"-o", "ServerAliveInterval=10",
		"-o", "ServerAliveCountMax=3",
	}
}

// sshArgv is the full argv of one ssh call running words on h.
func sshArgv(h Host, controlDir string, connect time.Duration, words []string) []string {
	argv := []string{"ssh"}
	argv = append(argv, sshOptions(controlDir, connect)...)
	argv = append(argv, h.SSHArgs...)
	argv = append(argv, h.SSH, "--")
	return append(argv, words...)
}

// ControlDir is the directory of the ssh control sockets: private (0700,
// ours), and short, because a unix socket path is limited to ~104 bytes
// and ControlPath adds 40 (%C). $XDG_RUNTIME_DIR when set, else the temp
// dir, per user.
func ControlDir() (string, error) {
	base := os.Getenv("XDG_RUNTIME_DIR")
	if base == "" || len(base) > 40 {
		base = os.TempDir()
	}
	dir := filepath.Join(base, fmt.Sprintf("agent-sessions-ssh-%d", os.Getuid()))
	if len(dir) > 60 {
		dir = filepath.Join("/tmp", fmt.Sprintf("agent-sessions-ssh-%d", os.Getuid()))
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("make the ssh control directory: %w", err)
	}
	// A shared temp dir lets anyone make this name first: use it only if
	// it is ours and private, or ssh could be pointed at another's socket.
	info, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("ssh control directory: %w", err)
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !info.IsDir() || !ok || int(st.Uid) != os.Getuid() || info.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("ssh control directory %s is not a private directory of this user: remove it, or set XDG_RUNTIME_DIR", dir)
	}
	return dir, nil
}

// classify turns a failed ssh run into an *Error: exit 255 is ssh's own
// failure (its last stderr line says which), 126/127 the remote binary
// missing, anything else the remote command's failure.
func classify(h Host, exit int, stderr string) *Error {
	last := lastLine(stderr)
	low := strings.ToLower(stderr)
	dest := h.SSH
	switch {
	case exit == 255 && strings.Contains(low, "permission denied"):
		return hostErr(h, ErrAuth, "ssh %s cannot log in without a prompt (BatchMode is on, so no password is asked): set up key login (ssh-copy-id %s, or load the key into ssh-agent) and check with: ssh -o BatchMode=yes %s true (%s)", dest, dest, dest, last)
	case exit == 255 && strings.Contains(low, "host key verification failed"):
		return hostErr(h, ErrAuth, "the host key of %s is unknown or has changed: connect once by hand (ssh %s) to check and accept it (%s)", dest, dest, last)
	case exit == 255:
		if last == "" {
			last = "ssh exited 255 with no message"
		}
		return hostErr(h, ErrUnreachable, "cannot reach %s over ssh: %s", dest, last)
	case exit == 126 || exit == 127:
		return hostErr(h, ErrBinaryMissing, "%s is not installed there (or not on the PATH of a non-interactive ssh login): run agent-sessions install --host %s, or set binary: to its path in hosts.yaml (%s)", binaryOf(h), h.Name, last)
	}
	if last == "" {
		last = fmt.Sprintf("exit status %d", exit)
	}
	return hostErr(h, ErrConnectionLost, "the remote command failed: %s", last)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
