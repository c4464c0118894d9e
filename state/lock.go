package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/gofrs/flock"
)

// HeartbeatInterval is how often a held lock's metadata is rewritten.
const HeartbeatInterval = 30 * time.Second

// LockInfo is the JSON content of a lock file.
type LockInfo struct {
	Session        string    `json:"session"`
	PID            int       `json:"pid"`
	StartedAt      time.Time `json:"started_at"`
	Heartbeat      time.Time `json:"heartbeat"`
	HeartbeatEpoch int64     `json:"heartbeat_epoch"`
}

// ErrLocked means another live process holds the session's lock.
var ErrLocked = errors.New("session is locked by a running engine")

// LockedError is returned by AcquireLock when the lock is held; it wraps
// ErrLocked and carries what the lock file says about its holder.
type LockedError struct {
	Session string
	Info    *LockInfo // nil when the file could not be read
}

func (e *LockedError) Error() string {
	if e.Info != nil && e.Info.PID > 0 {
		return fmt.Sprintf("session %s is already running (engine pid %d, started %s)", e.Session, e.Info.PID, e.Info.StartedAt.Local().Format(time.RFC3339))
	}
	return fmt.Sprintf("session %s is already running (its lock is held)", e.Session)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// Lock is a held session lock: the engine socket (see engineSocketAddr),
// bound for the owner's whole life, and the flock on the lock file, its
// portable fallback. A goroutine rewrites the heartbeat until Release and
// puts the lock file back when someone removed or replaced it; another
// answers probes on the socket. A lock is never judged by its PID alone
// (PIDs are reused).
type Lock struct {
	fl   *flock.Flock
	path string
	ln   net.Listener // nil where there are no engine sockets

	mu   sync.Mutex
	info LockInfo

	stop   chan struct{}
	done   chan struct{} // beat has returned
	served chan struct{} // serve has returned
	once   sync.Once

	// Stale is the metadata of a lock file that existed but was not held
	// when this lock was taken (a crashed engine's), or nil.
	Stale *LockInfo
}

// AcquireLock takes the session's lock at path, retrying for up to wait:
// short-lived shared probes (ProbeLock) may hold the flock for microseconds,
// and must never make a starting engine fail. When the lock is held by a
// live process it returns a *LockedError.
//
// The engine socket is bound first: it is what makes a second engine
// refuse even when the lock file was deleted or replaced under the first.
func AcquireLock(ctx context.Context, path, session string, wait time.Duration, heartbeat time.Duration) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create lock dir: %w", err)
	}
	deadline := time.Now().Add(wait)
	ln, err := bindEngineSocket(ctx, path, session, deadline)
	if err != nil {
		return nil, err
	}
	l, err := acquireFlock(ctx, path, session, deadline, heartbeat, ln)
	if err != nil && ln != nil {
		ln.Close()
	}
	return l, err
}

// bindEngineSocket binds the session's engine socket, retrying until
// deadline while another process holds it. It returns a nil listener where
// the platform has no engine sockets (the flock alone then decides).
func bindEngineSocket(ctx context.Context, path, session string, deadline time.Time) (net.Listener, error) {
	for {
		ln, err := listenEngine(path)
		switch {
		case err == nil:
			return ln, nil
		case !errors.Is(err, errSocketTaken):
			// No engine sockets here (or none can be made): the flock is
			// the fallback, as it was before there were sockets.
			return nil, nil
		case time.Now().After(deadline):
			_, info := queryEngine(path)
			if info == nil {
				info, _ = readLockInfo(path)
			}
			return nil, &LockedError{Session: session, Info: info}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(15 * time.Millisecond):
		}
	}
}

