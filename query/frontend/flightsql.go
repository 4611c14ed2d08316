package frontend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/netfeat/netfeat/query"
)

// FlightSQLServer serves a query.Engine over Arrow Flight SQL, for ADBC and
// JDBC clients: ad-hoc statements and (parameterless) prepared statements,
// results streamed as Arrow. When a token is set every call must carry the
// gRPC metadata "authorization: Bearer <token>", else it fails with
// Unauthenticated.
type FlightSQLServer struct {
	flightsql.BaseServer
	engine *query.Engine
	addr   string
	token  string
	log    *slog.Logger

	// Authorize, when set, replaces the token check: it is given each
	// "authorization" metadata value and reports whether it admits the
	// call. Set before Start.
	Authorize func(authorization string) bool
	// TLS, when set, serves over TLS. Set before Start.
	TLS *tls.Config

	grpc *grpc.Server
	lis  atomic.Pointer[net.Listener] // set by Start
	done chan struct{}
}

// NewFlightSQLServer returns a server that will listen on addr
// ("127.0.0.1:32010", or port 0 for any). A nil logger discards.
func NewFlightSQLServer(addr, token string, e *query.Engine, log *slog.Logger) (*FlightSQLServer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &FlightSQLServer{engine: e, addr: addr, token: token, log: log.With("component", "query.flightsql")}
	s.Alloc = nil // the default allocator
	for id, v := range map[flightsql.SqlInfo]any{
		flightsql.SqlInfoFlightSqlServerName:     "netfeat",
		flightsql.SqlInfoFlightSqlServerReadOnly: true,
		flightsql.SqlInfoFlightSqlServerSql:      true,
	} {
		if err := s.RegisterSqlInfo(id, v); err != nil {
			return nil, fmt.Errorf("flight sql info: %w", err)
		}
	}
	return s, nil
}

// Start listens and serves in the background.
func (s *FlightSQLServer) Start(ctx context.Context) error {
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("flight sql listen %s: %w", s.addr, err)
	}
	s.lis.Store(&lis)
	gopts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.authUnary),
		grpc.ChainStreamInterceptor(s.authStream),
	}
	if s.TLS != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(s.TLS)))
	}
	s.grpc = grpc.NewServer(gopts...)
	flight.RegisterFlightServiceServer(s.grpc, flightsql.NewFlightServer(s))
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("flight sql server stopped", "err", err)
		}
	}()
	s.log.Info("flight sql listening", "addr", lis.Addr().String(), "tls", s.TLS != nil)
	return nil
}

// Addr is the address the server listens on once started, nil before.
func (s *FlightSQLServer) Addr() net.Addr {
	if lis := s.lis.Load(); lis != nil {
		return (*lis).Addr()
	}
	return nil
}

// Stop lets running calls finish within ctx's deadline, then cuts them off.
func (s *FlightSQLServer) Stop(ctx context.Context) error {
	if s.grpc == nil {
		return nil
	}
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.grpc.Stop()
		<-stopped
	}
	<-s.done
	return nil
}

func (s *FlightSQLServer) authorized(ctx context.Context) error {
	ok := func(v string) bool { return bearerOK(s.token, v) }
	if s.Authorize != nil {
		ok = s.Authorize
		if ok("") {
			return nil
		}
	} else if s.token == "" {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if ok(v) {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, "missing or wrong bearer token")
}

func (s *FlightSQLServer) authUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.authorized(ctx); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *FlightSQLServer) authStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.authorized(ss.Context()); err != nil {
		return err
	}
	return h(srv, ss)
}

// GetFlightInfoStatement implements flightsql.Server: the ticket carries
// the query text, which DoGetStatement runs.
func (s *FlightSQLServer) GetFlightInfoStatement(_ context.Context, cmd flightsql.StatementQuery, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	tkt, err := flightsql.CreateStatementQueryTicket([]byte(cmd.GetQuery()))
	if err != nil {
		return nil, status.Errorf(codes.Internal, "ticket: %v", err)
	}
	return &flight.FlightInfo{
		Endpoint:         []*flight.FlightEndpoint{{Ticket: &flight.Ticket{Ticket: tkt}}},
		FlightDescriptor: desc,
		TotalRecords:     -1,
		TotalBytes:       -1,
	}, nil
}

