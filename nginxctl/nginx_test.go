package nginxctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/oakdns/oak/catalog"
)

// chainTopology is three envs in a chain, feature-x -> staging ->
// integration, with backends on loopback: each app's fixed IP is its
// backend and identifies its containers as clients.
type chainTopology struct {
	policy *catalog.Policy
	apps   []catalog.App
}

const (
	intApp1, intApp2, intApp3 = "127.0.1.10", "127.0.1.11", "127.0.1.12"
	stagingApp2               = "127.0.3.11"
	featureApp1               = "127.0.2.10"
	defaultClient             = "127.0.0.1" // no app claims it
)

func newChainTopology(t *testing.T) chainTopology {
	t.Helper()
	vhost := func(ip, name, host string) string {
		b := startBackend(t, ip, name)
		return fmt.Sprintf("%s:%d", host, b.Port)
	}
	return chainTopology{
		policy: mustPolicy(t, catalog.PolicyConfig{Fallback: []catalog.FallbackRule{{Pattern: "feature-*", Parent: "staging"}}}),
		apps: []catalog.App{
			app("/int/app1", "", intApp1, vhost(intApp1, "integration/app1", "app1.example.com")),
			app("/int/app2", "", intApp2, vhost(intApp2, "integration/app2", "app2.example.com")),
			app("/int/app3", "", intApp3, vhost(intApp3, "integration/app3", "app3.example.com")),
			app("/staging/app2", "staging", stagingApp2, vhost(stagingApp2, "staging/app2", "app2.example.com")),
			app("/feature-x/app1", "feature-x", featureApp1, vhost(featureApp1, "feature-x/app1", "app1.example.com")),
		},
	}
}

func (c chainTopology) model(without ...string) Model {
	var apps []catalog.App
	for _, a := range c.apps {
		if !strings.Contains(strings.Join(without, " "), a.ID) {
			apps = append(apps, a)
		}
	}
	return FromSnapshot(catalog.Build(c.policy, apps))
}

// expectRoutes checks, for each client address and host, the status and
// the backend that answers (by the name it was started with).
func expectRoutes(t *testing.T, listen string, cases []routeCase) {
	t.Helper()
	for _, tc := range cases {
		status, body, err := get(client(tc.from), listen, tc.host)
		if err != nil {
			t.Errorf("%s from %s: %v", tc.host, tc.from, err)
			continue
		}
		if status != tc.status || !strings.HasPrefix(body, tc.body) {
			t.Errorf("%s from %s: %d %q, want %d %q", tc.host, tc.from, status, body, tc.status, tc.body)
		}
	}
}

type routeCase struct {
	from, host string
	status     int
	body       string // prefix of the body
}

// TestNginxRouting: clients of each env reach their env's backend, fall
// back along a three-level chain, get 404 for unknown hosts and 503 for a
// held one; deleting an app re-routes after one apply.
func TestNginxRouting(t *testing.T) {
	tn := startNginx(t)
	topo := newChainTopology(t)
	tn.apply(t, topo.model())

	expectRoutes(t, tn.opts.Listen, []routeCase{
		{defaultClient, "app1.example.com", 200, "integration/app1 env=integration host=app1.example.com"},
		{defaultClient, "app2.example.com", 200, "integration/app2"},
		{intApp3, "app2.example.com", 200, "integration/app2"},
		{stagingApp2, "app1.example.com", 200, "integration/app1 env=staging"},
		{stagingApp2, "app2.example.com", 200, "staging/app2"},
		{featureApp1, "app1.example.com", 200, "feature-x/app1 env=feature-x"},
		{featureApp1, "App1.Example.COM", 200, "feature-x/app1"},
		{featureApp1, "app2.example.com", 200, "staging/app2"}, // two levels up
		{featureApp1, "app3.example.com", 200, "integration/app3"},
		{featureApp1, "nosuch.example.com", 404, "oak: no such virtual host for env feature-x"},
		{defaultClient, "127.0.0.1", 404, "oak: no such virtual host"},
	})

	// Held: the catalog cannot report it yet, so the model says it.
	held := topo.model()
	held.Envs = append(held.Envs, EnvRoutes{Env: "feature-y", Routes: []Route{{Host: "app3.example.com", Held: true, Env: "feature-y"}}})
	held.CIDRs = append(held.CIDRs, CIDREnv{Prefix: netipPrefix("127.0.4.0/24"), Env: "feature-y"})
	tn.apply(t, held)
	expectRoutes(t, tn.opts.Listen, []routeCase{
		{"127.0.4.7", "app3.example.com", 503, "oak: app3.example.com is held by env feature-y"},
		{"127.0.4.7", "app1.example.com", 200, "integration/app1 env=feature-y"},
		{featureApp1, "app3.example.com", 200, "integration/app3"},
	})

	// The feature env's app1 is deleted: its clients fall back.
	tn.apply(t, topo.model("/feature-x/app1"))
	expectRoutes(t, tn.opts.Listen, []routeCase{
		{featureApp1, "app1.example.com", 200, "integration/app1 env=integration"}, // its address is nobody's now
		{stagingApp2, "app1.example.com", 200, "integration/app1 env=staging"},
	})
}

