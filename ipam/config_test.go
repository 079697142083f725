package ipam

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// seedSpec is the seed's pool: docker network create --gateway 10.199.45.200
// --subnet 10.199.45.0/24 --aux-address DefaultGatewayIPv4=10.199.45.1.
func seedSpec() ConfigSpec {
	s := DefaultSpec()
	s.Subnet = "10.199.45.0/24"
	s.Gateway = "10.199.45.200"
	s.AuxAddresses = []string{"DefaultGatewayIPv4=10.199.45.1"}
	return s
}

func TestParseSeedConfig(t *testing.T) {
	cfg, err := seedSpec().Parse()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cooldown != 10*time.Minute || cfg.Network != "oak-net" || cfg.Bridge != "br-oak" || cfg.IPLabel != "OAK_IP" {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	// 256 minus network, broadcast, gateway and the aux address.
	if got := cfg.Size(); got != 252 {
		t.Errorf("Size = %d, want 252", got)
	}
	for addr, want := range map[string]string{
		"10.199.45.0":   "network address",
		"10.199.45.255": "broadcast",
		"10.199.45.200": "gateway",
		"10.199.45.1":   "aux address DefaultGatewayIPv4",
		"10.199.46.1":   "outside subnet",
		"10.199.45.2":   "",
	} {
		got := cfg.Reserved(netip.MustParseAddr(addr))
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("Reserved(%s) = %q, want it to say %q", addr, got, want)
		}
	}
}

func TestParseRangesAndIPRange(t *testing.T) {
	s := seedSpec()
	s.Exclude = []string{"10.199.45.2-10.199.45.9", "10.199.45.16/29", "10.199.45.100"}
	s.IPRange = "10.199.45.128/26"
	cfg, err := s.Parse()
	if err != nil {
		t.Fatal(err)
	}
	// 252 - 8 - 8 - 1 - 64 (ip-range 128..191; the gateway .200 is outside it).
	if got := cfg.Size(); got != 171 {
		t.Errorf("Size = %d, want 171", got)
	}
	for _, a := range cfg.Addresses() {
		if cfg.DockerRange.Contains(a) {
			t.Fatalf("%s inside Docker's ip-range is in the pool", a)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*ConfigSpec)
		want string
	}{
		{"no subnet", func(s *ConfigSpec) { s.Subnet = "" }, "subnet"},
		{"IPv6 subnet", func(s *ConfigSpec) { s.Subnet = "fd00::/120" }, "IPv4"},
		{"host bits", func(s *ConfigSpec) { s.Subnet = "10.199.45.7/24" }, "did you mean 10.199.45.0/24"},
		{"too large", func(s *ConfigSpec) { s.Subnet = "10.0.0.0/8" }, "between /16 and /30"},
		{"gateway outside", func(s *ConfigSpec) { s.Gateway = "10.1.1.1" }, "gateway 10.1.1.1: not a host address"},
		{"gateway broadcast", func(s *ConfigSpec) { s.Gateway = "10.199.45.255" }, "not a host address"},
		{"aux without name", func(s *ConfigSpec) { s.AuxAddresses = []string{"10.199.45.1"} }, "want name=IPv4"},
		{"aux twice", func(s *ConfigSpec) { s.AuxAddresses = []string{"a=10.199.45.1", "a=10.199.45.2"} }, "given twice"},
		{"exclude backwards", func(s *ConfigSpec) { s.Exclude = []string{"10.199.45.9-10.199.45.2"} }, "last address before first"},
		{"exclude outside", func(s *ConfigSpec) { s.Exclude = []string{"10.1.0.0/24"} }, "not inside subnet"},
		{"ip-range outside", func(s *ConfigSpec) { s.IPRange = "10.1.0.0/25" }, "ip-range 10.1.0.0/25"},
		{"ip-range junk", func(s *ConfigSpec) { s.IPRange = "x" }, "want a CIDR"},
		{"cooldown junk", func(s *ConfigSpec) { s.Cooldown = "ten" }, "cooldown \"ten\""},
		{"negative grace", func(s *ConfigSpec) { s.Grace = "-1s" }, "must not be negative"},
		{"long bridge", func(s *ConfigSpec) { s.Bridge = "br-much-too-long-name" }, "1 to 15 characters"},
		{"nothing left", func(s *ConfigSpec) { s.Exclude = []string{"10.199.45.0/24"} }, "no address left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := seedSpec()
			tc.edit(&s)
			_, err := s.Parse()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestConfigFromFlagsAndFile(t *testing.T) {
	spec := DefaultSpec()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	spec.RegisterFlags(fs, "pool-")
	err := fs.Parse([]string{"-pool-subnet", "10.199.45.0/24", "-pool-gateway", "10.199.45.200",
		"-pool-aux-address", "DefaultGatewayIPv4=10.199.45.1", "-pool-exclude", "10.199.45.2", "-pool-exclude", "10.199.45.3",
		"-pool-cooldown", "30s"})
	if err != nil {
		t.Fatal(err)
	}
	fromFlags, err := spec.Parse()
	if err != nil {
		t.Fatal(err)
	}
	if fromFlags.Size() != 250 || fromFlags.Cooldown != 30*time.Second {
		t.Errorf("from flags: size %d cooldown %v", fromFlags.Size(), fromFlags.Cooldown)
	}

	path := filepath.Join(t.TempDir(), "pool.json")
	os.WriteFile(path, []byte(`{"subnet":"10.199.45.0/24","gateway":"10.199.45.200",
		"aux-address":["DefaultGatewayIPv4=10.199.45.1"],"exclude":["10.199.45.2","10.199.45.3"],"cooldown":"30s"}`), 0o600)
	fromFile, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if fromFile.Size() != fromFlags.Size() || fromFile.Cooldown != fromFlags.Cooldown || fromFile.Gateway != fromFlags.Gateway {
		t.Errorf("file and flags disagree: %+v vs %+v", fromFile, fromFlags)
	}

	os.WriteFile(path, []byte(`{"subnet":"10.199.45.0/24","gatway":"10.199.45.200"}`), 0o600)
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), `unknown field "gatway"`) {
		t.Errorf("unknown field: %v", err)
	}
}
