package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	gomarathon "github.com/gambol99/go-marathon"
	"github.com/miekg/dns"

	"github.com/oakdns/oak/internal/poll"
)

func TestMain(m *testing.M) {
	// As main does before coremain.Run.
	directives, err := withMarathon(dnsserver.Directives)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dnsserver.Directives = directives
	caddy.Quiet = true
	dnsserver.Quiet = true
	os.Exit(m.Run())
}

func TestDirectiveOrder(t *testing.T) {
	directives := dnsserver.Directives
	at := slices.Index(directives, "marathon")
	if at < 0 {
		t.Fatal("marathon is not a directive")
	}
	for _, before := range []string{"rewrite", "acl", "cache", "metadata", "header", "minimal", "template"} {
		if i := slices.Index(directives, before); i < 0 || i > at {
			t.Errorf("%s (at %d) must come before marathon (at %d)", before, i, at)
		}
	}
	for _, after := range []string{"hosts", "file", "loop", "forward"} {
		if i := slices.Index(directives, after); i < at {
			t.Errorf("%s (at %d) must come after marathon (at %d)", after, i, at)
		}
	}
	again, err := withMarathon(directives)
	if err != nil || !slices.Equal(again, directives) {
		t.Errorf("inserting twice changed the order: %v", err)
	}
	if _, err := withMarathon([]string{"cache", "forward"}); err == nil {
		t.Error("no error without a hosts directive to anchor on")
	}
}

// TestPluginsFlag builds the binary and checks that `-plugins` lists
// marathon and the stock plugins operators rely on.
func TestPluginsFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "coredns")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-plugins").CombinedOutput()
	if err != nil {
		t.Fatalf("coredns -plugins: %v\n%s", err, out)
	}
	listed := strings.Fields(string(out))
	for _, name := range []string{"marathon", "errors", "log", "health", "ready", "prometheus", "cache", "forward",
		"hosts", "file", "rewrite", "acl", "view", "reload", "loadbalance", "bind", "whoami", "debug", "pprof", "root", "metadata"} {
		if !slices.Contains(listed, name) {
			t.Errorf("-plugins does not list %s:\n%s", name, out)
		}
	}
}

// Addresses of the apps in the served dump. The clients are loopback
// addresses, so that a test can play each env's container.
const (
	integrationApp = "127.0.1.10"
	featureApp     = "127.0.2.10"
)

// writeApps writes a GET /v2/apps?embed=apps.tasks body: the seed's shape
// (integration with app1 and redis1, feature-login with its own) plus one
// name with 100 backends.
func writeApps(t *testing.T) string {
	t.Helper()
	app := func(id, env, names string, ips ...string) gomarathon.Application {
		labels := map[string]string{"OAK_NAMES": names, "OAK_PORTS": "main:80"}
		if env != "" {
			labels["OAK_ENV"] = env
		}
		a := gomarathon.Application{ID: id, Labels: &labels}
		for i, ip := range ips {
			a.Tasks = append(a.Tasks, &gomarathon.Task{
				ID: fmt.Sprintf("%s.%d", id, i), AppID: id, State: "TASK_RUNNING",
				IPAddresses: []*gomarathon.IPAddress{{IPAddress: ip, Protocol: "IPv4"}},
			})
		}
		return a
	}
	var big []string
	for i := 1; i <= 100; i++ {
		big = append(big, fmt.Sprintf("10.2.0.%d", i))
	}
	body, err := json.Marshal(map[string][]gomarathon.Application{"apps": {
		app("/integration/app1", "", "app1.example.com", integrationApp),
		app("/integration/redis1", "", "redis1.db.example.com", "10.199.45.21"),
		app("/feature-login/app1", "feature-login", "app1.example.com", featureApp),
		app("/feature-login/redis1", "feature-login", "redis1.db.example.com", "10.199.45.31"),
		app("/integration/big", "", "big.example.com", big...),
	}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "apps.json")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startServer starts CoreDNS with corefile and returns its UDP and TCP
// addresses; it is stopped when the test ends.
func startServer(t *testing.T, corefile string) (udp, tcp string) {
	t.Helper()
	instance, err := caddy.Start(caddy.CaddyfileInput{Contents: []byte(corefile), Filepath: "Corefile", ServerTypeName: "dns"})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { instance.Stop() })
	servers := instance.Servers()
	if len(servers) == 0 {
		t.Fatal("no servers")
	}
	return servers[0].LocalAddr().String(), servers[0].Addr().String()
}

// exchange asks server over network ("udp" or "tcp") from the source
// address client.
func exchange(t *testing.T, network, server, client, qname string, qtype uint16) *dns.Msg {
	t.Helper()
	var local net.Addr = &net.UDPAddr{IP: net.ParseIP(client)}
	if network == "tcp" {
		local = &net.TCPAddr{IP: net.ParseIP(client)}
	}
	c := &dns.Client{Net: network, Dialer: &net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}}
	req := new(dns.Msg)
	req.SetQuestion(qname, qtype)
	resp, _, err := c.Exchange(req, server)
	if err != nil {
		t.Fatalf("%s %s from %s: %v", network, qname, client, err)
	}
	return resp
}

