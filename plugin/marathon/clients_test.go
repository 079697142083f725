package marathon

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"weak"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/watcher"
)

// askEnv asks m for _env.example.com TXT from client on the server of ctx
// and returns the env and how it was chosen, as the record says.
func askEnv(ctx context.Context, m *Marathon, client string) (env, how string, err error) {
	req := new(dns.Msg)
	req.SetQuestion("_env.example.com.", dns.TypeTXT)
	rec := dnstest.NewRecorder(&test.ResponseWriter{RemoteIP: client})
	if _, err := m.ServeDNS(ctx, rec, req); err != nil || rec.Msg == nil || len(rec.Msg.Answer) != 1 {
		return "", "", fmt.Errorf("_env from %s: %v %v", client, err, rec.Msg)
	}
	for _, field := range rec.Msg.Answer[0].(*dns.TXT).Txt {
		if v, ok := strings.CutPrefix(field, "env="); ok {
			env = v
		}
		if v, ok := strings.CutPrefix(field, "how="); ok {
			how = v
		}
	}
	return env, how, nil
}

// envAnswer is askEnv on the test's goroutine, failing the test on error.
func envAnswer(t *testing.T, ctx context.Context, m *Marathon, client string) (env, how string) {
	t.Helper()
	env, how, err := askEnv(ctx, m, client)
	if err != nil {
		t.Fatal(err)
	}
	return env, how
}

// movedSnapshot is the test topology with feature-x's app1, the app that
// runs at featureClient, moved to feature-y.
func movedSnapshot(t *testing.T) *catalog.Snapshot {
	var apps []catalog.App
	for _, spec := range topology() {
		if spec.id == "/fx/app1" {
			spec.env = "feature-y"
			spec.names = "moved.example.com"
		}
		apps = append(apps, spec.application())
	}
	return catalog.Build(testPolicy(t), apps)
}

// TestClientMemoFollowsSnapshot: what the handler remembers of a client
// holds for one snapshot; in the next, the client is classified again.
func TestClientMemoFollowsSnapshot(t *testing.T) {
	before, after := testSnapshot(t), movedSnapshot(t)
	source := &fakeSource{snapshot: before}
	m := newTestMarathon(nil)
	m.source = source
	for i, want := range []string{"feature-x", "feature-x", "feature-y", "feature-y", "feature-x"} {
		if i == 2 {
			source.snapshot = after
		}
		if i == 4 {
			source.snapshot = before
		}
		if env, how := envAnswer(t, context.Background(), m, featureClient); env != want || how != "app" {
			t.Errorf("query %d: env %s (%s), want %s (app)", i, env, how, want)
		}
	}
}

// TestClientMemoMovesOn: under a new snapshot that decides the same for a
// client, the client's view is moved on to it, not made again; under one
// that decides otherwise, the client gets a new view.
func TestClientMemoMovesOn(t *testing.T) {
	first, second, moved := testSnapshot(t), testSnapshot(t), movedSnapshot(t)
	source := &fakeSource{snapshot: first}
	m := newTestMarathon(nil)
	m.source = source
	slot := &m.clients.slots[slotOf(netip.MustParseAddr(featureClient))]
	envAnswer(t, context.Background(), m, featureClient)
	held := slot.Load()
	if held == nil {
		t.Fatal("no view of the client")
	}
	source.snapshot = second
	if env, _ := envAnswer(t, context.Background(), m, featureClient); env != "feature-x" {
		t.Fatalf("env %s, want feature-x", env)
	}
	if slot.Load() != held {
		t.Error("a new view for a decision that did not change")
	}
	if at, want := held.epoch.Load(), m.clients.epoch(second); at != want {
		t.Errorf("the view holds for snapshot %d, want %d", at, want)
	}
	source.snapshot = moved
	if env, _ := envAnswer(t, context.Background(), m, featureClient); env != "feature-y" {
		t.Fatalf("env %s, want feature-y", env)
	}
	if now := slot.Load(); now == held || now.decision.env != "feature-y" {
		t.Error("the old view kept for a decision that changed")
	}
}

// TestClientMemoKeepsNoSnapshot: a client seen under a snapshot does not
// keep it alive once the source has moved on.
func TestClientMemoKeepsNoSnapshot(t *testing.T) {
	source := &swappedSource{}
	source.snapshot.Store(testSnapshot(t))
	old := weak.Make(source.snapshot.Load())
	m := newTestMarathon(nil)
	m.source = source
	envAnswer(t, context.Background(), m, featureClient)
	source.snapshot.Store(movedSnapshot(t))
	envAnswer(t, context.Background(), m, unknownClient) // the memo sees the new one
	runtime.GC()
	if old.Value() != nil {
		t.Error("the snapshot featureClient was seen under is still alive")
	}
	if env, _ := envAnswer(t, context.Background(), m, featureClient); env != "feature-y" {
		t.Errorf("featureClient: %s, want feature-y", env)
	}
}

