package tmux

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Session is one tmux session as reported by list-sessions. The pane fields
// describe the active pane of the session's active window.
type Session struct {
	Name     string
	Created  time.Time
	Path     string // session_path: the session's working directory
	PanePID  int
	PaneDead bool
	Attached bool // at least one client is attached
}

// sep separates fields in list-sessions output and end ends each record.
// Both are control characters, which ValidateName rejects, and tmux prints
// them verbatim when the client says it speaks UTF-8 (-u, see Client.exec;
// without it and a UTF-8 locale, each is printed as '_'). Records end with
// end+"\n" rather than at a newline because tmux prints a newline or tab
// inside a session's name or directory verbatim too (tested with tmux 3.3a;
// `#{q:…}` does not escape them either): split at newlines, one such session
// would break the whole listing.
const (
	sep = "\x1f"
	end = "\x1e"
)

// listFormat carries every Session field in one record.
var listFormat = strings.Join([]string{
	"#{session_name}",
	"#{session_created}",
	"#{session_attached}",
	"#{pane_pid}",
	"#{pane_dead}",
	"#{session_path}",
}, sep) + end

// ErrUnparsable means some of list-sessions' records could not be read.
// ListSessions still returns every session it could read alongside it.
var ErrUnparsable = errors.New("unreadable tmux session record")

// ListSessions returns every session on the server in one list-sessions call.
// When no server is running it returns an empty slice and a nil error. A
// record it cannot read (a session made by something else, with our
// separators in its name) is skipped: the others are returned with an error
// wrapping ErrUnparsable that names what was skipped, so one odd session
// never hides the rest.
func (c *Client) ListSessions(ctx context.Context) ([]Session, error) {
	out, err := c.exec(ctx, "list-sessions", "-F", listFormat)
	if errors.Is(err, ErrNoServer) {
		return []Session{}, nil
	}
	if err != nil {
		return nil, err
	}
	return parseSessions(string(out))
}

func parseSessions(out string) ([]Session, error) {
	sessions := []Session{}
	var bad []string
	records := strings.Split(out, end+"\n")
	for i, rec := range records {
		if i == len(records)-1 {
			// After the last terminator: nothing, unless tmux cut a record short.
			if rec = strings.TrimSuffix(rec, "\n"); rec == "" {
				continue
			}
		}
		s, err := parseSession(rec)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		sessions = append(sessions, s)
	}
	if len(bad) > 0 {
		return sessions, fmt.Errorf("tmux list-sessions: %w: skipped %d: %s", ErrUnparsable, len(bad), strings.Join(bad, "; "))
	}
	return sessions, nil
}

func parseSession(rec string) (Session, error) {
	f := strings.SplitN(rec, sep, 6)
	if len(f) != 6 {
		return Session{}, fmt.Errorf("unexpected record %q", rec)
	}
	created, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return Session{}, fmt.Errorf("session %q: bad created time %q: %w", f[0], f[1], err)
	}
	attached, err := strconv.Atoi(f[2])
	if err != nil {
		return Session{}, fmt.Errorf("session %q: bad attached count %q: %w", f[0], f[2], err)
	}
	pid, err := strconv.Atoi(f[3])
	if err != nil {
		return Session{}, fmt.Errorf("session %q: bad pane pid %q: %w", f[0], f[3], err)
	}
	return Session{
		Name:     f[0],
		Created:  time.Unix(created, 0),
		Attached: attached > 0,
		PanePID:  pid,
		PaneDead: f[4] == "1",
		Path:     f[5],
	}, nil
}

// HasSession reports whether a session named exactly name exists. No server
// running means false, not an error.
func (c *Client) HasSession(ctx context.Context, name string) (bool, error) {
	if err := ValidateName(name); err != nil {
		return false, err
	}
	_, err := c.exec(ctx, "has-session", "-t", sessionTarget(name))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrSessionNotFound), errors.Is(err, ErrNoServer):
		return false, nil
	}
	return false, err
}

// NewSessionOptions describes a detached session to create.
type NewSessionOptions struct {
	Name string
	// Dir is the working directory (-c). Empty means tmux's default.
	Dir string
	// Env holds KEY=VALUE pairs, each passed with -e, set in the session's
	// environment and therefore in the command's.
	Env []string
	// Argv is the command. Its elements are passed to tmux as separate
	// trailing arguments after "--", so tmux execs it without a shell.
	// Empty means tmux's default command (the user's shell).
	Argv []string
	// Width and Height set the initial window size (-x, -y) when positive.
	Width, Height int
}

// NewSession creates a detached session:
//
//	new-session -d -s NAME [-c DIR] [-x W] [-y H] [-e K=V]... -- argv... ; set-option -t =NAME: remain-on-exit off
//
// remain-on-exit is switched off for our session because a user's tmux.conf
// may switch it on for all: the pane of a finished command would then stay,
// dead, for ever, and the session would look alive. Chained in the same
// tmux call, the option is set before the server can notice the command
// exit, however quickly it does.
//
// It returns an error wrapping ErrSessionExists when the name is in use.
func (c *Client) NewSession(ctx context.Context, o NewSessionOptions) error {
	args, err := newSessionArgs(o)
	if err != nil {
		return err
	}
	// A server whose last session is closing exits under a new-session that
	// reached it in that instant ("server exited unexpectedly"): the session
	// died with it, so asking again (which starts a fresh server) is safe. A
	// name that did get made answers ErrSessionExists on the retry.
	for attempt := 1; ; attempt++ {
		_, err = c.exec(ctx, args...)
		if err == nil || !errors.Is(err, ErrNoServer) || attempt == newSessionAttempts || ctx.Err() != nil {
			return err
		}
	}
}

