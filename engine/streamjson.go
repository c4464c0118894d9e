package engine

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// streamMessage is the subset of Claude Code's stream-json messages
// (`claude -p --output-format stream-json --verbose`) the engine reads; the
// shapes follow the SDK's SDKSystemMessage, SDKAssistantMessage,
// SDKUserMessage and SDKResultMessage, and the lines Claude Code 2.1.332
// prints (SPEC §13; samples in testdata/claude-stream/).
type streamMessage struct {
	Type    string `json:"type"`
	Subtype string `json:"subtype"`
	Model   string `json:"model"`
	Cwd     string `json:"cwd"`
	Message *struct {
		Content []streamBlock `json:"content"`
	} `json:"message"`
	Result       *string      `json:"result"`
	IsError      bool         `json:"is_error"`
	TotalCostUSD float64      `json:"total_cost_usd"`
	NumTurns     int          `json:"num_turns"`
	DurationMS   int64        `json:"duration_ms"`
	Usage        *streamUsage `json:"usage"`
	Errors       []string     `json:"errors"`
	// The result's error fields. They are internal to the CLI (not in the
	// SDK's types), so the text in Result stays the fallback.
	APIErrorStatus *int   `json:"api_error_status"`
	APIErrorType   string `json:"api_error_type"`
	APIError       any    `json:"api_error"`
	TerminalReason string `json:"terminal_reason"`
	// Error is a string on assistant messages ("rate_limit") and api_retry
	// lines; kept loose so an object there never drops the line.
	Error any `json:"error"`
	// system/api_retry
	Attempt      int   `json:"attempt"`
	MaxRetries   int   `json:"max_retries"`
	RetryDelayMS int64 `json:"retry_delay_ms"`
	ErrorStatus  *int  `json:"error_status"`
	// rate_limit_event
	RateLimitInfo *struct {
		Status        string  `json:"status"`
		ResetsAt      float64 `json:"resetsAt"`
		RateLimitType string  `json:"rateLimitType"`
	} `json:"rate_limit_info"`
	// task_started, compact_boundary, model_fallback
	Description     string         `json:"description"`
	CompactMetadata map[string]any `json:"compact_metadata"`

	raw []byte // the line itself
}

type streamBlock struct {
	Type     string          `json:"type"`
	Text     string          `json:"text"`
	Thinking string          `json:"thinking"`
	Name     string          `json:"name"`
	Input    json.RawMessage `json:"input"`
	Content  json.RawMessage `json:"content"`
	IsError  bool            `json:"is_error"`
}

type streamUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
}

// streamResult is what the stream told us once it ended.
type streamResult struct {
	Final        string
	SawResult    bool
	IsError      bool
	Failure      *state.Failure // set when IsError
	CostUSD      float64
	InputTokens  int64 // input + cache creation + cache read
	OutputTokens int64

	// Seen before the result, to classify it.
	resetsAt   *time.Time // a rejected rate_limit_event's resetsAt
	retryDelay float64    // the last api_retry's delay, seconds
	said       strings.Builder
	errorText  string // the last assistant message's text when it carried an error
}

// renderStream reads Claude Code's stream-json from r, writes a readable
// rendering to w (text as it is said, one line per tool call, retries and
// other notable events), and returns the final result. Lines that are not
// JSON are shown as they are. onResult is called once, when the first
// result line arrives: the agent's work is then over (a later result
// answers a background task's notification, not the prompt).
func renderStream(r io.Reader, w io.Writer, onResult func()) *streamResult {
	res := &streamResult{}
	br := bufio.NewReaderSize(r, 256<<10)
	for {
		line, err := readLine(br, 32<<20)
		if len(line) > 0 {
			var m streamMessage
			if json.Unmarshal(line, &m) != nil || m.Type == "" {
				fmt.Fprintf(w, "%s\n", truncate(string(line), 2000))
			} else if m.Type == "result" && res.SawResult {
				fmt.Fprintf(w, "● claude went on after its result (%s); the iteration is over\n", first(m.TerminalReason, m.Subtype))
			} else {
				m.raw = line
				renderMessage(w, &m, res)
				if m.Type == "result" && onResult != nil {
					onResult()
				}
			}
		}
		if err != nil {
			break
		}
	}
	if !res.SawResult {
		res.Final = res.said.String()
	}
	return res
}

