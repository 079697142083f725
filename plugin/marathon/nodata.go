package marathon

import (
	"context"

	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"
)

// nextNoData hands a query for an empty non-terminal to the next plugin,
// but never lets it answer NXDOMAIN: names exist below this one, and a
// resolver that trusts NXDOMAIN for a whole subtree (RFC 8020) would hide
// them. Production's records for the name itself still pass through.
func (m *Marathon) nextNoData(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, q *query) (int, error) {
	nw := &noDataWriter{ResponseWriter: w}
	rcode, err := plugin.NextOrFailure(m.Name(), m.Next, ctx, nw, r)
	if !nw.written && rcode == dns.RcodeNameError {
		return m.write(w, r, q, &reply{soa: true})
	}
	return rcode, err
}

// noDataWriter turns an NXDOMAIN reply into NODATA.
type noDataWriter struct {
	dns.ResponseWriter
	written bool
}

// WriteMsg implements dns.ResponseWriter.
func (w *noDataWriter) WriteMsg(msg *dns.Msg) error {
	w.written = true
	if msg.Rcode == dns.RcodeNameError {
		msg.Rcode = dns.RcodeSuccess
		msg.Answer = nil
	}
	return w.ResponseWriter.WriteMsg(msg)
}