// TestNginxEnvHeader: with an env header, a client picks any env the
// model knows; an unknown one keeps the client's own env.
func TestNginxEnvHeader(t *testing.T) {
	tn := startNginx(t)
	tn.opts.EnvHeader = "X-Oak-Env"
	topo := newChainTopology(t)
	tn.apply(t, topo.model())
	c := client(defaultClient)
	for _, tc := range []struct{ env, want string }{
		{"feature-x", "feature-x/app1"},
		{"staging", "integration/app1 env=staging"},
		{"no-such-env", "integration/app1 env=integration"},
		{"", "integration/app1 env=integration"},
	} {
		status, body, err := get(c, tn.opts.Listen, "app1.example.com", "X-Oak-Env", tc.env)
		if err != nil || status != 200 || !strings.HasPrefix(body, tc.want) {
			t.Errorf("X-Oak-Env %q: %d %q %v, want %q", tc.env, status, body, err, tc.want)
		}
	}
}

// TestNginxCheckFailureKeepsServing: a config that nginx -t rejects never
// goes live; a reload that is not verified is rolled back; Nginx serves
// the last good config throughout.
func TestNginxCheckFailureKeepsServing(t *testing.T) {
	tn := startNginx(t)
	topo := newChainTopology(t)
	good := tn.apply(t, topo.model())
	stillServing := func(t *testing.T) {
		t.Helper()
		if !bytes.Equal(tn.applier.Live(), good.Text) {
			t.Error("the live file is not the last good config")
		}
		if gen, err := tn.applier.Served(context.Background()); err != nil || gen != good.Generation {
			t.Errorf("nginx serves generation %q (%v), want %q", gen, err, good.Generation)
		}
		expectRoutes(t, tn.opts.Listen, []routeCase{{featureApp1, "app1.example.com", 200, "feature-x/app1"}})
	}

	t.Run("nginx -t rejects", func(t *testing.T) {
		bad, err := Render(ptr(topo.model("/feature-x/app1")), tn.opts)
		if err != nil {
			t.Fatal(err)
		}
		bad.Text = append(bad.Text, "lua_code_cache off;\n"...) // no such directive in this Nginx
		_, _, err = tn.applier.Apply(context.Background(), bad)
		var ae *ApplyError
		if !errors.As(err, &ae) || ae.Stage != StageCheck || !strings.Contains(err.Error(), "lua_code_cache") {
			t.Fatalf("Apply = %v, want a check failure naming the directive", err)
		}
		if _, err := os.Stat(tn.nginx.path(candidateFile)); !os.IsNotExist(err) {
			t.Errorf("the rejected candidate is left behind: %v", err)
		}
		stillServing(t)
	})

	t.Run("reload not verified", func(t *testing.T) {
		cfg, err := Render(ptr(topo.model("/feature-x/app1")), tn.opts)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Generation = "never-served"
		tn.applier.VerifyTimeout = 300e6 // ns; the generation can never appear
		defer func() { tn.applier.VerifyTimeout = 10e9 }()
		_, _, err = tn.applier.Apply(context.Background(), cfg)
		var ae *ApplyError
		if !errors.As(err, &ae) || ae.Stage != StageVerify {
			t.Fatalf("Apply = %v, want a verify failure", err)
		}
		waitFor(t, "nginx to serve the restored config", func() error {
			gen, err := tn.applier.Served(context.Background())
			if err == nil && gen != good.Generation {
				err = fmt.Errorf("generation %q", gen)
			}
			return err
		})
		stillServing(t)
	})

	t.Run("reload signal fails", func(t *testing.T) {
		cfg, err := Render(ptr(topo.model("/feature-x/app1")), tn.opts)
		if err != nil {
			t.Fatal(err)
		}
		broken := *tn.applier
		broken.Reloader = failingReloader{}
		_, _, err = broken.Apply(context.Background(), cfg)
		var ae *ApplyError
		if !errors.As(err, &ae) || ae.Stage != StageReload {
			t.Fatalf("Apply = %v, want a reload failure", err)
		}
		stillServing(t)
	})
}

type failingReloader struct{}

func (failingReloader) Reload(context.Context) error { return errors.New("no signal today") }

