package main

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/oakdns/oak/internal/ports"
)

// TestCheckPortsRefusesBusyPorts: each port the demo needs, when taken,
// is refused with a message that names it; free ports pass.
func TestCheckPortsRefusesBusyPorts(t *testing.T) {
	freePort := func() int {
		t.Helper()
		p, err := ports.Free()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		network string // what the other program holds
		sim     bool   // on the simulator's address, else on the DNS port
		want    string
	}{
		{"simulator", "tcp", true, "the Marathon simulator's port 127.0.0.1:%[1]d"},
		{"dns udp", "udp", false, "CoreDNS's UDP port :%[2]d"},
		{"dns tcp", "tcp", false, "CoreDNS's TCP port :%[2]d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			simPort, dnsPort := freePort(), freePort()
			simAddr := fmt.Sprintf("127.0.0.1:%d", simPort)
			addr := simAddr
			if !tt.sim {
				addr = fmt.Sprintf("127.0.0.1:%d", dnsPort) // held on one address only
			}
			var err error
			if tt.network == "udp" {
				var c net.PacketConn
				c, err = net.ListenPacket("udp", addr)
				if err == nil {
					defer c.Close()
				}
			} else {
				var l net.Listener
				l, err = net.Listen("tcp", addr)
				if err == nil {
					defer l.Close()
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			err = checkPorts(demo{simAddr: simAddr, dnsPort: dnsPort}.ports()[:3])
			want := fmt.Sprintf(tt.want, simPort, dnsPort)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "already in use") {
				t.Fatalf("checkPorts: %v, want an error naming %q", err, want)
			}
		})
	}
	free := demo{simAddr: fmt.Sprintf("127.0.0.1:%d", freePort()), dnsPort: freePort(),
		httpAddr: fmt.Sprintf("127.0.0.1:%d", freePort()), apiAddr: fmt.Sprintf("127.0.0.1:%d", freePort())}
	if err := checkPorts(free.ports()[:5]); err != nil {
		t.Errorf("free ports refused: %v", err)
	}
}
