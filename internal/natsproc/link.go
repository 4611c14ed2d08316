package natsproc

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Link is the WAN between an edge and the hub: a TCP proxy on loopback that
// forwards each connection to the first hub leafnode address that answers
// (trying them in turn, so a dead hub node is skipped). Cut closes every
// connection and refuses new ones until Restore. It counts the bytes it
// carries each way.
type Link struct {
	ln      net.Listener
	targets []string

	toHub, fromHub atomic.Int64

	mu    sync.Mutex
	up    bool
	next  int
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewLink starts a link to targets (leafnode addresses), up. The caller
// must Close it.
func NewLink(targets []string) (*Link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("link listen: %w", err)
	}
	l := &Link{ln: ln, targets: targets, up: true, conns: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

// URL is the leafnode URL an edge uses as its remote.
func (l *Link) URL() string { return "nats-leaf://" + l.ln.Addr().String() }

// Bytes returns the bytes carried so far from the edge to the hub and
// back.
func (l *Link) Bytes() (toHub, fromHub int64) { return l.toHub.Load(), l.fromHub.Load() }

// Up reports whether the link lets connections through.
func (l *Link) Up() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up
}

// Cut closes every connection through the link and refuses new ones.
func (l *Link) Cut() {
	l.mu.Lock()
	l.up = false
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
}

// Restore lets connections through again.
func (l *Link) Restore() {
	l.mu.Lock()
	l.up = true
	l.mu.Unlock()
}

// Close stops the link and waits for its goroutines.
func (l *Link) Close() {
	l.ln.Close()
	l.Cut()
	l.wg.Wait()
}

func (l *Link) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.wg.Add(1)
		go func() { defer l.wg.Done(); l.serve(c) }()
	}
}

// countingWriter adds what it writes to n.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// serve pipes c to a hub node until either side closes or the link is cut.
func (l *Link) serve(c net.Conn) {
	l.mu.Lock()
	up, start := l.up, l.next
	l.next++
	l.mu.Unlock()
	if !up {
		c.Close()
		return
	}
	var hub net.Conn
	for i := range l.targets {
		h, err := net.Dial("tcp", l.targets[(start+i)%len(l.targets)])
		if err == nil {
			hub = h
			break
		}
	}
	if hub == nil {
		c.Close()
		return
	}
	l.mu.Lock()
	if !l.up {
		l.mu.Unlock()
		c.Close()
		hub.Close()
		return
	}
	l.conns[c], l.conns[hub] = struct{}{}, struct{}{}
	l.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(countingWriter{hub, &l.toHub}, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(countingWriter{c, &l.fromHub}, hub); done <- struct{}{} }()
	<-done
	c.Close()
	hub.Close()
	<-done
	l.mu.Lock()
	delete(l.conns, c)
	delete(l.conns, hub)
	l.mu.Unlock()
}
