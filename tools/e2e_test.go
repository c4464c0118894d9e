package tools_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tools"
)

// lockedBuffer collects the server's stderr.
type lockedBuffer = testkit.SyncBuffer

// sdkCall calls a tool through the official SDK and decodes its structured
// content. The SDK is an independent implementation of the protocol: what
// it accepts, Claude Code's side of the wire should too.
func sdkCall(t *testing.T, cs *sdk.ClientSession, name string, args map[string]any, token any, out any) *sdk.CallToolResult {
	t.Helper()
	params := &sdk.CallToolParams{Name: name, Arguments: args}
	if token != nil {
		params.SetProgressToken(token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := cs.CallTool(ctx, params)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var text strings.Builder
	for _, c := range res.Content {
		tc, ok := c.(*sdk.TextContent)
		if !ok {
			t.Fatalf("%s: content %T, want text", name, c)
		}
		text.WriteString(tc.Text)
	}
	if text.Len() == 0 || text.Len() > tools.TextLimit+256 {
		t.Errorf("%s: text of %d bytes", name, text.Len())
	}
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil || res.StructuredContent == nil {
		t.Fatalf("%s: structured content %v (%v)", name, res.StructuredContent, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: decode %s: %v", name, raw, err)
		}
	}
	return res
}

// TestEndToEnd drives the built binary (`agent-sessions serve`) over stdio
// with the official Go SDK's client, on a private tmux socket, with fake
// agents: the fake claude CLI on PATH and a command-provider agent.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	// The SDK speaks both eras: the stateless 2026-07-28 (server/discover)
	// and the initialize handshake of 2025-11-25.
	for _, v := range []string{"2026-07-28", "2025-11-25"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			// The delay keeps the session running for a few seconds: the wait
			// below must see it move to send progress, and under load start and
			// list alone could outlast a faster session.
			e.stage("refine", "completion: plateau\nprovider: claude\nmodel: sonnet\nmin_iterations: 2\nmax_iterations: 6\ndelay: 1\n")
			e.stage("waiter", commandStage("fixed-n", 3, "sleep-agent"))
			// The server looks every 50 ms (its reminder watcher every
			// 400 ms, not 2 s): the updates below come sooner.
			e.setEnv("FAKE_CLAUDE_PLATEAU_AFTER=2", "SLEEP_SECONDS=600", tools.PollEnv+"=50ms")

			var stderr lockedBuffer
			cmd := exec.Command(binary(t), "serve")
			cmd.Dir = e.project
			cmd.Env = e.environ()
			cmd.Stderr = &stderr

			var mu sync.Mutex
			var progress []*sdk.ProgressNotificationParams
			var updated []string
			client := sdk.NewClient(&sdk.Implementation{Name: "e2e-test", Version: "1"}, &sdk.ClientOptions{
				ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
					mu.Lock()
					defer mu.Unlock()
					progress = append(progress, req.Params)
				},
				ResourceUpdatedHandler: func(_ context.Context, req *sdk.ResourceUpdatedNotificationRequest) {
					mu.Lock()
					defer mu.Unlock()
					updated = append(updated, req.Params.URI)
				},
			})
			// Every method the client receives, to see the acknowledgement of
			// a subscriptions/listen stream.
			var received []string
			client.AddReceivingMiddleware(func(next sdk.MethodHandler) sdk.MethodHandler {
				return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
					mu.Lock()
					received = append(received, method)
					mu.Unlock()
					return next(ctx, method, req)
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cs, err := client.Connect(ctx, &sdk.CommandTransport{Command: cmd}, &sdk.ClientSessionOptions{ProtocolVersion: v})
			if err != nil {
				t.Fatalf("connect: %v\nstderr: %s", err, stderr.String())
			}
			defer func() {
				if err := cs.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
				if t.Failed() {
					t.Logf("server stderr:\n%s", stderr.String())
				}
			}()
			ir := cs.InitializeResult()
			if ir.ProtocolVersion != v || ir.ServerInfo.Name != tools.ServerName || !strings.Contains(ir.Instructions, "orphan") {
				t.Errorf("initialize: version %q, server %q, instructions %q", ir.ProtocolVersion, ir.ServerInfo.Name, ir.Instructions)
			}
			lt, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tool := range lt.Tools {
				names = append(names, tool.Name)
				if tool.OutputSchema == nil || tool.Annotations == nil || tool.Title == "" {
					t.Errorf("%s: output schema, annotations or title missing", tool.Name)
				}
			}
			slices.Sort(names)
			if want := []string{"attach_hint", "cleanup", "kill", "list", "monitor", "reply", "start_session"}; !slices.Equal(names, want) {
				t.Errorf("tools = %q, want %q", names, want)
			}

			// start → list → monitor (wait complete, with progress).
			var started tools.StartResult
			sdkCall(t, cs, "start_session", map[string]any{"session": "e2e", "stage": "refine"}, nil, &started)
			if started.Status != state.StatusRunning || !strings.Contains(started.AttachCommand, "=loop-e2e") || !strings.Contains(started.AttachCommand, "-L "+e.socket) {
				t.Errorf("start = %+v", started)
			}
			var l tools.ListResult
			sdkCall(t, cs, "list", nil, nil, &l)
			if s, ok := summary(l, "e2e"); !ok || (s.Status != state.LiveRunning && s.Status != state.LiveComplete) {
				t.Errorf("list: e2e = %+v", s)
			}
			var m tools.MonitorResult
			sdkCall(t, cs, "monitor", map[string]any{"session": "e2e", "wait": "complete", "timeout_seconds": 90}, "e2e-progress", &m)
			if m.Status != state.LiveComplete || m.CompletionReason != "plateau" || m.IterationCompleted != 3 {
				t.Errorf("after wait complete: status %q reason %q iterations %d", m.Status, m.CompletionReason, m.IterationCompleted)
			}
			if m.LastIteration == nil || !m.LastIteration.Plateau || !strings.Contains(m.LastIteration.OutputExcerpt, "Did iteration 3") {
				t.Errorf("last iteration = %+v", m.LastIteration)
			}
			if m.Cost.USD <= 0 {
				t.Errorf("cost = %+v, want the fake claude's", m.Cost)
			}
			eventually(t, 5*time.Second, "a progress notification", func() bool {
				mu.Lock()
				defer mu.Unlock()
				for _, p := range progress {
					if p.ProgressToken == "e2e-progress" && p.Total == 6 && strings.Contains(p.Message, "iterations done") {
						return true
					}
				}
				return false
			})

			// A second session, killed, while subscribed to the reminder
			// (resources/subscribe, or a subscriptions/listen stream that
			// Subscribe holds open on the newest protocol).
			subscribed := make(chan error, 1)
			go func() { subscribed <- cs.Subscribe(ctx, &sdk.SubscribeParams{URI: tools.ReminderURI}) }()
			if v != "2026-07-28" {
				if err := <-subscribed; err != nil {
					t.Fatalf("subscribe: %v", err)
				}
			} else {
				eventually(t, 10*time.Second, "the subscription to be acknowledged", func() bool {
					mu.Lock()
					defer mu.Unlock()
					return slices.Contains(received, "notifications/subscriptions/acknowledged")
				})
			}
			sdkCall(t, cs, "start_session", map[string]any{"session": "e2e-2", "stage": "waiter"}, nil, nil)
			updates := func() int {
				mu.Lock()
				defer mu.Unlock()
				n := 0
				for _, u := range updated {
					if u == tools.ReminderURI {
						n++
					}
				}
				return n
			}
			eventually(t, 10*time.Second, "notifications/resources/updated for the reminder after a start", func() bool { return updates() > 0 })
			seen := updates()
			rr, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: tools.ReminderURI})
			if err != nil {
				t.Fatal(err)
			}
			if len(rr.Contents) != 1 || !strings.Contains(rr.Contents[0].Text, "**e2e-2**") {
				t.Errorf("reminder while e2e-2 runs = %+v", rr.Contents)
			}
			var k tools.KillResult
			sdkCall(t, cs, "kill", map[string]any{"session": "e2e-2"}, nil, &k)
			if !k.Killed || k.Status != state.StatusKilled {
				t.Errorf("kill = %+v", k)
			}
			if e.hasTmux("loop-e2e-2") {
				t.Error("loop-e2e-2 survived the kill")
			}
			eventually(t, 10*time.Second, "notifications/resources/updated for the reminder after a kill", func() bool { return updates() > seen })
			res := sdkCall(t, cs, "kill", map[string]any{"session": "e2e-3"}, nil, nil)
			var te toolErr
			raw, _ := json.Marshal(res.StructuredContent)
			json.Unmarshal(raw, &te)
			if !res.IsError || te.Code != tools.CodeNotFound || te.Options == nil {
				t.Errorf("kill of an unknown session: isError %v, %s", res.IsError, raw)
			}

			sdkCall(t, cs, "list", nil, nil, &l)
			got := map[string]string{}
			for _, s := range l.Sessions {
				got[s.Session] = string(s.Status)
			}
			if got["e2e"] != string(state.LiveComplete) || got["e2e-2"] != string(state.LiveKilled) || len(got) != 2 {
				t.Errorf("list = %v", got)
			}

			var c tools.CleanupResult
			sdkCall(t, cs, "cleanup", map[string]any{"kill_orphans": true}, nil, &c)
			if !c.DryRun || len(c.Orphans)+len(c.Zombies)+len(c.Crashed)+len(c.StaleLocks) != 0 || len(c.Actions) != 0 {
				t.Errorf("cleanup = %+v", c)
			}

			rr, err = cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: tools.ReminderURI})
			if err != nil {
				t.Fatal(err)
			}
			if len(rr.Contents) != 1 || !strings.Contains(rr.Contents[0].Text, noneRunning) {
				t.Errorf("reminder = %+v", rr.Contents)
			}
		})
	}
}
