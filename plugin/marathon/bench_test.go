package marathon

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

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
// Each query is unpacked and each reply packed, as the server does. The
// queries go round the mix in a shuffled order. "warm" runs the plugins
// back to back, where their data stays in the caches and the TLB; in
// "syscall" each query follows a system call (getppid), as each query in a
// server follows the reads and writes of its socket. On the VMs measured a
// system call took longer after the plugin that read more memory
// (BENCHMARKS.md, issue 10), so the mode shows what make bench-dns shows,
// in seconds; the figure to read is the ratio between the plugins, not
// the times. The rest of a server's work per query (the socket, a
// goroutine, the collector marking each server's own heap) is make
// bench-dns's to measure.
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

	var queries [][]byte
	for i := range fallback {
		for _, name := range []string{own[i%len(own)], fallback[i]} {
			q := new(dns.Msg)
			q.SetQuestion(name+".", dns.TypeA)
			packed, err := q.Pack()
			if err != nil {
				b.Fatal(err)
			}
			queries = append(queries, packed)
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(queries), func(i, j int) { queries[i], queries[j] = queries[j], queries[i] })
	// The server's context, as dnsserver builds it for each query.
	ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: "dns://:53"})
	ctx = context.WithValue(ctx, dnsserver.LoopKey{}, 0)
	handlers := []plugin.Handler{hosts, oak}
	for _, mode := range []string{"warm", "syscall"} {
		b.Run(mode, func(b *testing.B) {
			w := &packWriter{remote: &net.UDPAddr{IP: net.ParseIP(client), Port: 40000}}
			serve := func(h plugin.Handler, packed []byte) (*dns.Msg, error) {
				q := new(dns.Msg) // as the server unpacks each query
				if err := q.Unpack(packed); err != nil {
					return nil, err
				}
				_, err := h.ServeDNS(ctx, w, q)
				return q, err
			}
			for _, packed := range queries[:100] { // both plugins give the same address
				var answers []string
				for _, h := range handlers {
					if q, err := serve(h, packed); err != nil || len(w.last.Answer) != 1 {
						b.Fatalf("%s %v: %v %v", h.Name(), q, err, w.last)
					}
					a, ok := w.last.Answer[0].(*dns.A)
					if !ok {
						b.Fatalf("%s: %v", h.Name(), w.last.Answer[0])
					}
					answers = append(answers, a.Hdr.Name+" "+a.A.String())
				}
				if answers[0] != answers[1] {
					b.Fatalf("hosts answers %s, marathon %s", answers[0], answers[1])
				}
			}
			// The plugins take turns, a block of queries each, so that the
			// machine's drift (a shared VM's speed moves by tens of percent
			// between runs) falls on both alike.
			const block = 256
			var spent [2]time.Duration
			i := 0
			for b.Loop() {
				for k, h := range handlers {
					start := time.Now()
					for range block {
						if mode == "syscall" {
							syscall.Getppid()
						}
						serve(h, queries[i])
						if i++; i == len(queries) {
							i = 0
						}
					}
					spent[k] += time.Since(start)
				}
			}
			perQuery := func(d time.Duration) float64 { return float64(d) / float64(b.N*block) }
			b.ReportMetric(perQuery(spent[0]), "hosts-ns/query")
			b.ReportMetric(perQuery(spent[1]), "marathon-ns/query")
			b.ReportMetric(float64(spent[1])/float64(spent[0]), "marathon/hosts")
		})
	}
}

// packWriter packs each reply into one reused buffer, as the server's
// writer does before its system call, and keeps the last message. Its
// client address is made once, as the server makes it when it reads the
// query (test.ResponseWriter parses a string on every call).
type packWriter struct {
	test.ResponseWriter
	remote *net.UDPAddr
	buf    []byte
	last   *dns.Msg
}

func (w *packWriter) RemoteAddr() net.Addr { return w.remote }

func (w *packWriter) WriteMsg(m *dns.Msg) error {
	packed, err := m.PackBuffer(w.buf)
	w.buf, w.last = packed[:0], m
	return err
}

// BenchmarkClients asks one name from 1, 512 and 4,096 clients in turn,
// the worst order for the client memo (clientMemo): with more clients than
// its slots can keep apart, queries decide as they would without it. In
// "churn", a new snapshot comes every 1,000 queries, as ~60 snapshots a
// second under 1,000 task kills a second do at ~60,000 queries a second:
// each client's next query then decides again.
func BenchmarkClients(b *testing.B) {
	first := testSnapshot(b)
	m := newTestMarathon(first)
	source := m.source.(*fakeSource)
	second := testSnapshot(b) // the same view, another snapshot
	req := new(dns.Msg)
	req.SetQuestion("app1.example.com.", dns.TypeA)
	for _, churn := range []bool{false, true} {
		for _, n := range []int{1, 512, 4096} {
			name := fmt.Sprint(n)
			if churn {
				name += "/churn"
			}
			b.Run(name, func(b *testing.B) {
				writers := make([]*packWriter, n)
				for i := range writers {
					writers[i] = &packWriter{remote: &net.UDPAddr{IP: net.IPv4(10, 5, byte(i>>8), byte(i)), Port: 40000}}
				}
				b.ReportAllocs()
				i, asked := 0, 0
				for b.Loop() {
					if asked++; churn && asked%1000 == 0 {
						if source.snapshot == first {
							source.snapshot = second
						} else {
							source.snapshot = first
						}
					}
					m.ServeDNS(context.Background(), writers[i], req)
					if i++; i == n {
						i = 0
					}
				}
			})
		}
	}
}
