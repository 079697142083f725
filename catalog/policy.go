package catalog

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// defaultEnvName is the default env when PolicyConfig.DefaultEnv is empty.
const defaultEnvName = "integration"

// PolicyConfig is the operator's configuration of environments. The zero
// value is valid: prefix "OAK_", default env "integration", every env falls
// back straight to it, no CIDR rules.
type PolicyConfig struct {
	LabelPrefix string         // default "OAK_"
	DefaultEnv  string         // default "integration"
	Fallback    []FallbackRule // first match wins; glob via path.Match
	CIDRs       []CIDRRule     // client prefix -> env; most specific prefix wins
	IPPools     []netip.Prefix // when set, OAK_IP must be inside one of them
	IPAllow     []string       // address kinds OAK_IP may have besides unicast: loopback, link-local, broadcast
}

// FallbackRule says that an env matching Pattern (a path.Match glob such as
// "feature-*", or a plain env name) falls back to Parent instead of the
// default env.
type FallbackRule struct{ Pattern, Parent string }

// CIDRRule puts clients in Prefix into Env (when no app claims their
// address).
type CIDRRule struct {
	Prefix netip.Prefix
	Env    string
}

// Policy is a validated PolicyConfig. It is immutable and safe for
// concurrent use; the only thing that changes inside is a bounded memo of
// computed chains, which is invisible to callers.
type Policy struct {
	labels     LabelSchema
	defaultEnv string
	rules      []FallbackRule
	cidrs      []CIDRRule // sorted most specific first
	pools      []netip.Prefix
	allow      addrKinds
	fixed      map[string][]string // chains of the default env and of every rule parent and CIDR env
	memo       chainMemo           // chains of other envs, computed on first use
}

// NewPolicy validates cfg. It reports bad env names, bad glob patterns,
// CIDR rules that are invalid or duplicated, a rule whose pattern matches
// its own parent ("a rule naming itself"), a rule whose pattern matches the
// default env (the default env has no parent, so such a rule could only
// make a cycle), and cycles through rule parents.
func NewPolicy(cfg PolicyConfig) (*Policy, error) {
	p := &Policy{
		labels:     LabelSchema{Prefix: cfg.LabelPrefix},
		defaultEnv: cfg.DefaultEnv,
	}
	if p.labels.Prefix == "" {
		p.labels.Prefix = defaultLabelPrefix
	}
	if err := validLabelPrefix(p.labels.Prefix); err != nil {
		return nil, err
	}
	if p.defaultEnv == "" {
		p.defaultEnv = defaultEnvName
	}
	if err := ValidEnvName(p.defaultEnv); err != nil {
		return nil, fmt.Errorf("default env: %w", err)
	}
	for i, r := range cfg.Fallback {
		if err := validRule(r, p.defaultEnv); err != nil {
			return nil, fmt.Errorf("fallback rule %d (%s -> %s): %w", i+1, r.Pattern, r.Parent, err)
		}
	}
	p.rules = slices.Clone(cfg.Fallback)

	seen := make(map[netip.Prefix]bool, len(cfg.CIDRs))
	for i, r := range cfg.CIDRs {
		if !r.Prefix.IsValid() {
			return nil, fmt.Errorf("CIDR rule %d: invalid prefix", i+1)
		}
		if r.Prefix.Addr().Is4In6() || r.Prefix.Addr().Zone() != "" {
			return nil, fmt.Errorf("CIDR rule %d: prefix %s must be plain IPv4 or IPv6", i+1, r.Prefix)
		}
		if err := ValidEnvName(r.Env); err != nil {
			return nil, fmt.Errorf("CIDR rule %d (%s): %w", i+1, r.Prefix, err)
		}
		prefix := r.Prefix.Masked()
		if seen[prefix] {
			return nil, fmt.Errorf("CIDR rule %d: prefix %s appears twice", i+1, prefix)
		}
		seen[prefix] = true
		p.cidrs = append(p.cidrs, CIDRRule{Prefix: prefix, Env: r.Env})
	}
	slices.SortStableFunc(p.cidrs, func(a, b CIDRRule) int { return b.Prefix.Bits() - a.Prefix.Bits() })

	for i, pool := range cfg.IPPools {
		if !pool.IsValid() || pool.Addr().Is4In6() || pool.Addr().Zone() != "" {
			return nil, fmt.Errorf("ip_pool %d: %q is not a plain IPv4 or IPv6 prefix", i+1, pool)
		}
		p.pools = append(p.pools, pool.Masked())
	}
	for _, kind := range cfg.IPAllow {
		bit, ok := addrKindOf(kind)
		if !ok {
			return nil, fmt.Errorf("ip_allow: unknown address kind %q (known: loopback, link-local, broadcast)", kind)
		}
		p.allow |= bit
	}

	// Every chain ends in the chain of a rule parent or of the default env,
	// so walking from each parent finds every possible cycle.
	p.fixed = map[string][]string{p.defaultEnv: {p.defaultEnv}}
	for _, r := range p.rules {
		if _, err := p.fixedChain(r.Parent); err != nil {
			return nil, err
		}
	}
	for _, r := range p.cidrs {
		if _, err := p.fixedChain(r.Env); err != nil {
			return nil, err
		}
	}
	p.memo.seed = maphash.MakeSeed()
	return p, nil
}

