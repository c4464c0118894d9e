package engine

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"
)

// PaneBuffer is how much output a PaneWriter holds for a pane that is not
// draining before it drops (and says it dropped).
const PaneBuffer = 256 << 10

// PaneWriter passes the engine's output on to its tmux pane without ever
// making the engine wait for it. The engine's stdout is the pane's pty: when
// the tmux server is stopped or hung nothing reads the pty, and a plain
// write blocks for ever — past the iteration's timeout and past SIGTERM.
// session.log is the record of everything; the pane is only a view, so what
// does not fit in the buffer is dropped and a note says how much.
//
// One goroutine, owned by the PaneWriter, does the writing; it exits after
// Close once the buffer is written (a write blocked on a dead pane keeps it
// until the process exits, which Close does not wait for beyond its bound).
type PaneWriter struct {
	w     io.Writer
	limit int

	mu       sync.Mutex
	pending  bytes.Buffer
	dropped  int64
	dropping bool // drop until the writer has taken what is pending: keeps the order
	closed   bool
	wake     chan struct{}
	done     chan struct{}
}

// NewPaneWriter starts a PaneWriter onto w that holds at most limit bytes.
func NewPaneWriter(w io.Writer, limit int) *PaneWriter {
	p := &PaneWriter{w: w, limit: limit, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go p.loop()
	return p
}

// Write queues b for the pane, or drops it when the pane is not keeping up.
// It never blocks on the pane and never fails.
func (p *PaneWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	switch {
	case p.closed:
	case p.dropping || p.pending.Len()+len(b) > p.limit:
		p.dropping = true
		p.dropped += int64(len(b))
	default:
		p.pending.Write(b)
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

func (p *PaneWriter) loop() {
	defer close(p.done)
	for {
		<-p.wake
		p.mu.Lock()
		chunk := bytes.Clone(p.pending.Bytes())
		p.pending.Reset()
		dropped := p.dropped
		p.dropped, p.dropping = 0, false
		closed := p.closed
		p.mu.Unlock()
		if len(chunk) > 0 {
			p.w.Write(chunk)
		}
		if dropped > 0 {
			fmt.Fprintf(p.w, "\n[agent-sessions: %d bytes not shown here: the pane was not keeping up (is tmux stopped?); session.log has everything]\n", dropped)
		}
		if closed {
			return
		}
	}
}

// Close writes out what is pending, waiting at most wait for the pane, and
// stops the PaneWriter; later writes are discarded.
func (p *PaneWriter) Close(wait time.Duration) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
	}
}
