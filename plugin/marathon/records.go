package marathon

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/pkg/dnsutil"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

// SOA timers, as CoreDNS's backend plugins synthesize them.
const (
	soaRefresh = 7200
	soaRetry   = 1800
	soaExpire  = 86400
)

func (m *Marathon) header(owner string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: m.ttl}
}

// soa is the zone's synthetic SOA, ns.dns.<zone> hostmaster.<zone>. Its
// negative TTL is the plugin's ttl, so a name that appears is seen soon.
// The serial is the current time: the data has no other version a
// secondary could use, and CoreDNS's etcd plugin does the same.
func (m *Marathon) soa(zone string) *dns.SOA {
	return &dns.SOA{
		Hdr:     m.header(zone, dns.TypeSOA),
		Ns:      dnsutil.Join("ns.dns", zone),
		Mbox:    dnsutil.Join("hostmaster", zone),
		Serial:  uint32(time.Now().Unix()),
		Refresh: soaRefresh,
		Retry:   soaRetry,
		Expire:  soaExpire,
		Minttl:  m.ttl,
	}
}

// addresses returns A (rrtype A), AAAA (AAAA) or both (ANY) records for
// addrs, owned by owner.
func (m *Marathon) addresses(owner string, addrs []netip.Addr, rrtype uint16) []dns.RR {
	if len(addrs) == 1 && addrs[0].Is4() && rrtype != dns.TypeAAAA {
		// The common answer, one IPv4 address, in one allocation.
		r := new(struct {
			a   dns.A
			ip  [4]byte
			out [1]dns.RR
		})
		r.ip = addrs[0].As4()
		r.a = dns.A{Hdr: m.header(owner, dns.TypeA), A: net.IP(r.ip[:])}
		r.out[0] = &r.a
		return r.out[:]
	}
	records := make([]dns.RR, 0, len(addrs))
	for _, addr := range addrs {
		switch {
		case addr.Is4() && rrtype != dns.TypeAAAA:
			a4 := addr.As4()
			records = append(records, &dns.A{Hdr: m.header(owner, dns.TypeA), A: net.IP(a4[:])})
		case addr.Is6() && rrtype != dns.TypeA:
			a16 := addr.As16()
			records = append(records, &dns.AAAA{Hdr: m.header(owner, dns.TypeAAAA), AAAA: net.IP(a16[:])})
		}
	}
	return records
}

// localAddress returns the address the query was sent to as an A or AAAA
// record (rrtype A, AAAA, or ANY for either), owned by owner: the address
// of ns.dns.<zone>. Nothing when the server listens on a wildcard address
// it cannot name.
func (m *Marathon) localAddress(owner string, rrtype uint16, state *request.Request) []dns.RR {
	local, ok := localAddr(state)
	if !ok {
		return nil
	}
	return m.addresses(owner, []netip.Addr{local}, rrtype)
}

func localAddr(state *request.Request) (netip.Addr, bool) {
	local, err := netip.ParseAddr(state.LocalIP())
	if err != nil || local.IsUnspecified() {
		return netip.Addr{}, false
	}
	return local.Unmap().WithZone(""), true
}

// localAddrKnown reports whether the server can name the address a query
// was sent to. A UDP socket bound to the wildcard address cannot: the
// destination of each datagram is known to the DNS server library only,
// which does not expose it. A TCP connection's local address is the
// destination, so retryOverTCP sends the client there.
func localAddrKnown(state *request.Request) bool {
	_, ok := localAddr(state)
	return ok || state.Proto() != "udp"
}

// retryOverTCP answers an empty, truncated reply, which every client
// retries over TCP.
func (m *Marathon) retryOverTCP(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	m.counters.inc(metrics.WithServer(ctx), noEnv, outcomeMeta)
	msg := new(dns.Msg)
	msg.SetReply(r)
	msg.Authoritative, msg.Truncated = true, true
	w.WriteMsg(msg)
	return dns.RcodeSuccess, nil
}
