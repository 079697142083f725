package marathon

import (
	"net"
	"net/netip"

	"github.com/miekg/dns"
)

// clientAddr returns the client's address without allocating for the
// server's own UDP and TCP writers; the zero Addr when it is unknown.
func clientAddr(w dns.ResponseWriter) netip.Addr {
	remote := w.RemoteAddr()
	// Writers that wrap a transport (proxy protocol) expose the real one.
	if u, ok := remote.(interface{ Unwrap() net.Addr }); ok {
		if inner := u.Unwrap(); inner != nil {
			remote = inner
		}
	}
	var ip net.IP
	switch a := remote.(type) {
	case *net.UDPAddr:
		if a == nil {
			return netip.Addr{}
		}
		ip = a.IP
	case *net.TCPAddr:
		if a == nil {
			return netip.Addr{}
		}
		ip = a.IP
	case nil:
		return netip.Addr{}
	default:
		if ap, err := netip.ParseAddrPort(remote.String()); err == nil {
			return ap.Addr().Unmap().WithZone("")
		}
		return netip.Addr{}
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}
