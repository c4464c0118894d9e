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

// watchEvery is how often a polling FileWatch reads its file (where the
// kernel cannot tell it of changes): far more often than the files it
// watches are written (an engine writes state.json a few times an
// iteration), so a moment a reader could meet is rarely missed.
const watchEvery = 250 * time.Microsecond

// FileWatch re-reads one file until stopped and remembers every moment it
// existed but was not valid, or vanished after it first existed: the check
// that a file replaced atomically is whole at every moment a reader may
// open it. On Linux the kernel (inotify) tells it of every change of the
// file's name in its directory, so it reads the file after each change
// instead of busy-polling (eight watches polling every 250 µs under -race
// were the suite's busiest goroutines), and it also catches, every time
// rather than by luck of timing, a write into the file in place (the torn
// moment a reader could meet) and a removal or rename of the file.
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
	r := &fileReader{w: w, path: path, valid: valid}
	go func() {
		defer close(w.done)
		w.loop(r)
	}()
	return w
}

// poll reads the file every watchEvery until stopped.
func (w *FileWatch) poll(r *fileReader) {
	for !w.stopped() {
		r.read()
		time.Sleep(watchEvery)
	}
}

func (w *FileWatch) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// note records a problem (the first ten).
func (w *FileWatch) note(problem string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.bad) < 10 {
		w.bad = append(w.bad, problem)
	}
}

// fileReader reads the watched file once per call and notes what is wrong.
type fileReader struct {
	w     *FileWatch
	path  string
	valid func([]byte) string
	seen  bool
	last  []byte
}

func (r *fileReader) read() {
	data, err := os.ReadFile(r.path)
	problem := ""
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if r.seen {
			problem = "the file vanished"
		}
	case err != nil:
		problem = err.Error()
	default:
		r.seen = true
		r.w.reads.Add(1)
		if r.last == nil || !bytes.Equal(data, r.last) {
			problem = r.valid(data)
			r.last = data
		}
	}
	if problem != "" {
		r.w.note(problem)
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
