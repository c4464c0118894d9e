package tools_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/tmux"
	"github.com/agent-sessions/agent-sessions/tools"
)

// Fuzz targets for the debug mode (SPEC §11): the argument parser and the
// line loop. CI runs each for a few seconds (.ci/run); locally:
//
//	go test -run '^$' -fuzz '^FuzzParseDebugArgs$' -fuzztime 60s -fuzzminimizetime 2s ./tools

var debugSeeds = []string{
	"", "session=a", "session=try-1 stage=demo provider=mock", `{"session":"a","dry_run":true}`, `{}`, `{} `,
	`{}}`, `{"a":1} {"b":2}`, `{"a":1} trailing`, `{"a":`, `{"a":1,"a":2}`, "a=1 a=2", "=x", "a", "a= b=", "a=1}",
	"a=[1,2]]", `a="quoted text"`, `a="unclosed`, `a="esc\"aped" b=2`, "a=true b=null c=1.5e3 d=-0", "a=01",
	"inputs=[\"x.md\",\"y.md\"]", "a=\t\tb=2", "a=ünï b=$(id) c=`id` d=;", "a={\"nested\":{\"x\":[1]}}",
	"a=12345678901234567890123", "a=\"\\ud800\"", "a=\xff\xfe", "0=\xb0", "a=\"\xb0\"", "a==b", strings.Repeat("k=v ", 500),
}

// FuzzParseDebugArgs: any argument text parses into JSON-marshalable
// arguments or fails with a message; a key=value pair keeps its value
// whole (JSON when all of it is JSON, else the text as typed); a JSON
// object is taken whole or refused, never cut short.
func FuzzParseDebugArgs(f *testing.F) {
	for _, s := range debugSeeds {
		f.Add(s, "k", "v")
	}
	f.Add("session=sea", "\xac", "v") // a key of invalid UTF-8 was rewritten to U+FFFD
	f.Add("", "k", "\xb0")
	for _, v := range []string{"1}", "1 ", "[1]]", `"a"x`, "true!", "nul", "1e5", `{"a":1}x`, "-", "0x10", "{}", "1\u00a0"} {
		f.Add("", "key", v)
	}
	f.Fuzz(func(t *testing.T, line, k, v string) {
		args, err := tools.ParseDebugArgs(line)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatalf("ParseDebugArgs(%q): empty error", line)
			}
			if args != nil {
				t.Errorf("ParseDebugArgs(%q): arguments with an error", line)
			}
		} else {
			if args == nil {
				t.Fatalf("ParseDebugArgs(%q): nil arguments without an error", line)
			}
			if _, err := json.Marshal(args); err != nil {
				t.Errorf("ParseDebugArgs(%q) = %v: not JSON-marshalable: %v", line, args, err)
			}
		}
		if trimmed := strings.TrimSpace(line); strings.HasPrefix(trimmed, "{") {
			var want map[string]any
			dec := json.NewDecoder(strings.NewReader(trimmed))
			dec.UseNumber()
			valid := json.Valid([]byte(trimmed)) && dec.Decode(&want) == nil
			switch {
			case valid && err != nil:
				t.Errorf("ParseDebugArgs(%q): a valid JSON object refused: %v", line, err)
			case valid && !sameJSON(args, want):
				t.Errorf("ParseDebugArgs(%q) = %v, want %v", line, args, want)
			case !valid && err == nil:
				t.Errorf("ParseDebugArgs(%q) = %v: not one JSON object, yet accepted", line, args)
			}
		}

		// One key=value pair, with no quotes or separators in it.
		if k == "" || v == "" || strings.ContainsAny(k+v, " \t\"\\") || strings.Contains(k, "=") ||
			strings.HasPrefix(k, "{") || strings.TrimSpace(k+"="+v) != k+"="+v {
			return
		}
		pair := k + "=" + v
		got, err := tools.ParseDebugArgs(pair)
		if err != nil {
			t.Fatalf("ParseDebugArgs(%q): %v", pair, err)
		}
		if len(got) != 1 {
			t.Fatalf("ParseDebugArgs(%q) = %v, want one argument", pair, got)
		}
		var want any = v
		dec := json.NewDecoder(strings.NewReader(v))
		dec.UseNumber()
		var parsed any
		if json.Valid([]byte(v)) && dec.Decode(&parsed) == nil {
			want = parsed
		}
		if !sameJSON(got[k], want) {
			t.Errorf("ParseDebugArgs(%q): %s = %#v, want %#v (the value as typed, or all of it as JSON)", pair, k, got[k], want)
		}
		// The same key twice is refused, not silently the last one.
		twice := pair + " " + k + "=other"
		if _, err := tools.ParseDebugArgs(twice); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", k)) {
			t.Errorf("ParseDebugArgs(%q): err %v, want an error naming %q", twice, err, k)
		}
	})
}

