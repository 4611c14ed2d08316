package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrSiteTaken is returned when the hub's registry holds the site for
// another edge instance: the hub refuses this edge.
var ErrSiteTaken = errors.New("fleet: site is registered to another edge instance")

// Registration is the value of a site's key in the hub's registry bucket.
type Registration struct {
	// Site is the key.
	Site string `json:"site"`
	// Instance is the edge's instance id; only messages carrying it are
	// accepted from the site.
	Instance string `json:"instance"`
	// Registered is when the site was first registered.
	Registered time.Time `json:"registered"`
}

// register claims site for instance in the registry bucket of the hub's
// domain. It succeeds when the key is new or already holds instance, and
// returns ErrSiteTaken when it holds another one. The create is atomic, so
// two edges racing for one name cannot both win.
func register(ctx context.Context, hub jetstream.JetStream, bucket, site, instance string) error {
	kv, err := hub.KeyValue(ctx, bucket)
	if err != nil {
		return fmt.Errorf("fleet: registry bucket %s: %w", bucket, err)
	}
	val, err := json.Marshal(Registration{Site: site, Instance: instance, Registered: time.Now().UTC()})
	if err != nil {
		return err
	}
	_, err = kv.Create(ctx, site, val)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("fleet: register site %s: %w", site, err)
	}
	e, err := kv.Get(ctx, site)
	if err != nil {
		return fmt.Errorf("fleet: read registration of site %s: %w", site, err)
	}
	r, err := parseRegistration(e.Value())
	if err != nil {
		return err
	}
	if r.Instance != instance {
		return fmt.Errorf("%w: site %s is held by instance %s, this edge is %s", ErrSiteTaken, site, r.Instance, instance)
	}
	return nil
}

func parseRegistration(b []byte) (Registration, error) {
	var r Registration
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("fleet: registration: %w", err)
	}
	if r.Instance == "" {
		return r, fmt.Errorf("fleet: registration of site %q without instance", r.Site)
	}
	return r, nil
}
