//go:build unix

package sinks

import (
	"errors"
	"net"
	"syscall"
)

// peekConn looks at a socket without blocking or consuming.
func peekConn(c net.Conn) peekResult {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return peekUnknown
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return peekClosed
	}
	res := peekUnknown
	var buf [1]byte
	err = raw.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK)
		switch {
		case errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK):
			res = peekEmpty
		case rerr == nil && n > 0:
			res = peekData
		default: // end of file or a socket error
			res = peekClosed
		}
		return true // never wait for readability
	})
	if err != nil {
		return peekClosed
	}
	return res
}
