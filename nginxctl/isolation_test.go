package nginxctl

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/oakdns/oak/internal/isolation"
	"github.com/oakdns/oak/internal/testutil"
)

// netnsEnv names the network namespace the isolation test runs in, in the
// child test process.
const netnsEnv = "OAK_ISOLATION_NETNS"

// TestIsolationTableThroughNginx runs the shared isolation table (the one
// the catalog's and the DNS plugin's tests run) through a real Nginx: a
// client at each address asks for each host and gets the table's answer,
// the same as DNS gives it. The table's addresses are not this machine's,
// so the test makes a network namespace holding them on its loopback and
// runs itself again inside it: Nginx, the backends and the clients all
// live there, and no packet leaves it.
func TestIsolationTableThroughNginx(t *testing.T) {
	table, err := isolation.Load()
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv(netnsEnv) == "" {
		runInNetns(t, table)
		return
	}
	snapshot, err := table.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range backendsOf(table) {
		serveAt(t, addr)
	}
	tn := startNginx(t)
	tn.apply(t, FromSnapshot(snapshot))
	for _, c := range table.VHosts {
		status, body, err := get(client(c.Client), tn.opts.Listen, c.Host)
		if err != nil {
			t.Errorf("%s from %s: %v", c.Host, c.Client, err)
			continue
		}
		var ok bool
		switch c.Kind {
		case "served":
			ok = status == http.StatusOK && len(c.Backends) == 1 && body == "backend "+c.Backends[0]
		case "held":
			ok = status == http.StatusServiceUnavailable && strings.Contains(body, c.Host) && strings.Contains(body, c.Env)
		case "foreign", "unknown":
			ok = status == http.StatusNotFound
		default:
			t.Fatalf("kind %q has no HTTP answer", c.Kind)
		}
		if !ok {
			t.Errorf("%s from %s: %d %q; the table says %s %s %v (%s)", c.Host, c.Client, status, body, c.Kind, c.Env, c.Backends, c.Why)
		}
	}
}

// runInNetns makes a network namespace with every address of the table on
// its loopback, runs this test again inside it, and removes it.
func runInNetns(t *testing.T, table *isolation.Table) {
	ip := testutil.RequireTool(t, "ip")
	testutil.RequireTool(t, "nginx")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("making a network namespace needs root (CI=true)")
		}
		t.Skip("skipping: making a network namespace needs root")
	}
	ns := fmt.Sprintf("oak-iso-%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command(ip, "netns", "del", ns).Run() })
	run("-n", ns, "link", "set", "lo", "up")
	addrs := map[string]bool{}
	for _, c := range table.VHosts {
		addrs[c.Client] = true
	}
	for _, b := range backendsOf(table) {
		addrs[b.Addr().String()] = true
	}
	for a := range addrs {
		if !netip.MustParseAddr(a).IsLoopback() {
			run("-n", ns, "addr", "add", a+"/32", "dev", "lo")
		}
	}
	cmd := exec.Command(ip, "netns", "exec", ns, os.Args[0], "-test.run=^TestIsolationTableThroughNginx$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsEnv+"="+ns)
	out, err := cmd.CombinedOutput()
	t.Logf("inside network namespace %s:\n%s", ns, out)
	if err != nil {
		t.Fatalf("the test inside the namespace failed: %v", err)
	}
}

// backendsOf lists the addr:port of every served vhost of the table.
func backendsOf(table *isolation.Table) []netip.AddrPort {
	seen := map[netip.AddrPort]bool{}
	var out []netip.AddrPort
	for _, c := range table.VHosts {
		for _, b := range c.Backends {
			ap := netip.MustParseAddrPort(b)
			if !seen[ap] {
				seen[ap] = true
				out = append(out, ap)
			}
		}
	}
	return out
}

// serveAt answers every request at addr with "backend <addr>".
func serveAt(t *testing.T, addr netip.AddrPort) {
	t.Helper()
	l, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "backend %s", addr)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
}
