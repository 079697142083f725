package ipam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/oakdns/oak/internal/dockertest"
	"github.com/oakdns/oak/internal/poll"
)

// dockerTestConfig is the seed's pool options on subnet: gateway .200,
// aux address DefaultGatewayIPv4=.1, Docker's ip-range .224/27, and a
// unique network and bridge name.
func dockerTestConfig(t *testing.T, subnet netip.Prefix) Config {
	t.Helper()
	base := subnet.Addr().As4()
	at := func(last byte) netip.Addr { b := base; b[3] = last; return netip.AddrFrom4(b) }
	suffix := fmt.Sprintf("%06x", rand.IntN(1<<24))
	cfg := Config{
		Network: "oak-ipam-test-" + suffix, Bridge: "br-oakt" + suffix,
		Subnet: subnet, Gateway: at(200),
		AuxAddresses: map[string]netip.Addr{"DefaultGatewayIPv4": at(1)},
		DockerRange:  netip.PrefixFrom(at(224), 27),
		Cooldown:     DefaultCooldown, Grace: DefaultGrace, IPLabel: DefaultIPLabel,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// ensureTestNetwork creates cfg's network and removes it after the test.
func ensureTestNetwork(t *testing.T, cli *client.Client, cfg Config) {
	t.Helper()
	created, err := EnsureNetwork(context.Background(), cli, cfg)
	if created {
		t.Cleanup(func() {
			if err := cli.NetworkRemove(context.Background(), cfg.Network); err != nil {
				t.Errorf("removing network %s: %v", cfg.Network, err)
			}
		})
	}
	if err != nil || !created {
		t.Fatalf("EnsureNetwork = %v, %v; want a new network", created, err)
	}
}

func TestEnsureNetworkOnDocker(t *testing.T) {
	cli := dockertest.Require(t)
	cfg := dockerTestConfig(t, dockertest.UnusedSubnet(t, cli))
	ensureTestNetwork(t, cli, cfg)

	ctx := context.Background()
	n, err := cli.NetworkInspect(ctx, cfg.Network, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ipam := n.IPAM.Config
	if n.Driver != "bridge" || n.Options[BridgeNameOption] != cfg.Bridge || len(ipam) != 1 ||
		ipam[0].Subnet != cfg.Subnet.String() || ipam[0].Gateway != cfg.Gateway.String() ||
		ipam[0].IPRange != cfg.DockerRange.String() || ipam[0].AuxAddress["DefaultGatewayIPv4"] != cfg.AuxAddresses["DefaultGatewayIPv4"].String() {
		t.Fatalf("network as created: driver %s options %v ipam %+v", n.Driver, n.Options, ipam)
	}
	if _, err := net.InterfaceByName(cfg.Bridge); err != nil {
		t.Errorf("the Linux bridge %s: %v", cfg.Bridge, err)
	}

	// Idempotent: the same settings are left alone.
	if created, err := EnsureNetwork(ctx, cli, cfg); err != nil || created {
		t.Fatalf("second EnsureNetwork = %v, %v", created, err)
	}
	// Other settings are reported, and nothing changes.
	other := cfg
	other.Gateway = cfg.AuxAddresses["DefaultGatewayIPv4"].Next()
	other.DockerRange = netip.Prefix{}
	_, err = EnsureNetwork(ctx, cli, other)
	var mismatch *NetworkMismatchError
	if !errors.As(err, &mismatch) || len(mismatch.Diffs) != 2 || !strings.Contains(err.Error(), "gateway") || !strings.Contains(err.Error(), "ip-range") {
		t.Fatalf("EnsureNetwork with another gateway and no ip-range: %v", err)
	}
	after, err := cli.NetworkInspect(ctx, cfg.Network, network.InspectOptions{})
	if err != nil || after.ID != n.ID || after.IPAM.Config[0].Gateway != cfg.Gateway.String() {
		t.Fatalf("the network changed: %+v %v", after.IPAM, err)
	}
}

// runContainer starts image on cfg's network (at addr unless it is
// invalid) with env, and removes it after the test.
func runContainer(t *testing.T, cli *client.Client, cfg Config, img, name string, addr netip.Addr, env ...string) {
	t.Helper()
	ctx := context.Background()
	endpoint := &network.EndpointSettings{}
	if addr.IsValid() {
		endpoint.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: addr.String()}
	}
	c, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Env: env},
		&container.HostConfig{NetworkMode: container.NetworkMode(cfg.Network)},
		&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{cfg.Network: endpoint}}, nil, name)
	if err != nil {
		t.Fatalf("create container %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := cli.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Errorf("removing container %s: %v", name, err)
		}
	})
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start container %s: %v", name, err)
	}
}

