// Package testkit holds the helpers that tests in several packages share:
// waiting on a condition ([Eventually]), an in-process NATS server
// ([StartNATS], [ConnectNATS]), a buffer a logger and a test may share
// ([SyncBuffer]) and the process's CPU time for benchmarks ([ProcessCPU]).
//
// Every helper that starts something registers its own t.Cleanup, so a
// test never stops what a helper started. The package imports only the
// standard library, nats-server and nats.go, never a netfeat stage
// package, so tests of any package can import it without a cycle.
package testkit
