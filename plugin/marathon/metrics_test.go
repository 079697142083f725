package marathon

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/watcher"
)

func TestRequestMetrics(t *testing.T) {
	m := newTestMarathon(testSnapshot(t), withFallthrough)
	unsynced := newTestMarathon(nil)
	tests := []struct {
		handler       *Marathon
		client, qname string
		env, outcome  string
	}{
		{m, featureClient, "app1.example.com.", "feature-x", "own"},
		{m, featureClient, "svc.example.com.", "feature-x", "fallback"},
		{m, featureClient, "gone.example.com.", "feature-x", "down"},
		{m, featureClient, "nosuch.example.com.", "feature-x", "fallthrough"},
		{m, stagingClient, "10.1.0.10.in-addr.arpa.", "staging", "reverse"},
		{m, unknownClient, "_env.example.com.", "integration", "meta"},
		{newTestMarathon(testSnapshot(t)), unknownClient, "nosuch.example.com.", "integration", "miss"},
		{newTestMarathon(testSnapshot(t)), unknownClient, "db.example.com.", "integration", "nodata"},
		{unsynced, featureClient, "app1.example.com.", noEnv, "servfail"},
	}
	for _, tc := range tests {
		counter := requestCount.WithLabelValues("", tc.env, tc.outcome)
		before := metricValue(t, counter)
		req := new(dns.Msg)
		req.SetQuestion(tc.qname, dns.TypeA)
		if tc.outcome == "reverse" {
			req.SetQuestion(tc.qname, dns.TypePTR)
		}
		if tc.outcome == "meta" {
			req.SetQuestion(tc.qname, dns.TypeTXT)
		}
		rec := dnstest.NewRecorder(&test.ResponseWriter{RemoteIP: tc.client})
		if _, err := tc.handler.ServeDNS(context.Background(), rec, req); err != nil {
			t.Fatal(err)
		}
		if got := metricValue(t, counter) - before; got != 1 {
			t.Errorf("%s from %s: requests_total{env=%q,outcome=%q} grew by %v, want 1", tc.qname, tc.client, tc.env, tc.outcome, got)
		}
	}
}

func TestStatusSampler(t *testing.T) {
	// The metrics are process-wide: a label of its own per run keeps
	// `go test -count=N` from adding to the previous run's counter.
	label := fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
	started := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newStatusSampler(label, started)

	// Before the first sync the age counts from the start of the source.
	s.sample(watcher.Status{}, started.Add(7*time.Second))
	if got := metricValue(t, syncAge.WithLabelValues(label)); got != 7 {
		t.Errorf("sync age before the first sync = %v, want 7", got)
	}

	synced := started.Add(10 * time.Second)
	s.sample(watcher.Status{LastSync: synced, Apps: 3, Tasks: 5, Rejected: 1, Reconnects: 2}, synced.Add(42*time.Second))
	for name, want := range map[string]float64{
		"sync_age_seconds":        42,
		"snapshot_apps":           3,
		"snapshot_tasks":          5,
		"rejected_apps":           1,
		"stream_reconnects_total": 2,
	} {
		var got float64
		switch name {
		case "sync_age_seconds":
			got = metricValue(t, syncAge.WithLabelValues(label))
		case "snapshot_apps":
			got = metricValue(t, snapshotApps.WithLabelValues(label))
		case "snapshot_tasks":
			got = metricValue(t, snapshotTasks.WithLabelValues(label))
		case "rejected_apps":
			got = metricValue(t, rejectedApps.WithLabelValues(label))
		case "stream_reconnects_total":
			got = metricValue(t, streamReconnects.WithLabelValues(label))
		}
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	// Marathon unreachable: the status keeps its last sync, the age grows,
	// the reconnect counter only ever adds.
	s.sample(watcher.Status{LastSync: synced, Reconnects: 3}, synced.Add(100*time.Second))
	if got := metricValue(t, syncAge.WithLabelValues(label)); got != 100 {
		t.Errorf("stale sync age = %v, want 100", got)
	}
	if got := metricValue(t, streamReconnects.WithLabelValues(label)); got != 3 {
		t.Errorf("stream_reconnects_total = %v, want 3", got)
	}
}

// TestStaleSnapshotStillServed: when the source cannot reach Marathon it
// keeps its last snapshot; the plugin keeps answering and stays ready.
func TestStaleSnapshotStillServed(t *testing.T) {
	source := &fakeSource{snapshot: testSnapshot(t), status: watcher.Status{LastSync: time.Now().Add(-time.Hour), LastError: context.DeadlineExceeded}}
	m := newTestMarathon(nil)
	m.source = source
	if !m.Ready() {
		t.Error("not ready with a stale snapshot")
	}
	req := new(dns.Msg)
	req.SetQuestion("app1.example.com.", dns.TypeA)
	resp := serve(t, m, featureClient, false, req)
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Errorf("stale snapshot not served: %v", resp)
	}
}

