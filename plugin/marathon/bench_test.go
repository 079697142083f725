package marathon

import (
	"context"
	"testing"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
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