// waitSynced asks until the plugin answers something else than SERVFAIL,
// which it answers until the source's first load.
func waitSynced(t *testing.T, server string) {
	t.Helper()
	err := poll.Until(context.Background(), "the plugin to load its apps file", 10*time.Second, 50*time.Millisecond, func() error {
		if resp := exchange(t, "udp", server, "127.0.0.1", "app1.example.com.", dns.TypeA); resp.Rcode == dns.RcodeServerFailure {
			return errors.New("SERVFAIL")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func addresses(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out
}

// TestServe runs the binary's server from a Corefile with the offline
// source and asks it over UDP and TCP from each env's address.
func TestServe(t *testing.T) {
	udp, tcp := startServer(t, fmt.Sprintf(`.:0 {
    marathon example.com 10.in-addr.arpa {
        endpoint file://%s
    }
}`, writeApps(t)))
	waitSynced(t, udp)

	for _, tc := range []struct {
		client, qname string
		want          []string
	}{
		{featureApp, "redis1.db.example.com.", []string{"10.199.45.31"}},
		{featureApp, "APP1.example.com.", []string{featureApp}},
		{integrationApp, "redis1.db.example.com.", []string{"10.199.45.21"}},
		{"127.0.0.1", "redis1.db.example.com.", []string{"10.199.45.21"}},
	} {
		for _, network := range []string{"udp", "tcp"} {
			server := udp
			if network == "tcp" {
				server = tcp
			}
			resp := exchange(t, network, server, tc.client, tc.qname, dns.TypeA)
			if got := addresses(resp); !slices.Equal(got, tc.want) {
				t.Errorf("%s %s from %s: %v, want %v", network, tc.qname, tc.client, got, tc.want)
			}
			if len(resp.Answer) > 0 && resp.Answer[0].Header().Name != tc.qname {
				t.Errorf("owner %q, want the question's case %q", resp.Answer[0].Header().Name, tc.qname)
			}
		}
	}

	env := exchange(t, "udp", udp, featureApp, "_env.example.com.", dns.TypeTXT)
	if len(env.Answer) != 1 || !strings.Contains(env.Answer[0].String(), `"env=feature-login" "how=app" "chain=feature-login,integration"`) {
		t.Errorf("_env TXT: %v", env.Answer)
	}

	ptr := exchange(t, "udp", udp, featureApp, "31.45.199.10.in-addr.arpa.", dns.TypePTR)
	if len(ptr.Answer) != 1 || ptr.Answer[0].(*dns.PTR).Ptr != "redis1.db.example.com." {
		t.Errorf("PTR: %v", ptr.Answer)
	}

	nx := exchange(t, "udp", udp, featureApp, "nosuch.example.com.", dns.TypeA)
	if nx.Rcode != dns.RcodeNameError || len(nx.Ns) != 1 {
		t.Errorf("NXDOMAIN with SOA expected: %v", nx)
	}

	// 100 backends: truncated over UDP, complete over TCP.
	small := exchange(t, "udp", udp, featureApp, "big.example.com.", dns.TypeA)
	if !small.Truncated || len(small.Answer) >= 100 {
		t.Errorf("UDP: truncated %v with %d answers", small.Truncated, len(small.Answer))
	}
	full := exchange(t, "tcp", tcp, featureApp, "big.example.com.", dns.TypeA)
	if full.Truncated || len(full.Answer) != 100 {
		t.Errorf("TCP: truncated %v with %d answers", full.Truncated, len(full.Answer))
	}
}

// TestCacheWithEnvFromClient: a server block that picks the env by client
// address refuses to start with a cache over its zones; a pinned block may
// use one.
func TestCacheWithEnvFromClient(t *testing.T) {
	apps := writeApps(t)
	_, err := caddy.Start(caddy.CaddyfileInput{ServerTypeName: "dns", Filepath: "Corefile", Contents: []byte(fmt.Sprintf(`example.com:0 {
    cache 30
    marathon {
        endpoint file://%s
    }
}`, apps))})
	want := "marathon: cache in the same server block as env_from_client would mix environments; pin `env` or remove cache"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Corefile:3") {
		t.Fatalf("start error = %v, want %q naming Corefile:3", err, want)
	}

	udp, _ := startServer(t, fmt.Sprintf(`example.com:0 {
    cache 30
    marathon {
        endpoint file://%s
        env feature-login
    }
}`, apps))
	waitSynced(t, udp)
	if got := addresses(exchange(t, "udp", udp, integrationApp, "redis1.db.example.com.", dns.TypeA)); !slices.Equal(got, []string{"10.199.45.31"}) {
		t.Errorf("pinned block with cache: %v", got)
	}
}

// TestEmptyEndpointVariable: an endpoint from an empty environment
// variable is refused with a hint at the variable, naming the line.
func TestEmptyEndpointVariable(t *testing.T) {
	t.Setenv("OAK_TEST_MARATHON_URL", "")
	_, err := caddy.Start(caddy.CaddyfileInput{ServerTypeName: "dns", Filepath: "Corefile", Contents: []byte(`example.com:0 {
    marathon {
        endpoint {$OAK_TEST_MARATHON_URL}
    }
}`)})
	if err == nil || !strings.Contains(err.Error(), "Corefile:3") || !strings.Contains(err.Error(), "environment variable") {
		t.Fatalf("start error = %v, want a hint at an empty variable on Corefile:3", err)
	}
}

// TestFailedReloadStopsItsSources: a reload that fails after the new
// instance started a source (a later block's startup fails) leaves the
// running instance serving, and the source the failed instance started
// stops: caddy never shuts a failed instance down, the plugin's registry
// drops its hold when the running instance hears of the failure.
func TestFailedReloadStopsItsSources(t *testing.T) {
	apps := writeApps(t)
	corefile := func(blocks string) caddy.Input {
		return caddy.CaddyfileInput{ServerTypeName: "dns", Filepath: "Corefile", Contents: []byte(blocks)}
	}
	running, err := caddy.Start(corefile(fmt.Sprintf(`example.com:0 {
    marathon {
        endpoint file://%s
    }
}`, apps)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { running.ShutdownCallbacks(); running.Stop() })
	udp := running.Servers()[0].LocalAddr().String()
	waitSynced(t, udp)
	before := runtime.NumGoroutine()

	// The first block's source (another policy, so a new one) starts in
	// its OnStartup; the second block's OnStartup then fails.
	_, err = running.Restart(corefile(fmt.Sprintf(`example.com:0 {
    marathon {
        endpoint file://%s
        default_env staging
    }
}
example.org:0 {
    cache 30
    marathon {
        endpoint file://%s
    }
}`, apps, apps)))
	if err == nil || !strings.Contains(err.Error(), errCacheMixesEnvsText) {
		t.Fatalf("restart error = %v, want the cache refusal", err)
	}
	if got := addresses(exchange(t, "udp", udp, integrationApp, "redis1.db.example.com.", dns.TypeA)); !slices.Equal(got, []string{"10.199.45.21"}) {
		t.Errorf("the running instance answers %v after the failed reload", got)
	}
	after := runtime.NumGoroutine()
	err = poll.Until(context.Background(), "the failed instance's source to stop", 10*time.Second, 20*time.Millisecond, func() error {
		if after = runtime.NumGoroutine(); after > before {
			return fmt.Errorf("%d goroutines, %d before the failed reload", after, before)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// errCacheMixesEnvsText is the start of the plugin's refusal of cache with
// env_from_client.
const errCacheMixesEnvsText = "cache in the same server block as env_from_client"