func TestContainersOnPoolAddressesOnDocker(t *testing.T) {
	cli := dockertest.Require(t)
	cfg := dockerTestConfig(t, dockertest.UnusedSubnet(t, cli))
	ensureTestNetwork(t, cli, cfg)
	img := dockertest.GoImage(t, cli, "github.com/oakdns/oak/ipam/testdata/echo", "oak-ipam-echo")
	p, _ := newTestPool(t, cfg, newClock())
	ctx := context.Background()
	suffix := strings.TrimPrefix(cfg.Network, "oak-ipam-test-")

	placed := map[string]netip.Addr{}
	for _, app := range []string{"/team/a", "/team/b"} {
		a := mustAllocate(t, p, app, ResultNew)
		placed[app] = a.Addr
		runContainer(t, cli, cfg, img, "oak-ipam"+strings.ReplaceAll(app, "/", "-")+"-"+suffix, a.Addr, "MARATHON_APP_ID="+app)
	}
	for app, addr := range placed {
		c, err := cli.ContainerInspect(ctx, "oak-ipam"+strings.ReplaceAll(app, "/", "-")+"-"+suffix)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.NetworkSettings.Networks[cfg.Network].IPAddress; got != addr.String() {
			t.Errorf("%s's container has %s, want %s", app, got, addr)
		}
		// It answers on that address, from the host, over the bridge.
		url := "http://" + netip.AddrPortFrom(addr, 8080).String() + "/"
		var body string
		err = poll.Until(ctx, url, 30*time.Second, 50*time.Millisecond, func() error {
			resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			body = strings.TrimSpace(string(b))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if body != netip.AddrPortFrom(addr, 8080).String() {
			t.Errorf("%s answered as %q", url, body)
		}
	}
	if conflicts, err := ScanConflicts(ctx, cli, p, cfg.Network); err != nil || len(conflicts) != 0 {
		t.Fatalf("scan of the pool's own containers: %v %v", conflicts, err)
	}

	// Placed by hand: an intruder on the address the pool gave /team/c
	// (not started yet); an app the pool never heard of, and a container
	// with no app id, each on a free pool address; one that lets Docker
	// choose (inside the ip-range, not the pool's business). And /team/a's
	// address is released while its container still runs.
	reserved := mustAllocate(t, p, "/team/c", ResultNew).Addr
	unknownAddr := netip.MustParseAddr(strings.TrimSuffix(cfg.Subnet.Addr().String(), ".0") + ".100")
	strayAddr := unknownAddr.Next()
	runContainer(t, cli, cfg, img, "oak-ipam-intruder-"+suffix, reserved, "MARATHON_APP_ID=/team/intruder")
	runContainer(t, cli, cfg, img, "oak-ipam-unknown-"+suffix, unknownAddr, "MARATHON_APP_ID=/team/unknown")
	runContainer(t, cli, cfg, img, "oak-ipam-stray-"+suffix, strayAddr)
	runContainer(t, cli, cfg, img, "oak-ipam-dynamic-"+suffix, netip.Addr{}, "MARATHON_APP_ID=/team/dynamic")
	if _, err := p.Release(ctx, "/team/a"); err != nil {
		t.Fatal(err)
	}
	conflicts, err := ScanConflicts(ctx, cli, p, cfg.Network)
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]string{
		placed["/team/a"]: "cooling down (last held by /team/a)",
		reserved:          "the pool gave this address to /team/c",
		unknownAddr:       "has not given this address",
		strayAddr:         "no MARATHON_APP_ID",
	}
	if len(conflicts) != len(want) {
		t.Fatalf("conflicts %v, want %d", conflicts, len(want))
	}
	for _, c := range conflicts {
		if !strings.Contains(c.Reason, want[c.Addr]) || c.Container == "" {
			t.Errorf("conflict %+v, want reason %q", c, want[c.Addr])
		}
	}
}
