package marathon

import (
	"net"
	"net/netip"
	"time"

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
// addrs, owned by owner. The records and their addresses share one
// allocation; so does the slice when there is one address, the common
// answer.
func (m *Marathon) addresses(owner string, addrs []netip.Addr, rrtype uint16) []dns.RR {
	recs := make([]addrRecord, len(addrs))
	var out []dns.RR
	if len(addrs) == 1 {
		out = recs[0].out[:0]
	} else {
		out = make([]dns.RR, 0, len(addrs))
	}
	for i, addr := range addrs {
		rec := &recs[i]
		switch {
		case addr.Is4() && rrtype != dns.TypeAAAA:
			rec.ip = addr.As16()
			rec.a = dns.A{Hdr: m.header(owner, dns.TypeA), A: net.IP(rec.ip[12:])}
			out = append(out, &rec.a)
		case addr.Is6() && rrtype != dns.TypeA:
			rec.ip = addr.As16()
			rec.aaaa = dns.AAAA{Hdr: m.header(owner, dns.TypeAAAA), AAAA: net.IP(rec.ip[:])}
			out = append(out, &rec.aaaa)
		}
	}
	return out
}

// addrRecord is room for the A or AAAA record of one address, with the
// address's bytes.
type addrRecord struct {
	a    dns.A
	aaaa dns.AAAA
	ip   [16]byte
	out  [1]dns.RR // the answer slice when there is one address
}

// localAddress returns the address the query was sent to as an A or AAAA
// record (rrtype A, AAAA, or ANY for either), owned by owner: the address
// of ns.dns.<zone>. Nothing when the server listens on a wildcard address
// it cannot name.
func (m *Marathon) localAddress(owner string, rrtype uint16, state *request.Request) []dns.RR {
	local, err := netip.ParseAddr(state.LocalIP())
	if err != nil || local.IsUnspecified() {
		return nil
	}
	return m.addresses(owner, []netip.Addr{local.Unmap().WithZone("")}, rrtype)
}
