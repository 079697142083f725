package nginxctl

import (
	"net/netip"
	"testing"

	"github.com/oakdns/oak/catalog"
)

// TestFromSnapshot: the model of a chain holds the default env's routes,
// each env's differences only, held hosts, the addresses apps claim as
// clients, and the policy's CIDR rules.
func TestFromSnapshot(t *testing.T) {
	p := mustPolicy(t, catalog.PolicyConfig{
		Fallback: []catalog.FallbackRule{{Pattern: "feature-*", Parent: "staging"}},
		CIDRs:    []catalog.CIDRRule{{Prefix: netip.MustParsePrefix("10.9.0.0/16"), Env: "feature-z"}},
	})
	mq := app("/feature-x/mq", "feature-x", "10.0.2.9", "mq.example.com")
	mq.Tasks = nil // deployed, not running: held, and no client
	s := catalog.Build(p, []catalog.App{
		app("/int/app1", "", "10.0.1.1", "app1.example.com:8080"),
		app("/int/app2", "", "10.0.1.2", "app2.example.com"),
		app("/staging/app2", "staging", "10.0.3.2", "app2.example.com"),
		app("/feature-x/app1", "feature-x", "10.0.2.1", "app1.example.com:8080"),
		mq,
		app("/feature-y/redis", "feature-y", "10.0.4.1", ""), // no vhost: a client all the same
	})
	got := FromSnapshot(s)
	want := Model{
		DefaultEnv: "integration",
		Clients: []ClientEnv{
			{netip.MustParseAddr("10.0.1.1"), "integration"}, {netip.MustParseAddr("10.0.1.2"), "integration"},
			{netip.MustParseAddr("10.0.2.1"), "feature-x"}, {netip.MustParseAddr("10.0.3.2"), "staging"},
			{netip.MustParseAddr("10.0.4.1"), "feature-y"},
		},
		CIDRs:   []CIDREnv{{netip.MustParsePrefix("10.9.0.0/16"), "feature-z"}},
		Default: []Route{route("app1.example.com", "integration", "10.0.1.1:8080"), route("app2.example.com", "integration", "10.0.1.2:80")},
		Envs: []EnvRoutes{
			{Env: "feature-x", Routes: []Route{route("app1.example.com", "feature-x", "10.0.2.1:8080"), route("app2.example.com", "staging", "10.0.3.2:80"),
				{Host: "mq.example.com", Held: true, Env: "feature-x"}}},
			{Env: "feature-y", Routes: []Route{route("app2.example.com", "staging", "10.0.3.2:80")}},
			{Env: "feature-z", Routes: []Route{route("app2.example.com", "staging", "10.0.3.2:80")}},
			{Env: "staging", Routes: []Route{route("app2.example.com", "staging", "10.0.3.2:80")}},
		},
	}
	if !modelsEqual(got, want) {
		t.Errorf("FromSnapshot =\n%+v\nwant\n%+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("the model of a valid snapshot does not validate: %v", err)
	}
}
