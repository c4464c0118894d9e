package tools

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agent-sessions/agent-sessions/state"
)

// AttachArgs are attach_hint's arguments.
type AttachArgs struct {
	Session    string `json:"session" jsonschema:"session name"`
	ReadOnly   bool   `json:"read_only,omitempty" jsonschema:"prefer the read-only attach (keystrokes are not sent to the session)"`
	ProjectDir string `json:"project_dir,omitempty" jsonschema:"project of the session (default: the server's, else where its tmux session runs)"`
}

// AttachResult is attach_hint's result.
type AttachResult struct {
	Session         string       `json:"session" jsonschema:"session name"`
	Status          state.Status `json:"status" jsonschema:"classifier status of the session"`
	Command         string       `json:"command" jsonschema:"the command to give the user (read-only when read_only was asked)"`
	ReadOnlyCommand string       `json:"read_only_command,omitempty" jsonschema:"when command is not read-only: attach to watch without being able to type into it"`
	SwitchCommand   string       `json:"switch_command" jsonschema:"from inside tmux: switch the current client to the session instead of nesting an attach"`
	DetachKeys      string       `json:"detach_keys" jsonschema:"how to detach and leave it running"`
	Warnings        []string     `json:"warnings" jsonschema:"what not to do while attached"`

	// For the text and the tests, not sent: they repeat command.
	TmuxSession   string `json:"-"`
	AttachCommand string `json:"-"`
	InsideTmux    bool   `json:"-"`
}

// AttachHint is the attach_hint tool.
func AttachHint(d *Deps) server.ServerTool {
	tool := mcp.NewTool("attach_hint",
		mcp.WithToolTitle("How to watch a session live"),
		mcp.WithDescription("Give the user the exact tmux command to watch a session live (plus a read-only variant and the switch-client variant for use inside tmux), how to detach, and the Ctrl+C warning. It does not attach anything itself: attaching needs the user's terminal."),
		inputSchema[AttachArgs](map[string]propPatch{"read_only": {Default: false}}),
		outputSchema[AttachResult](),
		annotations("How to watch a session live", true, false, true, false),
	)
	return server.ServerTool{Tool: tool, Handler: typed(d.attachHint)}
}

func (d *Deps) attachHint(ctx context.Context, _ mcp.CallToolRequest, a AttachArgs) (AttachResult, string, error) {
	info, err := d.resolve(ctx, a.Session, a.ProjectDir)
	if err != nil {
		return AttachResult{}, "", err
	}
	if info.Tmux == nil {
		what := "its tmux session is gone"
		if info.State != nil && state.Terminal(info.State.Status) {
			what = fmt.Sprintf("it has ended (%s) and its tmux session closed with it", info.State.Status)
		} else if info.Lock.Held {
			what = "its engine runs outside tmux (started with run --foreground)"
		}
		return AttachResult{}, "", (&ToolError{Code: CodeNotFound, Message: fmt.Sprintf("there is nothing to attach to for %s: %s", a.Session, what)}).
			with(Option{Tool: "monitor", Arguments: map[string]any{"session": a.Session}, Description: "read its output and state instead"})
	}
	name := info.Tmux.Name
	res := AttachResult{
		Session: a.Session, TmuxSession: name, Status: info.Live.Status,
		AttachCommand:   strings.Join(d.host().AttachCommand(name, false), " "),
		ReadOnlyCommand: strings.Join(d.host().AttachCommand(name, true), " "),
		SwitchCommand:   strings.Join(d.host().SwitchCommand(name), " "),
		InsideTmux:      os.Getenv("TMUX") != "",
		DetachKeys:      "Ctrl+b then d (detaches; the session keeps running)",
		Warnings: []string{
			"Ctrl+C in the session stops the engine (the session ends killed); detach with Ctrl+b then d.",
			"Typing goes to the engine, not the agent; the read-only attach watches safely.",
		},
	}
	res.Command = res.AttachCommand
	if a.ReadOnly {
		res.Command = res.ReadOnlyCommand
	}
	if res.InsideTmux {
		res.Warnings = append(res.Warnings, "Inside tmux: use switch_command rather than nesting an attach.")
	}
	if sock := d.host().Socket(); sock != "" {
		res.Warnings = append(res.Warnings, "Sessions run on the private tmux server -L "+sock+"; plain `tmux ls` will not show them.")
	}
	text := attachText(res)
	if a.ReadOnly {
		res.ReadOnlyCommand = "" // command is the read-only one
	}
	return res, text, nil
}

func attachText(r AttachResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "To watch %s live, run in a terminal:\n  %s\n", r.Session, r.Command)
	if r.Command != r.ReadOnlyCommand {
		fmt.Fprintf(&b, "Read-only (safe): %s\n", r.ReadOnlyCommand)
	}
	if r.InsideTmux {
		fmt.Fprintf(&b, "Inside tmux: %s\n", r.SwitchCommand)
	}
	fmt.Fprintf(&b, "Detach: %s.\n", r.DetachKeys)
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "%s\n", w)
	}
	return strings.TrimRight(b.String(), "\n")
}