// DoGetStatement implements flightsql.Server.
func (s *FlightSQLServer) DoGetStatement(ctx context.Context, tkt flightsql.StatementQueryTicket) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	return s.stream(ctx, string(tkt.GetStatementHandle()))
}

// CreatePreparedStatement implements flightsql.Server. The handle is the
// query text; the dataset schema comes from planning the query with no
// rows. Parameters are not supported.
func (s *FlightSQLServer) CreatePreparedStatement(ctx context.Context, req flightsql.ActionCreatePreparedStatementRequest) (flightsql.ActionCreatePreparedStatementResult, error) {
	sc, err := s.engine.Plan(ctx, req.GetQuery())
	if err != nil {
		return flightsql.ActionCreatePreparedStatementResult{}, grpcError(err)
	}
	return flightsql.ActionCreatePreparedStatementResult{Handle: []byte(req.GetQuery()), DatasetSchema: sc}, nil
}

// ClosePreparedStatement implements flightsql.Server; handles hold no
// server state.
func (s *FlightSQLServer) ClosePreparedStatement(context.Context, flightsql.ActionClosePreparedStatementRequest) error {
	return nil
}

// GetFlightInfoPreparedStatement implements flightsql.Server.
func (s *FlightSQLServer) GetFlightInfoPreparedStatement(_ context.Context, _ flightsql.PreparedStatementQuery, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return &flight.FlightInfo{
		Endpoint:         []*flight.FlightEndpoint{{Ticket: &flight.Ticket{Ticket: desc.Cmd}}},
		FlightDescriptor: desc,
		TotalRecords:     -1,
		TotalBytes:       -1,
	}, nil
}

// DoGetPreparedStatement implements flightsql.Server.
func (s *FlightSQLServer) DoGetPreparedStatement(ctx context.Context, cmd flightsql.PreparedStatementQuery) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	return s.stream(ctx, string(cmd.GetPreparedStatementHandle()))
}

// stream runs q in a goroutine and hands its batches to the Flight writer.
// It returns once the schema is known, or with the query's error.
func (s *FlightSQLServer) stream(ctx context.Context, q string) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	ctx, cancel := context.WithCancel(ctx)
	schemaCh := make(chan *arrow.Schema, 1)
	errCh := make(chan error, 1)
	chunks := make(chan flight.StreamChunk, 4)
	var once sync.Once
	go func() {
		defer cancel()
		defer close(chunks)
		err := s.engine.Query(ctx, query.Request{SQL: q}, func(r *query.Result) error {
			once.Do(func() { schemaCh <- r.Schema() })
			for r.Next() {
				rec := r.RecordBatch()
				rec.Retain() // the Flight writer releases it
				select {
				case chunks <- flight.StreamChunk{Data: rec}:
				case <-ctx.Done():
					rec.Release()
					return ctx.Err()
				}
			}
			if err := r.Err(); err != nil {
				chunks <- flight.StreamChunk{Err: grpcError(err)}
			}
			return nil
		})
		if err != nil {
			errCh <- err
		}
	}()
	select {
	case sc := <-schemaCh:
		return sc, chunks, nil
	case err := <-errCh:
		for range chunks { //nolint:revive // drain until the goroutine closes it
		}
		return nil, nil, grpcError(err)
	}
}

// grpcError maps a query error to a gRPC status with DuckDB's message.
func grpcError(err error) error {
	code := codes.Internal
	switch {
	case errors.Is(err, query.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, query.ErrTimeout):
		code = codes.DeadlineExceeded
	case errors.Is(err, query.ErrBusy), errors.Is(err, query.ErrNotRunning):
		code = codes.Unavailable
	case errors.Is(err, query.ErrMemory):
		code = codes.ResourceExhausted
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Error(code, err.Error())
}
