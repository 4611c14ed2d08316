package fleettest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Link is the WAN between an edge and the hub: a TCP proxy on loopback that
// forwards each connection to the first hub leafnode address that answers
// (trying them in turn, so a dead hub node is skipped). Cut closes every
// connection and refuses new ones until Restore.
type Link struct {
	ln      net.Listener
	targets []string

	mu    sync.Mutex
	up    bool
	next  int
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewLink starts a link to targets (leafnode addresses), up, and closes it
// at the end of the test.
func NewLink(t testing.TB, targets []string) *Link {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fleettest: link listen: %v", err)
	}
	l := &Link{ln: ln, targets: targets, up: true, conns: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.accept()
	t.Cleanup(l.close)
	return l
}

// URL is the leafnode URL an edge uses as its remote.
func (l *Link) URL() string { return "nats-leaf://" + l.ln.Addr().String() }

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

func (l *Link) close() {
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
	go func() { io.Copy(hub, c); done <- struct{}{} }()
	go func() { io.Copy(c, hub); done <- struct{}{} }()
	<-done
	c.Close()
	hub.Close()
	<-done
	l.mu.Lock()
	delete(l.conns, c)
	delete(l.conns, hub)
	l.mu.Unlock()
}
