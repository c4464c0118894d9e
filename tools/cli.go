package tools

import (
	"context"
	"fmt"
	"io"
)

// CLI calls one tool the way debug mode does — through an in-process client
// of the same server, so the same handler of All answers — and prints its
// text answer. It is what the person-facing subcommands (`agent-sessions
// list`, `agent-sessions kill NAME`) run. It reports whether the tool
// answered with an error.
func CLI(ctx context.Context, d *Deps, version, tool string, args map[string]any, out io.Writer) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer d.Hosts.Close()
	lc, err := newLocalClient(ctx, NewServer(ctx, d, version), nil)
	if err != nil {
		return false, err
	}
	defer lc.Close()
	_, text, isErr, err := lc.call(ctx, tool, args, nil)
	if err != nil {
		return false, fmt.Errorf("%s: %w", tool, err)
	}
	fmt.Fprintln(out, text)
	return isErr, nil
}
