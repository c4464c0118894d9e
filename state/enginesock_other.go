//go:build !linux

package state

import (
	"errors"
	"net"
)

// engineSocketSupported: elsewhere there are no abstract unix sockets and
// the flock is the only liveness signal.
const engineSocketSupported = false

var errUnsupported = errors.New("engine sockets need Linux")

func listenEngine(string) (net.Listener, error) { return nil, errUnsupported }

func dialEngine(string) (net.Conn, error) { return nil, errUnsupported }
