//go:build linux

package state

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"path/filepath"
	"syscall"
)

// engineSocketSupported: Linux has abstract unix sockets.
const engineSocketSupported = true

// engineSocketAddr is the abstract unix socket an engine binds for the
// session whose lock file is lockPath. An abstract name lives in no
// directory, so nothing can delete or replace it; the kernel lets one
// socket bind a name system-wide (per network namespace) and frees it when
// the process dies, however it dies. The name is a hash of the lock file's
// resolved path, so two spellings of one project dir (a symlink, a
// relative path) name the same engine.
func engineSocketAddr(lockPath string) string {
	sum := sha256.Sum256([]byte(resolvePath(lockPath)))
	return "@agent-sessions/engine/" + hex.EncodeToString(sum[:16])
}

// resolvePath is path made absolute with every symlink of its longest
// existing prefix resolved: the lock file, or even the locks directory,
// may be missing (someone deleted it) while its engine runs.
func resolvePath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	rest := ""
	for p := abs; ; {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(real, rest)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return abs
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// listenEngine binds the session's engine socket. errSocketTaken means a
// live process holds it.
func listenEngine(lockPath string) (net.Listener, error) {
	ln, err := net.Listen("unix", engineSocketAddr(lockPath))
	if err != nil && errors.Is(err, syscall.EADDRINUSE) {
		return nil, errSocketTaken
	}
	return ln, err
}

// dialEngine connects to the session's engine socket. errNoEngine means
// nobody has bound it; a full backlog (EAGAIN) still proves it is bound.
func dialEngine(lockPath string) (net.Conn, error) {
	c, err := net.DialTimeout("unix", engineSocketAddr(lockPath), socketTimeout)
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, errNoEngine
	case errors.Is(err, syscall.EAGAIN):
		return nil, nil
	}
	return nil, err
}
