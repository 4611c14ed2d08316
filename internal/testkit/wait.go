package testkit

import (
	"testing"
	"time"
)

// DefaultTimeout is how long [Eventually] waits before it fails the test.
const DefaultTimeout = 10 * time.Second

// pollEvery is how often [Eventually] and [EventuallyWithin] evaluate
// their condition.
const pollEvery = 5 * time.Millisecond

// Eventually waits up to [DefaultTimeout] for cond to hold, evaluating it
// every few milliseconds, and fails the test with "timed out after 10s
// waiting for <what>" if it never does. Inside a testing/synctest bubble
// the wait runs on the bubble's fake clock.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, DefaultTimeout, what, cond)
}

// EventuallyWithin is [Eventually] with the timeout d, for conditions that
// take longer than [DefaultTimeout] to come about (a process to start, a
// second poll cycle of a slow device).
func EventuallyWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(pollEvery)
	}
}
