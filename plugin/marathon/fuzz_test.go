package marathon

import (
	"context"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// FuzzServeDNS serves arbitrary DNS messages: whatever parses must be
// answered without a panic, over UDP and TCP, and the reply must pack. The
// question's name as the handler reads it, and the zone it picks, must be
// CoreDNS's. Every reply
// of the plugin keeps DNS's rules: a negative answer has no answer records
// and exactly one SOA in authority; answers are owned by the question's
// name, in its case; no name with names below it is NXDOMAIN (RFC 8020).
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
		{"dns.example.com.", dns.TypeA},       // above ns.dns.example.com
		{"db.example.com.", dns.TypeA},        // above redis1.db.example.com
		{"1.0.10.in-addr.arpa.", dns.TypePTR}, // above live backends' PTR owners
		{"x.app1.example.com.", dns.TypeA},    // below a served name
		{"parent.example.com.", dns.TypeA},    // held, above a live name
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
	existing := existingNames(f)
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
			asked, lower := questionName(&state)
			qname := state.Name()
			if asked != state.QName() || lower != qname {
				t.Errorf("questionName(%q) = %q, %q; CoreDNS's QName and Name: %q, %q", req.Question[0].Name, asked, lower, state.QName(), qname)
			}
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
				if len(r.Question) == 1 && !answeredByNext(rec.Msg) {
					checkDNSRules(t, r.Question[0].Name, rec.Msg, existing)
				}
			}
		}
	})
}

// existingNames lists every name the test topology makes exist, lower-case
// and fully qualified: the claimed names, the PTR owners of live backends,
// and the plugin's own names in each zone.
func existingNames(t testing.TB) []string {
	var out []string
	for _, spec := range topology() {
		for _, name := range strings.Split(spec.names, ",") {
			out = append(out, dns.Fqdn(name))
			if spec.down {
				continue
			}
			for _, ip := range spec.ips {
				rev, err := dns.ReverseAddr(ip)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, rev)
			}
		}
	}
	for _, zone := range newTestMarathon(nil).zones {
		out = append(out, "ns.dns."+zone, "_env."+zone)
	}
	return out
}

// checkDNSRules fails the test where reply breaks a rule of DNS for a
// question about qname.
func checkDNSRules(t *testing.T, qname string, reply *dns.Msg, existing []string) {
	t.Helper()
	negative := reply.Rcode == dns.RcodeNameError || reply.Rcode == dns.RcodeSuccess && len(reply.Answer) == 0
	if negative {
		soas := 0
		for _, rr := range reply.Ns {
			if _, ok := rr.(*dns.SOA); ok {
				soas++
			}
		}
		if len(reply.Answer) != 0 || soas != 1 || len(reply.Ns) != 1 {
			t.Errorf("negative answer for %q without exactly one SOA in authority:\n%v", qname, reply)
		}
	}
	sameCase := len(strings.ToLower(qname)) == len(qname)
	for _, rr := range reply.Answer {
		owner := rr.Header().Name
		if !strings.EqualFold(owner, qname) || sameCase && owner != qname {
			t.Errorf("answer owned by %q for a question about %q", owner, qname)
		}
	}
	if reply.Rcode == dns.RcodeNameError {
		lower := strings.ToLower(qname)
		for _, name := range existing {
			if strings.HasSuffix(name, "."+lower) || lower == "." && name != "." {
				t.Errorf("NXDOMAIN for %q, but %q exists below it", qname, name)
				break
			}
		}
	}
}
