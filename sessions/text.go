package sessions

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The text helpers below bound what a session's files and panes hand to
// Claude; tools shapes its answers with the same ones.

// Truncate keeps the first n bytes of s (whole UTF-8 characters), marking a
// cut with "…".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return validUTF8Prefix(s[:n]) + "…"
}

// TailText keeps the last limit bytes of s (the most recent output), with a
// note when it cut.
func TailText(s string, limit int) (string, bool) {
	if len(s) <= limit {
		return s, false
	}
	cut := validUTF8Suffix(s[len(s)-limit:])
	if i := strings.IndexByte(cut, '\n'); i >= 0 && i < 200 {
		cut = cut[i+1:]
	}
	return "[… earlier output cut …]\n" + cut, true
}

// BoundText keeps text under limit, cutting the middle and saying so.
func BoundText(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	note := fmt.Sprintf("\n[… %d bytes cut to keep this under %d KB …]\n", len(s)-limit, limit>>10)
	head := limit / 3
	tail := limit - head - len(note)
	return validUTF8Prefix(s[:head]) + note + validUTF8Suffix(s[len(s)-tail:])
}

func validUTF8Prefix(s string) string {
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

func validUTF8Suffix(s string) string {
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[1:]
	}
	return s
}
