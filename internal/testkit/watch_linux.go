//go:build linux

package testkit

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// watchTick is how often an inotify watch reads its file when no change
// woke it: a cheap safety net under the events, not the detector.
const watchTick = 5 * time.Millisecond

// watchMask: every change of a name in the file's directory, and the
// directory's own end.
const watchMask = syscall.IN_CREATE | syscall.IN_MODIFY | syscall.IN_CLOSE_WRITE | syscall.IN_MOVED_TO |
	syscall.IN_MOVED_FROM | syscall.IN_DELETE | syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF

// loop reads the file after every change in its directory (inotify), and
// every watchTick otherwise; it polls until the directory exists, and
// throughout where inotify is unavailable.
func (w *FileWatch) loop(r *fileReader) {
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		w.poll(r)
		return
	}
	// A non-blocking fd goes to the runtime poller: Read honours deadlines.
	f := os.NewFile(uintptr(fd), "inotify")
	defer f.Close()
	dir, base := filepath.Dir(r.path), filepath.Base(r.path)
	watching := false
	buf := make([]byte, 64<<10)
	for !w.stopped() {
		if !watching {
			_, err := syscall.InotifyAddWatch(fd, dir, watchMask)
			watching = err == nil
		}
		r.read()
		if !watching {
			time.Sleep(watchEvery)
			continue
		}
		f.SetReadDeadline(time.Now().Add(watchTick))
		n, err := f.Read(buf)
		if err != nil {
			continue // the tick: read again
		}
		if !w.events(buf[:n], base) {
			watching = false // the directory went away: poll until it is back
		}
	}
}

// events notes what the kernel's events say about the file named base: a
// write into it in place (a reader opening it then meets a torn file — an
// atomic replace writes a temporary file and renames it over) and its
// removal or rename away. It reports whether the directory is still
// watched.
func (w *FileWatch) events(buf []byte, base string) bool {
	watched := true
	for len(buf) >= syscall.SizeofInotifyEvent {
		mask := binary.NativeEndian.Uint32(buf[4:8])
		end := syscall.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(buf[12:16]))
		if end > len(buf) {
			break
		}
		name := strings.TrimRight(string(buf[syscall.SizeofInotifyEvent:end]), "\x00")
		buf = buf[end:]
		if mask&(syscall.IN_IGNORED|syscall.IN_DELETE_SELF|syscall.IN_MOVE_SELF) != 0 {
			watched = false
		}
		if name != base {
			continue
		}
		if mask&syscall.IN_MODIFY != 0 {
			w.note("the file was written in place, not replaced atomically (a reader could meet it torn)")
		}
		if mask&(syscall.IN_DELETE|syscall.IN_MOVED_FROM) != 0 {
			w.note("the file vanished")
		}
	}
	return watched
}
