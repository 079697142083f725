package marathon

import (
	"context"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
	"github.com/oakdns/oak/catalog"
)

// Negative answers carry the zone's SOA (test.Section compares owner, TTL
// and the SOA's nameserver).
var (
	soaExample = test.SOA("example.com. 5 IN SOA ns.dns.example.com. hostmaster.example.com. 1 7200 1800 86400 5")
	soaReverse = test.SOA("10.in-addr.arpa. 5 IN SOA ns.dns.10.in-addr.arpa. hostmaster.10.in-addr.arpa. 1 7200 1800 86400 5")
)

// dnsCase is a query from one client and the reply it must get.
type dnsCase struct {
	client string // remote address; "" = test.ResponseWriter's default
	tcp    bool
	test.Case
}

// serve sends tc's query to m as the server would: through a ScrubWriter
// that fits the reply to the client's buffer.
func serve(t *testing.T, m *Marathon, client string, tcp bool, req *dns.Msg) *dns.Msg {
	t.Helper()
	rec := dnstest.NewRecorder(&test.ResponseWriter{RemoteIP: client, TCP: tcp})
	if _, err := m.ServeDNS(context.Background(), request.NewScrubWriter(req, rec), req); err != nil {
		t.Fatalf("ServeDNS: %v", err)
	}
	if rec.Msg == nil {
		t.Fatal("no reply written")
	}
	return rec.Msg
}

func runCases(t *testing.T, m *Marathon, cases []dnsCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(dns.TypeToString[tc.Qtype]+" "+tc.Qname+" from "+tc.client, func(t *testing.T) {
			resp := serve(t, m, tc.client, tc.tcp, tc.Msg())
			if answeredByNext(resp) {
				t.Fatal("answered by the next plugin")
			}
			if err := test.SortAndCheck(resp, tc.Case); err != nil {
				t.Fatalf("%v\n%v", err, resp)
			}
			if !resp.Authoritative {
				t.Error("reply is not authoritative")
			}
		})
	}
}

