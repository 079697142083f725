package testutil

import (
	"net"
	"net/http"
	"time"
)

// ClientFrom returns an HTTP client whose connections come from the local
// address from (e.g. 127.0.0.N), as a container with that fixed IP would
// connect, each request on a new connection.
func ClientFrom(from string) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}}
}
