package marathon

import (
	"context"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/pkg/dnsutil"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"

	"github.com/oakdns/oak/catalog"
)

// Reserved names below each zone.
const (
	envInfoLabel    = "_env."   // TXT: the env the client was put in, how, and its chain
	nameserverLabel = "ns.dns." // the NS target of every zone; A/AAAA = the address the query came to
)

// howPinned is the "how" of the _env TXT record in a block pinned with `env`.
const howPinned = "pinned"

// query is one question, normalized once.
type query struct {
	qname          string // lower-case, fully qualified
	asked          string // as asked: answers keep the client's case
	zone           string // lower-case zone containing qname
	zoneAsked      string // zone in the client's case, the owner of SOA and NS records
	qtype          uint16
	client         netip.Addr
	clientDecision // the client's env, how it was chosen, its chain and counters
}

// reply is what the handler decided; write turns it into a message.
type reply struct {
	rcode   int
	answer  []dns.RR
	extra   []dns.RR
	soa     bool // put the zone's SOA in the authority section (negative answers)
	next    bool // hand the query to the next plugin
	nodata  bool // with next: names exist below the name, so the next plugin's NXDOMAIN becomes NODATA
	outcome outcome
}

// ServeDNS implements the plugin.Handler interface. It reads one snapshot
// and never blocks: no request to Marathon, no lock.
func (m *Marathon) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if len(r.Question) != 1 {
		return plugin.NextOrFailure(m.Name(), m.Next, ctx, w, r)
	}
	state := request.Request{W: w, Req: r}
	asked, qname := questionName(&state)
	zone := matchZone(m.zones, qname)
	if zone == "" {
		return plugin.NextOrFailure(m.Name(), m.Next, ctx, w, r)
	}
	if r.Opcode != dns.OpcodeQuery {
		return dns.RcodeNotImplemented, nil // NOTIFY, UPDATE...: the server writes NOTIMP
	}
	q := query{qname: qname, asked: asked, zone: zone, zoneAsked: zone, qtype: state.QType()}
	if len(q.asked) == len(qname) {
		q.zoneAsked = q.asked[len(q.asked)-len(zone):]
	} else {
		q.asked = qname // an odd name whose lower-casing changed its length
	}

	snapshot := m.source.Snapshot()
	if snapshot == nil {
		// Not synced yet: never fall through, or a container could be handed
		// the production address of a name its env serves.
		m.counters.inc(metrics.WithServer(ctx), noEnv, outcomeServfail)
		return m.write(w, r, &q, &reply{rcode: dns.RcodeServerFailure, soa: true})
	}
	if q.qtype == dns.TypeAXFR || q.qtype == dns.TypeIXFR {
		return dns.RcodeRefused, nil
	}
	if isChild(qname, nameserverLabel, zone) && !localAddrKnown(&state) {
		return m.retryOverTCP(ctx, w, r)
	}

	q.client = clientAddr(w)
	q.clientDecision = m.view(snapshot, metrics.WithServer(ctx), q.client)

	res := m.answer(snapshot, &q, &state)
	q.counters.count(res.outcome)
	if res.next {
		if res.nodata {
			return m.nextNoData(ctx, w, r, &q)
		}
		return plugin.NextOrFailure(m.Name(), m.Next, ctx, w, r)
	}
	return m.write(w, r, &q, &res)
}

// questionName returns the question's name as the client asked it, in
// presentation form (what state.QName() returns), and lower-cased (what
// state.Name() returns). QName re-escapes the name byte by byte; a name
// made only of letters, digits, '-', '_' and dots, as nearly every name
// is, is already in that form, and one pass over its bytes tells. Any
// other name takes QName's own path.
func questionName(state *request.Request) (asked, qname string) {
	name := state.Req.Question[0].Name
	upper := false
	for i := 0; i < len(name); i++ {
		switch b := name[i]; {
		case 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '.', b == '-', b == '_':
		case 'A' <= b && b <= 'Z':
			upper = true
		default:
			asked = state.QName()
			return asked, strings.ToLower(asked)
		}
	}
	if upper {
		return name, strings.ToLower(name)
	}
	return name, name
}