func validLabelPrefix(prefix string) error {
	if len(prefix) > 64 {
		return fmt.Errorf("label prefix %.70q is longer than 64 characters", prefix)
	}
	for _, c := range prefix {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_.-/", c)) {
			return fmt.Errorf("label prefix %q may contain only [A-Za-z0-9_./-]", prefix)
		}
	}
	return nil
}

func validRule(r FallbackRule, defaultEnv string) error {
	if r.Pattern == "" || strings.Contains(r.Pattern, "/") {
		return fmt.Errorf("pattern %q is empty or contains '/'", r.Pattern)
	}
	if _, err := path.Match(r.Pattern, defaultEnv); err != nil {
		return fmt.Errorf("pattern %q: %w", r.Pattern, err)
	}
	if err := ValidEnvName(r.Parent); err != nil {
		return fmt.Errorf("parent: %w", err)
	}
	if matched, _ := path.Match(r.Pattern, r.Parent); matched {
		return errors.New("the rule names itself: its pattern matches its parent")
	}
	if matched, _ := path.Match(r.Pattern, defaultEnv); matched {
		return fmt.Errorf("the pattern matches the default env %q, which has no parent", defaultEnv)
	}
	return nil
}

// fixedChain computes and stores the chain of env, reporting a cycle. It is
// used only while NewPolicy runs.
func (p *Policy) fixedChain(env string) ([]string, error) {
	if chain, ok := p.fixed[env]; ok {
		return chain, nil
	}
	chain := []string{intern(env)}
	for next := p.parentOf(env); ; next = p.parentOf(next) {
		if slices.Contains(chain, next) {
			return nil, fmt.Errorf("fallback rules make a cycle: %s -> %s", strings.Join(chain, " -> "), next)
		}
		if rest, ok := p.fixed[next]; ok {
			chain = append(chain, rest...)
			break
		}
		chain = append(chain, intern(next))
	}
	p.fixed[env] = chain
	return chain, nil
}

// parentOf returns the env that env falls back to: the parent of the first
// matching rule, else the default env; "" for the default env itself.
func (p *Policy) parentOf(env string) string {
	if env == p.defaultEnv {
		return ""
	}
	for _, r := range p.rules {
		if matched, _ := path.Match(r.Pattern, env); matched {
			return r.Parent
		}
	}
	return p.defaultEnv
}

// DefaultEnv returns the env of clients and apps nobody placed elsewhere.
func (p *Policy) DefaultEnv() string { return p.defaultEnv }

// Labels returns the label schema apps are read with.
func (p *Policy) Labels() LabelSchema { return p.labels }

// Chain returns env followed by the envs it falls back to, ending with the
// default env; "" means the default env. The slice is shared: callers must
// not modify it. Chains of envs the policy names, and of valid env names
// seen before, are returned without allocating.
func (p *Policy) Chain(env string) []string {
	if env == "" {
		env = p.defaultEnv
	}
	if chain, ok := p.fixed[env]; ok {
		return chain
	}
	if chain, ok := p.memo.get(env); ok {
		return chain
	}
	// Every parent is in p.fixed, so one step reaches a stored chain.
	rest := p.fixed[p.parentOf(env)]
	chain := make([]string, 0, 1+len(rest))
	chain = append(append(chain, intern(env)), rest...)
	if ValidEnvName(env) == nil {
		p.memo.put(env, chain)
	}
	return chain
}