// sameJSON reports whether a and b reach a tool as the same JSON. JSON
// carries text as UTF-8: invalid bytes become U+FFFD on the way (whether
// escaped or not), so both sides are compared after one round trip — with
// numbers kept as written: 6e1155 is valid JSON that no float64 holds, and
// decoding it as one failed the comparison of two equal values.
func sameJSON(a, b any) bool {
	norm := func(v any) ([]byte, error) {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var back any
		if err := dec.Decode(&back); err != nil {
			return nil, err
		}
		return json.Marshal(back)
	}
	x, err1 := norm(a)
	y, err2 := norm(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// noTmux is a Tmux where tmux is not installed: nothing can be started,
// so fuzzed tool calls cannot create sessions or touch a tmux server.
type noTmux struct{}

var errNoTmux = errors.New("tmux not installed (fuzz)")

func (noTmux) Available() error                                         { return errNoTmux }
func (noTmux) Socket() string                                           { return "" }
func (noTmux) ListSessions(context.Context) ([]tmux.Session, error)     { return nil, errNoTmux }
func (noTmux) HasSession(context.Context, string) (bool, error)         { return false, errNoTmux }
func (noTmux) NewSession(context.Context, tmux.NewSessionOptions) error { return errNoTmux }
func (noTmux) CapturePane(context.Context, string, int) (string, error) { return "", errNoTmux }
func (noTmux) KillSession(context.Context, string) error                { return errNoTmux }
func (noTmux) AttachCommand(name string, _ bool) []string {
	return []string{"tmux", "attach", "-t", "=" + name}
}
func (noTmux) SwitchCommand(name string) []string {
	return []string{"tmux", "switch-client", "-t", "=" + name}
}

// debugHelpHead is the first line of the debug mode's help.
const debugHelpHead = "agent-sessions debug: one command per line."

// FuzzDebugLine feeds one arbitrary line to the debug mode, then "help":
// the loop must survive any line (a bad one prints an error and the loop
// goes on), answer the help after it, and end without an error when stdin
// ends. The tools run against an empty temporary project with no tmux, so
// nothing can be started; lines naming another project_dir are skipped.
func FuzzDebugLine(f *testing.F) {
	for _, s := range debugSeeds {
		f.Add("start_session " + s)
	}
	for _, s := range []string{
		"", "#", "help", "?", "tools", "resources", "read", "read sessions://reminder", "read sessions://session/../x/state",
		"read sessions://session/a/log", "read ::::", "list include_catalog=true", "list {", "bogus a=1", "kill session=$(id)",
		"monitor session=a wait=complete timeout_seconds=1", "start_session session=a stage=demo dry_run=true context=`id`",
		"start_session session=a stage=demo", "cleanup dry_run=false remove_stale_locks=true", "attach_hint session=a",
		"quit", "exit", "quit now", " \t ", "start_session\x00", "list \"", "list a=\"b c\" d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		line = strings.NewReplacer("\n", " ", "\r", " ").Replace(line)
		cmd, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		args, argErr := tools.ParseDebugArgs(rest)
		if _, ok := args["project_dir"]; ok {
			return // the tools must stay inside the temporary project
		}
		d := &tools.Deps{Settings: sessions.Settings{Tmux: noTmux{}, Executable: "/nonexistent/agent-sessions", ProjectDir: t.TempDir(),
			Environ: func() []string { return []string{"PATH=/nonexistent"} }}}
		var out bytes.Buffer
		err := tools.Debug(context.Background(), d, "fuzz", strings.NewReader(line+"\nhelp\n"), &out, "")
		if err != nil {
			t.Fatalf("debug mode ended with %v on %q", err, line)
		}
		text := out.String()
		quits := cmd == "quit" || cmd == "exit"
		helped := strings.Count(text, debugHelpHead)
		switch {
		case quits && helped != 0:
			t.Errorf("%q did not end the debug mode:\n%s", line, text)
		case !quits && (helped == 0 || !strings.HasSuffix(strings.TrimSpace(text), "kill session=try-1")):
			t.Errorf("the debug mode did not go on after %q:\n%s", line, text)
		}
		switch cmd {
		case "", "help", "?", "tools", "resources", "read", "quit", "exit":
		default:
			if strings.HasPrefix(cmd, "#") {
				break
			}
			if argErr != nil && !strings.Contains(text, "error: "+argErr.Error()) {
				t.Errorf("bad arguments %q: the output does not say %q:\n%s", rest, argErr, text)
			}
		}
	})
}
