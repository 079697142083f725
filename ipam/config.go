package ipam

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"
)

// Defaults of the seed's platform.
const (
	DefaultNetwork  = "oak-net"
	DefaultBridge   = "br-oak"
	DefaultCooldown = 10 * time.Minute
	DefaultGrace    = 2 * time.Minute
	DefaultIPLabel  = "OAK_IP"
)

// Config is a validated pool: which addresses of a Docker bridge network the
// pool hands out, and how long it waits before reusing or releasing one.
type Config struct {
	Network string // Docker network name
	Bridge  string // Linux bridge name (com.docker.network.bridge.name)
	Subnet  netip.Prefix
	Gateway netip.Addr
	// AuxAddresses are Docker's --aux-address entries (name → address),
	// e.g. DefaultGatewayIPv4; the pool never hands them out.
	AuxAddresses map[string]netip.Addr
	Excluded     []Range
	// DockerRange is Docker's --ip-range, where Docker places containers
	// started without --ip; the pool stays outside it. Invalid means none.
	DockerRange netip.Prefix
	// Cooldown is how long a released address waits before reuse, so stale
	// DNS answers and ARP caches die first.
	Cooldown time.Duration
	// Grace is how far apart two reconcile observations must be that both
	// miss an app before its allocation is released.
	Grace time.Duration
	// IPLabel is the Marathon app label that carries the app's address.
	IPLabel string
}

// Range is an inclusive range of IPv4 addresses.
type Range struct{ First, Last netip.Addr }

// String renders the range as Config files and flags take it.
func (r Range) String() string {
	if r.First == r.Last {
		return r.First.String()
	}
	return r.First.String() + "-" + r.Last.String()
}

func (r Range) contains(a netip.Addr) bool {
	return r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// ParseRange parses "10.0.0.5", "10.0.0.5-10.0.0.9" or "10.0.0.16/28".
func ParseRange(s string) (Range, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return Range{}, fmt.Errorf("range %q: not an IPv4 CIDR", s)
		}
		p = p.Masked()
		return Range{p.Addr(), lastOf(p)}, nil
	}
	first, last, found := strings.Cut(s, "-")
	a, err := parseIPv4(first)
	if err != nil {
		return Range{}, fmt.Errorf("range %q: %w", s, err)
	}
	b := a
	if found {
		if b, err = parseIPv4(last); err != nil {
			return Range{}, fmt.Errorf("range %q: %w", s, err)
		}
	}
	if b.Less(a) {
		return Range{}, fmt.Errorf("range %q: last address before first", s)
	}
	return Range{a, b}, nil
}

func parseIPv4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address", s)
	}
	return a, nil
}

func u32(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }

func addrOf(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func lastOf(p netip.Prefix) netip.Addr {
	return addrOf(u32(p.Masked().Addr()) | (1<<(32-p.Bits()) - 1))
}

// Validate checks the pool's configuration; the error says what to fix.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case !c.Subnet.IsValid() || !c.Subnet.Addr().Is4():
		return errors.New("subnet: an IPv4 CIDR is required, e.g. 10.199.45.0/24")
	case c.Subnet != c.Subnet.Masked():
		return fmt.Errorf("subnet %s: host bits set; did you mean %s?", c.Subnet, c.Subnet.Masked())
	case c.Subnet.Bits() < 16 || c.Subnet.Bits() > 30:
		return fmt.Errorf("subnet %s: prefix length must be between /16 and /30", c.Subnet)
	}
	if c.Network == "" || strings.ContainsAny(c.Network, " /\\") {
		bad("network %q: a Docker network name is required", c.Network)
	}
	if n := len(c.Bridge); n == 0 || n > 15 || strings.ContainsAny(c.Bridge, " /\\") {
		bad("bridge %q: a Linux interface name of 1 to 15 characters is required", c.Bridge)
	}
	inner := func(what string, a netip.Addr) {
		if !c.Subnet.Contains(a) || a == c.Subnet.Addr() || a == lastOf(c.Subnet) {
			bad("%s %s: not a host address of subnet %s", what, a, c.Subnet)
		}
	}
	if !c.Gateway.IsValid() {
		bad("gateway: an address is required (the bridge's own address on the host)")
	} else {
		inner("gateway", c.Gateway)
	}
	for name, a := range c.AuxAddresses {
		if name == "" || strings.ContainsAny(name, "= ") {
			bad("aux address name %q: want a name such as DefaultGatewayIPv4", name)
		}
		inner("aux address "+name, a)
	}
	for _, r := range c.Excluded {
		if !c.Subnet.Contains(r.First) || !c.Subnet.Contains(r.Last) {
			bad("excluded range %s: not inside subnet %s", r, c.Subnet)
		}
	}
	if c.DockerRange.IsValid() {
		if c.DockerRange != c.DockerRange.Masked() || c.DockerRange.Bits() < c.Subnet.Bits() || !c.Subnet.Contains(c.DockerRange.Addr()) {
			bad("ip-range %s: must be a CIDR inside subnet %s", c.DockerRange, c.Subnet)
		}
	}
	if c.Cooldown < 0 || c.Grace < 0 {
		bad("cooldown and grace must not be negative")
	}
	if c.IPLabel == "" {
		bad("ip label: a Marathon label name is required")
	}
	if len(errs) == 0 && c.Size() == 0 {
		bad("the pool has no address left once gateway, aux addresses, exclusions and ip-range are taken out")
	}
	return errors.Join(errs...)
}

