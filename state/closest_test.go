package state

import (
	"strings"
	"testing"
)

func TestClosest(t *testing.T) {
	keys := []string{"completion", "max_iterations", "box", "box2"}
	for _, c := range []struct{ in, want string }{
		{"completoin", "completion"}, {"max_iteration", "max_iterations"}, {"bxo", "box"}, {"zzzzzz", ""},
		{strings.Repeat("a", 100), ""},
	} {
		if got := Closest(c.in, keys); got != c.want {
			t.Errorf("Closest(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
