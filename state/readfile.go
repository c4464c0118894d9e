package state

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Limits for files read from outside the engine: what a user, an agent or
// another program wrote and could have made anything.
const (
	// DefinitionLimit bounds a stage or pipeline YAML file and a prompt.
	DefinitionLimit = 1 << 20
	// StatusLimit bounds an agent's status.json.
	StatusLimit = 64 << 10
	// HandoffLimit bounds start_session's handoff file (it carries the
	// server's environment).
	HandoffLimit = 4 << 20
)

var (
	// ErrNotRegular means a path names something other than a regular file:
	// a directory, a device (/dev/zero), a FIFO, a socket.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge means a file is larger than the limit it is read under.
	ErrTooLarge = errors.New("file too large")
)

// ReadRegularFile reads the whole of path, which must be a regular file of
// at most max bytes. Anything else is refused with an error naming the path
// and what it is, so a device never fills memory, a FIFO never blocks the
// reader, and a huge file is never loaded: ErrNotRegular or ErrTooLarge
// (errors.Is), or the open error (fs.ErrNotExist etc.) unchanged underneath.
func ReadRegularFile(path string, max int64) ([]byte, error) {
	f, size, err := OpenRegularFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > max {
		return nil, tooLarge(path, size, max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	// The file may have grown since the stat.
	if int64(len(data)) > max {
		return nil, tooLarge(path, int64(len(data)), max)
	}
	return data, nil
}

func tooLarge(path string, size, max int64) error {
	return fmt.Errorf("%w: %s is too large (%d bytes or more; limit %d)", ErrTooLarge, path, size, max)
}

// OpenRegularFile opens path for reading only if it is a regular file, and
// returns it with its size. The stat before opening refuses a FIFO or
// device without touching it; O_NONBLOCK makes the open itself return at
// once should a FIFO be swapped in after the stat (opening one for reading
// blocks until a writer appears); the fstat after opening checks what was
// actually opened. On a regular file O_NONBLOCK changes nothing.
func OpenRegularFile(path string) (*os.File, int64, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, 0, err
	}
	if err := regular(path, info); err != nil {
		return nil, 0, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, err
	}
	info, err = f.Stat()
	if err == nil {
		err = regular(path, info)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, info.Size(), nil
}

// regular refuses anything but a regular file, saying what it is.
func regular(path string, info fs.FileInfo) error {
	m := info.Mode()
	if m.IsRegular() {
		return nil
	}
	what := "not a regular file"
	switch {
	case m.IsDir():
		what = "a directory"
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m&fs.ModeCharDevice != 0:
		what = "a character device"
	case m&fs.ModeDevice != 0:
		what = "a block device"
	}
	return fmt.Errorf("%w: %s is %s; only a regular file can be read here", ErrNotRegular, path, what)
}
