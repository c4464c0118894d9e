package state

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"time"
)

// The engine socket is the liveness signal nothing can delete (see
// engineSocketAddr): a live engine is bound to it for its whole life and
// answers each connection with its LockInfo. The lock file and its flock
// stay as the portable fallback and for people to read.

var (
	errSocketTaken = errors.New("engine socket is bound by a live process")
	errNoEngine    = errors.New("no engine is bound to the socket")
)

// socketTimeout bounds a probe's connect and read: a stopped (SIGSTOP)
// engine accepts no connection, but its bound socket is proof enough.
const socketTimeout = 300 * time.Millisecond

// engineAnswer is what a probe learned from the engine socket.
type engineAnswer int

const (
	socketUnknown engineAnswer = iota // no answer either way: ask the flock
	socketFree                        // nobody is bound: no engine
	socketBound                       // an engine is alive
)

// queryEngine asks the session's engine socket whether an engine is alive
// and, when it answers, what it says about itself.
func queryEngine(lockPath string) (engineAnswer, *LockInfo) {
	c, err := dialEngine(lockPath)
	switch {
	case errors.Is(err, errNoEngine):
		return socketFree, nil
	case err != nil:
		return socketUnknown, nil
	case c == nil:
		return socketBound, nil
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(socketTimeout))
	data, err := io.ReadAll(io.LimitReader(c, 4096))
	var info LockInfo
	if err != nil || json.Unmarshal(data, &info) != nil {
		return socketBound, nil
	}
	return socketBound, &info
}

// serve answers every connection to the engine socket with the lock's
// current metadata until ln is closed (by Release). The answer is ~150
// bytes, which a unix socket buffers whole, so a client that never reads
// cannot stall the loop.
func (l *Lock) serve(ln net.Listener) {
	defer close(l.served)
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: try again later
			continue
		}
		l.mu.Lock()
		data, _ := json.Marshal(l.info)
		l.mu.Unlock()
		c.SetWriteDeadline(time.Now().Add(socketTimeout))
		c.Write(data)
		c.Close()
	}
}