// answer decides the reply to q from snapshot. The query and the request
// go by pointer down the handler: each query runs on a new goroutine with
// a small stack, and copies of them in every frame made each query grow
// its stack once more (a copy of the whole stack; see BENCHMARKS.md).
func (m *Marathon) answer(snapshot *catalog.Snapshot, q *query, state *request.Request) reply {
	name := strings.TrimSuffix(q.qname, ".")
	switch {
	case q.qname == q.zone:
		return m.apex(snapshot, q, name, state)
	case isChild(q.qname, envInfoLabel, q.zone):
		return m.envInfo(q)
	case isChild(q.qname, nameserverLabel, q.zone):
		return m.nameserver(q, state)
	case isChild(q.qname, nameserverLabel[len("ns."):], q.zone):
		return reply{soa: true, outcome: outcomeMeta} // dns.<zone>: ns.dns.<zone> is below it (RFC 8020)
	case dnsutil.IsReverse(q.qname) > 0:
		return m.reverse(snapshot, q)
	}

	return m.decided(q, snapshot.ResolveChain(q.chain, name), name)
}

// decided maps the catalog's decision for a name to a reply. Nothing that
// any env claims is ever handed to the next plugin: production would
// answer for a test name.
func (m *Marathon) decided(q *query, answer catalog.Answer, name string) reply {
	switch answer.Kind {
	case catalog.Served:
		return m.service(q, answer.Service)
	case catalog.BelowServed:
		return m.below(q, answer, name)
	case catalog.Held:
		return negative(answer, outcomeDown)
	case catalog.Foreign:
		return negative(answer, outcomeMiss)
	case catalog.EmptyNonTerminal:
		if m.fall.Through(q.qname) {
			return reply{next: true, nodata: true, outcome: outcomeFallthrough}
		}
		return reply{soa: true, outcome: outcomeNoData}
	}
	if m.fall.Through(q.qname) {
		return reply{next: true, outcome: outcomeFallthrough}
	}
	return reply{rcode: dns.RcodeNameError, soa: true, outcome: outcomeMiss}
}

// negative answers a name the plugin denies: NXDOMAIN, or NODATA when
// names exist below it (RFC 8020).
func negative(answer catalog.Answer, o outcome) reply {
	if answer.Children {
		return reply{soa: true, outcome: o}
	}
	return reply{rcode: dns.RcodeNameError, soa: true, outcome: o}
}

// apex answers the zone's own name: SOA and NS are synthesized; any other
// type is looked up in case apps register the apex itself, and is NODATA
// otherwise (the apex always exists).
func (m *Marathon) apex(snapshot *catalog.Snapshot, q *query, name string, state *request.Request) reply {
	switch q.qtype {
	case dns.TypeSOA:
		return reply{answer: []dns.RR{m.soa(q.zoneAsked)}, outcome: outcomeMeta}
	case dns.TypeNS:
		target := nameserverLabel + q.zoneAsked
		if q.zoneAsked == "." {
			target = nameserverLabel
		}
		ns := &dns.NS{Hdr: m.header(q.zoneAsked, dns.TypeNS), Ns: target}
		return reply{answer: []dns.RR{ns}, extra: m.localAddress(target, dns.TypeANY, state), outcome: outcomeMeta}
	}
	if answer := snapshot.ResolveChain(q.chain, name); answer.Kind == catalog.Served {
		return m.service(q, answer.Service)
	}
	return reply{soa: true, outcome: outcomeMeta}
}

// envInfo answers TXT at _env.<zone>: what this client sees, for operators
// asking with dig from inside a container.
func (m *Marathon) envInfo(q *query) reply {
	if q.qtype != dns.TypeTXT && q.qtype != dns.TypeANY {
		return reply{soa: true, outcome: outcomeMeta}
	}
	client := "unknown"
	if q.client.IsValid() {
		client = q.client.String()
	}
	txt := &dns.TXT{Hdr: m.header(q.asked, dns.TypeTXT), Txt: []string{
		"env=" + q.env,
		"how=" + q.how,
		"chain=" + strings.Join(q.chain, ","),
		"client=" + client,
	}}
	return reply{answer: []dns.RR{txt}, outcome: outcomeMeta}
}

// nameserver answers ns.dns.<zone>, the target of the zone's NS record,
// with the address the query was sent to.
func (m *Marathon) nameserver(q *query, state *request.Request) reply {
	records := m.localAddress(q.asked, q.qtype, state)
	if len(records) == 0 {
		return reply{soa: true, outcome: outcomeMeta}
	}
	return reply{answer: records, outcome: outcomeMeta}
}

