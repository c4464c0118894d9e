package enginecmd

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/agent-sessions/agent-sessions/engine"
)

// usageErr marks an error the caller can fix by calling differently (bad
// flags, a definition with problems): main exits 2 for it.
type usageErr struct{ error }

func (usageErr) Usage() bool     { return true }
func (e usageErr) Unwrap() error { return e.error }

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// flagGiven reports whether a flag was set on the command line (a flag's
// zero value and an absent flag look alike otherwise).
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// parseArgv reads an argv given as a JSON array or as space-separated words.
func parseArgv(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		var argv []string
		if err := json.Unmarshal([]byte(s), &argv); err != nil {
			return nil, fmt.Errorf("not a JSON array of strings: %w", err)
		}
		if len(argv) == 0 {
			return nil, errors.New("empty")
		}
		return argv, nil
	}
	argv := strings.Fields(s)
	if len(argv) == 0 {
		return nil, errors.New("empty")
	}
	return argv, nil
}

// guardFlags reads run's --max-cost-usd, --max-runtime and --max-park.
func guardFlags(c *engine.Options, cost, runtime, park string) error {
	if cost != "" {
		v, err := engine.ParseDollars(cost)
		if err != nil {
			return fmt.Errorf("--max-cost-usd: %w", err)
		}
		c.MaxCostUSD = &v
	}
	for _, f := range []struct {
		name, value string
		into        *time.Duration
	}{{"--max-runtime", runtime, &c.MaxRuntime}, {"--max-park", park, &c.MaxPark}} {
		if f.value == "" {
			continue
		}
		d, err := engine.ParseDuration(f.value)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		*f.into = d
	}
	return nil
}