func renderMessage(w io.Writer, m *streamMessage, res *streamResult) {
	switch m.Type {
	case "system":
		renderSystem(w, m, res)
	case "rate_limit_event":
		if ri := m.RateLimitInfo; ri != nil && ri.Status == "rejected" && ri.ResetsAt > 0 {
			t := epochTime(ri.ResetsAt)
			res.resetsAt = &t
			fmt.Fprintf(w, "● claude: limit reached (%s), resets at %s\n", first(ri.RateLimitType, "rate limit"), t.Local().Format("2006-01-02 15:04"))
		}
	case "assistant":
		renderAssistant(w, m, res)
	case "user":
		if m.Message == nil {
			return
		}
		for _, b := range m.Message.Content {
			if b.Type == "tool_result" && b.IsError {
				fmt.Fprintf(w, "  ✗ %s\n", truncate(firstLineOf(blockText(b.Content)), 160))
			}
		}
	case "result":
		renderResult(w, m, res)
	}
}

func renderSystem(w io.Writer, m *streamMessage, res *streamResult) {
	switch m.Subtype {
	case "init":
		fmt.Fprintf(w, "● claude started (model %s)\n", m.Model)
	case "api_retry":
		res.retryDelay = float64(m.RetryDelayMS) / 1000
		status := ""
		if m.ErrorStatus != nil {
			status = fmt.Sprintf(" %d", *m.ErrorStatus)
		}
		fmt.Fprintf(w, "● API error%s (%s), retry %d/%d in %.1fs\n", status, first(looseString(m.Error), "no detail"),
			m.Attempt, m.MaxRetries, res.retryDelay)
	case "compact_boundary":
		fmt.Fprintf(w, "● context compacted (%s)\n", first(looseString(m.CompactMetadata["trigger"]), "auto"))
	case "model_fallback":
		fmt.Fprintf(w, "● model fallback: %s\n", scalarFields(m))
	case "task_started":
		fmt.Fprintf(w, "● background task started: %s\n", truncate(firstLineOf(m.Description), 120))
	}
}

func renderAssistant(w io.Writer, m *streamMessage, res *streamResult) {
	if m.Message == nil {
		return
	}
	errKind := looseString(m.Error)
	for _, b := range m.Message.Content {
		switch b.Type {
		case "text":
			text := strings.TrimRight(b.Text, "\n")
			if text == "" {
				continue
			}
			fmt.Fprintf(w, "%s\n", text)
			if errKind != "" {
				res.errorText = text
				continue
			}
			if res.said.Len() > 0 {
				res.said.WriteString("\n\n")
			}
			res.said.WriteString(text)
		case "thinking":
			if t := firstLineOf(b.Thinking); t != "" {
				fmt.Fprintf(w, "✻ %s\n", truncate(t, 160))
			}
		case "tool_use":
			fmt.Fprintf(w, "→ %s %s\n", b.Name, toolSummary(b.Input))
		}
	}
}

func renderResult(w io.Writer, m *streamMessage, res *streamResult) {
	res.SawResult = true
	if m.Result != nil {
		res.Final = *m.Result
	}
	res.IsError = m.IsError || strings.HasPrefix(m.Subtype, "error")
	res.CostUSD = m.TotalCostUSD
	if m.Usage != nil {
		res.InputTokens = m.Usage.InputTokens + m.Usage.CacheCreationInputTokens + m.Usage.CacheReadInputTokens
		res.OutputTokens = m.Usage.OutputTokens
	}
	status := "done"
	if res.IsError {
		res.Failure = classifyResult(m, res)
		status = "failed (" + res.Failure.Kind + "): " + truncate(firstLineOf(res.Failure.Message), 300)
	}
	fmt.Fprintf(w, "● claude %s · %d turns, %.1fs, $%.4f, %d in / %d out tokens\n",
		status, m.NumTurns, float64(m.DurationMS)/1000, m.TotalCostUSD, res.InputTokens, res.OutputTokens)
}

