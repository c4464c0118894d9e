package state

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Byte sets for MatchName.
const (
	LowerDigits = "abcdefghijklmnopqrstuvwxyz0123456789"
	Letters     = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// MatchName reports whether s is 1 to max bytes long, its first byte in
// first and every other one in rest: what the regexp ^[first][rest]{0,max-1}$
// says of ASCII sets. The names of sessions, providers and definitions are
// checked this way rather than by such a regexp, whose counted repetition
// compiles into max copies of its class (~0.1 ms and ~700 allocations in
// every process of ours, at start-up, for each one).
func MatchName(s string, max int, first, rest string) bool {
	if len(s) == 0 || len(s) > max || strings.IndexByte(first, s[0]) < 0 {
		return false
	}
	for i := 1; i < len(s); i++ {
		if strings.IndexByte(rest, s[i]) < 0 {
			return false
		}
	}
	return true
}

// validSession is the contract of SPEC §4: lowercase, digits and hyphens,
// starting with a letter or digit, at most 48 characters. The name becomes a
// directory, a lock file and a tmux session, so nothing else is allowed.
func validSession(name string) bool { return MatchName(name, 48, LowerDigits, LowerDigits+"-") }

// SessionRule describes valid session names in words, for error messages.
const SessionRule = "lowercase letters, digits and hyphens, starting with a letter or digit, at most 48 characters"

// ValidateSession reports whether name is a valid session name. The error
// names the rule and suggests a valid name.
func ValidateSession(name string) error {
	if validSession(name) {
		return nil
	}
	shown := name
	if len(shown) > 60 {
		cut := 60
		for cut > 0 && !utf8.RuneStart(shown[cut]) {
			cut-- // do not split a character
		}
		shown = shown[:cut] + "…"
	}
	if name == "" {
		return fmt.Errorf("session name is empty: use %s (for example %q)", SessionRule, "my-task")
	}
	return fmt.Errorf("invalid session name %q: use %s; try %q", shown, SessionRule, SuggestSession(name))
}

// SuggestSession turns any string into a valid session name: lowercased,
// every run of other characters replaced by one hyphen, trimmed to 48.
func SuggestSession(name string) string {
	var b strings.Builder
	dash := false
scan:
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		default:
			if b.Len() > 0 && !dash {
				b.WriteByte('-')
				dash = true
			}
		}
		if b.Len() >= 48 {
			break scan
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 48 {
		s = strings.TrimRight(s[:48], "-")
	}
	if s == "" {
		s = "session"
	}
	return s
}

// Closest returns the name within edit distance 2 of s, if any: the
// "did you mean" of every unknown field, variable, argument and host (it
// lives here, beside the name rules, so every package of ours can use it).
func Closest(s string, keys []string) string {
	best, bestD := "", 3
	for _, k := range keys {
		if dist := editDistance(s, k); dist < bestD {
			best, bestD = k, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// TmuxNameOf is the tmux session name of a session in state st: the name
// its engine recorded, else the one TmuxName gives by its number of stages
// — as the engine names it, so a one-stage pipeline is loop-<session>
// (a foreground run records none).
func TmuxNameOf(st *State) string {
	if st.TmuxSession != "" {
		return st.TmuxSession
	}
	return TmuxName(st.Session, len(st.Stages) > 1)
}
