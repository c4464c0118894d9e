package state

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// sessionPattern is the contract of SPEC §4: lowercase, digits and hyphens,
// starting with a letter or digit, at most 48 characters. The name becomes a
// directory, a lock file and a tmux session, so nothing else is allowed.
var sessionPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,47}$`)

// SessionRule describes valid session names in words, for error messages.
const SessionRule = "lowercase letters, digits and hyphens, starting with a letter or digit, at most 48 characters"

// ValidateSession reports whether name is a valid session name. The error
// names the rule and suggests a valid name.
func ValidateSession(name string) error {
	if sessionPattern.MatchString(name) {
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
