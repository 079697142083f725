package ipam

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// BridgeNameOption is the Docker bridge driver option naming the Linux
// bridge.
const BridgeNameOption = "com.docker.network.bridge.name"

// appIDKey names a container's Marathon app: Marathon sets it in every
// task's environment, and a container may carry it as a label too.
const appIDKey = "MARATHON_APP_ID"

// DockerAPI is the part of the Docker Engine API the pool uses;
// *client.Client implements it.
type DockerAPI interface {
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NetworkInspect(ctx context.Context, networkID string, options network.InspectOptions) (network.Inspect, error)
	NetworkCreate(ctx context.Context, name string, options network.CreateOptions) (network.CreateResponse, error)
	ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error)
}

// NewDockerClient connects to the engine that DOCKER_HOST (or the default
// socket) names, speaking the newest API version both sides know.
func NewDockerClient() (*client.Client, error) {
	return client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
}

// NetworkMismatchError is an existing network whose settings differ from
// the pool's; EnsureNetwork reports it and changes nothing.
type NetworkMismatchError struct {
	Network string
	Diffs   []string
}

func (e *NetworkMismatchError) Error() string {
	return fmt.Sprintf("docker network %s exists with other settings (left unchanged): %s", e.Network, strings.Join(e.Diffs, "; "))
}

// networkOptions is how the seed creates the pool's network:
// docker network create --subnet S --ip-range R --gateway G
// --aux-address name=A -o com.docker.network.bridge.name=B NAME.
func networkOptions(cfg Config) network.CreateOptions {
	ipam := network.IPAMConfig{Subnet: cfg.Subnet.String(), Gateway: cfg.Gateway.String(), AuxAddress: map[string]string{}}
	if cfg.DockerRange.IsValid() {
		ipam.IPRange = cfg.DockerRange.String()
	}
	for name, a := range cfg.AuxAddresses {
		ipam.AuxAddress[name] = a.String()
	}
	return network.CreateOptions{
		Driver:  "bridge",
		IPAM:    &network.IPAM{Driver: "default", Config: []network.IPAMConfig{ipam}},
		Options: map[string]string{BridgeNameOption: cfg.Bridge},
		Labels:  map[string]string{"com.oakdns.oak.pool": cfg.Subnet.String()},
	}
}

// EnsureNetwork creates the pool's Docker network unless it exists. An
// existing network with the pool's settings is left alone (created is
// false); one with other settings is reported as a *NetworkMismatchError
// and not changed.
func EnsureNetwork(ctx context.Context, cli DockerAPI, cfg Config) (created bool, err error) {
	want := networkOptions(cfg)
	for range 2 { // a second look when another process created it meanwhile
		existing, found, err := findNetwork(ctx, cli, cfg.Network)
		if err != nil {
			return false, err
		}
		if found {
			if diffs := networkDiffs(existing, want); len(diffs) > 0 {
				return false, &NetworkMismatchError{Network: cfg.Network, Diffs: diffs}
			}
			return false, nil
		}
		_, err = cli.NetworkCreate(ctx, cfg.Network, want)
		if err == nil {
			return true, nil
		}
		if !errdefs.IsConflict(err) {
			return false, fmt.Errorf("create docker network %s: %w", cfg.Network, err)
		}
	}
	return false, fmt.Errorf("docker network %s: created and removed by others while being ensured", cfg.Network)
}

// findNetwork looks a network up by its exact name (Docker's name filter
// also matches parts of names).
func findNetwork(ctx context.Context, cli DockerAPI, name string) (network.Inspect, bool, error) {
	list, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
	if err != nil {
		return network.Inspect{}, false, fmt.Errorf("list docker networks: %w", err)
	}
	for _, n := range list {
		if n.Name == name {
			full, err := cli.NetworkInspect(ctx, n.ID, network.InspectOptions{})
			if err != nil {
				return network.Inspect{}, false, fmt.Errorf("inspect docker network %s: %w", name, err)
			}
			return full, true, nil
		}
	}
	return network.Inspect{}, false, nil
}