// acquireFlock takes the lock file's flock (see AcquireLock) and starts
// the lock's goroutines.
func acquireFlock(ctx context.Context, path, session string, deadline time.Time, heartbeat time.Duration, ln net.Listener) (*Lock, error) {
	prior, _ := readLockInfo(path)
	existed := prior != nil || fileExists(path)
	for {
		fl := flock.New(path, flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(0o644))
		ok, err := fl.TryLock()
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if ok {
			// The previous holder unlinks the file before unlocking; if we
			// locked an inode that is no longer at path, try again.
			held, herr := fl.Stat()
			onDisk, derr := os.Stat(path)
			if herr == nil && derr == nil && os.SameFile(held, onDisk) {
				l := &Lock{fl: fl, path: path, ln: ln, stop: make(chan struct{}), done: make(chan struct{}), served: make(chan struct{})}
				if existed {
					l.Stale = prior
					if l.Stale == nil {
						l.Stale = &LockInfo{Session: session}
					}
				}
				now := time.Now().UTC()
				l.info = LockInfo{Session: session, PID: os.Getpid(), StartedAt: now, Heartbeat: now, HeartbeatEpoch: now.Unix()}
				if err := l.write(); err != nil {
					l.release()
					return nil, err
				}
				if heartbeat <= 0 {
					heartbeat = HeartbeatInterval
				}
				go l.beat(heartbeat)
				if ln != nil {
					go l.serve(ln)
				} else {
					close(l.served)
				}
				return l, nil
			}
			fl.Unlock()
			continue
		}
		fl.Close()
		if time.Now().After(deadline) {
			info, _ := readLockInfo(path)
			return nil, &LockedError{Session: session, Info: info}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(15 * time.Millisecond):
		}
	}
}

// Info returns the lock's current metadata.
func (l *Lock) Info() LockInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// Path returns the lock file's path.
func (l *Lock) Path() string { return l.path }

// beat rewrites the heartbeat until Release closes stop, and puts the lock
// file back when it was removed or replaced (by a person, `git reset
// --hard`, `git clean`), so people and older tools still find it. It exits
// before Release returns.
func (l *Lock) beat(every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			now := time.Now().UTC()
			l.info.Heartbeat = now
			l.info.HeartbeatEpoch = now.Unix()
			l.mu.Unlock()
			// Best effort: liveness is the socket and the flock, not the
			// heartbeat.
			if l.fileIsOurs() {
				_ = l.write()
			} else {
				_ = l.restore()
			}
		}
	}
}

// write rewrites the metadata in place (the flock lives on this inode, so
// the file must not be replaced by a rename).
func (l *Lock) write() error {
	l.mu.Lock()
	data, _ := json.Marshal(l.info)
	l.mu.Unlock()
	data = append(data, '\n')
	f, err := os.OpenFile(l.path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("write lock %s: %w", l.path, err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, 0); err != nil {
		return fmt.Errorf("write lock %s: %w", l.path, err)
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		return fmt.Errorf("write lock %s: %w", l.path, err)
	}
	return nil
}

// fileIsOurs reports whether the file at the lock's path is the one whose
// flock the lock holds.
func (l *Lock) fileIsOurs() bool {
	held, herr := l.fl.Stat()
	onDisk, derr := os.Stat(l.path)
	return herr == nil && derr == nil && os.SameFile(held, onDisk)
}

// restore puts a lock file the lock holds back at its path: a new file,
// flocked and written before it is renamed into place, so no one ever
// finds it unlocked or empty. Whatever replaced the old one is overwritten:
// it is our own file's name, not a user's.
func (l *Lock) restore() error {
	dir := filepath.Dir(l.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("restore lock %s: %w", l.path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(l.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("restore lock %s: %w", l.path, err)
	}
	tmp := f.Name()
	f.Chmod(0o644) // as AcquireLock makes it: people and probes read it
	f.Close()
	fl := flock.New(tmp, flock.SetFlag(os.O_RDWR), flock.SetPermissions(0o644))
	if ok, err := fl.TryLock(); !ok || err != nil {
		os.Remove(tmp)
		if err == nil {
			// TryLock says no without an error when another process
			// holds the lock: there is no cause to keep, only to name.
			return fmt.Errorf("restore lock %s: flock the new file: another process holds it", l.path)
		}
		return fmt.Errorf("restore lock %s: flock the new file: %w", l.path, err)
	}
	l.mu.Lock()
	data, _ := json.Marshal(l.info)
	l.mu.Unlock()
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err == nil {
		err = os.Rename(tmp, l.path)
		if err == nil {
			l.fl.Close()
			l.fl = fl
			return nil
		}
	}
	fl.Close()
	os.Remove(tmp)
	return fmt.Errorf("restore lock %s: %w", l.path, err)
}

// Release stops the heartbeat, removes the lock file and drops the flock —
// in that order, so nobody can take a lock on a file about to vanish —
// and unbinds the engine socket last. Calling it again is harmless.
func (l *Lock) Release() error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		err = l.release()
		if l.ln != nil {
			l.ln.Close()
		}
		<-l.served
	})
	return err
}