// TestNginxReloadsUnderLoad: requests from several clients run while 20
// configs are applied; none fails.
func TestNginxReloadsUnderLoad(t *testing.T) {
	tn := startNginx(t)
	topo := newChainTopology(t)
	models := []Model{topo.model(), topo.model("/feature-x/app1")}
	tn.apply(t, models[0])

	var stop atomic.Bool
	var requests, failures atomic.Int64
	var firstFailure sync.Once
	var failure string
	var wg sync.WaitGroup
	for _, from := range []string{defaultClient, featureApp1, stagingApp2, intApp3} {
		wg.Go(func() {
			// Kept-alive connections, as a real client's: a reload closes
			// them when idle, and the client must not see an error.
			c := client(from)
			c.Transport.(*http.Transport).DisableKeepAlives = false
			for !stop.Load() {
				status, body, err := get(c, tn.opts.Listen, "app1.example.com")
				requests.Add(1)
				if err != nil || status != 200 || !strings.Contains(body, "/app1") {
					failures.Add(1)
					firstFailure.Do(func() { failure = fmt.Sprintf("%d %q %v", status, body, err) })
				}
			}
		})
	}
	for i := range 20 {
		before := requests.Load()
		tn.apply(t, models[(i+1)%2])
		waitFor(t, "requests after the reload", func() error {
			if requests.Load() < before+20 {
				return errors.New("too few")
			}
			return nil
		})
	}
	stop.Store(true)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed through 20 reloads; first: %s", n, requests.Load(), failure)
	}
	t.Logf("%d requests through 20 reloads, none failed", requests.Load())
}

func ptr[T any](v T) *T { return &v }

// TestNginxHostileCorpus runs the controller on a real Nginx with hostile
// labels (which the catalog refuses), hostile values in the model (as a
// catalog bug would let through) and a vhost of another team's domain:
// each is rejected with a reason that /v1/rejections lists, none reaches
// the text nginx -t sees, and the rest of the config is live.
func TestNginxHostileCorpus(t *testing.T) {
	tn := startNginx(t)
	b := startBackend(t, intApp1, "integration/app1")
	good := fmt.Sprintf("app1.example.com:%d", b.Port)

	src := &fakeWatcher{policy: mustPolicy(t, catalog.PolicyConfig{})}
	apps := []catalog.App{app("/int/app1", "", intApp1, good), app("/other/app", "", "127.0.1.20", "app.other-team.com")}
	for i, h := range hostile {
		if h != "" {
			apps = append(apps, app(fmt.Sprintf("/hostile/%d", i), "", "127.0.1.21", h))
		}
	}
	src.publish(apps...)

	hook := func(m *Model) {
		for _, h := range hostile {
			m.Default = append(m.Default, route(h, "integration", intApp1+":80"))
			m.Envs = append(m.Envs, EnvRoutes{Env: h, Routes: []Route{route("app2.example.com", "integration", intApp1+":80")}})
		}
	}
	domains, _ := ParseDomains("example.com")
	ctl, err := New(Options{
		Source:  hookedSource{&WatcherSource{Source: src}, hook},
		Applier: tn.applier,
		Render:  tn.opts,
		Domains: domains,
		Logger:  slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ctl.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	waitFor(t, "the first config", func() error {
		if v := ctl.View(""); v.Applied == nil {
			return fmt.Errorf("generation %q, error %q", v.Generation, v.LastError)
		}
		return nil
	})
	expectRoutes(t, tn.opts.Listen, []routeCase{
		{featureApp1, "app1.example.com", 200, "integration/app1"},
		{featureApp1, "app.other-team.com", 404, "oak: no such virtual host"},
	})
	if err := ctl.Health(); err != nil {
		t.Errorf("Health: %v", err)
	}

	live := string(tn.applier.Live())
	for _, marker := range []string{"passwd", "lua", "ssl_engine", "9999", "other-team", "$host.", "\u0430", "\u200b", "aaaaaaaaaaaaaaaaaaaa", "'", "*"} {
		if strings.Contains(live, marker) {
			t.Errorf("the live config contains %q", marker)
		}
	}
	rejected := ctl.Rejections()
	for i, h := range hostile {
		// The catalog takes a trailing dot off a name: that label is fine.
		if h != "" && h != "app1.example.com." && !slices.ContainsFunc(rejected, func(r Rejection) bool {
			return r.Source == "app" && r.App == fmt.Sprintf("/hostile/%d", i) && r.Reason != ""
		}) {
			t.Errorf("label OAK_HTTP=%.40q: the app is not listed as rejected", h)
		}
		if !slices.ContainsFunc(rejected, func(r Rejection) bool { return r.Source == "route" && r.Host == shown(h) && r.Reason != "" }) {
			t.Errorf("model host %.40q: not listed as rejected", h)
		}
		if !slices.ContainsFunc(rejected, func(r Rejection) bool { return r.Source == "env" && r.Env == shown(h) && r.Reason != "" }) {
			t.Errorf("model env %.40q: not listed as rejected", h)
		}
	}
	if !slices.ContainsFunc(rejected, func(r Rejection) bool { return r.Host == "app.other-team.com" }) {
		t.Error("the other team's vhost is not listed as rejected")
	}
}
