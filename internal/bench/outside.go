package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// OutsideSubscriberEnv names the environment variable that turns a process
// into the bench's outside subscriber: it holds the NATS URL to subscribe
// at. `netfeat bench --outside-subscriber` (hidden) and the bench's tests
// (TestMain) run RunOutsideSubscriber when it is set.
const OutsideSubscriberEnv = "NETFEAT_BENCH_OUTSIDE_SUBSCRIBER"

// floorSubject carries the NATS floor probes: messages the bench publishes
// straight to the service's NATS server, with nothing of netfeat's
// pipeline in their path.
const floorSubject = "netfeat.benchfloor"

// Record kinds on the outside subscriber's output, one record a line:
// "KIND ARRIVAL_NS PAYLOAD".
const (
	recDecision  = 'd' // a decision document
	recNATSFloor = 'n' // a NATS floor probe; payload: its send time, Unix ns
	recUDPFloor  = 'u' // a UDP floor probe; payload: its send time, Unix ns
)

// subscriberFlush is how often the outside subscriber writes what it
// received; arrival times are taken on receipt, so this only delays the
// bench's reading, not the measurement.
const subscriberFlush = 20 * time.Millisecond

// RunOutsideSubscriber is the bench's decision subscriber in its own
// process. It connects to NATS at url, subscribes to every decision and
// to the floor probes, listens for UDP floor probes on a loopback port,
// writes "ready UDPADDR" to out and then one record a line for each
// message (see recDecision), stamped with its arrival time. It returns
// when in ends (the bench closes the pipe) or ctx does.
func RunOutsideSubscriber(ctx context.Context, url string, in io.Reader, out io.Writer) error {
	w := bufio.NewWriterSize(out, 1<<16)
	var mu sync.Mutex
	emit := func(kind byte, at time.Time, data []byte) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteByte(kind)
		w.WriteByte(' ')
		w.WriteString(strconv.FormatInt(at.UnixNano(), 10))
		w.WriteByte(' ')
		// Decision documents are compact JSON: no raw newline inside.
		w.Write(bytes.ReplaceAll(data, []byte("\n"), []byte(" ")))
		w.WriteByte('\n')
	}
	l, err := listenReceivers(url, emit)
	if err != nil {
		return err
	}
	defer l.close()
	mu.Lock()
	fmt.Fprintf(w, "ready %s\n", l.udp.LocalAddr())
	err = w.Flush()
	mu.Unlock()
	if err != nil {
		return fmt.Errorf("outside subscriber: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, in)
		close(done)
	}()
	tick := time.NewTicker(subscriberFlush)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
		case <-done:
		case <-tick.C:
			mu.Lock()
			err := w.Flush()
			mu.Unlock()
			if err != nil {
				return fmt.Errorf("outside subscriber: %w", err)
			}
			continue
		}
		l.close()
		mu.Lock()
		defer mu.Unlock()
		return w.Flush()
	}
}

// receivers are the subscriber's NATS subscriptions and UDP socket; emit
// gets every message with its arrival time.
type receivers struct {
	nc   *nats.Conn
	subs []*nats.Subscription
	udp  net.PacketConn
	once sync.Once
	wg   sync.WaitGroup
}

func listenReceivers(url string, emit func(kind byte, at time.Time, data []byte)) (*receivers, error) {
	nc, err := nats.Connect(url, nats.Name("netfeat-bench-decisions"), nats.NoReconnect())
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	r := &receivers{nc: nc}
	for subj, kind := range map[string]byte{decisionSubject: recDecision, floorSubject: recNATSFloor} {
		// Only the arrival time and the bytes are taken here; decoding
		// waits, so that a burst of decisions is not delayed by the
		// subscriber's own work.
		s, err := nc.Subscribe(subj, func(m *nats.Msg) { emit(kind, time.Now(), m.Data) })
		if err == nil {
			// The subscriber must not be what drops decisions.
			err = s.SetPendingLimits(-1, -1)
		}
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("subscribe %s: %w", subj, err)
		}
		r.subs = append(r.subs, s)
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	if r.udp, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
		nc.Close()
		return nil, fmt.Errorf("UDP floor listener: %w", err)
	}
	r.wg.Go(func() {
		buf := make([]byte, 64)
		for {
			n, _, err := r.udp.ReadFrom(buf)
			if err != nil {
				return
			}
			emit(recUDPFloor, time.Now(), bytes.Clone(buf[:n]))
		}
	})
	return r, nil
}

// dropped returns the messages the NATS client dropped for a slow
// subscriber (none with unlimited pending limits, but it is reported).
func (r *receivers) dropped() int {
	n := 0
	for _, s := range r.subs {
		d, _ := s.Dropped()
		n += d
	}
	return n
}

func (r *receivers) close() {
	r.once.Do(func() {
		for _, s := range r.subs {
			_ = s.Unsubscribe()
		}
		r.nc.Close()
		r.udp.Close()
		r.wg.Wait()
	})
}

// outsideProcess is a running outside subscriber, started from the
// command the options name.
type outsideProcess struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	udpAddr string
	pid     int
	read    sync.WaitGroup
	readErr error
}

// startOutside starts argv with OutsideSubscriberEnv=url and feeds each
// record it writes to handle, until the process ends.
func startOutside(ctx context.Context, argv []string, url string, handle func(kind byte, at time.Time, data []byte)) (*outsideProcess, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), OutsideSubscriberEnv+"="+url)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("outside subscriber: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("outside subscriber: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start outside subscriber %s: %w", argv[0], err)
	}
	p := &outsideProcess{cmd: cmd, stdin: stdin, pid: cmd.Process.Pid}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	ready := make(chan error, 1)
	p.read.Go(func() {
		first := true
		for sc.Scan() {
			line := sc.Bytes()
			if first {
				first = false
				addr, ok := bytes.CutPrefix(line, []byte("ready "))
				if !ok {
					ready <- fmt.Errorf("outside subscriber printed %q, want ready", line)
					return
				}
				p.udpAddr = string(addr)
				ready <- nil
				continue
			}
			if len(line) < 4 || line[1] != ' ' {
				continue
			}
			ns, data, ok := bytes.Cut(line[2:], []byte(" "))
			at, err := strconv.ParseInt(string(ns), 10, 64)
			if !ok || err != nil {
				continue
			}
			handle(line[0], time.Unix(0, at), bytes.Clone(data))
		}
		p.readErr = sc.Err()
		if first {
			ready <- errors.New("outside subscriber ended before it was ready")
		}
		_, _ = io.Copy(io.Discard, stdout)
	})
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(30 * time.Second):
		err = errors.New("outside subscriber not ready after 30s")
	}
	if err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// stop closes the subscriber's input, which makes it write what it holds
// and exit, and waits for its last records.
func (p *outsideProcess) stop() error {
	p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		err = errors.Join(errors.New("outside subscriber did not exit; killed"), <-done)
	}
	p.read.Wait()
	return errors.Join(err, p.readErr)
}

// flush asks nothing of the process: records arrive every
// subscriberFlush. It waits that long twice so that what arrived before
// the call has been read.
func (p *outsideProcess) flush() { time.Sleep(3 * subscriberFlush) }
