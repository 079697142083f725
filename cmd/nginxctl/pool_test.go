package main

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/ipam"
)

// TestPoolFitsPolicy: nginxctl refuses to start with a pool whose addresses
// its own DNS policy would refuse as fixed addresses, since every deploy on
// one of them would fail.
func TestPoolFitsPolicy(t *testing.T) {
	spec := ipam.DefaultSpec()
	spec.Subnet, spec.Gateway = "10.77.0.0/24", "10.77.0.254"
	pcfg, err := spec.Parse()
	if err != nil {
		t.Fatal(err)
	}
	prefixes := func(ps ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range ps {
			out = append(out, netip.MustParsePrefix(p))
		}
		return out
	}
	n := len(pcfg.Addresses())
	for _, tc := range []struct {
		name string
		cfg  catalog.PolicyConfig
		want string // substring of the error; "" = fits
	}{
		{"no ip_pool", catalog.PolicyConfig{}, ""},
		{"inside an ip_pool", catalog.PolicyConfig{IPPools: prefixes("10.99.0.0/16", "10.77.0.0/16")}, ""},
		{"outside every ip_pool", catalog.PolicyConfig{IPPools: prefixes("10.99.0.0/16")},
			"the policy refuses " + strconv.Itoa(n) + " of the pool's " + strconv.Itoa(n) + " addresses as an app's OAK_IP (first 10.77.0.1: IP 10.77.0.1 is outside every ip_pool)"},
		{"half inside", catalog.PolicyConfig{IPPools: prefixes("10.77.0.0/25")}, "(first 10.77.0.127: IP 10.77.0.127 is the network or broadcast address of ip_pool 10.77.0.0/25)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			policy, err := catalog.NewPolicy(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = poolFitsPolicy(pcfg, policy)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("poolFitsPolicy = %v, want %q", err, tc.want)
			}
		})
	}
}
