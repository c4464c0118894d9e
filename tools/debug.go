package tools

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agent-sessions/agent-sessions/sessions"
)

const debugHelp = `agent-sessions debug: one command per line.
  TOOL {"key": "value", ...}   call a tool with JSON arguments
  TOOL key=value ...           call a tool; values are JSON when they parse
                               (42, true, ["a"], "quoted text"), else text
  tools                        list the tools and their arguments
  resources                    list the resources and templates
  read URI                     read a resource (e.g. read sessions://reminder)
  help                         this text
  quit                         leave
Examples:
  list include_catalog=true
  start_session session=try-1 stage=demo provider=mock
  monitor session=try-1 wait=iteration timeout_seconds=60
  kill session=try-1
`

// Debug is the manual debug mode: it reads commands from in, calls the
// same handlers the MCP server serves (through an in-process client of
// NewServer), and prints each result as indented JSON. A bad line prints an
// error and the loop goes on. prompt is printed before each line when set.
func Debug(ctx context.Context, d *Deps, version string, in io.Reader, out io.Writer, prompt string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &debugSession{out: out}
	lc, err := newLocalClient(ctx, NewServer(ctx, d, version), func(n mcp.JSONRPCNotification) {
		params, _ := json.Marshal(n.Params.AdditionalFields)
		s.printf("notification %s %s\n", n.Method, params)
	})
	if err != nil {
		return err
	}
	defer lc.Close()
	s.lc = lc
	s.printf("agent-sessions debug (%s): type help for commands, quit to leave.\n", version)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for {
		if prompt != "" {
			s.printf("%s", prompt)
		}
		if !sc.Scan() {
			return sc.Err()
		}
		if quit := s.line(ctx, strings.TrimSpace(sc.Text())); quit {
			return nil
		}
	}
}

// debugSession is one run of the debug mode: its client and its output,
// which notifications arriving on their own goroutine share.
type debugSession struct {
	lc    *localClient
	mu    sync.Mutex // one line of output at a time
	out   io.Writer
	token int // progress tokens of the calls made
}

func (s *debugSession) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.out, format, args...)
}

// line runs one command line and reports whether it asked to leave.
func (s *debugSession) line(ctx context.Context, line string) (quit bool) {
	if line == "" || strings.HasPrefix(line, "#") {
		return false
	}
	cmd, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	switch cmd {
	case "quit", "exit":
		return true
	case "help", "?":
		s.printf("%s", debugHelp)
	case "tools":
		s.listTools(ctx)
	case "resources":
		s.listResources(ctx)
	case "read":
		s.read(ctx, rest)
	default:
		s.call(ctx, cmd, rest)
	}
	return false
}

func (s *debugSession) listTools(ctx context.Context) {
	res, err := s.lc.c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		s.printf("error: %v\n", err)
		return
	}
	for _, t := range res.Tools {
		s.printf("%-14s %s\n", t.Name, toolArgs(t))
	}
}

func (s *debugSession) listResources(ctx context.Context) {
	rs, err := s.lc.c.ListResources(ctx, mcp.ListResourcesRequest{})
	if err != nil {
		s.printf("error: %v\n", err)
		return
	}
	for _, r := range rs.Resources {
		s.printf("%-36s %s\n", r.URI, r.Name)
	}
	ts, err := s.lc.c.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
	if err == nil {
		for _, t := range ts.ResourceTemplates {
			s.printf("%-36s %s\n", t.URITemplate.Raw(), t.Name)
		}
	}
}

func (s *debugSession) read(ctx context.Context, uri string) {
	if uri == "" {
		s.printf("error: read needs a URI, e.g. read sessions://reminder\n")
		return
	}
	var req mcp.ReadResourceRequest
	req.Params.URI = uri
	res, err := s.lc.c.ReadResource(ctx, req)
	if err != nil {
		s.printf("error: %v\n", err)
		return
	}
	for _, c := range res.Contents {
		if tc, ok := c.(mcp.TextResourceContents); ok {
			s.printf("%s\n", strings.TrimRight(tc.Text, "\n"))
		}
	}
}