// newSessionAttempts bounds the retries of a new-session that met a server
// in the middle of exiting.
const newSessionAttempts = 3

func newSessionArgs(o NewSessionOptions) ([]string, error) {
	if err := ValidateName(o.Name); err != nil {
		return nil, err
	}
	args := []string{"new-session", "-d", "-s", o.Name}
	if o.Dir != "" {
		args = append(args, "-c", literalArg(o.Dir))
	}
	if o.Width > 0 {
		args = append(args, "-x", strconv.Itoa(o.Width))
	}
	if o.Height > 0 {
		args = append(args, "-y", strconv.Itoa(o.Height))
	}
	for _, kv := range o.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("tmux new-session %q: env entry %q is not KEY=VALUE", o.Name, kv)
		}
		args = append(args, "-e", literalArg(kv))
	}
	switch len(o.Argv) {
	case 0:
	case 1:
		// tmux runs a command given as ONE argument through `default-shell -c`
		// (it only execs directly when there are two or more). Putting env in
		// front keeps it a plain exec ("--" stops env reading a leading '-' as
		// an option). env would still read NAME=VALUE as an assignment, so such
		// a lone argument is refused.
		if strings.Contains(o.Argv[0], "=") {
			return nil, fmt.Errorf("tmux new-session %q: a single-element command must not contain '=': %q", o.Name, o.Argv[0])
		}
		args = append(args, "--", "env", "--", literalArg(o.Argv[0]))
	default:
		args = append(args, "--")
		for _, a := range o.Argv {
			args = append(args, literalArg(a))
		}
	}
	return append(args, ";", "set-option", "-t", paneTarget(o.Name), "remain-on-exit", "off"), nil
}

// literalArg makes tmux pass an argument on as it is. tmux splits its own
// command line into commands at every argument that ends in ';' (the ';'
// is dropped: "fix it;" would reach the command as "fix it", and anything
// after it would run as a second tmux command), and an argument ending in
// `\;` reaches the command as ending in ';'. So a trailing ';' is written
// as `\;`; nothing else is special (tested with tmux 3.3a).
func literalArg(s string) string {
	if strings.HasSuffix(s, ";") {
		return s[:len(s)-1] + `\;`
	}
	return s
}

// CapturePane returns the last lines lines of the session's active pane
// (history included; lines <= 0 means the visible screen only), with wrapped
// lines joined and trailing blank lines trimmed. It returns an error wrapping
// ErrSessionNotFound when the session does not exist.
func (c *Client) CapturePane(ctx context.Context, name string, lines int) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	args := []string{"capture-pane", "-p", "-J", "-t", paneTarget(name)}
	if lines > 0 {
		args = append(args, "-S", "-"+strconv.Itoa(lines))
	}
	out, err := c.exec(ctx, args...)
	if err != nil {
		return "", missing(err)
	}
	return trimTrailingBlankLines(string(out)), nil
}

// trimTrailingBlankLines drops the blank lines tmux prints for the unused
// part of the screen, and the final newline.
func trimTrailingBlankLines(s string) string {
	lines := strings.Split(s, "\n")
	n := len(lines)
	for n > 0 && strings.TrimSpace(lines[n-1]) == "" {
		n--
	}
	return strings.Join(lines[:n], "\n")
}

// KillSession kills the session named exactly name. It returns an error
// wrapping ErrSessionNotFound when there is no such session; callers decide
// whether that matters.
func (c *Client) KillSession(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	_, err := c.exec(ctx, "kill-session", "-t", sessionTarget(name))
	return missing(err)
}

// missing makes "no server" also count as "session not found" for commands
// aimed at one session: with no server, the session certainly does not exist.
func missing(err error) error {
	if errors.Is(err, ErrNoServer) && !errors.Is(err, ErrSessionNotFound) {
		return fmt.Errorf("%w: %w", err, ErrSessionNotFound)
	}
	return err
}

// KillServer kills the server on the Client's socket; no server running is
// not an error. It refuses to act on the default server (socket ""), which
// belongs to the user: it exists so tests can clean up their private socket.
func (c *Client) KillServer(ctx context.Context) error {
	if c.socket == "" {
		return errors.New("tmux kill-server: refusing to kill the default server")
	}
	_, err := c.exec(ctx, "kill-server")
	if errors.Is(err, ErrNoServer) {
		return nil
	}
	return err
}

// AttachCommand returns the argv a user runs to attach to the session,
// including `-L socket` when set, plus "-r" for a read-only attach.
func (c *Client) AttachCommand(name string, readOnly bool) []string {
	argv := c.argv("attach-session", "-t", sessionTarget(name))
	if readOnly {
		argv = append(argv, "-r")
	}
	return argv
}

// SwitchCommand returns the argv that switches the current tmux client to
// the session; for use from inside tmux on the same server.
func (c *Client) SwitchCommand(name string) []string {
	return c.argv("switch-client", "-t", sessionTarget(name))
}
