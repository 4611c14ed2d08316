package snmpagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
)

// Endpoint is one device and the UDP address it answers on.
type Endpoint struct {
	Device *Device
	// Listen is the address to bind ("127.0.0.1:0" for a random port).
	Listen string
	// Addr is the bound address, set by Start.
	Addr string
}

// Simulator serves many simulated devices, each on its own UDP socket, in
// one process. Add devices, then Start; Stop closes every socket and waits
// for the serving goroutines. Devices with TrapsTo and a scenario that
// takes links down or up send their notifications from Start on.
type Simulator struct {
	log       *slog.Logger
	endpoints []*Endpoint
	conns     []net.PacketConn
	wg        sync.WaitGroup
	started   bool
	cancel    context.CancelFunc
}

// NewSimulator returns an empty simulator. A nil logger discards.
func NewSimulator(log *slog.Logger) *Simulator {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Simulator{log: log}
}

// Add registers a device to serve on listen. It must be called before Start.
func (s *Simulator) Add(d *Device, listen string) error {
	if s.started {
		return errors.New("snmpagent: Add after Start")
	}
	s.endpoints = append(s.endpoints, &Endpoint{Device: d, Listen: listen})
	return nil
}

// Start binds every device's socket and starts serving. If any bind fails,
// the sockets already bound are closed and the error names the device.
func (s *Simulator) Start(ctx context.Context) error {
	if s.started {
		return errors.New("snmpagent: already started")
	}
	var lc net.ListenConfig
	for _, ep := range s.endpoints {
		conn, err := lc.ListenPacket(ctx, "udp", ep.Listen)
		if err != nil {
			for _, c := range s.conns {
				c.Close()
			}
			s.conns = nil
			return fmt.Errorf("snmpagent: device %s: listen %s: %w", ep.Device.Name(), ep.Listen, err)
		}
		ep.Addr = conn.LocalAddr().String()
		s.conns = append(s.conns, conn)
	}
	s.started = true
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	for i, ep := range s.endpoints {
		d := ep.Device
		d.attach(s.conns[i])
		s.wg.Add(1)
		go s.serve(d, s.conns[i])
		if d.opt.TrapsTo != "" && d.hasLinkEvents() {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				d.runLinkTraps(runCtx, func(err error) { s.log.Warn("snmp sim: trap", "device", d.Name(), "err", err) })
			}()
		}
	}
	return nil
}

// Endpoints returns the devices and their bound addresses (after Start).
func (s *Simulator) Endpoints() []Endpoint {
	out := make([]Endpoint, len(s.endpoints))
	for i, ep := range s.endpoints {
		out[i] = *ep
	}
	return out
}

// Stop closes every socket and waits for the serving goroutines, or for
// ctx to end.
func (s *Simulator) Stop(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
	}
	for _, c := range s.conns {
		c.Close()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("snmpagent: stop: %w", ctx.Err())
	}
}

// Serve answers requests for d on conn until conn is closed. It is the
// loop Start runs for each device, exported for callers that bring their
// own socket. d's traps leave from conn. Scenario-driven traps are sent
// only under a Simulator; SetOperStatus sends its own.
func Serve(d *Device, conn net.PacketConn, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d.attach(conn)
	buf := make([]byte, 65536)
	for {
		n, addr, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log.Warn("snmp sim: read", "device", d.Name(), "err", err)
			continue
		}
		out, herr := d.Handle(buf[:n])
		if herr != nil {
			log.Debug("snmp sim: request", "device", d.Name(), "from", addr.String(), "err", herr)
		}
		if out == nil {
			continue
		}
		if _, err := conn.WriteTo(out, addr); err != nil {
			log.Debug("snmp sim: write", "device", d.Name(), "to", addr.String(), "err", err)
		}
	}
}

func (s *Simulator) serve(d *Device, conn net.PacketConn) {
	defer s.wg.Done()
	Serve(d, conn, s.log)
}

// attach makes conn the socket d's traps leave from.
func (d *Device) attach(conn net.PacketConn) { d.conn.Store(&conn) }
