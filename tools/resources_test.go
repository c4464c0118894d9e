package tools_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tools"
)

const noneRunning = "No agent sessions are running"

func TestReminder(t *testing.T) {
	forVersions(t, func(t *testing.T, v string) {
		e := newEnv(t)
		e.stage("long", longStage)
		c := e.connect(v)

		text, err := c.readResource(tools.ReminderURI)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, noneRunning) {
			t.Errorf("reminder with nothing running:\n%s", text)
		}

		// Subscribe: resources/subscribe on the legacy protocol,
		// subscriptions/listen on the newest.
		updated := func(n mcp.JSONRPCNotification) bool { return n.Params.AdditionalFields["uri"] == tools.ReminderURI }
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if v == legacyVersion {
			var req mcp.SubscribeRequest
			req.Params.URI = tools.ReminderURI
			if err := c.c.Subscribe(ctx, req); err != nil {
				t.Fatalf("resources/subscribe: %v", err)
			}
		} else {
			stop, err := c.c.ListenAsync(ctx, mcp.SubscriptionFilter{ResourceSubscriptions: []string{tools.ReminderURI}}, func(err error) {
				t.Errorf("subscriptions/listen: %v", err)
			})
			if err != nil {
				t.Fatalf("subscriptions/listen: %v", err)
			}
			defer stop()
			ack := c.waitNotification(mcp.MethodNotificationSubscriptionsAcknowledged, 0, 5*time.Second, nil)
			if got, _ := json.Marshal(ack[0].Params.AdditionalFields["notifications"]); !strings.Contains(string(got), tools.ReminderURI) {
				t.Fatalf("subscription acknowledged without the reminder: %s", got)
			}
		}
		// Nothing changes, nothing is sent.
		time.Sleep(600 * time.Millisecond)
		if n := c.notifications(mcp.MethodNotificationResourceUpdated); len(n) != 0 {
			t.Errorf("%d updates before anything changed", len(n))
		}

		c.start(map[string]any{"session": "nag", "stage": "long"})
		c.waitNotification(mcp.MethodNotificationResourceUpdated, 0, 10*time.Second, updated)
		text, err = c.readResource(tools.ReminderURI)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"**nag**", "running", `kill {"session": "nag"}`, "-L " + e.socket, "=loop-nag"} {
			if !strings.Contains(text, want) {
				t.Errorf("reminder lacks %q:\n%s", want, text)
			}
		}

		seen := len(c.notifications(mcp.MethodNotificationResourceUpdated))
		c.ok("kill", map[string]any{"session": "nag"}, nil)
		c.waitNotification(mcp.MethodNotificationResourceUpdated, seen, 10*time.Second, updated)
		if text, _ = c.readResource(tools.ReminderURI); !strings.Contains(text, noneRunning) {
			t.Errorf("reminder after the kill:\n%s", text)
		}
	})
}

func TestResources(t *testing.T) {
	forVersions(t, func(t *testing.T, v string) {
		e := newEnv(t)
		e.stage("quick", quickStage)
		c := e.connect(v)

		res, err := c.c.ListResources(context.Background(), mcp.ListResourcesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		uris := map[string]string{}
		for _, r := range res.Resources {
			uris[r.URI] = r.MIMEType
		}
		if uris[tools.ReminderURI] != "text/markdown" || uris[tools.CatalogURI] != "application/json" {
			t.Errorf("resources = %v", uris)
		}
		tres, err := c.c.ListResourceTemplates(context.Background(), mcp.ListResourceTemplatesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var templates []string
		for _, rt := range tres.ResourceTemplates {
			templates = append(templates, rt.URITemplate.Raw())
		}
		for _, want := range []string{"sessions://session/{name}/state", "sessions://session/{name}/progress", "sessions://session/{name}/log"} {
			if !strings.Contains(strings.Join(templates, " "), want) {
				t.Errorf("templates %q lack %s", templates, want)
			}
		}

		text, err := c.readResource(tools.CatalogURI)
		if err != nil {
			t.Fatal(err)
		}
		var cat struct {
			ProjectDir string `json:"project_dir"`
			Entries    []struct {
				Kind, Name, Source string
			} `json:"entries"`
			Problems []string `json:"problems"`
		}
		if err := json.Unmarshal([]byte(text), &cat); err != nil {
			t.Fatalf("catalog is not JSON: %v\n%s", err, text)
		}
		found := map[string]string{}
		for _, en := range cat.Entries {
			found[en.Kind+" "+en.Name] = en.Source
		}
		if cat.ProjectDir != e.project || found["stage demo"] != "builtin" || found["pipeline quick-refine"] != "builtin" || found["stage quick"] != ".claude/stages" {
			t.Errorf("catalog = %+v", cat)
		}

		finish(t, c, "doc")
		text, err = c.readResource("sessions://session/doc/state")
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Status string      `json:"status"`
			State  state.State `json:"state"`
		}
		if err := json.Unmarshal([]byte(text), &st); err != nil {
			t.Fatalf("state resource is not JSON: %v\n%s", err, text)
		}
		if st.Status != string(state.LiveComplete) || st.State.Session != "doc" || st.State.IterationCompleted != 3 {
			t.Errorf("state resource = %s", text)
		}
		if text, err = c.readResource("sessions://session/doc/progress"); err != nil || !strings.Contains(text, "mock agent") {
			t.Errorf("progress resource = %q, %v", text, err)
		}
		if text, err = c.readResource("sessions://session/doc/log"); err != nil || !strings.Contains(text, "session doc complete") {
			t.Errorf("log resource = %q, %v", text, err)
		}
		if _, err := c.readResource("sessions://session/nobody/state"); err == nil {
			t.Error("state of an unknown session: no error")
		}
		if _, err := c.readResource("sessions://session/Bad%20Name/log"); err == nil {
			t.Error("log of an invalid name: no error")
		}
	})
}