// TestEnvViews: each client sees its env's backends, falling back along
// feature-x -> staging -> integration.
func TestEnvViews(t *testing.T) {
	m := newTestMarathon(testSnapshot(t))
	runCases(t, m, []dnsCase{
		// feature-x by its app's address: own, then staging, then integration.
		{client: featureClient, Case: test.Case{Qname: "app1.example.com.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("app1.example.com. 5 IN A 10.0.3.10")}}},
		{client: featureClient, Case: test.Case{Qname: "redis1.db.example.com.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("redis1.db.example.com. 5 IN A 10.0.2.21")}}},
		{client: featureClient, Case: test.Case{Qname: "svc.example.com.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("svc.example.com. 5 IN A 10.0.1.40"), test.A("svc.example.com. 5 IN A 10.0.1.41")}}},
		{client: featureClient, Case: test.Case{Qname: "stagingonly.example.com.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("stagingonly.example.com. 5 IN A 10.0.2.50")}}},
		// feature-x's mq1 has no running task: the chain goes on.
		{client: featureClient, Case: test.Case{Qname: "mq1.example.com.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("mq1.example.com. 5 IN A 10.0.1.23")}}},
		// integration by its app's address: never sees feature or staging apps.
		{client: integrationClient, Case: test.Case{Qname: "app1.example.com.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("app1.example.com. 5 IN A 10.0.1.10")}}},
		{client: integrationClient, Case: test.Case{Qname: "redis1.db.example.com.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("redis1.db.example.com. 5 IN A 10.0.1.21")}}},
		{client: integrationClient, Case: test.Case{Qname: "stagingonly.example.com.", Qtype: dns.TypeA,
			Rcode: dns.RcodeNameError, Ns: []dns.RR{soaExample}}},
		{client: integrationClient, Case: test.Case{Qname: "gone.example.com.", Qtype: dns.TypeA,
			Rcode: dns.RcodeNameError, Ns: []dns.RR{soaExample}}},
		// staging by env_cidr.
		{client: stagingClient, Case: test.Case{Qname: "redis1.db.example.com.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("redis1.db.example.com. 5 IN A 10.0.2.21")}}},
		{client: stagingClient, Case: test.Case{Qname: "app1.example.com.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("app1.example.com. 5 IN A 10.0.1.10")}}},
		// nobody: the default env.
		{client: unknownClient, Case: test.Case{Qname: "app1.example.com.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("app1.example.com. 5 IN A 10.0.1.10")}}},
		// feature-x over IPv6, by its v6 app's address.
		{client: v6Client, Case: test.Case{Qname: "app1.example.com.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("app1.example.com. 5 IN A 10.0.3.10")}}},
	})
}

// TestRecordTypes covers AAAA, SRV, PTR, SOA, NS, TXT and the negative
// answers, for a feature-x client.
func TestRecordTypes(t *testing.T) {
	m := newTestMarathon(testSnapshot(t))
	c := featureClient
	runCases(t, m, []dnsCase{
		{client: c, Case: test.Case{Qname: "dual.example.com.", Qtype: dns.TypeAAAA,
			Answer: []dns.RR{test.AAAA("dual.example.com. 5 IN AAAA fd00::30")}}},
		{client: c, Case: test.Case{Qname: "dual.example.com.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("dual.example.com. 5 IN A 10.0.1.30")}}},
		// v4-only name: NODATA with SOA.
		{client: c, Case: test.Case{Qname: "app1.example.com.", Qtype: dns.TypeAAAA, Ns: []dns.RR{soaExample}}},
		// v6-only name: NODATA for A.
		{client: c, Case: test.Case{Qname: "v6.example.com.", Qtype: dns.TypeA, Ns: []dns.RR{soaExample}}},
		// other types of a served name: NODATA.
		{client: c, Case: test.Case{Qname: "app1.example.com.", Qtype: dns.TypeMX, Ns: []dns.RR{soaExample}}},
		{client: c, Case: test.Case{Qname: "app1.example.com.", Qtype: dns.TypeTXT, Ns: []dns.RR{soaExample}}},
		// no env has the name: NXDOMAIN.
		{client: c, Case: test.Case{Qname: "nosuch.example.com.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soaExample}}},
		{client: c, Case: test.Case{Qname: "nosuch.example.com.", Qtype: dns.TypeMX, Rcode: dns.RcodeNameError, Ns: []dns.RR{soaExample}}},
		// empty non-terminal above redis1.db.example.com: NODATA.
		{client: c, Case: test.Case{Qname: "db.example.com.", Qtype: dns.TypeA, Ns: []dns.RR{soaExample}}},
		// SRV from the serving env's ports; target is the name itself, with
		// its addresses in the additional section.
		{client: c, Case: test.Case{Qname: "_http._tcp.app1.example.com.", Qtype: dns.TypeSRV,
			Answer: []dns.RR{test.SRV("_http._tcp.app1.example.com. 5 IN SRV 0 100 8080 app1.example.com.")},
			Extra:  []dns.RR{test.A("app1.example.com. 5 IN A 10.0.3.10")}}},
		{client: integrationClient, Case: test.Case{Qname: "_dns._udp.app1.example.com.", Qtype: dns.TypeSRV,
			Answer: []dns.RR{test.SRV("_dns._udp.app1.example.com. 5 IN SRV 0 100 53 app1.example.com.")},
			Extra:  []dns.RR{test.A("app1.example.com. 5 IN A 10.0.1.10")}}},
		{client: c, Case: test.Case{Qname: "_redis._tcp.redis1.db.example.com.", Qtype: dns.TypeSRV,
			Answer: []dns.RR{test.SRV("_redis._tcp.redis1.db.example.com. 5 IN SRV 0 100 6379 redis1.db.example.com.")},
			Extra:  []dns.RR{test.A("redis1.db.example.com. 5 IN A 10.0.2.21")}}},
		// feature-x's app1 serves the name and has no dns port: NXDOMAIN.
		{client: c, Case: test.Case{Qname: "_dns._udp.app1.example.com.", Qtype: dns.TypeSRV, Rcode: dns.RcodeNameError, Ns: []dns.RR{soaExample}}},
		{client: c, Case: test.Case{Qname: "_http._tcp.app1.example.com.", Qtype: dns.TypeA, Ns: []dns.RR{soaExample}}},
		{client: c, Case: test.Case{Qname: "_tcp.app1.example.com.", Qtype: dns.TypeSRV, Ns: []dns.RR{soaExample}}},
		{client: c, Case: test.Case{Qname: "_udp.app1.example.com.", Qtype: dns.TypeSRV, Rcode: dns.RcodeNameError, Ns: []dns.RR{soaExample}}},
		{client: c, Case: test.Case{Qname: "_http._tcp.nosuch.example.com.", Qtype: dns.TypeSRV, Rcode: dns.RcodeNameError, Ns: []dns.RR{soaExample}}},
		// PTR for every known backend, whatever the client's env.
		{client: c, Case: test.Case{Qname: "10.1.0.10.in-addr.arpa.", Qtype: dns.TypePTR,
			Answer: []dns.RR{test.PTR("10.1.0.10.in-addr.arpa. 5 IN PTR app1.example.com.")}}},
		{client: c, Case: test.Case{Qname: "21.2.0.10.in-addr.arpa.", Qtype: dns.TypePTR,
			Answer: []dns.RR{test.PTR("21.2.0.10.in-addr.arpa. 5 IN PTR redis1.db.example.com.")}}},
		{client: c, Case: test.Case{Qname: mustReverse(t, "fd00::30"), Qtype: dns.TypePTR,
			Answer: []dns.RR{test.PTR(mustReverse(t, "fd00::30") + " 5 IN PTR dual.example.com.")}}},
		{client: c, Case: test.Case{Qname: "99.99.0.10.in-addr.arpa.", Qtype: dns.TypePTR, Rcode: dns.RcodeNameError, Ns: []dns.RR{soaReverse}}},
		{client: c, Case: test.Case{Qname: "10.1.0.10.in-addr.arpa.", Qtype: dns.TypeA, Ns: []dns.RR{soaReverse}}},
		// The apex: SOA, NS with glue (the address the query came to), NODATA else.
		{client: c, Case: test.Case{Qname: "example.com.", Qtype: dns.TypeSOA, Answer: []dns.RR{soaExample}}},
		{client: c, Case: test.Case{Qname: "10.in-addr.arpa.", Qtype: dns.TypeSOA, Answer: []dns.RR{soaReverse}}},
		{client: c, Case: test.Case{Qname: "example.com.", Qtype: dns.TypeNS,
			Answer: []dns.RR{test.NS("example.com. 5 IN NS ns.dns.example.com.")},
			Extra:  []dns.RR{test.A("ns.dns.example.com. 5 IN A 127.0.0.1")}}},
		{client: c, Case: test.Case{Qname: "ns.dns.example.com.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("ns.dns.example.com. 5 IN A 127.0.0.1")}}},
		{client: c, Case: test.Case{Qname: "ns.dns.example.com.", Qtype: dns.TypeAAAA, Ns: []dns.RR{soaExample}}},
		{client: c, Case: test.Case{Qname: "example.com.", Qtype: dns.TypeA, Ns: []dns.RR{soaExample}}},
		// _env: who the client is.
		{client: c, Case: test.Case{Qname: "_env.example.com.", Qtype: dns.TypeTXT,
			Answer: []dns.RR{test.TXT(`_env.example.com. 5 IN TXT "env=feature-x" "how=app" "chain=feature-x,staging,integration" "client=10.0.3.10"`)}}},
		{client: stagingClient, Case: test.Case{Qname: "_env.example.com.", Qtype: dns.TypeTXT,
			Answer: []dns.RR{test.TXT(`_env.example.com. 5 IN TXT "env=staging" "how=cidr" "chain=staging,integration" "client=10.9.1.1"`)}}},
		{client: unknownClient, Case: test.Case{Qname: "_env.example.com.", Qtype: dns.TypeTXT,
			Answer: []dns.RR{test.TXT(`_env.example.com. 5 IN TXT "env=integration" "how=default" "chain=integration" "client=192.0.2.1"`)}}},
		{client: c, Case: test.Case{Qname: "_env.example.com.", Qtype: dns.TypeA, Ns: []dns.RR{soaExample}}},
	})
}

// TestCasePreserved: names compare case-insensitively and every owner name
// keeps the case of the question.
func TestCasePreserved(t *testing.T) {
	m := newTestMarathon(testSnapshot(t))
	soaMixed := test.SOA("ExAmPlE.CoM. 5 IN SOA ns.dns.ExAmPlE.CoM. hostmaster.ExAmPlE.CoM. 1 7200 1800 86400 5")
	runCases(t, m, []dnsCase{
		{client: featureClient, Case: test.Case{Qname: "ApP1.ExAmPlE.CoM.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("ApP1.ExAmPlE.CoM. 5 IN A 10.0.3.10")}}},
		{client: featureClient, Case: test.Case{Qname: "REDIS1.DB.EXAMPLE.COM.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("REDIS1.DB.EXAMPLE.COM. 5 IN A 10.0.2.21")}}},
		{client: featureClient, Case: test.Case{Qname: "NoSuch.ExAmPlE.CoM.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soaMixed}}},
		{client: featureClient, Case: test.Case{Qname: "ApP1.ExAmPlE.CoM.", Qtype: dns.TypeAAAA, Ns: []dns.RR{soaMixed}}},
		{client: featureClient, Case: test.Case{Qname: "_HTTP._Tcp.App1.Example.COM.", Qtype: dns.TypeSRV,
			Answer: []dns.RR{test.SRV("_HTTP._Tcp.App1.Example.COM. 5 IN SRV 0 100 8080 App1.Example.COM.")},
			Extra:  []dns.RR{test.A("App1.Example.COM. 5 IN A 10.0.3.10")}}},
		{client: featureClient, Case: test.Case{Qname: "ExAmPlE.CoM.", Qtype: dns.TypeSOA, Answer: []dns.RR{soaMixed}}},
		{client: featureClient, Case: test.Case{Qname: "_ENV.example.COM.", Qtype: dns.TypeTXT,
			Answer: []dns.RR{test.TXT(`_ENV.example.COM. 5 IN TXT "env=feature-x" "how=app" "chain=feature-x,staging,integration" "client=10.0.3.10"`)}}},
	})
}

// TestQuestionName: the handler reads the question's name as CoreDNS's
// request.QName and request.Name would, whatever the name holds: names
// from the wire come escaped, but a plugin before this one may set any
// string.
func TestQuestionName(t *testing.T) {
	for _, name := range []string{
		"app1.example.com.", "ApP1.ExAmPlE.CoM.", "_http._tcp.app1.example.com.", "", ".",
		`a\.b.example.com.`, `\065pp1.example.com.`, `A\ b.example.com.`, "a b.example.com.",
		"x(y).example.com.", `q"uote.example.com.`, "*.example.com.", "caf\xc3\xa9.example.com.",
		"tab\there.", "dangling\\", "at@.example.com.",
	} {
		state := request.Request{Req: &dns.Msg{Question: []dns.Question{{Name: name, Qtype: dns.TypeA, Qclass: dns.ClassINET}}}}
		asked, qname := questionName(&state)
		if asked != state.QName() || qname != state.Name() {
			t.Errorf("questionName(%q) = %q, %q; want CoreDNS's %q, %q", name, asked, qname, state.QName(), state.Name())
		}
	}
}

// TestPinnedEnv: a pinned block serves its env to every client.
func TestPinnedEnv(t *testing.T) {
	m := newTestMarathon(testSnapshot(t), pinned("feature-x"))
	var cases []dnsCase
	for _, client := range []string{integrationClient, stagingClient, unknownClient, featureClient} {
		cases = append(cases,
			dnsCase{client: client, Case: test.Case{Qname: "app1.example.com.", Qtype: dns.TypeA,
				Answer: []dns.RR{test.A("app1.example.com. 5 IN A 10.0.3.10")}}},
			dnsCase{client: client, Case: test.Case{Qname: "redis1.db.example.com.", Qtype: dns.TypeA,
				Answer: []dns.RR{test.A("redis1.db.example.com. 5 IN A 10.0.2.21")}}},
			dnsCase{client: client, Case: test.Case{Qname: "_env.example.com.", Qtype: dns.TypeTXT,
				Answer: []dns.RR{test.TXT(`_env.example.com. 5 IN TXT "env=feature-x" "how=pinned" "chain=feature-x,staging,integration" "client=` + client + `"`)}}},
		)
	}
	runCases(t, m, cases)
}

// TestFallthrough: names no env registers go to the next plugin; a name an
// env of the chain registers without a live backend does not, nor a name
// only envs outside the client's chain register.
func TestFallthrough(t *testing.T) {
	m := newTestMarathon(testSnapshot(t), withFallthrough)
	for _, tc := range []struct {
		client, qname string
		qtype         uint16
		next          bool
		rcode         int
	}{
		{featureClient, "nosuch.example.com.", dns.TypeA, true, 0},
		{featureClient, "www.example.org.", dns.TypeA, true, 0},                               // outside the zones
		{featureClient, "99.99.0.10.in-addr.arpa.", dns.TypePTR, true, 0},                     // unknown address
		{integrationClient, "stagingonly.example.com.", dns.TypeA, false, dns.RcodeNameError}, // only outside the chain: still never production's
		{featureClient, "db.example.com.", dns.TypeA, true, 0},                                // empty non-terminal: no env serves it
		{featureClient, "gone.example.com.", dns.TypeA, false, dns.RcodeNameError},            // registered, no live backend
		{featureClient, "gone.example.com.", dns.TypeAAAA, false, dns.RcodeNameError},
		{featureClient, "_http._tcp.gone.example.com.", dns.TypeSRV, false, dns.RcodeNameError},
		{unknownClient, "down.example.com.", dns.TypeA, false, dns.RcodeNameError},
		{featureClient, "app1.example.com.", dns.TypeAAAA, false, dns.RcodeSuccess}, // served, other type
		{featureClient, "_dns._udp.app1.example.com.", dns.TypeSRV, false, dns.RcodeNameError},
		{featureClient, "example.com.", dns.TypeSOA, false, dns.RcodeSuccess},
	} {
		t.Run(tc.qname+" "+dns.TypeToString[tc.qtype], func(t *testing.T) {
			req := new(dns.Msg)
			req.SetQuestion(tc.qname, tc.qtype)
			resp := serve(t, m, tc.client, false, req)
			if got := answeredByNext(resp); got != tc.next {
				t.Fatalf("fell through = %v, want %v\n%v", got, tc.next, resp)
			}
			if !tc.next && resp.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
			}
		})
	}
}

// TestNotSynced: before the first full sync every name in the zones gets
// SERVFAIL, even with fallthrough; names outside the zones still go on.
func TestNotSynced(t *testing.T) {
	for _, configure := range []func(*Marathon){withFallthrough, pinned("integration"), func(*Marathon) {}} {
		m := newTestMarathon(nil, configure)
		for _, qname := range []string{"app1.example.com.", "nosuch.example.com.", "example.com.", "10.1.0.10.in-addr.arpa."} {
			req := new(dns.Msg)
			req.SetQuestion(qname, dns.TypeA)
			resp := serve(t, m, featureClient, false, req)
			if answeredByNext(resp) {
				t.Fatalf("%s fell through before the first sync", qname)
			}
			if resp.Rcode != dns.RcodeServerFailure {
				t.Errorf("%s: rcode %s, want SERVFAIL", qname, dns.RcodeToString[resp.Rcode])
			}
		}
		req := new(dns.Msg)
		req.SetQuestion("www.example.org.", dns.TypeA)
		if resp := serve(t, m, featureClient, false, req); !answeredByNext(resp) {
			t.Errorf("a name outside the zones did not go to the next plugin: %v", resp)
		}
		if m.Ready() {
			t.Error("ready before the first sync")
		}
	}
}

// TestTruncation: 100 backends do not fit a 512-byte UDP reply: TC is set
// and the client retries over TCP, where it gets all of them.
func TestTruncation(t *testing.T) {
	m := newTestMarathon(testSnapshot(t))
	req := new(dns.Msg)
	req.SetQuestion("big.example.com.", dns.TypeA)

	udp := serve(t, m, featureClient, false, req.Copy())
	if !udp.Truncated {
		t.Error("UDP reply is not truncated")
	}
	if len(udp.Answer) >= 100 {
		t.Errorf("UDP reply holds %d answers", len(udp.Answer))
	}
	if udp.Len() > dns.MinMsgSize {
		t.Errorf("UDP reply is %d bytes, more than %d", udp.Len(), dns.MinMsgSize)
	}

	tcp := serve(t, m, featureClient, true, req.Copy())
	if tcp.Truncated {
		t.Error("TCP reply is truncated")
	}
	if len(tcp.Answer) != 100 {
		t.Errorf("TCP reply holds %d answers, want 100", len(tcp.Answer))
	}

	// With EDNS0 and a 4096-byte buffer, 100 A records fit over UDP.
	edns := req.Copy()
	edns.SetEdns0(4096, false)
	if big := serve(t, m, featureClient, false, edns); big.Truncated || len(big.Answer) != 100 {
		t.Errorf("EDNS0 4096: truncated %v, %d answers", big.Truncated, len(big.Answer))
	}
}

// TestOutsideZones: names outside the zones, and zone transfers, are not
// answered from the catalog.
func TestOutsideZones(t *testing.T) {
	m := newTestMarathon(testSnapshot(t))
	req := new(dns.Msg)
	req.SetQuestion("app1.example.org.", dns.TypeA)
	if resp := serve(t, m, featureClient, false, req); !answeredByNext(resp) {
		t.Errorf("out-of-zone query not passed on: %v", resp)
	}

	axfr := new(dns.Msg)
	axfr.SetQuestion("example.com.", dns.TypeAXFR)
	rec := dnstest.NewRecorder(&test.ResponseWriter{TCP: true})
	rcode, err := m.ServeDNS(context.Background(), rec, axfr)
	if err != nil || rcode != dns.RcodeRefused {
		t.Errorf("AXFR: rcode %s, err %v; want REFUSED", dns.RcodeToString[rcode], err)
	}
}

func mustReverse(t *testing.T, addr string) string {
	t.Helper()
	name, err := dns.ReverseAddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func TestMatchZone(t *testing.T) {
	zones := []string{"example.com.", "sub.example.com.", "10.in-addr.arpa."}
	for _, tc := range []struct {
		zones []string
		qname string
		want  string
	}{
		{zones, "example.com.", "example.com."},
		{zones, "a.example.com.", "example.com."},
		{zones, "a.sub.example.com.", "sub.example.com."}, // the longest zone wins
		{zones, "sub.example.com.", "sub.example.com."},
		{zones, "xexample.com.", ""}, // a suffix that does not start a label
		{zones, "example.org.", ""},
		{zones, "com.", ""},
		{zones, "1.0.0.10.in-addr.arpa.", "10.in-addr.arpa."},
		{zones, `a\.example.com.`, ""}, // one label "a.example" below com.: not in example.com.
		{zones, `a\.b.example.com.`, "example.com."},
		{[]string{"."}, "anything.", "."},
		{[]string{".", "example.com."}, "a.example.com.", "example.com."},
		{[]string{".", "example.com."}, ".", "."},
		{nil, "example.com.", ""},
	} {
		got := matchZone(tc.zones, tc.qname)
		if got != tc.want {
			t.Errorf("matchZone(%v, %q) = %q, want %q", tc.zones, tc.qname, got, tc.want)
		}
		if core := plugin.Zones(tc.zones).Matches(tc.qname); core != got {
			t.Errorf("matchZone(%v, %q) = %q, plugin.Zones.Matches = %q", tc.zones, tc.qname, got, core)
		}
	}
}

// TestReplyHeader: the reply's header and question are what dns.Msg's
// SetRcode makes of the request (write builds them itself, to allocate
// once), for each rcode the handler writes.
func TestReplyHeader(t *testing.T) {
	m := newTestMarathon(testSnapshot(t))
	for _, tc := range []struct {
		qname     string
		opcode    int
		rd, cd    bool
		wantRcode int
	}{
		{qname: "App1.Example.com.", opcode: dns.OpcodeQuery, rd: true, cd: true, wantRcode: dns.RcodeSuccess},
		{qname: "nosuch.example.com.", opcode: dns.OpcodeQuery, wantRcode: dns.RcodeNameError},
	} {
		req := new(dns.Msg)
		req.SetQuestion(tc.qname, dns.TypeA)
		req.Id, req.Opcode, req.RecursionDesired, req.CheckingDisabled = 4242, tc.opcode, tc.rd, tc.cd
		got := serve(t, m, featureClient, false, req)
		want := new(dns.Msg)
		want.SetRcode(req, tc.wantRcode)
		want.Authoritative = true
		if got.MsgHdr != want.MsgHdr {
			t.Errorf("%s: header %+v, want %+v", tc.qname, got.MsgHdr, want.MsgHdr)
		}
		if len(got.Question) != 1 || got.Question[0] != want.Question[0] {
			t.Errorf("%s: question %v, want %v", tc.qname, got.Question, want.Question)
		}
	}
}

// TestSRVPairsPorts: when the apps behind a name serve a port on different
// numbers, each SRV record names one backend (<address>.<name>), which
// resolves to that backend alone; host-networked tasks offer their own
// host ports.
func TestSRVPairsPorts(t *testing.T) {
	policy, err := catalog.NewPolicy(catalog.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	hostNet := catalog.App{ID: "/h", Labels: map[string]string{"OAK_NAMES": "h.example.com"},
		Ports: []catalog.PortSpec{{Name: "web", Number: 8080}},
		Tasks: []catalog.Task{{ID: "h.1", State: "TASK_RUNNING", Host: "10.0.0.7", Ports: []int{31005}}}}
	snapshot := catalog.Build(policy, []catalog.App{
		{ID: "/a", Labels: map[string]string{"OAK_NAMES": "r.example.com", "OAK_PORTS": "redis:6379"},
			Tasks: []catalog.Task{{ID: "a.1", State: "TASK_RUNNING", IPs: []string{"10.0.0.1"}}}},
		{ID: "/b", Labels: map[string]string{"OAK_NAMES": "r.example.com", "OAK_PORTS": "redis:6380,admin:9000"},
			Tasks: []catalog.Task{{ID: "b.1", State: "TASK_RUNNING", IPs: []string{"10.0.0.2"}}}},
		hostNet,
	})
	m := newTestMarathon(snapshot)
	soa := test.SOA("example.com. 5 IN SOA ns.dns.example.com. hostmaster.example.com. 1 7200 1800 86400 5")
	runCases(t, m, []dnsCase{
		{client: unknownClient, Case: test.Case{Qname: "_redis._tcp.r.example.com.", Qtype: dns.TypeSRV,
			Answer: []dns.RR{
				test.SRV("_redis._tcp.r.example.com. 5 IN SRV 0 100 6379 10-0-0-1.r.example.com."),
				test.SRV("_redis._tcp.r.example.com. 5 IN SRV 0 100 6380 10-0-0-2.r.example.com."),
			},
			Extra: []dns.RR{test.A("10-0-0-1.r.example.com. 5 IN A 10.0.0.1"), test.A("10-0-0-2.r.example.com. 5 IN A 10.0.0.2")}}},
		// Only /b has admin: its address alone.
		{client: unknownClient, Case: test.Case{Qname: "_admin._tcp.r.example.com.", Qtype: dns.TypeSRV,
			Answer: []dns.RR{test.SRV("_admin._tcp.r.example.com. 5 IN SRV 0 100 9000 10-0-0-2.r.example.com.")},
			Extra:  []dns.RR{test.A("10-0-0-2.r.example.com. 5 IN A 10.0.0.2")}}},
		{client: unknownClient, Case: test.Case{Qname: "10-0-0-2.r.example.com.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("10-0-0-2.r.example.com. 5 IN A 10.0.0.2")}}},
		{client: unknownClient, Case: test.Case{Qname: "10-0-0-9.r.example.com.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa}}},
		{client: unknownClient, Case: test.Case{Qname: "10-0-0-02.r.example.com.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa}}},
		{client: unknownClient, Case: test.Case{Qname: "_web._tcp.h.example.com.", Qtype: dns.TypeSRV,
			Answer: []dns.RR{test.SRV("_web._tcp.h.example.com. 5 IN SRV 0 100 31005 h.example.com.")},
			Extra:  []dns.RR{test.A("h.example.com. 5 IN A 10.0.0.7")}}},
	})
}

// TestEmptyNonTerminalFallthrough: a name with names below it may be
// production's too, so it is handed on, but the next plugin's NXDOMAIN
// becomes NODATA (RFC 8020).
func TestEmptyNonTerminalFallthrough(t *testing.T) {
	m := newTestMarathon(testSnapshot(t), withFallthrough)
	m.Next = test.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		reply := new(dns.Msg)
		reply.SetRcode(r, dns.RcodeNameError)
		w.WriteMsg(reply)
		return dns.RcodeNameError, nil
	})
	for qname, want := range map[string]int{
		"db.example.com.":      dns.RcodeSuccess,   // redis1.db.example.com is below it
		"nosuch.example.com.":  dns.RcodeNameError, // nothing below: production's word stands
		"1.0.10.in-addr.arpa.": dns.RcodeSuccess,   // live backends' PTR owners are below it
	} {
		req := new(dns.Msg)
		req.SetQuestion(qname, dns.TypeA)
		if got := serve(t, m, featureClient, false, req); got.Rcode != want {
			t.Errorf("%s: rcode %s, want %s", qname, dns.RcodeToString[got.Rcode], dns.RcodeToString[want])
		}
	}
}
