package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
)

// racingDocker is a Docker API where another process creates the network
// between EnsureNetwork's look and its create.
type racingDocker struct {
	existing *network.Inspect
	other    network.CreateOptions // what the other process creates
	creates  int
}

func (d *racingDocker) NetworkList(context.Context, network.ListOptions) ([]network.Summary, error) {
	if d.existing == nil {
		return nil, nil
	}
	return []network.Summary{*d.existing}, nil
}

func (d *racingDocker) NetworkInspect(context.Context, string, network.InspectOptions) (network.Inspect, error) {
	return *d.existing, nil
}

func (d *racingDocker) NetworkCreate(_ context.Context, name string, _ network.CreateOptions) (network.CreateResponse, error) {
	d.creates++
	d.existing = &network.Inspect{Name: name, ID: "other", Driver: d.other.Driver, Options: d.other.Options, IPAM: *d.other.IPAM}
	return network.CreateResponse{}, fmt.Errorf("network with name %s already exists: %w", name, errdefs.ErrConflict)
}

func (d *racingDocker) ContainerInspect(context.Context, string) (container.InspectResponse, error) {
	return container.InspectResponse{}, errdefs.ErrNotFound
}

// TestEnsureNetworkRace covers what the real engine cannot be made to do
// on cue: the network appears between the look and the create.
func TestEnsureNetworkRace(t *testing.T) {
	cfg := testConfig(t, 24)
	same := &racingDocker{other: networkOptions(cfg)}
	if created, err := EnsureNetwork(context.Background(), same, cfg); err != nil || created || same.creates != 1 {
		t.Fatalf("created by another with our settings: %v %v (creates %d)", created, err, same.creates)
	}
	otherCfg := cfg
	otherCfg.Gateway = netip.MustParseAddr("10.77.0.1")
	differs := &racingDocker{other: networkOptions(otherCfg)}
	_, err := EnsureNetwork(context.Background(), differs, cfg)
	var mismatch *NetworkMismatchError
	if !errors.As(err, &mismatch) {
		t.Fatalf("created by another with other settings: %v", err)
	}
}