// Reserved says why the pool never hands out a, or "" when it may.
func (c Config) Reserved(a netip.Addr) string {
	switch {
	case !a.Is4() || !c.Subnet.Contains(a):
		return "outside subnet " + c.Subnet.String()
	case a == c.Subnet.Addr():
		return "the subnet's network address"
	case a == lastOf(c.Subnet):
		return "the subnet's broadcast address"
	case a == c.Gateway:
		return "the gateway"
	case c.DockerRange.IsValid() && c.DockerRange.Contains(a):
		return "inside Docker's ip-range " + c.DockerRange.String()
	}
	for name, aux := range c.AuxAddresses {
		if a == aux {
			return "aux address " + name
		}
	}
	for _, r := range c.Excluded {
		if r.contains(a) {
			return "excluded range " + r.String()
		}
	}
	return ""
}

// Addresses returns every address the pool may hand out, in order.
func (c Config) Addresses() []netip.Addr {
	var out []netip.Addr
	for v := u32(c.Subnet.Addr()); v <= u32(lastOf(c.Subnet)); v++ {
		if a := addrOf(v); c.Reserved(a) == "" {
			out = append(out, a)
		}
	}
	return out
}

// Size is the number of addresses the pool may hand out.
func (c Config) Size() int { return len(c.Addresses()) }

// ConfigSpec is a pool's configuration as an operator writes it, in flags
// or a JSON file with the same names; Parse turns it into a Config.
type ConfigSpec struct {
	Network      string   `json:"network"`
	Bridge       string   `json:"bridge"`
	Subnet       string   `json:"subnet"`
	Gateway      string   `json:"gateway"`
	AuxAddresses []string `json:"aux-address"` // name=address
	Exclude      []string `json:"exclude"`     // address, first-last or CIDR
	IPRange      string   `json:"ip-range"`
	Cooldown     string   `json:"cooldown"`
	Grace        string   `json:"grace"`
	IPLabel      string   `json:"ip-label"`
}

// DefaultSpec is the seed's pool without its addresses.
func DefaultSpec() ConfigSpec {
	return ConfigSpec{
		Network: DefaultNetwork, Bridge: DefaultBridge, IPLabel: DefaultIPLabel,
		Cooldown: DefaultCooldown.String(), Grace: DefaultGrace.String(),
	}
}

