package testkit

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// Block is one content block of a scripted assistant turn.
type Block struct {
	Kind  string          // "text", "thinking" or "tool_use"
	Text  string          // text or thinking
	Name  string          // tool_use: the tool's name
	ID    string          // tool_use: its id (made up when empty)
	Input json.RawMessage // tool_use: its input object (empty means {})
}

// Turn is one scripted answer to a POST /v1/messages: either an assistant
// message of Blocks or, when Status is set, an HTTP error.
type Turn struct {
	Blocks     []Block
	StopReason string // default: "tool_use" when a tool_use block is present, else "end_turn"
	InputTokens,
	OutputTokens int // usage reported in message_start / message_delta (defaults 10 / 5)

	Status    int               // an HTTP error status (e.g. 400, 429, 529); 0 for a message
	ErrorType string            // error.type in the body (default from Status)
	Message   string            // error.message in the body
	Headers   map[string]string // extra response headers (retry-after, anthropic-ratelimit-…)
}

// Text is a turn answering with one text block.
func Text(s string) Turn { return Turn{Blocks: []Block{{Kind: "text", Text: s}}} }

// ToolUse is a turn calling one tool with input (a JSON object).
func ToolUse(name, input string) Turn {
	return Turn{Blocks: []Block{{Kind: "tool_use", Name: name, Input: json.RawMessage(input)}}}
}

// APIError is a turn answering with an HTTP error.
func APIError(status int, message string) Turn { return Turn{Status: status, Message: message} }

// Request is one request the fake received.
type Request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// Messages is a fake Anthropic Messages API. Turns come from the queue given
// to Enqueue, or from Script when it is set (it wins). When both are empty
// the fake answers a plain "ok" text turn, so a stray extra request never
// hangs a test: after a run_in_background shell ends, for one, `claude -p`
// asks the model again about the task's notification.
//
// What Claude Code 2.1.332 calls, measured with this fake (hermetic env,
// nonessential traffic off): only streaming POST /v1/messages, with --model
// sonnet sent as claude-sonnet-5-5. 401 and 529 answers were retried up to
// CLAUDE_CODE_MAX_RETRIES times (printed as system/api_retry lines); a 429
// with x-should-retry: false was not. Other paths answer 404 (count_tokens
// and HEAD / answer minimally, should a later version call them).
type Messages struct {
	URL string // http://127.0.0.1:PORT — use as ANTHROPIC_BASE_URL

	// Script, when set, decides the turn for each /v1/messages request.
	Script func(r Request) Turn

	srv      *httptest.Server
	mu       sync.Mutex
	queue    []Turn
	requests []Request
	served   int
}

// NewMessages starts a fake Messages API on 127.0.0.1 and closes it when
// the test ends.
func NewMessages(t testing.TB, turns ...Turn) *Messages {
	t.Helper()
	m := &Messages{queue: turns}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	m.URL = m.srv.URL
	t.Cleanup(m.srv.Close)
	return m
}

// Enqueue appends scripted turns.
func (m *Messages) Enqueue(turns ...Turn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.queue = append(m.queue, turns...)
}

// Requests returns every request received so far (any path), in order.
func (m *Messages) Requests() []Request {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Request(nil), m.requests...)
}

// MessageRequests returns the bodies of the POST /v1/messages requests.
func (m *Messages) MessageRequests() [][]byte {
	var out [][]byte
	for _, r := range m.Requests() {
		if r.Method == http.MethodPost && r.Path == "/v1/messages" {
			out = append(out, r.Body)
		}
	}
	return out
}

// Served is how many /v1/messages requests were answered from the script.
func (m *Messages) Served() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.served
}

func (m *Messages) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	m.mu.Lock()
	m.requests = append(m.requests, req)
	m.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/messages":
		m.answer(w, req)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/messages/count_tokens":
		// Claude Code may count tokens for large contexts; a fixed answer suffices.
		writeJSON(w, http.StatusOK, map[string]any{"input_tokens": 10})
	case r.Method == http.MethodHead || (r.Method == http.MethodGet && r.URL.Path == "/"):
		w.WriteHeader(http.StatusOK)
	default:
		writeError(w, Turn{Status: http.StatusNotFound, Message: "fake messages api: no route " + r.Method + " " + r.URL.Path})
	}
}

