package engine

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/agent-sessions/agent-sessions/state"
)

// Problem is one thing wrong with a definition, located in its file.
type Problem struct {
	File string `json:"file"`
	Line int    `json:"line,omitempty"`
	Msg  string `json:"message"`
}

// String is "file:line: message", leaving out what is unknown (never an
// empty location such as ": :").
func (p Problem) String() string {
	switch {
	case p.File != "" && p.Line > 0:
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	case p.File != "":
		return fmt.Sprintf("%s: %s", p.File, p.Msg)
	case p.Line > 0:
		return fmt.Sprintf("line %d: %s", p.Line, p.Msg)
	}
	return p.Msg
}

// Problems is a list of problems; as an error it prints one per line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap makes every definition problem an ErrInvalid.
func (ps Problems) Unwrap() error { return ErrInvalid }

// AsProblems extracts the problems of err, if it carries any.
func AsProblems(err error) (Problems, bool) {
	var ps Problems
	ok := errors.As(err, &ps)
	return ps, ok
}

// decoder walks a YAML document, collecting every problem with its line
// rather than stopping at the first, so lint can list them all.
type decoder struct {
	file     string
	problems Problems
}

func (d *decoder) addf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// parseDocument parses data into its root mapping node.
func (d *decoder) parseDocument(data []byte) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := err.Error()
		line := 0
		// yaml.v3 reports "yaml: line N: ..." for syntax errors.
		if rest, ok := strings.CutPrefix(msg, "yaml: line "); ok {
			if i := strings.Index(rest, ":"); i > 0 {
				if n, err := strconv.Atoi(rest[:i]); err == nil {
					line = n
					msg = strings.TrimSpace(rest[i+1:])
				}
			}
		}
		// yaml.v3 reports some syntax errors on the line before the one at
		// fault, hence "at or just after".
		d.problems = append(d.problems, Problem{File: d.file, Line: line, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ") +
			"; fix the YAML syntax at or just after that line (indentation, a missing ':', unclosed quotes or brackets)"})
		return nil
	}
	if len(doc.Content) == 0 {
		d.problems = append(d.problems, Problem{File: d.file, Msg: "file is empty: expected a mapping of fields such as name: and description:"})
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		d.addf(root, "expected a mapping of fields (name: …, description: …), got %s", kindName(root))
		return nil
	}
	return root
}

// field is one allowed key of a mapping and where to decode its value.
type field struct {
	key    string
	decode func(d *decoder, n *yaml.Node)
}

// mapping decodes a mapping node against its allowed fields; unknown keys
// are problems naming the allowed set (and the closest one).
func (d *decoder) mapping(n *yaml.Node, what string, fields []field) map[string]*yaml.Node {
	seen := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		d.addf(n, "%s: expected a mapping, got %s", what, kindName(n))
		return seen
	}
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if prev, dup := seen[k.Value]; dup {
			d.addf(k, "%s: field %q appears twice (first on line %d)", what, k.Value, prev.Line)
			continue
		}
		seen[k.Value] = v
		idx := slices.Index(keys, k.Value)
		if idx < 0 {
			hint := ""
			if s := state.Closest(k.Value, keys); s != "" {
				hint = fmt.Sprintf("; did you mean %q?", s)
			}
			d.addf(k, "%s: unknown field %q (allowed: %s)%s", what, k.Value, strings.Join(keys, ", "), hint)
			continue
		}
		fields[idx].decode(d, v)
	}
	return seen
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "something else"
}

func str(p *string, what string) func(*decoder, *yaml.Node) {
	return func(d *decoder, n *yaml.Node) {
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			d.addf(n, "%s: expected text, got %s", what, kindName(n))
			return
		}
		*p = n.Value
	}
}

// integer decodes a whole number in [min, max].
func integer(p *int, what string, min, max int) func(*decoder, *yaml.Node) {
	return func(d *decoder, n *yaml.Node) {
		v, err := strconv.Atoi(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.addf(n, "%s: expected a whole number, got %s", what, kindName(n))
			return
		}
		if v < min {
			d.addf(n, "%s: must be at least %d, got %d", what, min, v)
			return
		}
		if v > max {
			d.addf(n, "%s: must be at most %d, got %d", what, max, v)
			return
		}
		*p = v
	}
}

// seconds decodes a finite, non-negative number of seconds that fits a
// time.Duration. NaN and infinities (strconv reads "nan" and "inf") would
// reach the runner as a nonsense sleep and make the plan impossible to
// store as JSON.
func seconds(p **float64, what string) func(*decoder, *yaml.Node) {
	return func(d *decoder, n *yaml.Node) {
		v, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			d.addf(n, "%s: expected a number of seconds, got %s", what, kindName(n))
			return
		}
		if v < 0 {
			d.addf(n, "%s: must not be negative, got %v", what, v)
			return
		}
		if v > float64(MaxSeconds) {
			d.addf(n, "%s: must be at most %d seconds, got %v", what, MaxSeconds, v)
			return
		}
		*p = &v
	}
}

func boolean(p *bool, what string) func(*decoder, *yaml.Node) {
	return func(d *decoder, n *yaml.Node) {
		var v bool
		if n.Kind != yaml.ScalarNode || n.Decode(&v) != nil {
			d.addf(n, "%s: expected true or false, got %s", what, kindName(n))
			return
		}
		*p = v
	}
}

func strList(p *[]string, what string) func(*decoder, *yaml.Node) {
	return func(d *decoder, n *yaml.Node) {
		if n.Kind != yaml.SequenceNode {
			d.addf(n, "%s: expected a list, got %s", what, kindName(n))
			return
		}
		out := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode || c.Tag == "!!null" {
				d.addf(c, "%s: every entry must be text, got %s", what, kindName(c))
				continue
			}
			out = append(out, c.Value)
		}
		*p = out
	}
}

// argv accepts a list (one argument per entry) or one string split on
// whitespace. Nothing is ever handed to a shell.
func argv(p *[]string, what string) func(*decoder, *yaml.Node) {
	return func(d *decoder, n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
			*p = strings.Fields(n.Value)
			if len(*p) == 0 {
				d.addf(n, "%s: is empty", what)
			}
			return
		}
		strList(p, what)(d, n)
		if n.Kind == yaml.SequenceNode && len(*p) == 0 {
			d.addf(n, "%s: is empty", what)
		}
	}
}
