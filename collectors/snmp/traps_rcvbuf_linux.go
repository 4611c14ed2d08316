package snmp

import (
	"net"

	"golang.org/x/sys/unix"
)

// setReadBuffer asks for an n-byte socket receive buffer and returns the
// size the kernel reports (twice the size granted: Linux counts its
// bookkeeping). Linux caps SO_RCVBUF at net.core.rmem_max; a process with
// CAP_NET_ADMIN may go past it with SO_RCVBUFFORCE, which is tried then.
func setReadBuffer(c *net.UDPConn, n int) (int, error) {
	err := c.SetReadBuffer(n)
	rc, rerr := c.SyscallConn()
	if rerr != nil {
		return 0, rerr
	}
	got := 0
	rerr = rc.Control(func(fd uintptr) {
		got, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		if got/2 < n && unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) == nil {
			got, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
			err = nil
		}
	})
	if err == nil {
		err = rerr
	}
	return got, err
}