// classifyResult turns an error result into a typed failure. The CLI's
// own fields come first; the message text is the fallback because those
// fields are internal to the CLI and may change.
func classifyResult(m *streamMessage, res *streamResult) *state.Failure {
	f := &state.Failure{Message: resultMessage(m, res), ResetsAt: res.resetsAt}
	if m.APIErrorStatus != nil {
		f.Status = *m.APIErrorStatus
	}
	text := strings.ToLower(f.Message)
	apiErr := looseString(m.APIError)
	switch {
	case m.Subtype == "error_max_budget_usd" || m.TerminalReason == "budget_exhausted":
		f.Kind = state.FailureBudget
	case apiErr == "usage_limit_reached" || strings.Contains(text, "usage limit"):
		f.Kind = state.FailureUsageLimit
	case f.Status == 429 || m.APIErrorType == "rate_limit_error" || apiErr == "rate_limit":
		f.Kind = state.FailureRateLimit
	case f.Status == 529 || m.APIErrorType == "overloaded_error" || strings.Contains(text, "overloaded"):
		f.Kind = state.FailureOverloaded
	case f.Status == 401 || f.Status == 403 || m.APIErrorType == "authentication_error" ||
		m.APIErrorType == "permission_error" || strings.Contains(text, "invalid api key"):
		f.Kind = state.FailureAuth
	case f.Status != 0 || m.TerminalReason == "api_error" || m.TerminalReason == "prompt_too_long" ||
		strings.HasPrefix(f.Message, "API Error"):
		f.Kind = state.FailureAPIError
	default:
		f.Kind = state.FailureExit
	}
	if f.ResetsAt == nil && (f.Kind == state.FailureUsageLimit || f.Kind == state.FailureRateLimit) {
		f.ResetsAt = resetFromText(f.Message)
	}
	if f.Kind == state.FailureRateLimit || f.Kind == state.FailureOverloaded {
		f.RetryAfterSeconds = res.retryDelay
	}
	return f
}

// resultMessage is the error's text: the result, else what the assistant
// said about the error, else the result's fields spelled out.
func resultMessage(m *streamMessage, res *streamResult) string {
	msg := ""
	if m.Result != nil {
		msg = strings.TrimSpace(*m.Result)
	}
	if msg == "" {
		msg = res.errorText
	}
	if len(m.Errors) > 0 {
		msg = strings.TrimSpace(msg + " " + strings.Join(m.Errors, "; "))
	}
	if msg != "" {
		return msg
	}
	parts := []string{}
	if m.Subtype != "" && m.Subtype != "success" {
		parts = append(parts, m.Subtype)
	}
	if m.TerminalReason != "" {
		parts = append(parts, "terminal_reason "+m.TerminalReason)
	}
	if m.APIErrorStatus != nil {
		parts = append(parts, fmt.Sprintf("API status %d", *m.APIErrorStatus))
	}
	if len(parts) == 0 {
		return "claude reported an error without saying which"
	}
	return "claude ended with " + strings.Join(parts, ", ")
}

// resetFromText reads the reset epoch older CLIs put after a '|' in a
// usage-limit message ("Claude AI usage limit reached|1767225600").
func resetFromText(msg string) *time.Time {
	_, after, ok := strings.Cut(msg, "|")
	if !ok {
		return nil
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(after), 10, 64)
	if err != nil || sec <= 0 {
		return nil
	}
	t := epochTime(float64(sec))
	return &t
}

// epochTime reads an epoch in seconds (or milliseconds, when it is too
// large to be seconds).
func epochTime(v float64) time.Time {
	if v > 1e11 {
		return time.UnixMilli(int64(v)).UTC()
	}
	return time.Unix(int64(v), 0).UTC()
}

func looseString(v any) string {
	s, _ := v.(string)
	return s
}

// scalarFields spells out a system line's own string and number fields,
// for subtypes whose shape is not pinned down.
func scalarFields(m *streamMessage) string {
	var fields map[string]any
	_ = json.Unmarshal(m.raw, &fields)
	keys := make([]string, 0, len(fields))
	for k, v := range fields {
		switch k {
		case "type", "subtype", "session_id", "uuid":
			continue
		}
		switch v.(type) {
		case string, float64, bool:
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, fields[k]))
	}
	return truncate(strings.Join(parts, " "), 300)
}

// toolSummary picks the most telling argument of a tool call.
func toolSummary(input json.RawMessage) string {
	var args map[string]any
	if json.Unmarshal(input, &args) != nil {
		return ""
	}
	for _, k := range []string{"command", "file_path", "path", "pattern", "url", "query", "description", "prompt"} {
		if v, ok := args[k].(string); ok && v != "" {
			return truncate(firstLineOf(v), 120)
		}
	}
	return ""
}

func blockText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) == nil {
		var b strings.Builder
		for _, p := range parts {
			b.WriteString(p.Text)
		}
		return b.String()
	}
	return string(raw)
}

func firstLineOf(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// readLine reads one line of at most max bytes (the rest of a longer line is
// discarded), without the newline.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) <= max {
			line = append(line, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		return line, err
	}
}
