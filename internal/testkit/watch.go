package testkit

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// watchEvery is how often a FileWatch reads its file: far more often than
// the files it watches are written (an engine writes state.json a few times
// an iteration), so a moment a reader could meet is not missed.
const watchEvery = 250 * time.Microsecond

// FileWatch re-reads one file until stopped and remembers every moment it
// existed but was not valid, or vanished after it first existed: the check
// that a file replaced atomically is whole at every moment a reader may
// open it.
type FileWatch struct {
	stop, done chan struct{}
	reads      atomic.Int64
	mu         sync.Mutex
	bad        []string
}

// WatchFile starts watching path. valid says what is wrong with a content
// ("" when nothing). It is asked only when the content differs from the
// last content it was asked about: the same bytes get the same answer, and
// parsing every read (a state.json of a few KB, under -race) made the
// watchers the busiest goroutines of the suite.
func WatchFile(path string, valid func(data []byte) string) *FileWatch {
	w := &FileWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop(path, valid)
	return w
}

func (w *FileWatch) loop(path string, valid func([]byte) string) {
	defer close(w.done)
	seen := false
	var last []byte
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		data, err := os.ReadFile(path)
		problem := ""
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if seen {
				problem = "the file vanished"
			}
		case err != nil:
			problem = err.Error()
		default:
			seen = true
			w.reads.Add(1)
			if last == nil || !bytes.Equal(data, last) {
				problem = valid(data)
				last = data
			}
		}
		if problem != "" {
			w.mu.Lock()
			if len(w.bad) < 10 {
				w.bad = append(w.bad, problem)
			}
			w.mu.Unlock()
		}
		time.Sleep(watchEvery)
	}
}

// Finish stops the watch and says how often the file was read whole and
// what was wrong with it (at most ten problems).
func (w *FileWatch) Finish() (reads int64, bad []string) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reads.Load(), w.bad
}