// RegisterFlags binds the spec's fields to flags named prefix+name (e.g.
// "pool-subnet"); the spec's current values are the defaults.
func (s *ConfigSpec) RegisterFlags(fs *flag.FlagSet, prefix string) {
	fs.StringVar(&s.Network, prefix+"network", s.Network, "Docker network of the IP pool")
	fs.StringVar(&s.Bridge, prefix+"bridge", s.Bridge, "Linux bridge name of the pool's network (com.docker.network.bridge.name)")
	fs.StringVar(&s.Subnet, prefix+"subnet", s.Subnet, "the pool's IPv4 subnet, e.g. 10.199.45.0/24")
	fs.StringVar(&s.Gateway, prefix+"gateway", s.Gateway, "the network's gateway (the bridge's address), e.g. 10.199.45.200")
	fs.Var((*listFlag)(&s.AuxAddresses), prefix+"aux-address", "Docker aux address name=IP, never handed out (repeatable)")
	fs.Var((*listFlag)(&s.Exclude), prefix+"exclude", "address, first-last range or CIDR never handed out (repeatable)")
	fs.StringVar(&s.IPRange, prefix+"ip-range", s.IPRange, "Docker's --ip-range for containers started without --ip; the pool stays outside it")
	fs.StringVar(&s.Cooldown, prefix+"cooldown", s.Cooldown, "how long a released address waits before reuse")
	fs.StringVar(&s.Grace, prefix+"grace", s.Grace, "how far apart two observations that miss an app must be before its address is released")
	fs.StringVar(&s.IPLabel, prefix+"ip-label", s.IPLabel, "Marathon app label carrying the app's address")
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// ReadSpec reads a JSON spec (fields as in ConfigSpec, unknown ones refused)
// over the defaults.
func ReadSpec(r io.Reader) (ConfigSpec, error) {
	spec := DefaultSpec()
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return spec, fmt.Errorf("pool config: %w", err)
	}
	if dec.More() {
		return spec, errors.New("pool config: more than one JSON object")
	}
	return spec, nil
}

// LoadConfig reads and parses a JSON pool configuration file.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	spec, err := ReadSpec(bytes.NewReader(b))
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	cfg, err := spec.Parse()
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse validates the spec into a Config.
func (s ConfigSpec) Parse() (Config, error) {
	cfg := Config{Network: s.Network, Bridge: s.Bridge, IPLabel: s.IPLabel, AuxAddresses: map[string]netip.Addr{}}
	var errs []error
	var err error
	if cfg.Subnet, err = netip.ParsePrefix(strings.TrimSpace(s.Subnet)); err != nil {
		errs = append(errs, fmt.Errorf("subnet %q: want an IPv4 CIDR such as 10.199.45.0/24", s.Subnet))
	}
	if cfg.Gateway, err = parseIPv4(s.Gateway); err != nil {
		errs = append(errs, fmt.Errorf("gateway: %w", err))
	}
	for _, kv := range s.AuxAddresses {
		name, value, ok := strings.Cut(kv, "=")
		a, err := parseIPv4(value)
		if !ok || err != nil {
			errs = append(errs, fmt.Errorf("aux address %q: want name=IPv4, e.g. DefaultGatewayIPv4=10.199.45.1", kv))
			continue
		}
		if _, dup := cfg.AuxAddresses[name]; dup {
			errs = append(errs, fmt.Errorf("aux address %q: name given twice", name))
		}
		cfg.AuxAddresses[name] = a
	}
	for _, e := range s.Exclude {
		r, err := ParseRange(e)
		if err != nil {
			errs = append(errs, fmt.Errorf("exclude: %w", err))
			continue
		}
		cfg.Excluded = append(cfg.Excluded, r)
	}
	sort.Slice(cfg.Excluded, func(i, j int) bool { return cfg.Excluded[i].First.Less(cfg.Excluded[j].First) })
	if s.IPRange != "" {
		if cfg.DockerRange, err = netip.ParsePrefix(strings.TrimSpace(s.IPRange)); err != nil {
			errs = append(errs, fmt.Errorf("ip-range %q: want a CIDR inside the subnet", s.IPRange))
		}
	}
	duration := func(what, v string) time.Duration {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want a duration such as 10m", what, v))
		}
		return d
	}
	cfg.Cooldown = duration("cooldown", s.Cooldown)
	cfg.Grace = duration("grace", s.Grace)
	if len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}
	return cfg, cfg.Validate()
}
