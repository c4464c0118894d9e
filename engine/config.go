package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/agent-sessions/agent-sessions/state"
)

// DefaultMaxPark is how long a session may stay parked in all before it
// fails (SPEC §15).
const DefaultMaxPark = 12 * time.Hour

// configLimit bounds config.yaml: it is a handful of lines.
const configLimit = 1 << 20

// Config is the user's config.yaml (SPEC §15): host-wide settings every
// engine on this machine reads when it starts.
type Config struct {
	// Notify is the argv run with one JSON event on stdin per notable
	// moment; empty means the desktop notification.
	Notify []string
	// DailyBudgetUSD parks every session once this host spent it today
	// (0: no daily budget).
	DailyBudgetUSD float64
	// MaxPark is the default max_park of sessions (0: DefaultMaxPark).
	MaxPark time.Duration
	// File is where the config was read from ("" when there was none).
	File string
}

// ConfigPath is $XDG_CONFIG_HOME/agent-sessions/config.yaml, by default
// ~/.config/agent-sessions/config.yaml.
func ConfigPath() (string, error) {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "agent-sessions", "config.yaml"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("config file: set XDG_CONFIG_HOME or HOME: %w", err)
	}
	return filepath.Join(home, ".config", "agent-sessions", "config.yaml"), nil
}

// LoadConfig reads the config file at ConfigPath. No file is no config;
// a file with problems is an error naming each with its line.
func LoadConfig() (Config, error) {
	path, err := ConfigPath()
	if err != nil {
		return Config{}, err
	}
	return LoadConfigFile(path)
}

// LoadConfigFile reads config.yaml at path.
func LoadConfigFile(path string) (Config, error) {
	data, err := state.ReadRegularFile(path, configLimit)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("%w: config file %s: %w", ErrInvalid, path, err)
	}
	return ParseConfig(path, data)
}

// ParseConfig parses config.yaml content; file names it in problems.
func ParseConfig(file string, data []byte) (Config, error) {
	c := Config{File: file}
	d := &decoder{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err == nil && len(doc.Content) == 0 {
		return c, nil // an empty file (or only comments) is no config
	}
	root := d.parseDocument(data)
	if root == nil {
		return Config{}, d.problems
	}
	d.mapping(root, "config", []field{
		{"notify", func(d *decoder, n *yaml.Node) {
			d.mapping(n, "notify", []field{{"command", argv(&c.Notify, "notify.command")}})
		}},
		{"daily_budget_usd", dollars(&c.DailyBudgetUSD, "daily_budget_usd")},
		{"max_park", duration(&c.MaxPark, "max_park")},
	})
	if len(d.problems) > 0 {
		return Config{}, d.problems
	}
	return c, nil
}

// dollars decodes an amount of US dollars: finite and not negative (0
// means no cap).
func dollars(p *float64, what string) func(*decoder, *yaml.Node) {
	return func(d *decoder, n *yaml.Node) {
		v, err := ParseDollars(n.Value)
		var f float64
		// YAML spells NaN and infinity .nan and .inf, which strconv does
		// not read: say what is wrong with them, not that they are text.
		if n.Kind == yaml.ScalarNode && n.Tag == "!!float" && n.Decode(&f) == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			err = fmt.Errorf("must be a finite amount of US dollars, got %q", n.Value)
		}
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			err = fmt.Errorf("expected an amount in US dollars such as 5 or 2.50, got %s", kindName(n))
		}
		if err != nil {
			d.addf(n, "%s: %v", what, err)
			return
		}
		*p = v
	}
}

// optDollars is dollars for a field whose absence differs from 0 (a more
// specific 0 lifts a cap set further out).
func optDollars(p **float64, what string) func(*decoder, *yaml.Node) {
	return func(d *decoder, n *yaml.Node) {
		var v float64
		before := len(d.problems)
		dollars(&v, what)(d, n)
		if len(d.problems) == before {
			*p = &v
		}
	}
}

// ParseDollars reads a spending cap: a finite, non-negative number of US
// dollars (0 means no cap).
func ParseDollars(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil:
		return 0, fmt.Errorf("expected an amount in US dollars such as 5 or 2.50, got %q", s)
	case math.IsNaN(v) || math.IsInf(v, 0):
		return 0, fmt.Errorf("must be a finite amount of US dollars, got %q", s)
	case v < 0:
		return 0, fmt.Errorf("must not be negative, got %v", v)
	}
	return v, nil
}

// CheckDollars is ParseDollars for a number already decoded (JSON).
func CheckDollars(what string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return fmt.Errorf("%w: %s must be a finite, non-negative amount of US dollars (0: no cap), got %v", ErrInvalid, what, v)
	}
	return nil
}

// duration decodes a Go duration string such as "8h" or "90m".
func duration(p *time.Duration, what string) func(*decoder, *yaml.Node) {
	return func(d *decoder, n *yaml.Node) {
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			d.addf(n, "%s: expected a duration such as 8h or 90m, got %s", what, kindName(n))
			return
		}
		v, err := ParseDuration(n.Value)
		if err != nil {
			d.addf(n, "%s: %v", what, err)
			return
		}
		*p = v
	}
}

// ParseDuration reads max_runtime and max_park: a Go duration such as
// "8h", "90m" or "1h30m", greater than zero.
func ParseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		hint := ""
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			hint = fmt.Sprintf(" (a unit is needed: %ss, %sm or %sh)", s, s, s)
		}
		return 0, fmt.Errorf("%q is not a duration such as 8h, 90m or 1h30m%s", s, hint)
	}
	if v <= 0 {
		return 0, fmt.Errorf("must be greater than zero, got %q", s)
	}
	return v, nil
}
