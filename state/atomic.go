package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
)

// WriteFileAtomic replaces path with data so that a reader, or a crash at
// any moment, sees either the old content or the new, never a mix: the data
// goes to a temporary file in the same directory, is fsynced, and is renamed
// over path. A missing parent directory is created.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return writeFileAtomic(path, data, perm, true, true)
}

// fsyncs counts this process's fsyncs (see Fsyncs).
var fsyncs atomic.Int64

// Fsyncs is how many fsyncs this package made in this process: the
// benchmarks report it per iteration, a figure no load on the machine
// changes (SPEC §14: two per iteration).
func Fsyncs() int64 { return fsyncs.Load() }

// syncHook, when set (by tests), is told the name of every file synced.
var syncHook func(name string)

// syncFile fsyncs f, counting it.
func syncFile(f *os.File) error {
	fsyncs.Add(1)
	if syncHook != nil {
		syncHook(f.Name())
	}
	return f.Sync()
}

// syncDir fsyncs a directory, so that a file created or renamed in it is
// durable along with its content.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := syncFile(d); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// writeFileAtomic is WriteFileAtomic; mkdir says whether a missing parent
// directory is made. The Store never makes one: its run directory missing
// means someone removed it, and writing on would hide that. durable says
// whether the data is fsynced before the rename: the Store's state.json
// need not be (it is rebuilt from the fsynced events.jsonl), so the
// engine's iteration pays for the log's fsync only.
func writeFileAtomic(path string, data []byte, perm fs.FileMode, mkdir, durable bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if mkdir && errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		f, err = os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if durable {
		if err := syncFile(f); err != nil {
			return fail(err)
		}
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// AppendFile appends data to path with a single write, creating the file
// (and its directory) when missing. Each call opens the file anew, so it
// never writes into an unlinked inode. A write cut short (a full disk) is
// undone: the file is truncated back to its old length, so no torn line is
// left for the next append to be glued to. Callers are single writers
// (the engine holds the session's lock).
func AppendFile(path string, data []byte) error {
	return appendFile(path, data, true, false)
}

// appendFile is AppendFile; mkdir as for writeFileAtomic. durable: the data
// is fsynced before appendFile returns, and so is the directory when the
// append created the file (else a crash could lose the file's name with
// its content safely on disk).
func appendFile(path string, data []byte, mkdir, durable bool) error {
	created := false
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		created = true
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	}
	if mkdir && errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
		}
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	}
	if err != nil {
		return fmt.Errorf("append %s: %w", path, err)
	}
	var size int64 = -1
	if info, err := f.Stat(); err == nil {
		size = info.Size()
	}
	if n, err := f.Write(data); err != nil {
		if n > 0 && size >= 0 {
			f.Truncate(size)
		}
		f.Close()
		return fmt.Errorf("append %s: %w", path, err)
	}
	if durable {
		if err := syncFile(f); err != nil {
			f.Close()
			return fmt.Errorf("append %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("append %s: %w", path, err)
	}
	if durable && created {
		return syncDir(filepath.Dir(path))
	}
	return nil
}

// MoveAside renames path to path.<suffix> (adding -2, -3… if that exists)
// and returns the new path. Nothing the user made is deleted; it is moved
// aside.
func MoveAside(path, suffix string) (string, error) {
	target := path + "." + suffix
	for i := 2; ; i++ {
		if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
			break
		}
		target = fmt.Sprintf("%s.%s-%d", path, suffix, i)
	}
	if err := os.Rename(path, target); err != nil {
		return "", fmt.Errorf("move %s aside: %w", path, err)
	}
	return target, nil
}
