package engine

import (
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// sessionLog writes the transcript to the pane and appends it to
// session.log. Pane write errors are ignored (tmux may be gone); the log is
// reopened if the run directory was removed under the session.
type sessionLog struct {
	mu   sync.Mutex
	path string
	pane io.Writer
	f    *os.File
}

func newSessionLog(path string, pane io.Writer) *sessionLog {
	l := &sessionLog{path: path, pane: pane}
	l.open()
	return l
}

func (l *sessionLog) open() {
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err == nil {
		l.f = f
	}
}

func (l *sessionLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pane != nil {
		l.pane.Write(p)
	}
	if l.f != nil {
		if _, err := l.f.Write(p); err != nil || l.gone() {
			l.f.Close()
			l.f = nil
			l.open()
			if l.f != nil {
				l.f.Write(p)
			}
		}
	}
	return len(p), nil
}

// gone reports whether the log file was removed (its inode has no links).
func (l *sessionLog) gone() bool {
	info, err := l.f.Stat()
	if err != nil {
		return true
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Nlink == 0
	}
	return false
}

func (l *sessionLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	return l.f.Close()
}
