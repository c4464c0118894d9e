package enginecmd

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/agent-sessions/agent-sessions/engine"
)

// Lint is `agent-sessions lint`: it validates stages and pipelines and
// prints what it found. Definitions with problems end it as a usage error.
func Lint(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	project := fs.String("project", "", "project directory (default: current directory)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return usageErr{err}
	}
	dir, err := engine.ProjectDir(*project)
	if err != nil {
		fmt.Fprintf(stderr, "agent-sessions lint: %v\n", err)
		return usageErr{err}
	}
	res := engine.Lint(dir, fs.Args())
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else {
		for _, p := range res.Problems {
			fmt.Fprintln(stdout, p.String())
		}
		fmt.Fprintf(stdout, "checked %d definition(s): %d problem(s)\n", len(res.Checked), len(res.Problems))
	}
	if len(res.Problems) > 0 {
		return usageErr{res.Problems}
	}
	return nil
}