// networkDiffs lists how an existing network differs from want.
func networkDiffs(got network.Inspect, want network.CreateOptions) []string {
	var diffs []string
	differ := func(what, got, want string) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s is %q, want %q", what, got, want))
		}
	}
	differ("driver", got.Driver, want.Driver)
	differ("option "+BridgeNameOption, got.Options[BridgeNameOption], want.Options[BridgeNameOption])
	w := want.IPAM.Config[0]
	var v4 []network.IPAMConfig
	for _, c := range got.IPAM.Config {
		if p, err := netip.ParsePrefix(c.Subnet); err == nil && p.Addr().Is4() {
			v4 = append(v4, c)
		}
	}
	if len(v4) != 1 {
		return append(diffs, fmt.Sprintf("has %d IPv4 subnets, want one (%s)", len(v4), w.Subnet))
	}
	g := v4[0]
	differ("subnet", g.Subnet, w.Subnet)
	differ("gateway", g.Gateway, w.Gateway)
	differ("ip-range", g.IPRange, w.IPRange)
	if !maps.Equal(g.AuxAddress, w.AuxAddress) && len(g.AuxAddress)+len(w.AuxAddress) > 0 {
		diffs = append(diffs, fmt.Sprintf("aux addresses are %v, want %v", g.AuxAddress, w.AuxAddress))
	}
	return diffs
}

// ScanConflicts lists the containers on the Docker network whose address
// the pool did not give to their app. A container's app is its
// MARATHON_APP_ID (environment, else label), which Marathon sets on every
// task; a container without one on a pool address was not placed by the
// pool and is a conflict. Addresses the pool never hands out (Docker's
// ip-range, exclusions) are not the pool's business and are skipped.
func ScanConflicts(ctx context.Context, cli DockerAPI, pool *Pool, networkName string) ([]Conflict, error) {
	net, err := cli.NetworkInspect(ctx, networkName, network.InspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspect docker network %s: %w", networkName, err)
	}
	ids := slices.Sorted(maps.Keys(net.Containers))
	var out []Conflict
	for _, id := range ids {
		ep := net.Containers[id]
		prefix, err := netip.ParsePrefix(ep.IPv4Address)
		if err != nil {
			continue // no IPv4 address on this network
		}
		addr := prefix.Addr()
		if pool.cfg.Reserved(addr) != "" {
			continue
		}
		c, err := cli.ContainerInspect(ctx, id)
		if errdefs.IsNotFound(err) {
			continue // gone since the network was inspected
		}
		if err != nil {
			return nil, fmt.Errorf("inspect container %s: %w", ep.Name, err)
		}
		app := containerApp(c)
		if reason, holder := pool.judge(addr, app); reason != "" {
			out = append(out, Conflict{App: app, Addr: addr, Holder: holder, Container: strings.TrimPrefix(c.Name, "/"), Reason: reason})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out, nil
}

// containerApp is the Marathon app a container belongs to, or "".
func containerApp(c container.InspectResponse) string {
	if c.Config == nil {
		return ""
	}
	for _, kv := range c.Config.Env {
		if v, ok := strings.CutPrefix(kv, appIDKey+"="); ok {
			return v
		}
	}
	return c.Config.Labels[appIDKey]
}

// judge says why a container of app on addr is a conflict ("" when the
// pool gave addr to app), and which app the pool gave addr to.
func (p *Pool) judge(addr netip.Addr, app string) (reason, holder string) {
	rec, held := p.Lookup(addr)
	switch {
	case held && rec.State == Allocated && rec.App == app && app != "":
		return "", ""
	case app == "":
		reason = "the container has no " + appIDKey + "; the pool did not place it"
	case !held:
		return "the pool has not given this address to any app", ""
	case rec.State == Cooling:
		return "the address is cooling down (last " + orNone(rec.App) + ")", ""
	default:
		reason = "the pool gave this address to " + rec.App
	}
	if held && rec.State == Allocated {
		holder = rec.App
	}
	return reason, holder
}

func orNone(app string) string {
	if app == "" {
		return "held by a rebuild"
	}
	return "held by " + app
}

// Lookup returns the pool's record of addr, if it holds it.
func (p *Pool) Lookup(addr netip.Addr) (Allocation, bool) {
	obj, err := p.view.Txn(false).First(table, "id", addr)
	if err != nil || obj == nil {
		return Allocation{}, false
	}
	return *obj.(*Allocation), true
}
