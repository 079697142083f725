package marathon

import (
	"context"
	"net"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// TestNonQueryOpcodes: NOTIFY and UPDATE for the plugin's zones are not
// implemented (the server writes NOTIMP); for other zones they go on to
// the next plugin, which may be a secondary or a dynamic zone.
func TestNonQueryOpcodes(t *testing.T) {
	m := newTestMarathon(testSnapshot(t))
	for _, tc := range []struct {
		name   string
		opcode int
		zone   string
		want   int // rcode ServeDNS returns
		next   bool
	}{
		{"NOTIFY", dns.OpcodeNotify, "example.com.", dns.RcodeNotImplemented, false},
		{"UPDATE", dns.OpcodeUpdate, "example.com.", dns.RcodeNotImplemented, false},
		{"UPDATE of a name below", dns.OpcodeUpdate, "app1.example.com.", dns.RcodeNotImplemented, false},
		{"NOTIFY for another zone", dns.OpcodeNotify, "example.org.", dns.RcodeSuccess, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := new(dns.Msg)
			req.SetQuestion(tc.zone, dns.TypeSOA)
			req.Opcode = tc.opcode
			rec := dnstest.NewRecorder(&test.ResponseWriter{RemoteIP: featureClient})
			rcode, err := m.ServeDNS(context.Background(), rec, req)
			if err != nil || rcode != tc.want {
				t.Fatalf("ServeDNS = %s, %v; want %s", dns.RcodeToString[rcode], err, dns.RcodeToString[tc.want])
			}
			if got := rec.Msg != nil && answeredByNext(rec.Msg); got != tc.next {
				t.Errorf("answered by the next plugin: %v, want %v", got, tc.next)
			}
		})
	}
}

// localWriter is a ResponseWriter whose socket has the given local address.
type localWriter struct {
	test.ResponseWriter
	local net.Addr
}

func (w *localWriter) LocalAddr() net.Addr { return w.local }

// TestNameserverAddress: ns.dns.<zone> is the address the query was sent
// to. A UDP socket on the wildcard address cannot tell it, so the client
// is sent to TCP (TC), whose connection knows its local address.
func TestNameserverAddress(t *testing.T) {
	m := newTestMarathon(testSnapshot(t))
	for _, tc := range []struct {
		name  string
		tcp   bool
		local net.Addr
		want  string // the A record, "" for none
		tc    bool
	}{
		{"UDP on a bound address", false, &net.UDPAddr{IP: net.ParseIP("127.0.0.2"), Port: 53}, "127.0.0.2", false},
		{"UDP on the wildcard", false, &net.UDPAddr{IP: net.IPv4zero, Port: 53}, "", true},
		{"UDP on the IPv6 wildcard", false, &net.UDPAddr{IP: net.IPv6unspecified, Port: 53}, "", true},
		{"TCP accepted on the wildcard", true, &net.TCPAddr{IP: net.ParseIP("127.0.0.2"), Port: 53}, "127.0.0.2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := new(dns.Msg)
			req.SetQuestion("ns.dns.example.com.", dns.TypeA)
			rec := dnstest.NewRecorder(&localWriter{test.ResponseWriter{RemoteIP: featureClient, TCP: tc.tcp}, tc.local})
			if _, err := m.ServeDNS(context.Background(), rec, req); err != nil {
				t.Fatal(err)
			}
			resp := rec.Msg
			if resp == nil || resp.Truncated != tc.tc || resp.Rcode != dns.RcodeSuccess {
				t.Fatalf("reply %v, want TC %v", resp, tc.tc)
			}
			var got string
			if len(resp.Answer) == 1 {
				got = resp.Answer[0].(*dns.A).A.String()
			}
			if got != tc.want || len(resp.Answer) > 1 {
				t.Errorf("answer %v, want %q", resp.Answer, tc.want)
			}
		})
	}
}
