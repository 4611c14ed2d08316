// Package frontend serves a query.Engine over the network: HTTP POST
// /v1/query (Handler), NATS request/reply (NATSResponder) and Arrow Flight
// SQL (FlightSQLServer). Each front end decodes a request, runs it with
// Engine.Query and writes the result in the format asked for (json, csv or
// arrow, see query.WriteResult); query errors map to the protocol's status
// codes (StatusOf for HTTP and NATS, gRPC codes for Flight SQL).
//
// The front ends use only the engine's exported API, so the engine runs
// without any of them (netfeat export runs one locally). Each constructor
// takes its settings, then its dependencies, then a logger, and does no
// I/O; the NATS responder (which takes its connection as a function called
// by Start) and the Flight SQL server subscribe or listen in Start(ctx) and
// stop with Stop(ctx). A query made while the engine is not running gets
// query.ErrNotRunning: 503, or Unavailable over Flight SQL.
package frontend
