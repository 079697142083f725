package test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/oakdns/oak/internal/testutil"
)

// TestNameserverOnWildcard: bin/coredns listens on the wildcard address
// (no bind), as three of the four example Corefiles do. ns.dns.<zone> is
// the address a query was sent to, asked via 127.0.0.1 and via 127.0.0.2
// (dig follows the truncated UDP reply to TCP), and a NOTIFY for the zone
// gets NOTIMP.
func TestNameserverOnWildcard(t *testing.T) {
	digPath := testutil.RequireTool(t, "dig")
	_, port := startCoreDNS(t, fmt.Sprintf(`. {
    marathon example.com {
        endpoint file://%s
    }
}`, writeReloadApps(t, 1)))
	waitSynced(t, fmt.Sprintf("127.0.0.1:%d", port), "app0.example.com")

	for _, addr := range []string{"127.0.0.1", "127.0.0.2"} {
		expectDig(t, digPath, addr, port, "", "ns.dns.example.com", "A", nil, addr)
		expectDig(t, digPath, addr, port, "", "example.com", "NS", nil, "ns.dns.example.com.")
	}

	args := []string{"@127.0.0.1", "-p", fmt.Sprint(port), "+tries=1", "+time=2", "+opcode=notify", "example.com", "SOA"}
	out, err := exec.Command(digPath, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if !strings.Contains(string(out), "status: NOTIMP") {
		t.Errorf("NOTIFY: want status NOTIMP:\n%s", out)
	}
}
