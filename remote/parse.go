package remote

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/agent-sessions/agent-sessions/state"
)

// Problems lists everything wrong with a hosts file, one "file:line: …"
// per line, so a user fixes them all in one pass.
type Problems []string

func (ps Problems) Error() string { return strings.Join(ps, "\n") }

// hostKeys are the fields of one host, in the order the docs give them.
var hostKeys = []string{"name", "ssh", "ssh_args", "binary", "env"}

// parser walks the YAML nodes of a hosts file, collecting problems.
type parser struct {
	file     string
	problems Problems
}

func (p *parser) addf(n *yaml.Node, format string, args ...any) {
	p.problems = append(p.problems, fmt.Sprintf("%s:%d: %s", p.file, n.Line, fmt.Sprintf(format, args...)))
}

// Parse decodes a hosts file's bytes; file names it in problems.
func Parse(file string, data []byte) (*Config, error) {
	p := &parser{file: file}
	cfg := &Config{File: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Problems{fmt.Sprintf("%s: invalid YAML: %s; expected hosts: [{name: …, ssh: …}]", file, strings.TrimPrefix(err.Error(), "yaml: "))}
	}
	if len(doc.Content) == 0 {
		return cfg, nil // an empty file: only local
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.addf(root, "expected a mapping with a hosts: list, got %s", kindName(root))
		return nil, p.problems
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "hosts" {
			hint := ""
			if state.Closest(k.Value, []string{"hosts"}) != "" {
				hint = `; did you mean "hosts"?`
			}
			p.addf(k, "unknown field %q (the file holds one field, hosts)%s", k.Value, hint)
			continue
		}
		if v.Kind != yaml.SequenceNode {
			if v.Tag != "!!null" {
				p.addf(v, "hosts: expected a list of hosts, got %s", kindName(v))
			}
			continue
		}
		cfg.Hosts = p.hosts(v)
	}
	if len(p.problems) > 0 {
		return nil, p.problems
	}
	return cfg, nil
}

