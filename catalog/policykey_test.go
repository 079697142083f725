package catalog

import (
	"net/netip"
	"testing"
)

func TestPolicyKey(t *testing.T) {
	rule := func(pattern, parent string) FallbackRule { return FallbackRule{Pattern: pattern, Parent: parent} }
	cidr := func(prefix, env string) CIDRRule { return CIDRRule{Prefix: netip.MustParsePrefix(prefix), Env: env} }
	base := PolicyConfig{}
	tests := []struct {
		name string
		cfg  PolicyConfig
		same bool // same key as base
	}{
		{"the default spelled out", PolicyConfig{LabelPrefix: "OAK_", DefaultEnv: "integration"}, true},
		{"a rule restating the default", PolicyConfig{Fallback: []FallbackRule{rule("feature-*", "integration")}}, true},
		{"two rules restating the default", PolicyConfig{Fallback: []FallbackRule{rule("a-*", "integration"), rule("b", "integration")}}, true},
		{"another parent", PolicyConfig{Fallback: []FallbackRule{rule("feature-*", "staging")}}, false},
		{"another default env", PolicyConfig{DefaultEnv: "staging"}, false},
		{"another label prefix", PolicyConfig{LabelPrefix: "X_"}, false},
		{"a CIDR rule", PolicyConfig{CIDRs: []CIDRRule{cidr("10.0.0.0/8", "staging")}}, false},
		{"an ip_pool", PolicyConfig{IPPools: []netip.Prefix{netip.MustParsePrefix("10.199.45.0/24")}}, false},
		{"an ip_allow", PolicyConfig{IPAllow: []string{"loopback"}}, false},
	}
	want := mustPolicy(t, base).Key()
	for _, tc := range tests {
		if got := mustPolicy(t, tc.cfg).Key(); (got == want) != tc.same {
			t.Errorf("%s: key %q, base %q, want same: %v", tc.name, got, want, tc.same)
		}
	}

	pairs := []struct {
		name string
		a, b PolicyConfig
		same bool
	}{
		{"a duplicate pattern never matches",
			PolicyConfig{Fallback: []FallbackRule{rule("feature-*", "staging")}},
			PolicyConfig{Fallback: []FallbackRule{rule("feature-*", "staging"), rule("feature-*", "qa")}}, true},
		{"a literal under an earlier glob never matches",
			PolicyConfig{Fallback: []FallbackRule{rule("feature-*", "staging")}},
			PolicyConfig{Fallback: []FallbackRule{rule("feature-*", "staging"), rule("feature-x", "qa")}}, true},
		{"a default-parent rule before another rule shadows it",
			PolicyConfig{Fallback: []FallbackRule{rule("feature-*", "integration"), rule("feature-x", "staging")}},
			PolicyConfig{Fallback: []FallbackRule{rule("feature-x", "staging")}}, false},
		{"rule order matters",
			PolicyConfig{Fallback: []FallbackRule{rule("feature-x", "staging"), rule("feature-*", "qa")}},
			PolicyConfig{Fallback: []FallbackRule{rule("feature-*", "qa"), rule("feature-x", "staging")}}, false},
		{"CIDR rules in any order",
			PolicyConfig{CIDRs: []CIDRRule{cidr("10.1.0.0/16", "a"), cidr("10.2.0.0/16", "b"), cidr("10.0.0.0/8", "c")}},
			PolicyConfig{CIDRs: []CIDRRule{cidr("10.0.0.0/8", "c"), cidr("10.2.0.0/16", "b"), cidr("10.1.0.0/16", "a")}}, true},
		{"CIDR rules to other envs",
			PolicyConfig{CIDRs: []CIDRRule{cidr("10.1.0.0/16", "a")}},
			PolicyConfig{CIDRs: []CIDRRule{cidr("10.1.0.0/16", "b")}}, false},
	}
	for _, tc := range pairs {
		a, b := mustPolicy(t, tc.a).Key(), mustPolicy(t, tc.b).Key()
		if (a == b) != tc.same {
			t.Errorf("%s: keys %q and %q, want same: %v", tc.name, a, b, tc.same)
		}
	}
}
