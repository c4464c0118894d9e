package testkit

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func post(t *testing.T, url, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(url+"/v1/messages", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestMessagesStream checks the SSE shape of a scripted turn: the event
// order, the tool input reassembled from its deltas, usage and stop reason.
func TestMessagesStream(t *testing.T) {
	t.Parallel()
	api := NewMessages(t, Turn{Blocks: []Block{{Kind: "thinking", Text: "t"}, {Kind: "text", Text: "hi"},
		{Kind: "tool_use", Name: "Bash", Input: json.RawMessage(`{"command":"échø"}`)}}, OutputTokens: 9})
	resp := post(t, api.URL, `{"model":"claude-x","stream":true}`)
	if got := resp.Header.Get("Content-Type"); got != "text/event-stream" {
		t.Fatalf("content type %q", got)
	}
	var events []string
	var input, stop string
	var out float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if ev, ok := strings.CutPrefix(line, "event: "); ok {
			events = append(events, ev)
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var raw map[string]any
		_ = json.Unmarshal([]byte(data), &raw)
		if d, ok := raw["delta"].(map[string]any); ok {
			if p, ok := d["partial_json"].(string); ok {
				input += p
			}
			if s, ok := d["stop_reason"].(string); ok {
				stop = s
			}
		}
		if u, ok := raw["usage"].(map[string]any); ok && raw["type"] == "message_delta" {
			out, _ = u["output_tokens"].(float64)
		}
	}
	want := "message_start content_block_start content_block_delta content_block_delta content_block_stop " +
		"content_block_start content_block_delta content_block_stop " +
		"content_block_start content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if got := strings.Join(events, " "); got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
	if input != `{"command":"échø"}` {
		t.Errorf("tool input reassembled = %q", input)
	}
	if stop != "tool_use" || out != 9 {
		t.Errorf("stop_reason %q output_tokens %v, want tool_use 9", stop, out)
	}
	if got := api.MessageRequests(); len(got) != 1 || !strings.Contains(string(got[0]), "claude-x") {
		t.Errorf("recorded requests = %q", got)
	}
}

// TestMessagesError checks an error turn: status, headers and the API's
// error body; and that an unscripted request still gets a plain answer.
func TestMessagesError(t *testing.T) {
	t.Parallel()
	api := NewMessages(t, Turn{Status: 429, Message: "slow down", Headers: map[string]string{
		"retry-after": "7", "anthropic-ratelimit-unified-status": "rejected", "x-should-retry": "false"}})
	resp := post(t, api.URL, `{}`)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 429 || resp.Header.Get("retry-after") != "7" || resp.Header.Get("x-should-retry") != "false" {
		t.Errorf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	if want := `{"error":{"message":"slow down","type":"rate_limit_error"},"type":"error"}`; strings.TrimSpace(string(body)) != want {
		t.Errorf("body %s, want %s", body, want)
	}
	if resp := post(t, api.URL, `{}`); resp.StatusCode != 200 {
		t.Errorf("unscripted request: status %d, want 200", resp.StatusCode)
	}
	if api.Served() != 1 {
		t.Errorf("served %d scripted turns, want 1", api.Served())
	}
	resp2, err := http.Get(api.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 404 {
		t.Errorf("unknown path: status %d, want 404", resp2.StatusCode)
	}
}
