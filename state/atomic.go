package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces path with data so that a reader, or a crash at
// any moment, sees either the old content or the new, never a mix: the data
// goes to a temporary file in the same directory, is fsynced, and is renamed
// over path. A missing parent directory is created.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return writeFileAtomic(path, data, perm, true)
}

// writeFileAtomic is WriteFileAtomic; mkdir says whether a missing parent
// directory is made. The Store never makes one: its run directory missing
// means someone removed it, and writing on would hide that.
func writeFileAtomic(path string, data []byte, perm fs.FileMode, mkdir bool) error {
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
	if err := f.Sync(); err != nil {
		return fail(err)
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
	return appendFile(path, data, true)
}

// appendFile is AppendFile; mkdir as for writeFileAtomic.
func appendFile(path string, data []byte, mkdir bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
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
	if err := f.Close(); err != nil {
		return fmt.Errorf("append %s: %w", path, err)
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
