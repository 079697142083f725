package marathon

import (
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/oakdns/oak/internal/isolation"
)

// TestIsolationTable asks the handler every name of the shared isolation
// table from each client address, with and without fallthrough: what the
// catalog decided is what the client gets, and nothing any env claims is
// handed to the next plugin.
func TestIsolationTable(t *testing.T) {
	table, err := isolation.Load()
	if err != nil {
		t.Fatal(err)
	}
	snapshot, err := table.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, through := range []bool{false, true} {
		m := newTestMarathon(snapshot)
		if through {
			withFallthrough(m)
		}
		for _, c := range table.Names {
			req := new(dns.Msg)
			req.SetQuestion(dns.Fqdn(c.Name), dns.TypeA)
			resp := serve(t, m, c.Client, false, req)
			var addrs []string
			for _, rr := range resp.Answer {
				if a, ok := rr.(*dns.A); ok {
					addrs = append(addrs, a.A.String())
				}
			}
			slices.Sort(addrs)
			next := answeredByNext(resp)
			var ok bool
			switch c.Kind {
			case "served":
				ok = resp.Rcode == dns.RcodeSuccess && slices.Equal(addrs, c.Addrs)
			case "held", "foreign", "below-served":
				ok = resp.Rcode == dns.RcodeNameError && !next
			case "empty-non-terminal":
				ok = next == through && (next || resp.Rcode == dns.RcodeSuccess && len(resp.Answer) == 0)
			case "unknown":
				ok = next == through && (next || resp.Rcode == dns.RcodeNameError)
			default:
				t.Fatalf("unknown kind %q in the table", c.Kind)
			}
			if !ok {
				t.Errorf("fallthrough %v: %s asks %s (want %s %v, %s):\n%v", through, c.Client, c.Name, c.Kind, c.Addrs, c.Why, resp)
			}
		}
	}
}
