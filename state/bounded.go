package state

// This stands in for the ReadRegularFile another branch (hostile files)
// brings; it goes when that lands.

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// ReadRegularFile reads a regular file of at most max bytes; anything else
// (a FIFO, a device, a huge file) is refused rather than read.
func ReadRegularFile(path string, max int64) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if info.Size() > max {
		return nil, fmt.Errorf("%s is too large (%d bytes; limit %d)", path, info.Size(), max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is too large (limit %d bytes)", path, max)
	}
	return data, nil
}
