package engine

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sinkSignals writes chunks through an output sink and returns its signals
// and output.md.
func sinkSignals(t *testing.T, parse OutputParse, chunks ...string) (Signals, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "output.md")
	s, err := newOutputSink(path, parse)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chunks {
		if n, err := s.Write([]byte(c)); n != len(c) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	sig, err := s.Close()
	if err != nil {
		t.Fatal(err)
	}
	return sig, readFile(t, path)
}

func TestOutputSinkSignals(t *testing.T) {
	tests := []struct {
		name          string
		parse         OutputParse
		chunks        []string
		wantPlateau   bool
		wantSeen      bool
		wantReasoning string
		wantComplete  bool
	}{
		{name: "vote", chunks: []string{"did things\nPLATEAU: true\nREASONING: nothing left\n"}, wantPlateau: true, wantSeen: true, wantReasoning: "nothing left"},
		{name: "yes", chunks: []string{"PLATEAU: yes\n"}, wantPlateau: true, wantSeen: true},
		{name: "key is case-insensitive", chunks: []string{"plateau: TRUE\nreasoning: lower\n"}, wantPlateau: true, wantSeen: true, wantReasoning: "lower"},
		{name: "markdown bold", chunks: []string{"**PLATEAU:** true\n**REASONING**: bold\n"}, wantPlateau: true, wantSeen: true, wantReasoning: "bold"},
		{name: "indented", chunks: []string{"    PLATEAU: true\n"}, wantPlateau: true, wantSeen: true},
		{name: "trailing punctuation and CRLF", chunks: []string{"PLATEAU: true.\r\n"}, wantPlateau: true, wantSeen: true},
		{name: "false", chunks: []string{"PLATEAU: false\n"}, wantSeen: true},
		{name: "the template's placeholder is not a vote", chunks: []string{"End with:\n    PLATEAU: <true|false>\n    REASONING: <one line saying why>\n"},
			wantSeen: true, wantReasoning: "<one line saying why>"},
		{name: "the last line wins", chunks: []string{"PLATEAU: true\n...\nPLATEAU: false\n"}, wantSeen: true},
		{name: "a later vote overrides the echoed template", chunks: []string{"PLATEAU: <true|false>\nwork\nPLATEAU: true\n"}, wantPlateau: true, wantSeen: true},
		{name: "only at line start", chunks: []string{"I would say PLATEAU: true here\n"}},
		{name: "another key with the same prefix", chunks: []string{"PLATEAUED: true\nPLATEAU true\n"}},
		{name: "split across writes", chunks: []string{"work\nPLA", "TEAU: t", "rue\nREASON", "ING: split\n"}, wantPlateau: true, wantSeen: true, wantReasoning: "split"},
		{name: "no final newline", chunks: []string{"work\nPLATEAU: true"}, wantPlateau: true, wantSeen: true},
		{name: "custom keys", parse: OutputParse{"plateau": "DONE", "reasoning": "WHY"}, chunks: []string{"PLATEAU: false\nDONE: yes\nWHY: custom\n"},
			wantPlateau: true, wantSeen: true, wantReasoning: "custom"},
		{name: "completion signal", chunks: []string{"all done <promise>COMPLETE</promise>\n"}, wantComplete: true},
		{name: "completion signal split across writes", chunks: []string{"<promise>COMP", "LETE</promise>"}, wantComplete: true},
		{name: "no signals", chunks: []string{"just text\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig, out := sinkSignals(t, tt.parse, tt.chunks...)
			if sig.Plateau != tt.wantPlateau || sig.PlateauSeen != tt.wantSeen || sig.Reasoning != tt.wantReasoning || sig.Complete != tt.wantComplete {
				t.Errorf("signals = %+v, want plateau %v seen %v reasoning %q complete %v", sig, tt.wantPlateau, tt.wantSeen, tt.wantReasoning, tt.wantComplete)
			}
			if want := strings.Join(tt.chunks, ""); out != want {
				t.Errorf("output.md = %q, want %q", out, want)
			}
			if sig.OutputBytes != int64(len(out)) || sig.OutputCapped {
				t.Errorf("OutputBytes %d capped %v, want %d false", sig.OutputBytes, sig.OutputCapped, len(out))
			}
		})
	}
}

// TestOutputSinkCapsTheFile floods the sink past its head limit: output.md
// keeps the head, a note and the tail (where the signals are), and the
// signals are still found.
func TestOutputSinkCapsTheFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "output.md")
	s, err := newOutputSink(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	line := bytes.Repeat([]byte("0123456789abcdef"), 4)
	line[len(line)-1] = '\n'
	chunk := bytes.Repeat(line, 1024) // 64 KiB
	total := 0
	for total < OutputHeadLimit+2*OutputTailLimit+12345 {
		s.Write(chunk[:len(chunk)-(total%7)]) // uneven writes
		total += len(chunk) - (total % 7)
	}
	end := "\nREASONING: flooded\nPLATEAU: true\n"
	s.Write([]byte(end))
	total += len(end)
	sig, err := s.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !sig.Plateau || sig.Reasoning != "flooded" || !sig.OutputCapped || sig.OutputBytes != int64(total) {
		t.Errorf("signals = %+v, want the plateau vote, capped, %d bytes", sig, total)
	}
	info, _ := os.Stat(path)
	if limit := int64(OutputHeadLimit + OutputTailLimit + 512); info.Size() > limit || info.Size() < OutputHeadLimit {
		t.Errorf("output.md is %d bytes, want between %d and %d", info.Size(), OutputHeadLimit, limit)
	}
	data := readFile(t, path)
	if !strings.HasSuffix(data, end) {
		t.Errorf("output.md does not end with the agent's last lines: %q", data[len(data)-200:])
	}
	if !strings.Contains(data, "[agent-sessions: output truncated:") {
		t.Error("output.md has no truncation note")
	}
	if !strings.HasPrefix(data, string(line)) {
		t.Error("output.md does not start with the agent's first line")
	}
}

func TestCappedWriter(t *testing.T) {
	var b bytes.Buffer
	w := newCappedWriter(&b, 10, "[cut]")
	for _, s := range []string{"12345", "67890abc", "more", "and more"} {
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got, want := b.String(), "1234567890[cut]"; got != want {
		t.Errorf("capped = %q, want %q", got, want)
	}
}