// metricValue reads a counter or gauge.
func metricValue(t *testing.T, metric prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := metric.Write(&out); err != nil {
		t.Fatal(err)
	}
	switch {
	case out.Counter != nil:
		return out.Counter.GetValue()
	case out.Gauge != nil:
		return out.Gauge.GetValue()
	}
	t.Fatalf("%v is neither a counter nor a gauge", metric.Desc())
	return 0
}

// TestRequestSeriesOfGoneEnvs: once a snapshot no longer has an env, the
// requests_total series of that env go; the envs the configuration names
// stay, and an env that comes back is counted again.
func TestRequestSeriesOfGoneEnvs(t *testing.T) {
	opts := options{policy: catalog.PolicyConfig{
		Fallback: []catalog.FallbackRule{{Pattern: "feature-x", Parent: "staging"}},
		CIDRs:    []catalog.CIDRRule{{Prefix: netip.MustParsePrefix("10.9.0.0/16"), Env: "staging"}},
	}}
	policy := testPolicy(t)
	m := newTestMarathon(testSnapshot(t))
	m.counters.keep = configuredEnvs(opts, policy)
	// A server of its own: other tests count the same envs.
	server := fmt.Sprintf("dns://%s-%d", t.Name(), time.Now().UnixNano())
	ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: server})
	ask := func(client string) {
		req := new(dns.Msg)
		req.SetQuestion("app1.example.com.", dns.TypeA)
		if _, err := m.ServeDNS(ctx, dnstest.NewRecorder(&test.ResponseWriter{RemoteIP: client}), req); err != nil {
			t.Fatal(err)
		}
	}
	ask(featureClient)     // feature-x, by its app
	ask(stagingClient)     // staging, by CIDR rule: no app of its own needed
	ask(integrationClient) // the default env
	if got := seriesEnvs(t, server); !got["feature-x"] || !got["staging"] || !got["integration"] {
		t.Fatalf("series before: %v", got)
	}

	// feature-x is gone from Marathon; staging keeps no app.
	var apps []catalog.App
	for _, spec := range topology() {
		if spec.env == "" {
			apps = append(apps, spec.application())
		}
	}
	gone := catalog.Build(policy, apps)
	m.source = &fakeSource{snapshot: gone}
	held := m.counters.of(server, "feature-x") // a query still running on the old snapshot
	sampler := newStatusSampler(t.Name(), time.Now())
	sampler.pruneEnvs(gone, []*requestCounters{&m.counters})
	if got := seriesEnvs(t, server); got["feature-x"] || !got["staging"] || !got["integration"] {
		t.Errorf("series after feature-x went: %v", got)
	}
	held.count(outcomeMiss) // ends after the prune: no series comes back for it
	if got := seriesEnvs(t, server); got["feature-x"] {
		t.Errorf("series after a late count of feature-x: %v", got)
	}

	m.source = &fakeSource{snapshot: testSnapshot(t)} // it comes back
	counter := requestCount.WithLabelValues(server, "feature-x", "own")
	ask(featureClient)
	if got := metricValue(t, counter); got != 1 {
		t.Errorf("feature-x counted %v after it came back, want 1", got)
	}
}

// seriesEnvs returns the env labels of server's requests_total series.
func seriesEnvs(t *testing.T, server string) map[string]bool {
	t.Helper()
	ch := make(chan prometheus.Metric, 1024)
	requestCount.Collect(ch)
	close(ch)
	envs := map[string]bool{}
	for metric := range ch {
		var out dto.Metric
		if err := metric.Write(&out); err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{}
		for _, label := range out.GetLabel() {
			labels[label.GetName()] = label.GetValue()
		}
		if labels["server"] == server {
			envs[labels["env"]] = true
		}
	}
	return envs
}
