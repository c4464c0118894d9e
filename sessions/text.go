package sessions

import (
	"strings"
	"unicode/utf8"
)

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return validUTF8Prefix(s[:n]) + "…"
}

// tailText keeps the last limit bytes of s (the most recent output), with a
// note when it cut.
func tailText(s string, limit int) (string, bool) {
	if len(s) <= limit {
		return s, false
	}
	cut := validUTF8Suffix(s[len(s)-limit:])
	if i := strings.IndexByte(cut, '\n'); i >= 0 && i < 200 {
		cut = cut[i+1:]
	}
	return "[… earlier output cut …]\n" + cut, true
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