// CIDRRules returns the CIDR rules, most specific first (the order
// EnvForAddr tries them in). The slice is shared: do not modify.
func (p *Policy) CIDRRules() []CIDRRule { return p.cidrs }

// EnvForAddr returns the env of the most specific CIDR rule containing a.
func (p *Policy) EnvForAddr(a netip.Addr) (string, bool) {
	a = a.Unmap()
	for _, r := range p.cidrs {
		if r.Prefix.Contains(a) {
			return r.Env, true
		}
	}
	return "", false
}

// Sizes of the chain memo: it is sharded so that adding an env copies one
// small map, and bounded so that odd callers cannot grow it without limit.
const (
	memoShards   = 64
	memoPerShard = 1024
)

// chainMemo maps env names to chains. Readers load a shard map atomically
// and never lock; writers copy the shard under a mutex.
type chainMemo struct {
	seed   maphash.Seed
	mu     sync.Mutex
	shards [memoShards]atomic.Pointer[map[string][]string]
}

func (m *chainMemo) shard(env string) *atomic.Pointer[map[string][]string] {
	return &m.shards[maphash.String(m.seed, env)%memoShards]
}

func (m *chainMemo) get(env string) ([]string, bool) {
	chains := m.shard(env).Load()
	if chains == nil {
		return nil, false
	}
	chain, ok := (*chains)[env]
	return chain, ok
}

func (m *chainMemo) put(env string, chain []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	shard := m.shard(env)
	old := shard.Load()
	if old == nil {
		shard.Store(&map[string][]string{env: chain})
		return
	}
	if _, ok := (*old)[env]; ok || len(*old) >= memoPerShard {
		return
	}
	next := make(map[string][]string, len(*old)+1)
	for k, v := range *old {
		next[k] = v
	}
	next[env] = chain
	shard.Store(&next)
}

// addrKinds is a set of special address kinds an OAK_IP may be allowed.
type addrKinds uint8

const (
	kindLoopback addrKinds = 1 << iota
	kindLinkLocal
	kindBroadcast
)

func addrKindOf(name string) (addrKinds, bool) {
	switch name {
	case "loopback":
		return kindLoopback, true
	case "link-local":
		return kindLinkLocal, true
	case "broadcast":
		return kindBroadcast, true
	}
	return 0, false
}

// checkFixedIP says why ip cannot be an app's OAK_IP, or nil. dockerIP is
// the app's Docker ip parameter ("" when it has none): the label must name
// the address Docker was told, or the app could claim another container's
// clients. Loopback, link-local and broadcast addresses, and with ip_pool
// addresses outside the pools and their network and broadcast addresses,
// are no container's.
func (p *Policy) checkFixedIP(ip netip.Addr, dockerIP string) error {
	if dockerIP != "" {
		docker, err := netip.ParseAddr(strings.TrimSpace(dockerIP))
		if err != nil || docker.Unmap() != ip {
			return fmt.Errorf("IP %s differs from the Docker ip parameter %.60q", ip, dockerIP)
		}
	}
	switch {
	case ip.IsLoopback() && p.allow&kindLoopback == 0:
		return fmt.Errorf("IP %s is a loopback address (allow it with ip_allow loopback)", ip)
	case ip.IsLinkLocalUnicast() && p.allow&kindLinkLocal == 0:
		return fmt.Errorf("IP %s is a link-local address (allow it with ip_allow link-local)", ip)
	case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) && p.allow&kindBroadcast == 0:
		return fmt.Errorf("IP %s is the broadcast address (allow it with ip_allow broadcast)", ip)
	}
	if len(p.pools) == 0 {
		return nil
	}
	for _, pool := range p.pools {
		if !pool.Contains(ip) {
			continue
		}
		if ip.Is4() && pool.Bits() < 31 && (ip == pool.Addr() || ip == lastAddr(pool)) && p.allow&kindBroadcast == 0 {
			return fmt.Errorf("IP %s is the network or broadcast address of ip_pool %s", ip, pool)
		}
		return nil
	}
	return fmt.Errorf("IP %s is outside every ip_pool", ip)
}

// lastAddr returns the last address of an IPv4 prefix.
func lastAddr(pool netip.Prefix) netip.Addr {
	a := pool.Masked().Addr().As4()
	host := uint32(1)<<(32-pool.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