// service answers a name some env of the chain serves.
func (m *Marathon) service(q *query, svc *catalog.Service) reply {
	o := serviceOutcome(q, svc)
	var records []dns.RR
	switch q.qtype {
	case dns.TypeA:
		records = m.addresses(q.asked, svc.Addrs, dns.TypeA)
	case dns.TypeAAAA:
		records = m.addresses(q.asked, svc.Addrs, dns.TypeAAAA)
	case dns.TypeANY:
		records = m.addresses(q.asked, svc.Addrs, dns.TypeANY)
	}
	if len(records) == 0 {
		return reply{soa: true, outcome: o} // NODATA: e.g. AAAA of a v4-only name
	}
	return reply{answer: records, outcome: o}
}

// below answers names under a name the chain serves (answer.Base):
// _<proto>.<base> exists when the service has a port of that protocol,
// _<port>._<proto>.<base> is the service's SRV record set, and
// <address>.<base> names one backend, the target of SRV records whose port
// only some backends serve. Anything else is ours to deny.
func (m *Marathon) below(q *query, answer catalog.Answer, name string) reply {
	svc := answer.Service
	relative := strings.TrimSuffix(name, "."+answer.Base)
	miss := reply{rcode: dns.RcodeNameError, soa: true, outcome: outcomeMiss}
	first, second, two := strings.Cut(relative, ".")
	switch {
	case two && len(first) > 1 && first[0] == '_' && len(second) > 1 && second[0] == '_' && !strings.Contains(second, "."):
		return m.srv(q, svc, first[1:], second[1:], len(first)+len(second)+2)
	case !two && len(first) > 1 && first[0] == '_':
		if hasProto(svc.Ports, first[1:]) {
			return reply{soa: true, outcome: serviceOutcome(q, svc)}
		}
		return miss
	case !two:
		if addr, ok := parseAddrLabel(first); ok {
			if i := slices.IndexFunc(svc.Backends, func(b catalog.Backend) bool { return b.Addr == addr }); i >= 0 {
				records := m.addresses(q.asked, []netip.Addr{addr}, q.qtype)
				if q.qtype != dns.TypeA && q.qtype != dns.TypeAAAA && q.qtype != dns.TypeANY || len(records) == 0 {
					return reply{soa: true, outcome: serviceOutcome(q, svc)}
				}
				return reply{answer: records, outcome: serviceOutcome(q, svc)}
			}
		}
	}
	return miss
}

// srv answers _<port>._<proto>.<base>. Each port goes with the addresses
// that serve it: one record with the service's name as its target when
// every backend serves the port on one number, else one record per backend
// with that backend's own name (<address>.<base>) as its target. baseAt is
// where the base name starts in the asked name.
func (m *Marathon) srv(q *query, svc *catalog.Service, portName, proto string, baseAt int) reply {
	type endpoint struct {
		addr netip.Addr
		port uint16
	}
	var ends []endpoint
	for _, b := range svc.Backends {
		for _, p := range b.Ports {
			if p.Name == portName && p.Proto == proto {
				ends = append(ends, endpoint{b.Addr, p.Number})
			}
		}
	}
	if len(ends) == 0 {
		return reply{rcode: dns.RcodeNameError, soa: true, outcome: outcomeMiss}
	}
	o := serviceOutcome(q, svc)
	if q.qtype != dns.TypeSRV && q.qtype != dns.TypeANY {
		return reply{soa: true, outcome: o}
	}
	base := q.asked[baseAt:] // the service's own name, in the client's case
	shared := len(ends) == len(svc.Backends)
	for _, e := range ends {
		shared = shared && e.port == ends[0].port
	}
	var records, extra []dns.RR
	if shared {
		records = []dns.RR{m.srvRecord(q.asked, ends[0].port, base)}
		extra = m.addresses(base, svc.Addrs, dns.TypeANY)
	} else {
		for _, e := range ends {
			target := addrLabel(e.addr) + "." + base
			records = append(records, m.srvRecord(q.asked, e.port, target))
			extra = append(extra, m.addresses(target, []netip.Addr{e.addr}, dns.TypeANY)...)
		}
	}
	return reply{answer: records, extra: extra, outcome: o}
}

func (m *Marathon) srvRecord(owner string, port uint16, target string) *dns.SRV {
	return &dns.SRV{Hdr: m.header(owner, dns.TypeSRV), Priority: 0, Weight: 100, Port: port, Target: target}
}