func (m *Messages) answer(w http.ResponseWriter, req Request) {
	m.mu.Lock()
	var turn Turn
	switch {
	case m.Script != nil:
		m.served++
		script := m.Script
		m.mu.Unlock()
		turn = script(req)
		m.mu.Lock()
	case len(m.queue) > 0:
		m.served++
		turn, m.queue = m.queue[0], m.queue[1:]
	default:
		turn = Text("ok")
	}
	m.mu.Unlock()
	if turn.Status != 0 {
		writeError(w, turn)
		return
	}
	model := "claude-sonnet-5-5"
	var in struct {
		Model string `json:"model"`
	}
	if json.Unmarshal(req.Body, &in) == nil && in.Model != "" {
		model = in.Model
	}
	writeStream(w, turn, model)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, t Turn) {
	for k, v := range t.Headers {
		w.Header().Set(k, v)
	}
	typ := t.ErrorType
	if typ == "" {
		typ = errorType(t.Status)
	}
	writeJSON(w, t.Status, map[string]any{
		"type":  "error",
		"error": map[string]any{"type": typ, "message": t.Message},
	})
}

// errorType is the error.type the real API uses for a status.
func errorType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 529:
		return "overloaded_error"
	}
	return "api_error"
}

// writeStream answers a turn as the SSE stream of the real API.
func writeStream(w http.ResponseWriter, t Turn, model string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("request-id", "req_fake")
	w.WriteHeader(http.StatusOK)
	in, out := t.InputTokens, t.OutputTokens
	if in == 0 {
		in = 10
	}
	if out == 0 {
		out = 5
	}
	flusher, _ := w.(http.Flusher)
	send := func(event string, data any) {
		b, _ := json.Marshal(data)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
		if flusher != nil {
			flusher.Flush()
		}
	}
	send("message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": in, "output_tokens": 1,
			"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
	}})
	stop := t.StopReason
	for i, b := range t.Blocks {
		if b.Kind == "tool_use" && stop == "" {
			stop = "tool_use"
		}
		sendBlock(send, i, b)
	}
	if stop == "" {
		stop = "end_turn"
	}
	send("message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": out}})
	send("message_stop", map[string]any{"type": "message_stop"})
}

func sendBlock(send func(string, any), i int, b Block) {
	start := func(block map[string]any) {
		send("content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": block})
	}
	delta := func(d map[string]any) {
		send("content_block_delta", map[string]any{"type": "content_block_delta", "index": i, "delta": d})
	}
	switch b.Kind {
	case "thinking":
		start(map[string]any{"type": "thinking", "thinking": "", "signature": ""})
		delta(map[string]any{"type": "thinking_delta", "thinking": b.Text})
		delta(map[string]any{"type": "signature_delta", "signature": "fake-signature"})
	case "tool_use":
		id := b.ID
		if id == "" {
			id = fmt.Sprintf("toolu_fake_%d_%s", i, strings.ReplaceAll(b.Name, "_", ""))
		}
		input := string(b.Input)
		if strings.TrimSpace(input) == "" {
			input = "{}"
		}
		start(map[string]any{"type": "tool_use", "id": id, "name": b.Name, "input": map[string]any{}})
		// Split the input in two deltas, as the real API streams partial JSON.
		half := len(input) / 2
		for half > 0 && !utf8.RuneStart(input[half]) {
			half--
		}
		delta(map[string]any{"type": "input_json_delta", "partial_json": input[:half]})
		delta(map[string]any{"type": "input_json_delta", "partial_json": input[half:]})
	default:
		start(map[string]any{"type": "text", "text": ""})
		delta(map[string]any{"type": "text_delta", "text": b.Text})
	}
	send("content_block_stop", map[string]any{"type": "content_block_stop", "index": i})
}