// TestClientMemoSharedSlot: clients whose addresses fall in one slot each
// keep their own env. The client holding the slot keeps it, and the other
// decides without allocating, until the holder has been contested
// contestedAfter times; then the other takes it.
func TestClientMemoSharedSlot(t *testing.T) {
	feature := netip.MustParseAddr(featureClient)
	var other netip.Addr // an address of staging's CIDR in featureClient's slot
	for i := range 1 << 16 {
		a := netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)})
		if slotOf(a) == slotOf(feature) {
			other = a
			break
		}
	}
	if !other.IsValid() {
		t.Fatal("no address of 10.9.0.0/16 shares featureClient's slot")
	}
	m := newTestMarathon(testSnapshot(t))
	for range 3 {
		if env, how := envAnswer(t, context.Background(), m, featureClient); env != "feature-x" || how != "app" {
			t.Errorf("featureClient: %s (%s), want feature-x (app)", env, how)
		}
		if env, how := envAnswer(t, context.Background(), m, other.String()); env != "staging" || how != "cidr" {
			t.Errorf("%s: %s (%s), want staging (cidr)", other, env, how)
		}
	}
	slot := &m.clients.slots[slotOf(feature)]
	if held := slot.Load(); held == nil || held.addr != feature {
		t.Fatalf("slot holds %v, want featureClient's view", held)
	}
	snapshot := m.source.Snapshot()
	if allocs := testing.AllocsPerRun(1, func() { m.view(snapshot, "", other) }); allocs != 0 {
		t.Errorf("a contested query allocated %v times", allocs)
	}
	for range contestedAfter {
		m.view(snapshot, "", other)
	}
	if held := slot.Load(); held == nil || held.addr != other {
		t.Errorf("after %d contests the slot holds %v, want %s's view", contestedAfter, held, other)
	}
}

// TestClientMemoPerServer: one handler on two servers counts each query on
// its own server, whichever server the client asked first.
func TestClientMemoPerServer(t *testing.T) {
	m := newTestMarathon(testSnapshot(t))
	for _, server := range []string{"dns://127.0.0.1:1053", "dns://127.0.0.2:1053"} {
		ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: server})
		counter := requestCount.WithLabelValues(server, "feature-x", "meta")
		before := metricValue(t, counter)
		envAnswer(t, ctx, m, featureClient)
		envAnswer(t, ctx, m, featureClient)
		if got := metricValue(t, counter) - before; got != 2 {
			t.Errorf("%s counted %v queries, want 2", server, got)
		}
	}
}

// TestClientMemoConcurrent: queries of many clients, on many goroutines,
// while the snapshot changes under them (run with -race). Each client
// gets one of the envs it has in the two snapshots.
func TestClientMemoConcurrent(t *testing.T) {
	snapshots := []*catalog.Snapshot{testSnapshot(t), movedSnapshot(t)}
	source := &swappedSource{}
	source.snapshot.Store(snapshots[0])
	m := newTestMarathon(nil)
	m.source = source
	clients := map[string][]string{
		featureClient:     {"feature-x", "feature-y"},
		integrationClient: {"integration"},
		stagingClient:     {"staging"},
		unknownClient:     {"integration"},
	}
	var wg sync.WaitGroup
	for client, envs := range clients {
		for range 4 {
			wg.Go(func() {
				for range 200 {
					env, _, err := askEnv(context.Background(), m, client)
					if err != nil || env != envs[0] && env != envs[len(envs)-1] {
						t.Errorf("%s: env %s (%v), want one of %v", client, env, err, envs)
						return
					}
				}
			})
		}
	}
	for i := range 100 {
		source.snapshot.Store(snapshots[i%2])
	}
	wg.Wait()
}

// swappedSource is a source whose snapshot a test swaps while queries
// read it, as the watcher swaps its own.
type swappedSource struct {
	snapshot atomic.Pointer[catalog.Snapshot]
}

func (s *swappedSource) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
func (s *swappedSource) Snapshot() *catalog.Snapshot { return s.snapshot.Load() }
func (s *swappedSource) Ready() bool                 { return s.snapshot.Load() != nil }
func (s *swappedSource) Status() watcher.Status      { return watcher.Status{} }
