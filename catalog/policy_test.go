package catalog

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestNewPolicyDefaults(t *testing.T) {
	p := mustPolicy(t, PolicyConfig{})
	if p.DefaultEnv() != "integration" || p.Labels().Prefix != "OAK_" {
		t.Errorf("defaults: env %q prefix %q", p.DefaultEnv(), p.Labels().Prefix)
	}
	if got := p.Chain("feature-x"); !reflect.DeepEqual(got, []string{"feature-x", "integration"}) {
		t.Errorf("Chain(feature-x) = %v", got)
	}
	if got := p.Chain(""); !reflect.DeepEqual(got, []string{"integration"}) {
		t.Errorf("Chain(\"\") = %v", got)
	}
}

func TestNewPolicyErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  PolicyConfig
		want string // part of the error
	}{
		{"bad default env", PolicyConfig{DefaultEnv: "Integration"}, "default env"},
		{"bad prefix", PolicyConfig{LabelPrefix: "OAK "}, "label prefix"},
		{"bad parent", PolicyConfig{Fallback: []FallbackRule{{"feature-*", "Staging"}}}, "parent"},
		{"empty pattern", PolicyConfig{Fallback: []FallbackRule{{"", "staging"}}}, "pattern"},
		{"bad glob", PolicyConfig{Fallback: []FallbackRule{{"feature-[", "staging"}}}, "pattern"},
		{"slash in pattern", PolicyConfig{Fallback: []FallbackRule{{"a/b", "staging"}}}, "pattern"},
		{"rule naming itself", PolicyConfig{Fallback: []FallbackRule{{"staging", "staging"}}}, "names itself"},
		{"glob naming itself", PolicyConfig{Fallback: []FallbackRule{{"feature-*", "feature-base"}}}, "names itself"},
		{"pattern matches default env", PolicyConfig{Fallback: []FallbackRule{{"int*", "staging"}}}, "default env"},
		{"literal default env", PolicyConfig{Fallback: []FallbackRule{{"integration", "staging"}}}, "default env"},
		{
			"cycle of two",
			PolicyConfig{Fallback: []FallbackRule{{"a", "b"}, {"b", "a"}}},
			"cycle",
		},
		{
			"cycle of three through globs",
			PolicyConfig{Fallback: []FallbackRule{{"x-*", "y-1"}, {"y-*", "z-1"}, {"z-*", "x-1"}}},
			"cycle",
		},
		{"invalid CIDR", PolicyConfig{CIDRs: []CIDRRule{{Env: "a"}}}, "invalid prefix"},
		{"CIDR bad env", PolicyConfig{CIDRs: []CIDRRule{{netip.MustParsePrefix("10.0.0.0/8"), "A"}}}, "CIDR rule 1"},
		{
			"duplicate CIDR",
			PolicyConfig{CIDRs: []CIDRRule{{netip.MustParsePrefix("10.0.0.0/8"), "a"}, {netip.MustParsePrefix("10.1.0.0/8"), "b"}}},
			"twice",
		},
		{"4in6 CIDR", PolicyConfig{CIDRs: []CIDRRule{{netip.MustParsePrefix("::ffff:10.0.0.0/104"), "a"}}}, "plain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPolicy(tc.cfg)
			if err == nil {
				t.Fatalf("NewPolicy = %v, want an error containing %q", p, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestPolicyChains(t *testing.T) {
	p := mustPolicy(t, PolicyConfig{
		DefaultEnv: "integration",
		Fallback: []FallbackRule{
			{"feature-legacy-*", "integration"},
			{"feature-*", "staging"},
			{"staging", "preprod"},
			{"hotfix-?", "preprod"},
		},
	})
	tests := []struct {
		env  string
		want []string
	}{
		{"integration", []string{"integration"}},
		{"staging", []string{"staging", "preprod", "integration"}},
		{"feature-login", []string{"feature-login", "staging", "preprod", "integration"}},
		{"feature-legacy-x", []string{"feature-legacy-x", "integration"}},
		{"hotfix-1", []string{"hotfix-1", "preprod", "integration"}},
		{"hotfix-12", []string{"hotfix-12", "integration"}},
		{"preprod", []string{"preprod", "integration"}},
		{"other", []string{"other", "integration"}},
	}
	for _, tc := range tests {
		for range 2 { // the second call comes from the memo
			if got := p.Chain(tc.env); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Chain(%q) = %v, want %v", tc.env, got, tc.want)
			}
		}
	}
}

func TestPolicyChainDoesNotAllocateWhenKnown(t *testing.T) {
	p := mustPolicy(t, PolicyConfig{Fallback: []FallbackRule{{"feature-*", "staging"}}})
	p.Chain("feature-x")
	for _, env := range []string{"staging", "integration", "feature-x"} {
		if n := testing.AllocsPerRun(100, func() { p.Chain(env) }); n != 0 {
			t.Errorf("Chain(%q) allocates %v times", env, n)
		}
	}
}

func TestPolicyEnvForAddr(t *testing.T) {
	p := mustPolicy(t, PolicyConfig{CIDRs: []CIDRRule{
		{netip.MustParsePrefix("10.0.0.0/8"), "wide"},
		{netip.MustParsePrefix("10.1.2.0/24"), "narrow"},
		{netip.MustParsePrefix("10.1.0.0/16"), "middle"},
		{netip.MustParsePrefix("2001:db8::/32"), "six"},
	}})
	tests := []struct {
		addr string
		env  string
		ok   bool
	}{
		{"10.1.2.3", "narrow", true},
		{"10.1.3.3", "middle", true},
		{"10.2.0.1", "wide", true},
		{"::ffff:10.1.2.3", "narrow", true},
		{"2001:db8::5", "six", true},
		{"192.0.2.1", "", false},
	}
	for _, tc := range tests {
		env, ok := p.EnvForAddr(netip.MustParseAddr(tc.addr))
		if env != tc.env || ok != tc.ok {
			t.Errorf("EnvForAddr(%s) = %q, %v; want %q, %v", tc.addr, env, ok, tc.env, tc.ok)
		}
	}
}
