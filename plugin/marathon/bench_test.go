package marathon

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	_ "github.com/coredns/coredns/plugin/hosts" // the baseline of BenchmarkVersusHosts
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"

	"github.com/oakdns/oak/catalog"
)

// BenchmarkServeDNS measures the query path for a client classified by
// its address, resolving a name through a fallback.
func BenchmarkServeDNS(b *testing.B) {
	m := newTestMarathon(testSnapshot(b))
	w := &test.ResponseWriter{RemoteIP: featureClient}
	for _, qname := range []string{"app1.example.com.", "svc.example.com.", "nosuch.example.com."} {
		req := new(dns.Msg)
		req.SetQuestion(qname, dns.TypeA)
		b.Run(qname, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.ServeDNS(context.Background(), w, req)
			}
		})
	}
}

// BenchmarkVersusHosts answers make bench-dns's query mix in process, from
// oak's plugin and, as the baseline in the same run, from CoreDNS's hosts
// plugin holding the same names: 10,000 apps of one name each, 5,050 in
// integration and 50 in each of 99 feature envs; the client is an app of
// feature-01, and its queries alternate its env's own 50 names with the
// 5,050 it gets by fallback (hosts holds the addresses that client sees).
// Each reply is packed, as the server does. The queries go round the mix
// in a shuffled order, so that lookups miss the caches as they do between
// the system calls of a real server; everything else a server does per
// query (the socket, a goroutine, the collector) is make bench-dns's.
func BenchmarkVersusHosts(b *testing.B) {
	const integration, features, perFeature = 5050, 99, 50
	var apps []catalog.App
	var hostsLines, own, fallback []string
	client := ""
	for i := range integration + features*perFeature {
		name := fmt.Sprintf("n%05d.svc.example.com", i)
		ip := netip.AddrFrom4([4]byte{10, byte(1 + i/62500), byte(i / 250 % 250), byte(1 + i%250)}).String()
		spec := appSpec{id: fmt.Sprintf("/integration/app%05d", i), names: name, ips: []string{ip}}
		if i >= integration {
			env := 1 + (i-integration)/perFeature
			spec.env = fmt.Sprintf("feature-%02d", env)
			spec.id = fmt.Sprintf("/%s/app%05d", spec.env, i)
			if env != 1 {
				apps = append(apps, spec.application())
				continue
			}
			if client == "" {
				client = ip
			}
			own = append(own, name)
		} else {
			fallback = append(fallback, name)
		}
		apps = append(apps, spec.application())
		hostsLines = append(hostsLines, ip+" "+name)
	}
	policy, err := catalog.NewPolicy(catalog.PolicyConfig{Fallback: []catalog.FallbackRule{{Pattern: "feature-*", Parent: "integration"}}})
	if err != nil {
		b.Fatal(err)
	}
	snapshot := catalog.Build(policy, apps)
	if st := snapshot.Stats(); st.Apps != len(apps) || st.Envs != 1+features {
		b.Fatalf("unexpected cluster: %+v", st)
	}
	oak := newTestMarathon(snapshot, func(m *Marathon) { m.zones = []string{"example.com."} })

	c := caddy.NewTestController("dns", "hosts /dev/null example.com {\n"+strings.Join(hostsLines, "\n")+"\n}")
	setupHosts, err := caddy.DirectiveAction("dns", "hosts")
	if err != nil {
		b.Fatal(err)
	}
	if err := setupHosts(c); err != nil {
		b.Fatal(err)
	}
	hosts := dnsserver.GetConfig(c).Plugin[0](nil)

	var queries []*dns.Msg
	for i := range fallback {
		for _, name := range []string{own[i%len(own)], fallback[i]} {
			q := new(dns.Msg)
			q.SetQuestion(name+".", dns.TypeA)
			queries = append(queries, q)
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(queries), func(i, j int) { queries[i], queries[j] = queries[j], queries[i] })
	// The server's context, as dnsserver builds it for each query.
	ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: "dns://:53"})
	ctx = context.WithValue(ctx, dnsserver.LoopKey{}, 0)
	for _, h := range []plugin.Handler{hosts, oak} {
		b.Run(h.Name(), func(b *testing.B) {
			w := &packWriter{ResponseWriter: test.ResponseWriter{RemoteIP: client}}
			for _, q := range queries[:100] { // the two plugins agree
				if _, err := h.ServeDNS(ctx, w, q); err != nil || len(w.last.Answer) != 1 {
					b.Fatalf("%s %s: %v %v", h.Name(), q.Question[0].Name, err, w.last)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				h.ServeDNS(ctx, w, queries[i])
				if i++; i == len(queries) {
					i = 0
				}
			}
		})
	}
}

// packWriter packs each reply into one reused buffer, as the server's
// writer does before its system call, and keeps the last message.
type packWriter struct {
	test.ResponseWriter
	buf  []byte
	last *dns.Msg
}

func (w *packWriter) WriteMsg(m *dns.Msg) error {
	packed, err := m.PackBuffer(w.buf)
	w.buf, w.last = packed[:0], m
	return err
}
