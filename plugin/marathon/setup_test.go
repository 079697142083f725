package marathon

import (
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/cache"

	"github.com/oakdns/oak/catalog"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		input string
		check func(t *testing.T, opts options)
	}{
		{
			name:  "defaults take the server block's zones",
			input: "marathon {\n endpoint http://m1:8080\n}",
			check: func(t *testing.T, opts options) {
				want := options{
					zones:     []string{"example.com."},
					endpoints: []string{"http://m1:8080"},
					ttl:       defaultTTL,
					resync:    defaultResync,
				}
				opts.where = ""
				if !reflect.DeepEqual(opts, want) {
					t.Errorf("got %+v, want %+v", opts, want)
				}
			},
		},
		{
			name:  "zones and reverse zones from arguments",
			input: "marathon Example.ORG 10.0.0.0/8 {\n endpoint http://m1:8080\n}",
			check: func(t *testing.T, opts options) {
				want := []string{"example.org.", "10.in-addr.arpa."}
				if !reflect.DeepEqual(opts.zones, want) {
					t.Errorf("zones = %q, want %q", opts.zones, want)
				}
			},
		},
		{
			name:  "several endpoints, comma lists and scheme-less members",
			input: "marathon {\n endpoint http://m1:8080,m2:8080 https://m3:8443/\n}",
			check: func(t *testing.T, opts options) {
				want := []string{"http://m1:8080", "http://m2:8080", "https://m3:8443"}
				if !reflect.DeepEqual(opts.endpoints, want) {
					t.Errorf("endpoints = %q, want %q", opts.endpoints, want)
				}
			},
		},
		{
			name:  "file endpoint",
			input: "marathon {\n endpoint file:///var/lib/oak/apps.json\n}",
			check: func(t *testing.T, opts options) {
				if opts.file != "/var/lib/oak/apps.json" || opts.endpoints != nil {
					t.Errorf("file = %q, endpoints = %q", opts.file, opts.endpoints)
				}
			},
		},
		{
			name:  "address rules",
			input: "marathon {\n endpoint http://m1:8080\n ip_pool 10.199.45.0/24 fd00:45::/64\n ip_pool 10.199.46.7/24\n ip_allow loopback link-local\n}",
			check: func(t *testing.T, opts options) {
				want := []netip.Prefix{netip.MustParsePrefix("10.199.45.0/24"), netip.MustParsePrefix("fd00:45::/64"), netip.MustParsePrefix("10.199.46.0/24")}
				if !reflect.DeepEqual(opts.policy.IPPools, want) || !reflect.DeepEqual(opts.policy.IPAllow, []string{"loopback", "link-local"}) {
					t.Errorf("pools %v allow %v", opts.policy.IPPools, opts.policy.IPAllow)
				}
			},
		},
		{
			name:  "credentials",
			input: "marathon {\n endpoint http://m1:8080\n credentials alice s3cret\n}",
			check: func(t *testing.T, opts options) {
				if opts.user != "alice" || opts.password != "s3cret" || opts.token != "" {
					t.Errorf("user %q password %q token %q", opts.user, opts.password, opts.token)
				}
			},
		},
		{
			name:  "token",
			input: "marathon {\n endpoint https://dcos\n token abc.def\n}",
			check: func(t *testing.T, opts options) {
				if opts.token != "abc.def" || opts.user != "" {
					t.Errorf("token %q user %q", opts.token, opts.user)
				}
			},
		},
		{
			name: "policy options",
			input: `marathon {
				endpoint http://m1:8080
				label_prefix ACME_
				default_env base
				fallback feature-x staging
				fallback feature-* base
				env_from_client
				env_cidr 10.9.0.0/16 staging
				env_cidr 10.8.1.7/16 feature-y
			}`,
			check: func(t *testing.T, opts options) {
				want := catalog.PolicyConfig{
					LabelPrefix: "ACME_",
					DefaultEnv:  "base",
					Fallback:    []catalog.FallbackRule{{Pattern: "feature-x", Parent: "staging"}, {Pattern: "feature-*", Parent: "base"}},
					CIDRs: []catalog.CIDRRule{
						{Prefix: netip.MustParsePrefix("10.9.0.0/16"), Env: "staging"},
						{Prefix: netip.MustParsePrefix("10.8.0.0/16"), Env: "feature-y"},
					},
				}
				if !reflect.DeepEqual(opts.policy, want) {
					t.Errorf("policy = %+v, want %+v", opts.policy, want)
				}
				if opts.pinnedEnv != "" {
					t.Errorf("pinned env %q", opts.pinnedEnv)
				}
			},
		},
		{
			name:  "pinned env",
			input: "marathon {\n endpoint http://m1:8080\n env feature-login\n}",
			check: func(t *testing.T, opts options) {
				if opts.pinnedEnv != "feature-login" {
					t.Errorf("pinned env %q", opts.pinnedEnv)
				}
			},
		},
		{
			name:  "ttl and resync",
			input: "marathon {\n endpoint http://m1:8080\n ttl 0\n resync 2m\n}",
			check: func(t *testing.T, opts options) {
				if opts.ttl != 0 || opts.resync != 2*time.Minute {
					t.Errorf("ttl %d resync %s", opts.ttl, opts.resync)
				}
			},
		},
		{
			name:  "fallthrough everywhere",
			input: "marathon {\n endpoint http://m1:8080\n fallthrough\n}",
			check: func(t *testing.T, opts options) {
				if !reflect.DeepEqual(opts.fall.Zones, []string{"."}) {
					t.Errorf("fallthrough zones %q", opts.fall.Zones)
				}
			},
		},
		{
			name:  "fallthrough for some zones",
			input: "marathon {\n endpoint http://m1:8080\n fallthrough example.com in-addr.arpa\n}",
			check: func(t *testing.T, opts options) {
				if !reflect.DeepEqual(opts.fall.Zones, []string{"example.com.", "in-addr.arpa."}) {
					t.Errorf("fallthrough zones %q", opts.fall.Zones)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := caddy.NewTestController("dns", tc.input)
			c.ServerBlockKeys = []string{"example.com."}
			opts, policy, err := parse(c)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if policy == nil {
				t.Fatal("no policy")
			}
			tc.check(t, opts)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		line  int    // the Corefile line the error must name
		want  string // part of the message
	}{
		{"unknown option", "marathon {\n endpoint http://m\n colour blue\n}", 3, "unknown property 'colour'"},
		{"no endpoint", "marathon {\n ttl 5\n}", 1, "endpoint is required"},
		{"endpoint without url", "marathon {\n endpoint\n}", 2, "at least one URL; is the environment variable that gives it (e.g. {$MARATHON_URL}) unset or empty?"},
		{"endpoint twice", "marathon {\n endpoint http://a\n endpoint http://b\n}", 3, "endpoint given twice"},
		{"endpoint bad scheme", "marathon {\n endpoint ftp://m\n}", 2, "scheme must be"},
		{"endpoint no host", "marathon {\n endpoint http://\n}", 2, "has no host"},
		{"file endpoint with others", "marathon {\n endpoint file:///a.json http://m\n}", 2, "only endpoint"},
		{"file endpoint with credentials", "marathon {\n endpoint file:///a.json\n credentials a b\n}", 3, "no use with a file"},
		{"credentials one arg", "marathon {\n endpoint http://m\n credentials alice\n}", 3, "Wrong argument count"},
		{"credentials and token", "marathon {\n endpoint http://m\n credentials a b\n token t\n}", 4, "mutually exclusive"},
		{"token and credentials", "marathon {\n endpoint http://m\n token t\n credentials a b\n}", 4, "mutually exclusive"},
		{"bad default env", "marathon {\n endpoint http://m\n default_env Not_Valid\n}", 3, "default_env"},
		{"fallback one arg", "marathon {\n endpoint http://m\n fallback feature-*\n}", 3, "fallback takes PATTERN PARENT"},
		{"fallback cycle", "marathon {\n endpoint http://m\n fallback a b\n fallback b a\n}", 4, "cycle"},
		{"fallback naming itself", "marathon {\n endpoint http://m\n fallback feature-* feature-x\n}", 3, "names itself"},
		{"fallback matching default env", "marathon {\n endpoint http://m\n fallback integ* staging\n}", 3, "default env"},
		{"fallback bad pattern", "marathon {\n endpoint http://m\n fallback [ staging\n}", 3, "pattern"},
		{"bad label prefix", "marathon {\n endpoint http://m\n label_prefix a=b\n}", 3, "label prefix"},
		{"bad cidr", "marathon {\n endpoint http://m\n env_cidr 10.0.0.0/33 staging\n}", 3, "invalid CIDR"},
		{"cidr not a prefix", "marathon {\n endpoint http://m\n env_cidr staging 10.0.0.0/8\n}", 3, "invalid CIDR"},
		{"cidr bad env", "marathon {\n endpoint http://m\n env_cidr 10.0.0.0/8 Bad_Env\n}", 3, "env_cidr: env name"},
		{"cidr twice", "marathon {\n endpoint http://m\n env_cidr 10.0.0.0/8 a\n env_cidr 10.1.0.0/8 b\n}", 4, "twice"},
		{"env and env_from_client", "marathon {\n endpoint http://m\n env a\n env_from_client\n}", 4, "cannot be combined"},
		{"env_from_client and env", "marathon {\n endpoint http://m\n env_from_client\n env a\n}", 4, "cannot be combined"},
		{"env and env_cidr", "marathon {\n endpoint http://m\n env a\n env_cidr 10.0.0.0/8 b\n}", 4, "cannot be combined"},
		{"env_cidr and env", "marathon {\n endpoint http://m\n env_cidr 10.0.0.0/8 b\n env a\n}", 4, "cannot be combined"},
		{"bad env", "marathon {\n endpoint http://m\n env -x\n}", 3, "env:"},
		{"ip_pool without args", "marathon {\n endpoint http://m\n ip_pool\n}", 3, "ip_pool takes"},
		{"ip_pool not a CIDR", "marathon {\n endpoint http://m\n ip_pool 10.199.45.1\n}", 3, "ip_pool: invalid CIDR"},
		{"ip_pool 4in6", "marathon {\n endpoint http://m\n ip_pool ::ffff:10.0.0.0/104\n}", 3, "plain IPv4 or IPv6"},
		{"ip_allow unknown", "marathon {\n endpoint http://m\n ip_allow multicast\n}", 3, "unknown address kind"},
		{"env_from_client with args", "marathon {\n endpoint http://m\n env_from_client yes\n}", 3, "Wrong argument count"},
		{"ttl not a number", "marathon {\n endpoint http://m\n ttl five\n}", 3, "ttl must be"},
		{"ttl too large", "marathon {\n endpoint http://m\n ttl 3601\n}", 3, "ttl must be"},
		{"ttl negative", "marathon {\n endpoint http://m\n ttl -1\n}", 3, "ttl must be"},
		{"resync bad", "marathon {\n endpoint http://m\n resync soon\n}", 3, "resync must be"},
		{"resync zero", "marathon {\n endpoint http://m\n resync 0s\n}", 3, "resync must be"},
		{"bad zone", "marathon exa..mple {\n endpoint http://m\n}", 1, "invalid zone"},
		{"twice in a block", "marathon {\n endpoint http://m\n}\nmarathon {\n endpoint http://m\n}", 0, plugin.ErrOnce.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := caddy.NewTestController("dns", tc.input)
			c.ServerBlockKeys = []string{"example.com."}
			_, _, err := parse(c)
			if err == nil {
				t.Fatal("parse succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if tc.line > 0 {
				if where := "Testfile:" + strconv.Itoa(tc.line) + " "; !strings.Contains(err.Error(), where) {
					t.Errorf("error %q does not name line %d", err, tc.line)
				}
			}
		})
	}
}

// TestSetup registers the plugin in a server block: the handler is added to
// the chain and the startup and shutdown hooks are in place.
func TestSetup(t *testing.T) {
	c := caddy.NewTestController("dns", "marathon {\n endpoint file:///nonexistent/apps.json\n}")
	c.ServerBlockKeys = []string{"example.com."}
	if err := setup(c); err != nil {
		t.Fatalf("setup: %v", err)
	}
	plugins := dnsserver.GetConfig(c).Plugin
	if len(plugins) != 1 {
		t.Fatalf("%d plugins in the chain, want 1", len(plugins))
	}
	m, ok := plugins[0](nil).(*Marathon)
	if !ok {
		t.Fatalf("chain holds %T", plugins[0](nil))
	}
	if m.Ready() {
		t.Error("ready before the source ran")
	}
	if m.Name() != "marathon" {
		t.Errorf("Name() = %q", m.Name())
	}

	bad := caddy.NewTestController("dns", "marathon {\n colour blue\n}")
	if err := setup(bad); err == nil || !strings.HasPrefix(err.Error(), "plugin/marathon: ") {
		t.Errorf("setup error = %v, want a plugin/marathon error", err)
	}
}

// TestSetupSharesSources: blocks that describe the same source share one
// watcher, whatever the spelling of their policy; a different policy or
// other credentials get their own.
func TestSetupSharesSources(t *testing.T) {
	registry := newSourceRegistry(func(*holder) bool { return true })
	h := &holder{}
	sourceOf := func(body string) *sharedSource {
		t.Helper()
		opts, policy, err := parse(caddy.NewTestController("dns", "marathon {\n endpoint http://m1:8080\n"+body+"}"))
		if err != nil {
			t.Fatal(err)
		}
		shared, err := registry.reserve(sourceKeyOf(opts, policy), h, func() (*sharedSource, error) {
			return newSharedSource(&fakeSource{}, sourceLabel(opts)), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return shared
	}
	a := sourceOf(" env integration\n")
	for _, body := range []string{
		" env feature-login\n",
		" env feature-login\n fallback feature-* integration\n", // restates the default
		" default_env integration\n label_prefix OAK_\n",
	} {
		if sourceOf(body) != a {
			t.Errorf("block %q got a source of its own", body)
		}
	}
	for _, body := range []string{" fallback feature-* staging\n", " credentials u p\n", " resync 1m\n"} {
		if sourceOf(body) == a {
			t.Errorf("block %q shares the source", body)
		}
	}
}

func TestCheckCache(t *testing.T) {
	withCache := func(zones ...string) *dnsserver.Config {
		cfg := &dnsserver.Config{Zone: "example.com.", ListenHosts: []string{""}, Port: "53"}
		ca := cache.New()
		if len(zones) > 0 {
			ca.Zones = zones
		}
		cfg.AddPlugin(func(next plugin.Handler) plugin.Handler { ca.Next = next; return ca })
		// NewServer compiles the chain and registers the handlers, as
		// before OnStartup.
		if _, err := dnsserver.NewServer("dns://:53", []*dnsserver.Config{cfg}); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	byClient := options{zones: []string{"example.com."}, where: "Corefile:3"}
	pinned := options{zones: []string{"example.com."}, pinnedEnv: "integration"}

	tests := []struct {
		name    string
		cfg     *dnsserver.Config
		opts    options
		wantErr bool
	}{
		{"no cache", &dnsserver.Config{}, byClient, false},
		{"cache with env from client", withCache(), byClient, true},
		{"cache of a parent zone", withCache("com."), byClient, true},
		{"cache of a child zone", withCache("a.example.com."), byClient, true},
		{"cache of other zones only", withCache("example.org."), byClient, false},
		{"cache in a pinned block", withCache(), pinned, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkCache(tc.cfg, tc.opts)
			if (err != nil) != tc.wantErr {
				t.Fatalf("checkCache = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), errCacheMixesEnvs) || err != nil && !strings.Contains(err.Error(), "Corefile:3") {
				t.Errorf("error %q lacks the explanation or the line", err)
			}
		})
	}
}
