package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/agent-sessions/agent-sessions/tools"
)

// Reminder is `agent-sessions reminder`: the orphan reminder, or with
// --hook a Claude Code Stop hook. It never fails once its flags are read
// (a Stop hook must never break Claude Code): what goes wrong is said on
// stdout, or not at all as a hook.
func Reminder(e Env, args []string) error {
	fs := flag.NewFlagSet("reminder", flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	project := fs.String("project", "", "project directory (default: current directory)")
	hook := fs.Bool("hook", false, "Claude Code Stop hook mode: print {\"systemMessage\": …} only when sessions are running")
	if err := fs.Parse(args); err != nil {
		return usageErr{err}
	}
	if *hook && *project == "" {
		// The hook's payload names the project Claude Code runs in.
		*project = hookCwd(e.Stdin)
	}
	text, err := e.reminderText(*project, *hook)
	switch {
	case err != nil && !*hook:
		fmt.Fprintf(e.Stdout, "agent-sessions reminder: %v\n", err)
	case err != nil:
	case !*hook:
		fmt.Fprint(e.Stdout, text)
	case !strings.Contains(text, "No agent sessions are running"):
		json.NewEncoder(e.Stdout).Encode(map[string]string{"systemMessage": text})
	}
	return nil
}

// hookCwd reads the Stop hook's payload for the project Claude Code runs
// in, waiting at most a second for a payload that never ends.
func hookCwd(stdin io.Reader) string {
	cwd := make(chan string, 1)
	// Abandoned when the payload never ends; it ends with the process.
	go func() {
		var payload struct {
			Cwd string `json:"cwd"`
		}
		if data, err := io.ReadAll(io.LimitReader(stdin, 1<<20)); err == nil {
			json.Unmarshal(data, &payload)
		}
		cwd <- payload.Cwd
	}()
	select {
	case c := <-cwd:
		return c
	case <-time.After(time.Second):
		return ""
	}
}

// Bounds of the Stop hook, which Claude Code waits for: tmux gets
// hookTmuxWait (a stopped or hung server then costs that much, and the
// sessions are judged by their locks alone), the whole reminder hookWait;
// past it the hook gives up silently and exits 0 well within 5 s.
const (
	hookTmuxWait = 2 * time.Second
	hookWait     = 4 * time.Second
)

// reminderText is the reminder for project, within the hook's bounds when
// hook is set.
func (e Env) reminderText(project string, hook bool) (string, error) {
	d, err := e.NewDeps(project)
	if err != nil {
		return "", err
	}
	if !hook {
		return d.ReminderText(context.Background(), d.ProjectDir)
	}
	return boundedReminder(d)
}

// boundedReminder is the reminder within the Stop hook's bounds.
func boundedReminder(d *tools.Deps) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), hookTmuxWait)
	defer cancel()
	type answer struct {
		text string
		err  error
	}
	done := make(chan answer, 1)
	// Whatever else might block (a hung file system), the hook still
	// returns: the goroutine is abandoned and ends with the process.
	go func() {
		text, err := d.ReminderText(ctx, d.ProjectDir)
		done <- answer{text, err}
	}()
	select {
	case a := <-done:
		return a.text, a.err
	case <-time.After(hookWait):
		return "", errors.New("the reminder took too long")
	}
}
