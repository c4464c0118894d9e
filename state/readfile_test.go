package state

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReadRegularFile proves devices, FIFOs, sockets, directories and
// oversized files are refused (a FIFO without blocking, /dev/zero without
// reading it), and a regular file within the limit is read whole.
func TestReadRegularFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 1001), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(ok, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		want error
		says string
	}{
		{"/dev/zero", ErrNotRegular, "character device"},
		{fifo, ErrNotRegular, "named pipe (FIFO)"},
		{sock, ErrNotRegular, "a socket"},
		{dir, ErrNotRegular, "a directory"},
		{big, ErrTooLarge, "1001 bytes"},
		{filepath.Join(dir, "missing"), fs.ErrNotExist, "missing"},
	} {
		_, err := ReadRegularFile(tt.path, 1000)
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), tt.path) {
			t.Errorf("ReadRegularFile(%s) = %v, want %v saying %q and naming the path", tt.path, err, tt.want, tt.says)
		}
	}
	for _, p := range []string{ok, link} {
		if data, err := ReadRegularFile(p, 5); err != nil || string(data) != "hello" {
			t.Errorf("ReadRegularFile(%s) = %q, %v; want hello", p, data, err)
		}
	}
}
