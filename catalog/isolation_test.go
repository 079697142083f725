package catalog_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/internal/isolation"
)

// TestIsolationTable runs the shared isolation table through EnvOf,
// Resolve and ResolveVHost.
func TestIsolationTable(t *testing.T) {
	table, err := isolation.Load()
	if err != nil {
		t.Fatal(err)
	}
	s, err := table.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(s.Rejected()); got != 3 {
		t.Errorf("%d apps rejected, want 3 (outside the pool, Docker ip mismatch, loopback): %+v", got, s.Rejected())
	}
	// Policy.Check, asked of each app alone, rejects exactly these.
	var checked []catalog.Rejection
	for _, a := range table.CatalogApps() {
		if r := s.Policy().Check(&a); r != nil {
			checked = append(checked, *r)
		}
	}
	slices.SortFunc(checked, func(a, b catalog.Rejection) int { return strings.Compare(a.AppID, b.AppID) })
	if !slices.Equal(checked, s.Rejected()) {
		t.Errorf("Check rejects %+v, the snapshot %+v", checked, s.Rejected())
	}
	for _, c := range table.Names {
		env, _ := s.EnvOf(netip.MustParseAddr(c.Client))
		got := s.Resolve(env, c.Name)
		gotEnv, addrs := got.Env, []string(nil)
		if got.Service != nil {
			gotEnv = got.Service.Env
			for _, a := range got.Service.Addrs {
				addrs = append(addrs, a.String())
			}
		}
		if got.Kind == catalog.BelowServed || got.Kind == catalog.Foreign {
			addrs = nil // not an answer a client gets
		}
		if got.Kind == catalog.Foreign {
			gotEnv = ""
		}
		if got.Kind.String() != c.Kind || gotEnv != c.Env || !slices.Equal(addrs, c.Addrs) {
			t.Errorf("%s (env %s) asks %s: %v env %q addrs %v; want %s %q %v (%s)",
				c.Client, env, c.Name, got.Kind, gotEnv, addrs, c.Kind, c.Env, c.Addrs, c.Why)
		}
	}
	for _, c := range table.VHosts {
		env, _ := s.EnvOf(netip.MustParseAddr(c.Client))
		got := s.ResolveVHost(env, c.Host)
		gotEnv, backends := got.Env, []string(nil)
		if got.Kind == catalog.Foreign {
			gotEnv = ""
		}
		if got.Service != nil {
			for _, b := range got.Service.Backends {
				for _, p := range b.Ports {
					backends = append(backends, netip.AddrPortFrom(b.Addr, p.Number).String())
				}
			}
		}
		if got.Kind.String() != c.Kind || gotEnv != c.Env || !slices.Equal(backends, c.Backends) {
			t.Errorf("%s (env %s) asks vhost %s: %v env %q backends %v; want %s %q %v (%s)",
				c.Client, env, c.Host, got.Kind, gotEnv, backends, c.Kind, c.Env, c.Backends, c.Why)
		}
	}
}
