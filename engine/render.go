package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/agent-sessions/agent-sessions/state"
)

// Variables every prompt may use (SPEC §6). ${INPUTS.<stage>} is also
// allowed for any earlier stage of a pipeline.
var promptVariables = []string{
	"SESSION", "SESSION_NAME", "ITERATION", "INDEX", "MAX_ITERATIONS", "STAGE",
	"PERSPECTIVE", "ITEM", "OUTPUT", "PROGRESS", "PROGRESS_FILE", "STATUS",
	"RUN_DIR", "CONTEXT", "INPUTS", "ANSWER", "WORKTREE", "BRANCH",
}

// PromptVariables returns the names a prompt may use, without ${}.
func PromptVariables() []string { return slices.Clone(promptVariables) }

// Render substitutes ${NAME} in tmpl with vars[NAME]. It is a single pass of
// literal text replacement: substituted text is never scanned again and
// nothing is evaluated, so a value containing ${X}, $(cmd) or backticks
// reaches the agent byte for byte. $${ is an escape for a literal ${.
// Unknown names are left as they are (Check reports them).
func Render(tmpl string, vars map[string]string) string {
	var b strings.Builder
	b.Grow(len(tmpl) + 256)
	for {
		i := strings.Index(tmpl, "${")
		if i < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		if i > 0 && tmpl[i-1] == '$' {
			// $${NAME}: drop one '$', keep the rest literally.
			b.WriteString(tmpl[:i-1])
			b.WriteString("${")
			tmpl = tmpl[i+2:]
			continue
		}
		b.WriteString(tmpl[:i])
		rest := tmpl[i+2:]
		j := strings.IndexByte(rest, '}')
		if j < 0 || !validVarName(rest[:j]) {
			b.WriteString("${")
			tmpl = rest
			continue
		}
		if v, ok := vars[rest[:j]]; ok {
			b.WriteString(v)
		} else {
			b.WriteString(tmpl[i : i+2+j+1])
		}
		tmpl = rest[j+1:]
	}
}

func validVarName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// VarRef is a ${NAME} found in a template.
type VarRef struct {
	Name string
	Line int
}

// References lists the ${NAME} references of a template, with lines.
func References(tmpl string) []VarRef {
	var refs []VarRef
	line := 1
	for i := 0; i < len(tmpl); i++ {
		switch {
		case tmpl[i] == '\n':
			line++
		case tmpl[i] == '$' && i+1 < len(tmpl) && tmpl[i+1] == '{':
			if i > 0 && tmpl[i-1] == '$' {
				continue
			}
			end := strings.IndexByte(tmpl[i+2:], '}')
			if end < 0 {
				continue
			}
			name := tmpl[i+2 : i+2+end]
			if validVarName(name) {
				refs = append(refs, VarRef{Name: name, Line: line})
			}
		}
	}
	return refs
}

// CheckTemplate reports unknown variables in tmpl. earlier lists the stages
// whose outputs ${INPUTS.<name>} may refer to.
func CheckTemplate(file string, lineOffset int, tmpl string, earlier []string) Problems {
	var ps Problems
	for _, r := range References(tmpl) {
		if slices.Contains(promptVariables, r.Name) {
			continue
		}
		if name, ok := strings.CutPrefix(r.Name, "INPUTS."); ok {
			if slices.Contains(earlier, name) {
				continue
			}
			msg := fmt.Sprintf("${%s} refers to stage %q, which is not an earlier stage of this pipeline", r.Name, name)
			if len(earlier) > 0 {
				msg += fmt.Sprintf(" (earlier stages: %s)", strings.Join(earlier, ", "))
			}
			ps = append(ps, Problem{File: file, Line: lineOffset + r.Line, Msg: msg})
			continue
		}
		msg := fmt.Sprintf("unknown variable ${%s} (known: %s); write $${%s} for a literal ${%s}", r.Name, strings.Join(promptVariables, " "), r.Name, r.Name)
		if s := state.Closest(r.Name, promptVariables); s != "" {
			msg = fmt.Sprintf("unknown variable ${%s}; did you mean ${%s}? (write $${%s} for a literal ${%s})", r.Name, s, r.Name, r.Name)
		}
		ps = append(ps, Problem{File: file, Line: lineOffset + r.Line, Msg: msg})
	}
	return ps
}
