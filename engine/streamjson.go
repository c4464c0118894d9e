package engine

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// streamMessage is the subset of Claude Code's stream-json messages
// (`claude -p --output-format stream-json --verbose`) the engine reads; the
// shapes follow the SDK's SDKSystemMessage, SDKAssistantMessage,
// SDKUserMessage and SDKResultMessage.
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
}

type streamBlock struct {
	Type    string          `json:"type"`
	Text    string          `json:"text"`
	Name    string          `json:"name"`
	Input   json.RawMessage `json:"input"`
	Content json.RawMessage `json:"content"`
	IsError bool            `json:"is_error"`
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
	ErrorText    string
	CostUSD      float64
	InputTokens  int64 // input + cache creation + cache read
	OutputTokens int64
}

// renderStream reads Claude Code's stream-json from r, writes a readable
// rendering to w (text as it is said, one line per tool call), and returns
// the final result. Lines that are not JSON are shown as they are.
func renderStream(r io.Reader, w io.Writer) streamResult {
	var res streamResult
	var said strings.Builder // assistant text, in case no result message comes
	br := bufio.NewReaderSize(r, 256<<10)
	for {
		line, err := readLine(br, 32<<20)
		if len(line) > 0 {
			var m streamMessage
			if json.Unmarshal(line, &m) != nil || m.Type == "" {
				fmt.Fprintf(w, "%s\n", truncate(string(line), 2000))
			} else {
				renderMessage(w, &m, &res, &said)
			}
		}
		if err != nil {
			break
		}
	}
	if !res.SawResult {
		res.Final = said.String()
	}
	return res
}

func renderMessage(w io.Writer, m *streamMessage, res *streamResult, said *strings.Builder) {
	switch m.Type {
	case "system":
		if m.Subtype == "init" {
			fmt.Fprintf(w, "● claude started (model %s)\n", m.Model)
		}
	case "assistant":
		if m.Message == nil {
			return
		}
		for _, b := range m.Message.Content {
			switch b.Type {
			case "text":
				text := strings.TrimRight(b.Text, "\n")
				if text != "" {
					fmt.Fprintf(w, "%s\n", text)
					if said.Len() > 0 {
						said.WriteString("\n\n")
					}
					said.WriteString(text)
				}
			case "tool_use":
				fmt.Fprintf(w, "→ %s %s\n", b.Name, toolSummary(b.Input))
			}
		}
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
		res.SawResult = true
		if m.Result != nil {
			res.Final = *m.Result
		}
		res.IsError = m.IsError
		if m.IsError {
			res.ErrorText = m.Subtype
			if len(m.Errors) > 0 {
				res.ErrorText += ": " + strings.Join(m.Errors, "; ")
			}
		}
		res.CostUSD = m.TotalCostUSD
		if m.Usage != nil {
			res.InputTokens = m.Usage.InputTokens + m.Usage.CacheCreationInputTokens + m.Usage.CacheReadInputTokens
			res.OutputTokens = m.Usage.OutputTokens
		}
		status := "done"
		if m.IsError {
			status = "failed (" + res.ErrorText + ")"
		}
		fmt.Fprintf(w, "● claude %s: %d turns, %.1fs, $%.4f, %d in / %d out tokens\n",
			status, m.NumTurns, float64(m.DurationMS)/1000, m.TotalCostUSD, res.InputTokens, res.OutputTokens)
	}
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
