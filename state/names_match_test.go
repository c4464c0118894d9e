package state

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// nameCorpus is strings at and around the edges of the name rules: empty,
// 1, 48, 49, 64 and 65 bytes, every ASCII byte first and later, non-ASCII
// and invalid UTF-8, a trailing newline (which $ does not match), and
// random strings over a small alphabet.
func nameCorpus() []string {
	c := []string{"", "a", "-", "-a", "a-", "a.b", "a_b", "A", "aB", "a\n", "a\x00", "é", "aé", "a\xff",
		strings.Repeat("a", 47), strings.Repeat("a", 48), strings.Repeat("a", 49),
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 65),
		"a" + strings.Repeat("-", 47), "a" + strings.Repeat("-", 48)}
	for b := range 256 {
		c = append(c, string([]byte{byte(b)}), "a"+string([]byte{byte(b)}))
	}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "aZ09-._/ \né"
	for range 2000 {
		var s strings.Builder
		for range r.IntN(70) {
			s.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		c = append(c, s.String())
	}
	return c
}

// The hand-written checks say exactly what the regexps they replace said.
func TestMatchNameIsTheRegexp(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		re    *regexp.Regexp
		match func(string) bool
	}{
		{"session", regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,47}$`), validSession},
		{"provider", regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`), providerName},
		{"definition", regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`), func(s string) bool {
			return MatchName(s, 64, Letters+"0123456789", Letters+"0123456789._-")
		}},
	}
	for _, s := range nameCorpus() {
		for _, c := range cases {
			if got, want := c.match(s), c.re.MatchString(s); got != want {
				t.Errorf("%s %q: %v, the regexp says %v", c.name, s, got, want)
			}
		}
	}
}
