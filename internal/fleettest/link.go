package fleettest

import (
	"testing"

	"github.com/netfeat/netfeat/internal/natsproc"
)

// Link is the WAN between an edge and the hub (natsproc.Link), closed at
// the end of the test.
type Link = natsproc.Link

// NewLink starts a link to targets (leafnode addresses), up, and closes it
// at the end of the test.
func NewLink(t testing.TB, targets []string) *Link {
	t.Helper()
	l, err := natsproc.NewLink(targets)
	if err != nil {
		t.Fatalf("fleettest: %v", err)
	}
	t.Cleanup(l.Close)
	return l
}
