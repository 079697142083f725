package catalog

import (
	"net/netip"
	"slices"
	"strings"
)

// Kind is what the catalog decided for a name or virtual host asked by a
// client of some env. Consumers map kinds to their own answers (the DNS
// plugin to rcodes, nginxctl to an upstream, a 503 or a 404); none of them
// re-derives a rule.
type Kind uint8

// The kinds of Answer. The zero value is Unknown.
const (
	// Unknown: no app of any env claims the name, anything above it or
	// below it. It is not a test name: production may answer it.
	Unknown Kind = iota
	// Served: an env of the chain has a live backend for it (Service).
	Served
	// Held: an env of the chain claims it, or a name above it, and none
	// has a live backend. Never passed on: production would answer for a
	// name that the client's env runs itself.
	Held
	// Foreign: only envs outside the chain claim it, or a name above it.
	// It is a test name all the same: never passed on.
	Foreign
	// BelowServed: no app claims it, and the nearest claimed name above it
	// (Base) is served by the chain (Service is that name's).
	BelowServed
	// EmptyNonTerminal: no app claims it, but apps claim names below it
	// (RFC 8020: it exists, so it is never NXDOMAIN).
	EmptyNonTerminal
)

// String returns the kind's name, for logs, metrics and APIs.
func (k Kind) String() string {
	switch k {
	case Unknown:
		return "unknown"
	case Served:
		return "served"
	case Held:
		return "held"
	case Foreign:
		return "foreign"
	case BelowServed:
		return "below-served"
	case EmptyNonTerminal:
		return "empty-non-terminal"
	}
	return "invalid"
}

// Answer is the decision for one name, or one virtual host, for one env.
type Answer struct {
	Kind     Kind
	Service  *Service // Served: the serving env's; BelowServed: Base's; else nil
	Env      string   // Served: the serving env; Held: the first env of the chain that claims it; Foreign: an env that claims it
	Base     string   // the claimed name above the asked one that decided, when it was not the name itself
	Chain    []string // the client's env and the envs it falls back to (shared: do not modify)
	Children bool     // apps claim names below it: never NXDOMAIN (RFC 8020); not looked up for Served
}

// Classification says how EnvOf chose a client's env.
type Classification int

// How EnvOf chose an env. The zero value is not a classification.
const (
	ByApp      Classification = iota + 1 // an app with a running task claims the client's address
	ByCIDR                               // a CIDR rule of the policy
	ByDefault                            // nothing matched: the default env
	ByConflict                           // apps of several envs claim the address: the default env
)

// String returns "app", "cidr", "default" or "conflict", for logs and
// metric labels.
func (c Classification) String() string {
	switch c {
	case ByApp:
		return "app"
	case ByCIDR:
		return "cidr"
	case ByDefault:
		return "default"
	case ByConflict:
		return "conflict"
	}
	return "unknown"
}

// Resolve decides what a client of env gets for the DNS name name: the
// first env of env's chain with a live backend for the name serves it;
// a name that the chain claims with nothing live is held; see Kind for the
// rest. env "" means the default env. name must be lower-case; a trailing
// dot is ignored. Resolve of a claimed name does not allocate.
func (s *Snapshot) Resolve(env, name string) Answer {
	return s.ResolveChain(s.policy.Chain(env), name)
}

// ResolveChain is Resolve for a client whose chain the caller already
// holds: Policy.Chain of the client's env under this snapshot's policy.
// The DNS plugin keeps the chain of each recent client.
func (s *Snapshot) ResolveChain(chain []string, name string) Answer {
	name = strings.TrimSuffix(name, ".")
	hash := s.hashString(name)
	if entry, ok := s.names.get(hash, name); ok {
		answer := decide(&entry, chain)
		if answer.Kind != Served {
			below, _ := s.suffixes.get(hash, name)
			answer.Children = below > 1
		}
		return answer
	}
	if below, _ := s.suffixes.get(hash, name); below > 0 {
		return Answer{Kind: EmptyNonTerminal, Chain: chain, Children: true}
	}
	if strings.HasSuffix(name, "arpa") { // only reverse names are counted there
		if below, _ := s.reverse.get(hash, name); below > 0 {
			return Answer{Kind: EmptyNonTerminal, Chain: chain, Children: true}
		}
	}
	for base := parentName(name); base != ""; base = parentName(base) {
		entry, ok := s.names.get(s.hashString(base), base)
		if !ok {
			continue
		}
		answer := decide(&entry, chain)
		answer.Base = base
		if answer.Kind == Served {
			answer.Kind = BelowServed
		}
		return answer
	}
	return Answer{Chain: chain}
}