func (l *Lock) release() error {
	held, herr := l.fl.Stat()
	onDisk, derr := os.Stat(l.path)
	var rmErr error
	if herr == nil && derr == nil && os.SameFile(held, onDisk) {
		rmErr = os.Remove(l.path)
	}
	if err := l.fl.Close(); err != nil {
		return fmt.Errorf("unlock %s: %w", l.path, err)
	}
	if rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
		return fmt.Errorf("remove lock %s: %w", l.path, rmErr)
	}
	return nil
}

// LockStatus is what a probe learned about a session's engine and its lock
// file.
type LockStatus struct {
	// Exists: the lock file is there (an engine may be alive without it).
	Exists bool `json:"exists"`
	// Held: an engine is alive for the session.
	Held bool `json:"held"`
	// Info is what the live engine says about itself, else what the lock
	// file says.
	Info *LockInfo `json:"info,omitempty"`
	// Via names the signal that decided Held: "socket" or "flock".
	Via string `json:"-"`
}

// ProbeLock is the one answer to "is an engine alive for this session, and
// which pid": every caller (the classifier's facts, list, monitor, kill,
// cleanup, start) asks it. It never creates or changes anything.
//
// The engine socket decides first: a bound socket is a live engine whatever
// happened to the lock file, and its answer names the engine's pid. Only
// where the socket cannot say (another platform) does the flock decide.
func ProbeLock(path string) (LockStatus, error) {
	ls, err := probeLockFile(path)
	switch answer, info := queryEngine(path); answer {
	case socketBound:
		ls.Held, ls.Via = true, "socket"
		if info != nil {
			ls.Info = info
		}
		return ls, nil
	case socketFree:
		// No engine; the flock may still be held for an instant by a
		// probe or by an engine of an older version — ask it.
	}
	if ls.Held {
		ls.Via = "flock"
	}
	return ls, err
}

// probeLockFile reports whether a lock file exists and whether its flock is
// held, without creating the file and without ever holding more than a
// shared lock for an instant (an engine retries past that instant).
//
// list and the reminder watcher probe every session's lock on every call,
// so the probe is one open, one read and one flock(2) on the same file
// descriptor; closing it drops the shared lock if it was granted.
func probeLockFile(path string) (LockStatus, error) {
	var ls LockStatus
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ls, nil
	}
	if err != nil {
		return ls, fmt.Errorf("probe lock %s: %w", path, err)
	}
	defer f.Close()
	ls.Exists = true
	ls.Info = readLockInfoFrom(f)
	rc, err := f.SyscallConn()
	if err != nil {
		return ls, fmt.Errorf("probe lock %s: %w", path, err)
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		ferr = syscall.Flock(int(fd), syscall.LOCK_SH|syscall.LOCK_NB)
	}); err != nil {
		return ls, fmt.Errorf("probe lock %s: %w", path, err)
	}
	switch {
	case ferr == nil:
	case errors.Is(ferr, syscall.EWOULDBLOCK):
		ls.Held = true
	default:
		return ls, fmt.Errorf("probe lock %s: %w", path, ferr)
	}
	return ls, nil
}

// readLockInfoFrom reads the metadata of an open lock file. The heartbeat
// rewrites it in place, so a torn read is retried.
func readLockInfoFrom(f *os.File) *LockInfo {
	buf := make([]byte, 4096) // the metadata is ~150 bytes
	for range 3 {
		n, err := f.ReadAt(buf, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil
		}
		var info LockInfo
		if json.Unmarshal(buf[:n], &info) == nil {
			return &info
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// RemoveStaleLock deletes a lock file only if no engine is alive for the
// session (its socket is free) and nobody holds the file: it takes the
// exclusive flock first, then unlinks, then unlocks. A lock file replaced
// under a live engine is not stale: the engine puts its own back.
func RemoveStaleLock(path string) (bool, error) {
	if answer, _ := queryEngine(path); answer == socketBound {
		return false, nil
	}
	fl := flock.New(path, flock.SetFlag(os.O_RDWR))
	ok, err := fl.TryLock()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("lock %s: %w", path, err)
	}
	if !ok {
		return false, nil
	}
	defer fl.Close()
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("remove %s: %w", path, err)
	}
	return true, nil
}

func readLockInfo(path string) (*LockInfo, error) {
	// The heartbeat rewrites the file in place; a torn read is retried.
	var lastErr error
	for range 3 {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var info LockInfo
		if err := json.Unmarshal(data, &info); err == nil {
			return &info, nil
		} else {
			lastErr = err
		}
		time.Sleep(time.Millisecond)
	}
	return nil, lastErr
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
