package ports

import (
	"fmt"
	"net"
	"testing"
)

// TestFree: the port is below the ephemeral range and can be bound for TCP
// and UDP on the wildcard address.
func TestFree(t *testing.T) {
	for range 20 {
		port, err := Free()
		if err != nil {
			t.Fatal(err)
		}
		if port < 20000 || port >= ephemeralLow() {
			t.Fatalf("port %d outside [20000, %d)", port, ephemeralLow())
		}
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			t.Fatalf("port %d: %v", port, err)
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf(":%d", port))
		l.Close()
		if err != nil {
			t.Fatalf("port %d: %v", port, err)
		}
		u.Close()
	}
}
