// Package ports finds ports for the servers that oak's tests and benchmarks
// start as real processes.
package ports

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
)

// Free returns a port that is free for TCP and UDP on every address at the
// moment. It is drawn below the kernel's ephemeral range, so that no
// outgoing connection of other work (clients get ephemeral ports) can take
// it between this check and the server's bind; a server without an address
// to bind listens on the wildcard one, so that is where the port is
// checked.
func Free() (int, error) {
	lo, hi := 20000, ephemeralLow()-1
	for range 200 {
		port := lo + rand.IntN(hi-lo+1)
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf(":%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port below the ephemeral range")
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default 32768 when it cannot be read or leaves no room below it).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var low, high int
	if _, err := fmt.Sscan(string(b), &low, &high); err != nil || low <= 20001 {
		return 32768
	}
	return low
}