// ResolveVHost decides what a client of env gets for the OAK_HTTP host
// host, exactly as Resolve decides for names: Served, Held, Foreign or
// Unknown. Each Backend of a served host has the port it serves HTTP on.
// host must be lower-case, without a port. It does not allocate.
func (s *Snapshot) ResolveVHost(env, host string) Answer {
	chain := s.policy.Chain(env)
	entry, ok := s.vhosts.get(s.hashString(host), host)
	if !ok {
		return Answer{Chain: chain}
	}
	return decide(&entry, chain)
}

// decide is the fallback walk, shared by names and virtual hosts so that
// DNS and Nginx never disagree.
func decide(entry *claims, chain []string) Answer {
	held := ""
	for i, env := range chain {
		here := entry.find(env)
		if here == nil {
			continue
		}
		if len(here.service.Addrs) > 0 {
			return Answer{Kind: Served, Service: &here.service, Env: here.env, Chain: chain[:i+1]}
		}
		if held == "" {
			held = here.env
		}
	}
	if held != "" {
		return Answer{Kind: Held, Env: held, Chain: chain}
	}
	return Answer{Kind: Foreign, Env: entry.envs[0].env, Chain: chain}
}

// parentName returns name without its first label, or "".
func parentName(name string) string {
	if dot := strings.IndexByte(name, '.'); dot >= 0 {
		return name[dot+1:]
	}
	return ""
}

// EnvOf returns the env of a client: the env of the app whose OAK_IP or
// task IP is the client's address while that app runs a task; else the
// env of the most specific CIDR rule; else the default env. When apps of
// several envs claim the address, the client gets the default env and
// ByConflict. It does not allocate.
func (s *Snapshot) EnvOf(client netip.Addr) (env string, how Classification) {
	client = client.Unmap().WithZone("")
	if client.IsValid() {
		key := keyOf(client)
		if o, _ := s.addrs.get(s.hashAddr(key), key); o != nil && len(o.claimants) > 0 {
			if o.conflict {
				return s.policy.defaultEnv, ByConflict
			}
			return o.env, ByApp
		}
		if env, ok := s.policy.EnvForAddr(client); ok {
			return env, ByCIDR
		}
	}
	return s.policy.defaultEnv, ByDefault
}

// Reverse returns the names, with their envs, whose live backends include
// a, sorted; for PTR answers and Nginx. The slice is shared: do not modify.
func (s *Snapshot) Reverse(a netip.Addr) []NameRef {
	if !a.IsValid() {
		return nil
	}
	key := keyOf(a)
	if o, _ := s.addrs.get(s.hashAddr(key), key); o != nil {
		return o.refs
	}
	return nil
}

// ClientClaim is an address that apps claim as their own: clients at it
// are classified by it (EnvOf's ByApp or ByConflict).
type ClientClaim struct {
	Addr netip.Addr
	Env  string         // the claimants' env; the default env on a conflict
	How  Classification // ByApp or ByConflict
	Apps []string       // claiming app ids, sorted
}