// hosts decodes the list, refusing duplicate and reserved names.
func (p *parser) hosts(list *yaml.Node) []Host {
	var hosts []Host
	seen := map[string]int{}
	for i, n := range list.Content {
		h, ok := p.host(i, n)
		if h.Name == "" {
			continue
		}
		if line, dup := seen[h.Name]; dup {
			p.addf(n, "hosts[%d]: name %q is used twice (first on line %d): give each host its own name", i, h.Name, line)
			continue
		}
		seen[h.Name] = n.Line
		if ok {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// host decodes one entry; ok is false when it has a problem.
func (p *parser) host(i int, n *yaml.Node) (Host, bool) {
	before := len(p.problems)
	what := fmt.Sprintf("hosts[%d]", i)
	h := Host{Binary: DefaultBinary}
	if n.Kind != yaml.MappingNode {
		p.addf(n, "%s: expected a mapping such as {name: build, ssh: me@build-box}, got %s", what, kindName(n))
		return h, false
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		// Problems name the host once its name is known.
		if k, v := n.Content[j], n.Content[j+1]; k.Value == "name" && v.Kind == yaml.ScalarNode && v.Value != Local && namePattern.MatchString(v.Value) {
			what = fmt.Sprintf("host %q", v.Value)
		}
	}
	fields := map[string]*yaml.Node{}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], n.Content[j+1]
		if prev, dup := fields[k.Value]; dup {
			p.addf(k, "%s: field %q appears twice (first on line %d)", what, k.Value, prev.Line)
			continue
		}
		if !slices.Contains(hostKeys, k.Value) {
			hint := ""
			if s := state.Closest(k.Value, hostKeys); s != "" {
				hint = fmt.Sprintf("; did you mean %q?", s)
			}
			p.addf(k, "%s: unknown field %q (allowed: %s)%s", what, k.Value, strings.Join(hostKeys, ", "), hint)
			continue
		}
		fields[k.Value] = v
	}
	h.Name = p.name(n, what, fields["name"])
	h.SSH = p.destination(n, what, fields["ssh"])
	if v := fields["ssh_args"]; v != nil {
		h.SSHArgs = p.strings(v, what+": ssh_args")
	}
	if v := fields["binary"]; v != nil {
		h.Binary = p.binary(v, what)
	}
	if v := fields["env"]; v != nil {
		h.Env = p.env(v, what)
	}
	return h, len(p.problems) == before
}

func (p *parser) name(entry *yaml.Node, what string, v *yaml.Node) string {
	if v == nil {
		p.addf(entry, "%s: name is missing: every host needs one (e.g. name: build)", what)
		return ""
	}
	s, ok := p.scalar(v, what+": name")
	if !ok {
		return ""
	}
	if s == Local {
		p.addf(v, "%s: name %q is reserved for this machine: choose another name", what, Local)
		return ""
	}
	if !namePattern.MatchString(s) {
		p.addf(v, "%s: invalid host name %q: use %s; try %q", what, s, state.SessionRule, state.SuggestSession(s))
		return ""
	}
	return s
}

func (p *parser) destination(entry *yaml.Node, what string, v *yaml.Node) string {
	if v == nil {
		p.addf(entry, "%s: ssh is missing: the destination as you would give it to ssh (user@machine, or a Host from ~/.ssh/config)", what)
		return ""
	}
	s, ok := p.scalar(v, what+": ssh")
	if !ok {
		return ""
	}
	if err := checkDestination(s); err != nil {
		p.addf(v, "%s: ssh: %v", what, err)
		return ""
	}
	return s
}

func (p *parser) binary(v *yaml.Node, what string) string {
	s, ok := p.scalar(v, what+": binary")
	if !ok {
		return DefaultBinary
	}
	if err := checkWord(s); err != nil || s == "" {
		p.addf(v, "%s: binary %q: give a command name on the host's PATH or a path there (no control characters)", what, s)
		return DefaultBinary
	}
	return s
}

func (p *parser) env(v *yaml.Node, what string) map[string]string {
	if v.Kind != yaml.MappingNode {
		p.addf(v, "%s: env: expected a mapping of NAME: value, got %s", what, kindName(v))
		return nil
	}
	env := map[string]string{}
	for j := 0; j+1 < len(v.Content); j += 2 {
		k, val := v.Content[j], v.Content[j+1]
		if !envNamePattern.MatchString(k.Value) {
			p.addf(k, "%s: env: %q is not a variable name: use letters, digits and _, not starting with a digit", what, k.Value)
			continue
		}
		if _, dup := env[k.Value]; dup {
			p.addf(k, "%s: env: %s appears twice", what, k.Value)
			continue
		}
		s, ok := p.scalar(val, what+": env: "+k.Value)
		if !ok {
			continue
		}
		if err := checkWord(s); err != nil {
			p.addf(val, "%s: env: %s: %v", what, k.Value, err)
			continue
		}
		env[k.Value] = s
	}
	return env
}

// strings decodes a list of scalars (numbers allowed: -p 2222).
func (p *parser) strings(v *yaml.Node, what string) []string {
	if v.Kind != yaml.SequenceNode {
		p.addf(v, "%s: expected a list such as [-p, \"2222\"], got %s", what, kindName(v))
		return nil
	}
	out := make([]string, 0, len(v.Content))
	for i, e := range v.Content {
		s, ok := p.scalar(e, fmt.Sprintf("%s[%d]", what, i))
		if !ok {
			continue
		}
		if err := checkWord(s); err != nil {
			p.addf(e, "%s[%d]: %v", what, i, err)
			continue
		}
		out = append(out, s)
	}
	return out
}

// scalar returns a scalar's text; a list, mapping or null is a problem.
func (p *parser) scalar(v *yaml.Node, what string) (string, bool) {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		p.addf(v, "%s: expected a string, got %s", what, kindName(v))
		return "", false
	}
	return v.Value, true
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
		return strconv.Quote(n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "something else"
}
