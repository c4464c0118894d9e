package engine

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// Limits that keep a misbehaving agent (one that prints 100 MB) from
// filling the disk, the pane or the engine's memory.
const (
	// OutputHeadLimit is how much of an iteration's output output.md keeps
	// from the start; OutputTailLimit how much of the end is kept after a
	// truncation note.
	OutputHeadLimit = 8 << 20
	OutputTailLimit = 64 << 10
	// TranscriptLimit is how much of one iteration the pane and session.log
	// show.
	TranscriptLimit = 1 << 20
	// maxSignalLine bounds the line the signal scanner keeps in memory.
	maxSignalLine = 4096
)

// Signals are what the engine reads from an agent's output.
type Signals struct {
	Plateau      bool
	PlateauSeen  bool
	Reasoning    string
	Complete     bool // <promise>COMPLETE</promise>
	OutputBytes  int64
	OutputCapped bool
}

// CompletionSignal ends a beads-empty stage when an agent prints it.
const CompletionSignal = "<promise>COMPLETE</promise>"

// outputSink receives an agent's final text: it keeps the head (and the
// tail) in output.md and scans every line for signals as it streams by, so
// nothing needs the whole output in memory. Safe for concurrent writes.
type outputSink struct {
	mu      sync.Mutex
	f       *os.File
	err     error
	written int64
	total   int64
	tail    []byte // ring of the last OutputTailLimit bytes once capped
	capped  bool

	parse   OutputParse
	line    []byte
	lineCut bool
	sig     Signals
}

func newOutputSink(path string, parse OutputParse) (*outputSink, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	if parse == nil {
		parse = DefaultOutputParse()
	}
	return &outputSink{f: f, parse: parse}, nil
}

func (s *outputSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total += int64(len(p))
	if !s.capped {
		room := OutputHeadLimit - s.written
		chunk := p
		if int64(len(chunk)) > room {
			chunk = chunk[:room]
			s.capped = true
		}
		if s.err == nil {
			n, err := s.f.Write(chunk)
			s.written += int64(n)
			s.err = err
		}
		if s.capped {
			s.keepTail(p[len(chunk):])
		}
	} else {
		s.keepTail(p)
	}
	s.scan(p)
	return len(p), nil
}

func (s *outputSink) keepTail(p []byte) {
	s.tail = append(s.tail, p...)
	if over := len(s.tail) - OutputTailLimit; over > 0 {
		s.tail = append(s.tail[:0], s.tail[over:]...)
	}
}

// scan splits the stream into lines and looks for signals in each.
func (s *outputSink) scan(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := maxSignalLine - len(s.line); room > 0 {
			if len(chunk) > room {
				s.line = append(s.line, chunk[:room]...)
				s.lineCut = true
			} else {
				s.line = append(s.line, chunk...)
			}
		} else {
			s.lineCut = true
		}
		if bytes.Contains(chunk, []byte(CompletionSignal)) {
			s.sig.Complete = true
		}
		if i < 0 {
			return
		}
		s.endLine()
		p = p[i+1:]
	}
}

func (s *outputSink) endLine() {
	line := strings.TrimRight(string(s.line), "\r")
	if strings.Contains(line, CompletionSignal) {
		s.sig.Complete = true
	}
	if v, ok := lineValue(line, s.parse["plateau"]); ok {
		s.sig.PlateauSeen = true
		s.sig.Plateau = truthy(v)
	}
	if v, ok := lineValue(line, s.parse["reasoning"]); ok {
		s.sig.Reasoning = v
	}
	s.line = s.line[:0]
	s.lineCut = false
}

// lineValue matches "KEY: value" at the start of a line, the key compared
// case-insensitively (markdown bold around the key is tolerated).
func lineValue(line, key string) (string, bool) {
	if key == "" {
		return "", false
	}
	l := strings.TrimLeft(line, "*_ ")
	if len(l) < len(key)+1 || !strings.EqualFold(l[:len(key)], key) {
		return "", false
	}
	rest := strings.TrimLeft(l[len(key):], "*_")
	if !strings.HasPrefix(rest, ":") {
		return "", false
	}
	return strings.TrimSpace(strings.Trim(strings.TrimSpace(rest[1:]), "*_")), true
}

func truthy(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	v = strings.TrimRight(v, ".!")
	return v == "true" || v == "yes"
}

// Close finishes output.md (with the truncation note and the tail when the
// output was capped) and returns the signals.
func (s *outputSink) Close() (Signals, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.line) > 0 {
		s.endLine()
	}
	if s.capped && s.err == nil {
		dropped := s.total - s.written - int64(len(s.tail))
		note := fmt.Sprintf("\n\n[agent-sessions: output truncated: %d bytes in all; the first %d and the last %d are kept, %d dropped]\n\n",
			s.total, s.written, len(s.tail), dropped)
		_, s.err = io.WriteString(s.f, note)
		if s.err == nil {
			_, s.err = s.f.Write(s.tail)
		}
	}
	if err := s.f.Close(); s.err == nil {
		s.err = err
	}
	s.sig.OutputBytes = s.total
	s.sig.OutputCapped = s.capped
	return s.sig, s.err
}

// cappedWriter passes at most limit bytes to w, then one note; it never
// returns an error (the pane may be gone: tmux killed, terminal closed).
type cappedWriter struct {
	mu    sync.Mutex
	w     io.Writer
	limit int64
	n     int64
	noted bool
	note  string
}

func newCappedWriter(w io.Writer, limit int64, note string) *cappedWriter {
	return &cappedWriter{w: w, limit: limit, note: note}
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n >= c.limit {
		if !c.noted {
			c.noted = true
			c.w.Write([]byte(c.note))
		}
		return len(p), nil
	}
	chunk := p
	if room := c.limit - c.n; int64(len(chunk)) > room {
		chunk = chunk[:room]
	}
	c.n += int64(len(chunk))
	c.w.Write(chunk)
	if len(chunk) < len(p) && !c.noted {
		c.noted = true
		c.w.Write([]byte(c.note))
	}
	return len(p), nil
}