// Clients returns every address that classifies its clients by app,
// sorted by address: with the policy's CIDR rules (Policy.CIDRRules) and
// default env, everything a renderer needs to place a client as EnvOf
// does.
func (s *Snapshot) Clients() []ClientClaim {
	var out []ClientClaim
	for key, o := range s.addrs.all() {
		if len(o.claimants) == 0 {
			continue
		}
		c := ClientClaim{Addr: key.addr(), Env: o.env, How: ByApp}
		if o.conflict {
			c.Env, c.How = s.policy.defaultEnv, ByConflict
		}
		for _, ae := range o.claimants {
			c.Apps = append(c.Apps, ae.id)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b ClientClaim) int { return a.Addr.Compare(b.Addr) })
	return out
}

// Names returns every claimed DNS name, sorted.
func (s *Snapshot) Names() []string { return keysOf(&s.names) }

// VHosts returns every published OAK_HTTP host, sorted.
func (s *Snapshot) VHosts() []string { return keysOf(&s.vhosts) }

func keysOf(t *table[string, claims]) []string {
	out := make([]string, 0, t.n)
	for key := range t.all() {
		out = append(out, key)
	}
	slices.Sort(out)
	return out
}

// VHostAnswer is the decision for one OAK_HTTP host.
type VHostAnswer struct {
	Host   string
	Answer Answer
}

// EnvVHosts is what clients of one env see of the OAK_HTTP hosts where
// it can differ from what clients of the default env see.
type EnvVHosts struct {
	Env   string
	Hosts []VHostAnswer // sorted by host
}

// VHostViews returns, for the default env and each of envs, the vhost
// decisions a renderer needs, sorted by env: for the default env, every
// host it publishes; for any other env, every host that an env of its
// chain other than the default env publishes. A client of env E gets
// E's answer for a host listed under E and the default env's otherwise
// (a host listed nowhere is Unknown or Foreign to it), so a rendered
// config grows with what envs publish, not with envs × hosts.
func (s *Snapshot) VHostViews(envs []string) []EnvVHosts {
	def := s.policy.defaultEnv
	targets := map[string][]string{} // publishing env -> envs whose view it is in
	views := map[string][]VHostAnswer{}
	for _, env := range append([]string{def}, envs...) {
		if _, seen := views[env]; seen || ValidEnvName(env) != nil {
			continue
		}
		views[env] = nil
		for _, publisher := range s.policy.Chain(env) {
			if publisher != def || env == def {
				targets[publisher] = append(targets[publisher], env)
			}
		}
	}
	for host, entry := range s.vhosts.all() {
		var added []string
		for _, claim := range entry.envs {
			for _, env := range targets[claim.env] {
				if slices.Contains(added, env) {
					continue
				}
				added = append(added, env)
				views[env] = append(views[env], VHostAnswer{Host: host, Answer: decide(&entry, s.policy.Chain(env))})
			}
		}
	}
	out := make([]EnvVHosts, 0, len(views))
	for env, hosts := range views {
		slices.SortFunc(hosts, func(a, b VHostAnswer) int { return strings.Compare(a.Host, b.Host) })
		out = append(out, EnvVHosts{Env: env, Hosts: hosts})
	}
	slices.SortFunc(out, func(a, b EnvVHosts) int { return strings.Compare(a.Env, b.Env) })
	return out
}

// AppAddr is an app and the fixed address it declares.
type AppAddr struct {
	App  string
	Addr netip.Addr // the zero Addr when the app declares none
}

// FixedAddrs returns every app of the snapshot, accepted or rejected, with
// the fixed address it declares (OAK_IP, else a rejected app's Docker ip
// parameter), sorted by app id: what the IP pool reconciles with, since a
// rejected app may run on its address all the same.
func (s *Snapshot) FixedAddrs() []AppAddr {
	out := make([]AppAddr, 0, s.apps.n+s.rejected.n)
	for id, a := range s.apps.all() {
		out = append(out, AppAddr{App: id, Addr: a.fixed})
	}
	for id, r := range s.rejected.all() {
		out = append(out, AppAddr{App: id, Addr: r.Addr})
	}
	slices.SortFunc(out, func(a, b AppAddr) int { return strings.Compare(a.App, b.App) })
	return out
}
