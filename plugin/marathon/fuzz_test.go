package marathon

import (
	"context"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// FuzzServeDNS serves arbitrary DNS messages: whatever parses must be
// answered without a panic, over UDP and TCP, and the reply must pack. The
// zone the handler picks for the question must be CoreDNS's.
func FuzzServeDNS(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"app1.example.com.", dns.TypeA},
		{"_http._tcp.App1.example.com.", dns.TypeSRV},
		{"_env.example.com.", dns.TypeTXT},
		{"10.1.0.10.in-addr.arpa.", dns.TypePTR},
		{"example.com.", dns.TypeNS},
		{"big.example.com.", dns.TypeANY},
		{"x.example.org.", dns.TypeA},
		{"a\\.example.com.", dns.TypeA},
		{"xexample.com.", dns.TypeA},
	} {
		msg := new(dns.Msg)
		msg.SetQuestion(q.name, q.qtype)
		msg.SetEdns0(1232, true)
		packed, err := msg.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(packed)
	}
	snapshot := testSnapshot(f)
	handlers := []*Marathon{
		newTestMarathon(snapshot),
		newTestMarathon(snapshot, withFallthrough, pinned("feature-x")),
		newTestMarathon(nil, withFallthrough),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(data); err != nil {
			return
		}
		if len(req.Question) == 1 {
			state := request.Request{Req: req}
			qname := state.Name()
			zones := handlers[0].zones
			if got, want := matchZone(zones, qname), plugin.Zones(zones).Matches(qname); got != want {
				t.Errorf("matchZone(%q) = %q, plugin.Zones.Matches = %q", qname, got, want)
			}
		}
		for i, m := range handlers {
			for _, tcp := range []bool{false, true} {
				r := req.Copy()
				rec := dnstest.NewRecorder(&test.ResponseWriter{TCP: tcp, RemoteIP: featureClient})
				m.ServeDNS(context.Background(), request.NewScrubWriter(r, rec), r)
				if rec.Msg == nil {
					continue
				}
				if _, err := rec.Msg.Pack(); err != nil {
					t.Errorf("handler %d: reply does not pack: %v\n%v", i, err, rec.Msg)
				}
			}
		}
	})
}
