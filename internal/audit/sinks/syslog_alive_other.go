//go:build !unix

package sinks

import "net"

// peekConn cannot peek here: connAlive reads with a short deadline.
func peekConn(net.Conn) peekResult { return peekUnknown }
