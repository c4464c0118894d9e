package tools_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tools"
)

// Text returned to Claude stays bounded however much a session printed:
// monitor with 2000 lines on a session whose agent flooded its output.
func TestBoundedText(t *testing.T) {
	forVersions(t, func(t *testing.T, v string) {
		e := newEnv(t)
		e.stage("flood", commandStage("fixed-n", 1, "flood-agent"))
		e.setEnv("FLOOD_BYTES=2000000")
		c := e.connect(v)
		c.start(map[string]any{"session": "loud", "stage": "flood"})
		if m := c.monitorWait("loud", "complete", 120); m.Status != state.LiveComplete {
			t.Fatalf("flood session: %q (%s)", m.Status, m.Why)
		}
		var m tools.MonitorResult
		r := c.call("monitor", map[string]any{"session": "loud", "lines": 2000})
		if r.IsError {
			t.Fatal(r.Text)
		}
		if err := json.Unmarshal(r.Structured, &m); err != nil {
			t.Fatal(err)
		}
		// callRaw already failed the test if the text exceeded ~16 KB; the
		// output must also say it was cut, and keep the most recent lines.
		if !strings.Contains(m.RecentOutput, "earlier output cut") || !strings.Contains(r.Text, "earlier output cut") {
			t.Errorf("recent output (%d bytes) carries no truncation note", len(m.RecentOutput))
		}
		if len(r.Structured) > 64<<10 {
			t.Errorf("structured content is %d bytes", len(r.Structured))
		}
		if text, err := c.readResource("sessions://session/loud/log"); err != nil || len(text) > tools.TextLimit+256 {
			t.Errorf("log resource: %d bytes, %v", len(text), err)
		}
	})
}

// No input makes the server panic or fail the protocol: every tool
// answers arguments of the wrong type, absurd values and unknown names
// with an invalid_argument tool error, and keeps serving.
func TestBadInput(t *testing.T) {
	forVersions(t, func(t *testing.T, v string) {
		e := newEnv(t)
		c := e.connect(v)
		wrong := map[string][]any{
			"string":  {12345, true, []any{"a"}, map[string]any{"a": 1}},
			"integer": {"ten", 1.5, true, []any{1}},
			"boolean": {"yes", 1, []any{true}},
			"array":   {"file.md", 3, map[string]any{"a": "b"}},
			"number":  {"ten", true, []any{1.5}, -1.0},
		}
		for _, st := range tools.All(&tools.Deps{}) {
			name := st.Tool.Name
			var def struct {
				InputSchema struct {
					Properties map[string]struct {
						Type json.RawMessage `json:"type"` // "t" or ["null", "t"]
					} `json:"properties"`
				} `json:"inputSchema"`
			}
			raw, _ := json.Marshal(st.Tool)
			if err := json.Unmarshal(raw, &def); err != nil {
				t.Fatal(err)
			}
			for prop, p := range def.InputSchema.Properties {
				var typ string
				var types []string
				if json.Unmarshal(p.Type, &typ) != nil && json.Unmarshal(p.Type, &types) == nil {
					for _, ty := range types {
						if ty != "null" {
							typ = ty
						}
					}
				}
				values, ok := wrong[typ]
				if !ok {
					t.Fatalf("%s.%s: no wrong values for type %s", name, prop, p.Type)
				}
				for _, val := range values {
					args := map[string]any{"session": "fine", prop: val}
					if name == "list" || name == "cleanup" {
						args = map[string]any{prop: val}
					}
					te := c.fail(name, args, tools.CodeInvalidArgument)
					if !strings.Contains(te.Message, prop) {
						t.Errorf("%s %s=%v: message %q does not name the argument", name, prop, val, te.Message)
					}
				}
			}
		}
		long := strings.Repeat("a", 10000)
		for _, name := range []string{"start_session", "monitor", "attach_hint", "kill"} {
			args := func(session string) map[string]any {
				a := map[string]any{"session": session}
				if name == "start_session" {
					a["stage"] = "demo"
				}
				return a
			}
			for _, bad := range []string{long, "loop-\x00;rm -rf /", "a/../../b", "-t", "=loop-x", "Ünïcode"} {
				c.fail(name, args(bad), tools.CodeInvalidArgument)
			}
			extra := args("ok")
			extra["x"+name] = 1
			if te := c.fail(name, extra, tools.CodeInvalidArgument); !strings.Contains(te.Message, `"x`+name+`"`) {
				t.Errorf("%s: unknown argument message %q", name, te.Message)
			}
		}
		c.fail("start_session", map[string]any{"session": "both", "stage": "demo", "pipeline": "quick-refine"}, tools.CodeInvalidArgument)
		c.fail("start_session", map[string]any{"session": "neither"}, tools.CodeInvalidArgument)
		c.fail("start_session", map[string]any{"session": "moded", "stage": "demo", "mode": "again"}, tools.CodeInvalidArgument)
		c.fail("start_session", map[string]any{"session": "negative", "stage": "demo", "max_iterations": -3}, tools.CodeInvalidArgument)
		c.fail("start_session", map[string]any{"session": "huge", "stage": "demo", "max_iterations": 100001}, tools.CodeInvalidArgument)
		// 0 was silently taken as the stage's default; it is refused, with the
		// call that uses the default as the option.
		if te := c.fail("start_session", map[string]any{"session": "zero", "stage": "demo", "max_iterations": 0}, tools.CodeInvalidArgument); !strings.Contains(te.Message, "got 0; leave it out") ||
			!hasOption(te.Options, "start_session", map[string]any{"session": "zero", "stage": "demo", "mode": "new"}) {
			t.Errorf("max_iterations 0: %+v", te)
		}
		c.fail("start_session", map[string]any{"session": "nowhere", "stage": "demo", "project_dir": "/does/not/exist"}, tools.CodeInvalidArgument)
		c.fail("start_session", map[string]any{"session": "outside", "stage": "demo", "inputs": []any{"/etc/passwd"}, "dry_run": true}, tools.CodeInvalidArgument)
		// Still serving.
		if l := c.list(nil); l.ProjectDir != e.project {
			t.Errorf("list after bad input: %+v", l)
		}
	})
}
