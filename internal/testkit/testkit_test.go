package testkit

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// fatalTB records Fatalf instead of failing, and stops the caller as
// t.Fatalf would.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, "the third call", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}

	f := &fatalTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != f {
				t.Fatalf("EventuallyWithin did not fail the test (recovered %v)", r)
			}
		}()
		EventuallyWithin(f, 20*time.Millisecond, "never", func() bool { return false })
	}()
	if !strings.Contains(f.msg, "timed out after 20ms waiting for never") {
		t.Fatalf("message %q", f.msg)
	}
}

func TestNATSRoundTrip(t *testing.T) {
	s := StartNATS(t, server.Options{})
	if !strings.HasPrefix(s.ClientURL(), "nats://127.0.0.1:") || strings.HasSuffix(s.ClientURL(), ":4222") {
		t.Fatalf("client URL %s, want a random loopback port", s.ClientURL())
	}
	nc := ConnectNATS(t, s.ClientURL())
	sub, err := nc.SubscribeSync("x")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("x", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil || string(m.Data) != "hi" {
		t.Fatalf("got %v, %v", m, err)
	}
}

func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := len(b.String()); n != 400 {
		t.Fatalf("%d bytes, want 400", n)
	}
}

func TestProcessCPU(t *testing.T) {
	c0 := ProcessCPU()
	for ProcessCPU()-c0 < 5*time.Millisecond {
	}
	if ProcessCPU() <= c0 {
		t.Fatal("CPU time did not advance")
	}
}