// addrLabel names one backend below its service: 10-0-0-1 for IPv4, the 32
// hex digits of an IPv6 address.
func addrLabel(addr netip.Addr) string {
	if addr.Is4() {
		return strings.ReplaceAll(addr.String(), ".", "-")
	}
	a16 := addr.As16()
	return hex.EncodeToString(a16[:])
}

// parseAddrLabel reverses addrLabel.
func parseAddrLabel(label string) (netip.Addr, bool) {
	if len(label) == 32 {
		var a16 [16]byte
		if _, err := hex.Decode(a16[:], []byte(label)); err == nil {
			return netip.AddrFrom16(a16).Unmap(), true
		}
		return netip.Addr{}, false
	}
	addr, err := netip.ParseAddr(strings.ReplaceAll(label, "-", "."))
	return addr, err == nil && addr.Is4() && addrLabel(addr) == label
}

// reverse answers PTR queries for every address the catalog knows as a live
// backend, in any env.
func (m *Marathon) reverse(snapshot *catalog.Snapshot, q *query) reply {
	var refs []catalog.NameRef
	if addr, err := netip.ParseAddr(dnsutil.ExtractAddressFromReverse(q.qname)); err == nil {
		refs = snapshot.Reverse(addr)
	}
	if len(refs) == 0 {
		// Reverse names above live backends exist (RFC 8020).
		name := strings.TrimSuffix(q.qname, ".")
		return m.decided(q, snapshot.ResolveChain(q.chain, name), name)
	}
	if q.qtype != dns.TypePTR && q.qtype != dns.TypeANY {
		return reply{soa: true, outcome: outcomeNoData}
	}
	records := make([]dns.RR, 0, len(refs))
	for i, ref := range refs {
		if i > 0 && refs[i-1].Name == ref.Name {
			continue // the same name in several envs
		}
		records = append(records, &dns.PTR{Hdr: m.header(q.asked, dns.TypePTR), Ptr: dns.Fqdn(ref.Name)})
	}
	return reply{answer: records, outcome: outcomeReverse}
}

// write sends res as the reply to r. Truncation to the client's buffer is
// left to the server's ScrubWriter, as in every CoreDNS plugin.
func (m *Marathon) write(w dns.ResponseWriter, r *dns.Msg, q *query, res *reply) (int, error) {
	// What msg.SetRcode(r, res.rcode) makes, with the message and its
	// question in one allocation (TestReplyHeader holds them equal).
	buf := new(struct {
		msg      dns.Msg
		question [1]dns.Question
	})
	msg := &buf.msg
	msg.Id, msg.Response, msg.Opcode = r.Id, true, r.Opcode
	if msg.Opcode == dns.OpcodeQuery {
		msg.RecursionDesired, msg.CheckingDisabled = r.RecursionDesired, r.CheckingDisabled
	}
	buf.question[0] = r.Question[0]
	msg.Question = buf.question[:]
	msg.Rcode = res.rcode
	msg.Authoritative = true
	msg.Answer = res.answer
	msg.Extra = res.extra
	if res.soa {
		msg.Ns = []dns.RR{m.soa(q.zoneAsked)}
	}
	w.WriteMsg(msg)
	// Success tells the server that the reply has been written.
	return dns.RcodeSuccess, nil
}

func serviceOutcome(q *query, svc *catalog.Service) outcome {
	if svc.Env == q.env {
		return outcomeOwn
	}
	return outcomeFallback
}

func hasProto(ports []catalog.Port, proto string) bool {
	for _, p := range ports {
		if p.Proto == proto {
			return true
		}
	}
	return false
}

// isChild reports whether qname is label (which ends in a dot) directly
// below zone.
func isChild(qname, label, zone string) bool {
	rest, ok := strings.CutPrefix(qname, label)
	if !ok {
		return false
	}
	return rest == zone || (zone == "." && rest == "")
}

// matchZone returns the longest of zones (normalized: lower-case, fully
// qualified) that qname (the same) is in, or "" when none is; the answer
// of plugin.Zones.Matches without its per-query allocations. Names with
// escaped characters, where a '.' need not end a label, take the general
// path.
func matchZone(zones []string, qname string) string {
	if strings.IndexByte(qname, '\\') >= 0 {
		return plugin.Zones(zones).Matches(qname)
	}
	best := ""
	for _, zone := range zones {
		if len(zone) <= len(best) {
			continue
		}
		if zone == "." || qname == zone ||
			(len(qname) > len(zone) && strings.HasSuffix(qname, zone) && qname[len(qname)-len(zone)-1] == '.') {
			best = zone
		}
	}
	return best
}
