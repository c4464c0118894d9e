package engine

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestPaneWriterNeverBlocks: a pane nobody reads (a pipe, like a pty whose
// tmux server is stopped) never blocks Write; what did not fit is dropped
// and, once the pane drains, a note says how much.
func TestPaneWriterNeverBlocks(t *testing.T) {
	t.Parallel()
	r, w := io.Pipe()
	p := NewPaneWriter(w, 1000)
	line := strings.Repeat("x", 99) + "\n"
	for range 100 { // 10 000 bytes into a 1000-byte buffer, nobody reading
		if n, err := p.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	got := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		got <- string(b)
	}()
	p.Close(10 * time.Second)
	w.Close()
	out := <-got
	if !strings.Contains(out, "bytes not shown here") || !strings.Contains(out, "session.log has everything") {
		t.Errorf("no drop note in %q", out)
	}
	shown := strings.Count(out, line)
	// At most one chunk in flight (the writer took up to the 1000-byte limit
	// before the pane stopped draining; how much depends on when its
	// goroutine ran) plus a full pending buffer: 20 lines of 100 bytes.
	if shown == 0 || shown > 20 {
		t.Errorf("%d lines shown, want 1 to 20", shown)
	}
	if p.Write([]byte("late")); strings.Contains(out, "late") {
		t.Error("a write after Close reached the pane")
	}
}

// TestPaneWriterKeepsEverythingWhenDrained: a pane that keeps up gets every
// byte in order, and no note.
func TestPaneWriterKeepsEverythingWhenDrained(t *testing.T) {
	t.Parallel()
	// Close waits for the writer goroutine, so reading sink after it is safe.
	sink := &strings.Builder{}
	p := NewPaneWriter(sink, PaneBuffer)
	var want strings.Builder
	for i := range 1000 {
		s := strings.Repeat(string(rune('a'+i%26)), 10) + "\n"
		want.WriteString(s)
		p.Write([]byte(s))
	}
	p.Close(10 * time.Second)
	if got := sink.String(); got != want.String() {
		t.Errorf("pane got %d bytes, want %d in order", len(got), want.Len())
	}
}
