package ipam

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// Environment of the child process that TestMain turns into an API server
// for the crash test (see serveFromEnv).
const (
	envServeStore  = "OAK_IPAM_TEST_SERVE_STORE"  // the pool's store file
	envServeAddr   = "OAK_IPAM_TEST_SERVE_ADDR"   // host:port to listen on
	envServeSubnet = "OAK_IPAM_TEST_SERVE_SUBNET" // the pool's subnet (the gateway is its last host)
	envServeToken  = "OAK_IPAM_TEST_TOKEN"        // the API token
)

func TestMain(m *testing.M) {
	if os.Getenv(envServeStore) != "" {
		if err := serveFromEnv(); err != nil {
			fmt.Fprintln(os.Stderr, "ipam test server:", err)
			os.Exit(2)
		}
		return
	}
	code := m.Run()
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// serveFromEnv serves NewAPI over a pool with real fsync until killed:
// the process the crash test kills.
func serveFromEnv() error {
	subnet, err := netip.ParsePrefix(os.Getenv(envServeSubnet))
	if err != nil {
		return err
	}
	cfg := Config{
		Network: "oak-crash", Bridge: "br-oak-crash", Subnet: subnet, Gateway: addrOf(u32(lastOf(subnet)) - 1),
		Cooldown: DefaultCooldown, Grace: DefaultGrace, IPLabel: DefaultIPLabel,
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pool, err := Open(os.Getenv(envServeStore), cfg, AssumeNew(), WithLogger(log))
	if err != nil {
		return err
	}
	token, err := TokenFromEnv(envServeToken)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", os.Getenv(envServeAddr))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: NewAPI(pool, nil, nil, token, log), BaseContext: func(net.Listener) context.Context { return context.Background() }}
	return srv.Serve(l)
}
