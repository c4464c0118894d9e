package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

// Lock is a held session lock. The flock is held for the owner's whole life;
// a goroutine rewrites the heartbeat until Release. Because liveness is the
// flock itself, a lock is never judged by its PID alone (PIDs are reused).
type Lock struct {
	fl   *flock.Flock
	path string

	mu   sync.Mutex
	info LockInfo

	stop chan struct{}
	done chan struct{}
	once sync.Once

	// Stale is the metadata of a lock file that existed but was not held
	// when this lock was taken (a crashed engine's), or nil.
	Stale *LockInfo
}

// AcquireLock takes the session's lock at path, retrying for up to wait:
// short-lived shared probes (ProbeLock) may hold the flock for microseconds,
// and must never make a starting engine fail. When the lock is held by a
// live process it returns a *LockedError.
func AcquireLock(ctx context.Context, path, session string, wait time.Duration, heartbeat time.Duration) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create lock dir: %w", err)
	}
	prior, _ := readLockInfo(path)
	existed := prior != nil || fileExists(path)
	deadline := time.Now().Add(wait)
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
				l := &Lock{fl: fl, path: path, stop: make(chan struct{}), done: make(chan struct{})}
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

// beat rewrites the heartbeat until Release closes stop. It is the lock's
// only goroutine and exits before Release returns.
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
			_ = l.write() // best effort: liveness is the flock, not the heartbeat
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

// Release stops the heartbeat, removes the lock file and drops the flock —
// in that order, so nobody can take a lock on a file about to vanish.
// Calling it again is harmless.
func (l *Lock) Release() error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		err = l.release()
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

// LockStatus is what a probe learned about a lock file.
type LockStatus struct {
	Exists bool      `json:"exists"`
	Held   bool      `json:"held"`
	Info   *LockInfo `json:"info,omitempty"`
}

// ProbeLock reports whether a lock file exists and whether its flock is
// held, without creating the file and without ever holding more than a
// shared lock for an instant (an engine retries past that instant).
//
// list and the reminder watcher probe every session's lock on every call,
// so the probe is one open, one read and one flock(2) on the same file
// descriptor; closing it drops the shared lock if it was granted.
func ProbeLock(path string) (LockStatus, error) {
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

// RemoveStaleLock deletes a lock file only if nobody holds it: it takes the
// exclusive flock first, then unlinks, then unlocks.
func RemoveStaleLock(path string) (bool, error) {
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