// call calls the tool named with the line's arguments and prints its
// answer as indented JSON.
func (s *debugSession) call(ctx context.Context, tool, rest string) {
	args, err := ParseDebugArgs(rest)
	if err != nil {
		s.printf("error: %v (type help for the syntax)\n", err)
		return
	}
	s.token++
	raw, text, isErr, err := s.lc.call(ctx, tool, args, fmt.Sprintf("debug-%d", s.token))
	if err != nil {
		s.printf("error: %v (type tools for the list)\n", err)
		return
	}
	body := raw
	if body == nil {
		body, _ = json.Marshal(map[string]string{"text": text})
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, body, "", "  "); err != nil {
		pretty.Reset()
		pretty.Write(body)
	}
	if isErr {
		s.printf("error: %s\n", pretty.String())
	} else {
		s.printf("%s\n", pretty.String())
	}
}

func toolArgs(t mcp.Tool) string {
	var schema struct {
		Properties map[string]any `json:"properties"`
		Required   []string       `json:"required"`
	}
	// A tool that came over the wire has its schema in InputSchema, not
	// RawInputSchema (which only a tool built in this process fills):
	// read it from the tool's JSON, as any client sees it.
	var wire struct {
		InputSchema json.RawMessage `json:"inputSchema"`
	}
	if raw, err := json.Marshal(t); err == nil {
		json.Unmarshal(raw, &wire)
	}
	json.Unmarshal(wire.InputSchema, &schema)
	required := map[string]bool{}
	for _, r := range schema.Required {
		required[r] = true
	}
	var names []string
	for k := range schema.Properties {
		if required[k] {
			k += "*"
		}
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// ParseDebugArgs parses a debug line's arguments: a JSON object, or
// key=value words where a value is JSON when it parses (numbers, true,
// lists, "quoted text") and text otherwise.
func ParseDebugArgs(s string) (map[string]any, error) {
	s = strings.TrimSpace(s)
	args := map[string]any{}
	if s == "" {
		return args, nil
	}
	if strings.HasPrefix(s, "{") {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if err := dec.Decode(&args); err != nil {
			return nil, fmt.Errorf("arguments are not a JSON object: %w", err)
		}
		if rest := strings.Trim(s[dec.InputOffset():], jsonSpace); rest != "" {
			return nil, fmt.Errorf("unexpected text %q after the JSON object; give one object, e.g. {\"session\": \"a\"}", sessions.Truncate(rest, 40))
		}
		return args, nil
	}
	words, err := splitWords(s)
	if err != nil {
		return nil, err
	}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", w)
		}
		if _, dup := args[k]; dup {
			return nil, fmt.Errorf("argument %q is given twice; give it once", k)
		}
		if parsed, ok := wholeJSON(v); ok {
			args[k] = parsed
		} else {
			args[k] = v
		}
	}
	return args, nil
}

// jsonSpace is the white space JSON allows between values.
const jsonSpace = " \t\r\n"

// wholeJSON decodes v when all of it is one JSON value: "42}" is the text
// 42}, not the number 42 with the rest dropped.
func wholeJSON(v string) (any, bool) {
	if v == "" {
		return nil, false
	}
	var parsed any
	dec := json.NewDecoder(strings.NewReader(v))
	dec.UseNumber()
	if dec.Decode(&parsed) != nil || strings.Trim(v[dec.InputOffset():], jsonSpace) != "" {
		return nil, false
	}
	return parsed, true
}

// splitWords splits on spaces outside double quotes; quotes are kept so a
// quoted value parses as a JSON string. It works on bytes (the separators
// are ASCII), so every other byte is kept as typed.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inQuote, escaped := false, false
	for i := 0; i < len(s); i++ {
		r := s[i]
		switch {
		case escaped:
			cur.WriteByte(r)
			escaped = false
		case r == '\\' && inQuote:
			cur.WriteByte(r)
			escaped = true
		case r == '"':
			cur.WriteByte(r)
			inQuote = !inQuote
		case (r == ' ' || r == '\t') && !inQuote:
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteByte(r)
		}
	}
	if inQuote {
		return nil, errors.New("unclosed quote")
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	return words, nil
}
