// Package frontend serves a query.Engine over the network: HTTP POST
// /v1/query (Handler), NATS request/reply (NATSResponder) and Arrow Flight
// SQL (FlightSQLServer). Each front end decodes a request, runs it with
// Engine.Query and writes the result in the format asked for (json, csv or
// arrow, see query.WriteResult); query errors map to the protocol's status
// codes (StatusOf for HTTP and NATS, gRPC codes for Flight SQL).
//
// The front ends use only the engine's exported API, so the engine runs
// without any of them (netfeat export runs one locally). Each takes its
// dependencies and a logger in its constructor; the NATS responder and the
// Flight SQL server start and stop with Start(ctx) and Stop(ctx).
package frontend
