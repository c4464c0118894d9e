// Package remote owns reaching other hosts over the system's OpenSSH client:
// the hosts.yaml file that names them, the ssh argv (BatchMode, connection
// reuse, the remote command quoted for the far side's shell), a kept-open
// MCP client of `<binary> serve` on each host, and the checks and install
// behind `agent-sessions hosts` and `install --host`. It runs no daemon and
// opens no port: our own binary on the far side, over ssh.
package remote

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/agent-sessions/agent-sessions/state"
)

// Local is the implicit host: this machine. It is reserved in hosts.yaml.
const Local = "local"

// DefaultBinary is the remote binary when a host does not name one.
const DefaultBinary = "agent-sessions"

// maxConfigSize bounds hosts.yaml: a host list is a few hundred bytes.
const maxConfigSize = 1 << 20

// Host is one machine reached over ssh, as hosts.yaml describes it.
type Host struct {
	Name    string            // how tools and the user name it
	SSH     string            // ssh destination: [user@]host or an ssh_config alias
	SSHArgs []string          // extra ssh arguments, e.g. -F FILE, -p PORT, -i KEY
	Binary  string            // agent-sessions there: a name on its PATH or a path
	Env     map[string]string // environment of the remote binary
}

// Config is the parsed hosts.yaml.
type Config struct {
	File  string // where it was read from ("" when there is none)
	Hosts []Host
}

// ErrUnknownHost is returned by Lookup for a name hosts.yaml does not have.
var ErrUnknownHost = errors.New("unknown host")

// namePattern is the session-name rule (SPEC §4): a host name shows up in
// session listings, error options and file names the same way.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,47}$`)

// envNamePattern is what a POSIX shell and env(1) accept as a variable name.
var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ConfigPath is $XDG_CONFIG_HOME/agent-sessions/hosts.yaml, with
// XDG_CONFIG_HOME defaulting to ~/.config.
func ConfigPath() (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find hosts.yaml: %w (set HOME or XDG_CONFIG_HOME)", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "agent-sessions", "hosts.yaml"), nil
}

// Load reads hosts.yaml from ConfigPath. A missing file is no error: only
// `local` exists then.
func Load() (*Config, error) {
	path, err := ConfigPath()
	if err != nil {
		return nil, err
	}
	return LoadFile(path)
}

// LoadFile reads and validates one hosts file; a missing file is an empty
// configuration. Every problem is reported with its line.
func LoadFile(path string) (*Config, error) {
	data, err := readRegular(path, maxConfigSize)
	if errors.Is(err, os.ErrNotExist) {
		return &Config{}, nil
	}
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Lookup finds a configured host by name. An unknown name is an error that
// lists the configured names and the closest one.
func (c *Config) Lookup(name string) (Host, error) {
	if name == Local {
		return Host{}, fmt.Errorf("%w: %q is this machine itself, not a host of hosts.yaml (configured: %s)", ErrUnknownHost, Local, orNone(c.Names()))
	}
	for _, h := range c.Hosts {
		if h.Name == name {
			return h, nil
		}
	}
	names := c.Names()
	if len(names) == 0 {
		where := c.File
		if where == "" {
			where, _ = ConfigPath()
		}
		return Host{}, fmt.Errorf("%w %q: no hosts are configured; add it to %s (hosts: [{name: %s, ssh: user@machine}])",
			ErrUnknownHost, name, where, state.SuggestSession(name))
	}
	hint := ""
	if s := state.Closest(name, names); s != "" {
		hint = fmt.Sprintf("; did you mean %q?", s)
	}
	return Host{}, fmt.Errorf("%w %q (configured: %s, and %s for this machine)%s",
		ErrUnknownHost, name, strings.Join(names, ", "), Local, hint)
}

// Names lists the configured hosts' names in file order.
func (c *Config) Names() []string {
	names := make([]string, len(c.Hosts))
	for i, h := range c.Hosts {
		names[i] = h.Name
	}
	return names
}

// readRegular reads a regular file of at most limit bytes. The open does
// not block on a FIFO, and a device, FIFO or oversized file is refused
// with what it is, so a mistaken path never hangs or floods the caller.
func readRegular(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s): hosts.yaml must be a plain file", path, info.Mode().Type())
	}
	if info.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, over the %d-byte limit for a hosts file: is it the right file?", path, info.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s grew over the %d-byte limit for a hosts file while being read", path, limit)
	}
	return data, nil
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
