package nginxctl

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Model is everything the renderer needs, built from one catalog snapshot.
// It is a plain value: Sanitize drops what does not validate (keeping a
// Rejection for each), Validate re-checks every field before Render uses
// it, so that nothing unchecked reaches Nginx's config even when the code
// that built the model has a bug.
type Model struct {
	DefaultEnv string
	Clients    []ClientEnv // exact client address -> env (apps' fixed IPs), sorted by address
	CIDRs      []CIDREnv   // prefix -> env, most specific first
	Default    []Route     // what a client of the default env gets, per host, sorted by host
	Envs       []EnvRoutes // per other env: only the hosts where it differs from Default, sorted by env
}

// ClientEnv places the client at Addr in Env.
type ClientEnv struct {
	Addr netip.Addr
	Env  string
}

// CIDREnv places clients in Prefix in Env unless a ClientEnv or a more
// specific prefix places them.
type CIDREnv struct {
	Prefix netip.Prefix
	Env    string
}

// EnvRoutes is what clients of Env get where it differs from the default
// env's view.
type EnvRoutes struct {
	Env    string
	Routes []Route // sorted by host
}

// Route is what one virtual host gives a client of some env.
type Route struct {
	Host     string    // DNS name, lower case
	Held     bool      // registered in the chain but nothing live: 503 naming Host and Env
	Env      string    // serving env, or the env that holds it
	Backends []Backend // when served: sorted, deduped, non-empty; empty when Held
}

// Backend is one HTTP backend of a route.
type Backend struct {
	Addr netip.Addr
	Port uint16
}

// String returns addr:port as Nginx and the API write it.
func (b Backend) String() string { return netip.AddrPortFrom(b.Addr, b.Port).String() }

// Rejection is one item left out of the rendered config, with why: an app
// the catalog left out (Source "app"), or a part of the model that did not
// validate ("route", "backend", "client", "cidr", "env").
type Rejection struct {
	Source string `json:"source"`
	App    string `json:"app,omitempty"`
	Env    string `json:"env,omitempty"`
	Host   string `json:"host,omitempty"`
	Value  string `json:"value,omitempty"`
	Reason string `json:"reason"`
}

// Limits on the model, so that a bad snapshot cannot make Nginx's config
// unbounded in one place.
const (
	maxHostLen       = 253
	maxDNSLabel      = 63
	maxEnvLen        = 63
	maxRouteBackends = 1024
	maxShownValue    = 256 // bytes of an offending value kept in a Rejection
)

// Empty reports whether the model routes nothing at all.
func (m *Model) Empty() bool {
	return len(m.Default) == 0 && len(m.Envs) == 0
}

// Routes returns how many routes the model renders.
func (m *Model) Routes() int {
	n := len(m.Default)
	for _, e := range m.Envs {
		n += len(e.Routes)
	}
	return n
}

// Sanitize returns a copy of m with every invalid item left out, a
// Rejection for each, and everything sorted and deduplicated as Validate
// wants it; hosts outside domains are rejected too. It fails only when the
// default env itself is invalid, because then nothing can be rendered.
func (m *Model) Sanitize(domains Domains) (Model, []Rejection, error) {
	if err := checkEnv(m.DefaultEnv); err != nil {
		return Model{}, nil, fmt.Errorf("default env: %w", err)
	}
	var rejected []Rejection
	out := Model{DefaultEnv: m.DefaultEnv}

	seenClient := make(map[netip.Addr]bool, len(m.Clients))
	for _, c := range m.Clients {
		if err := cmp.Or(checkAddr(c.Addr), checkEnv(c.Env)); err != nil {
			rejected = append(rejected, Rejection{Source: "client", Env: shown(c.Env), Value: c.Addr.String(), Reason: err.Error()})
			continue
		}
		if !seenClient[c.Addr] {
			seenClient[c.Addr] = true
			out.Clients = append(out.Clients, c)
		}
	}
	slices.SortFunc(out.Clients, func(a, b ClientEnv) int { return a.Addr.Compare(b.Addr) })

	seenPrefix := make(map[netip.Prefix]bool, len(m.CIDRs))
	for _, c := range m.CIDRs {
		if err := cmp.Or(checkPrefix(c.Prefix), checkEnv(c.Env)); err != nil {
			rejected = append(rejected, Rejection{Source: "cidr", Env: shown(c.Env), Value: c.Prefix.String(), Reason: err.Error()})
			continue
		}
		if !seenPrefix[c.Prefix] {
			seenPrefix[c.Prefix] = true
			out.CIDRs = append(out.CIDRs, c)
		}
	}
	slices.SortFunc(out.CIDRs, compareCIDR)

	out.Default, rejected = sanitizeRoutes(m.DefaultEnv, m.Default, domains, rejected)
	seenEnv := map[string]bool{m.DefaultEnv: true}
	for _, e := range m.Envs {
		if err := checkEnv(e.Env); err != nil {
			rejected = append(rejected, Rejection{Source: "env", Env: shown(e.Env), Reason: err.Error()})
			continue
		}
		if seenEnv[e.Env] {
			rejected = append(rejected, Rejection{Source: "env", Env: e.Env, Reason: "env listed twice, or is the default env"})
			continue
		}
		seenEnv[e.Env] = true
		var routes []Route
		routes, rejected = sanitizeRoutes(e.Env, e.Routes, domains, rejected)
		if len(routes) > 0 {
			out.Envs = append(out.Envs, EnvRoutes{Env: e.Env, Routes: routes})
		}
	}
	slices.SortFunc(out.Envs, func(a, b EnvRoutes) int { return strings.Compare(a.Env, b.Env) })
	return out, rejected, nil
}

// sanitizeRoutes keeps the valid routes of env (view), their valid
// backends, and the first route of each host.
func sanitizeRoutes(view string, routes []Route, domains Domains, rejected []Rejection) ([]Route, []Rejection) {
	var out []Route
	seen := make(map[string]bool, len(routes))
	for _, r := range routes {
		reject := func(err error) {
			rejected = append(rejected, Rejection{Source: "route", Env: view, Host: shown(r.Host), Value: shown(r.Env), Reason: err.Error()})
		}
		if err := cmp.Or(checkHost(r.Host), checkEnv(r.Env)); err != nil {
			reject(err)
			continue
		}
		if !domains.Contains(r.Host) {
			reject(fmt.Errorf("host %s is outside the controller's domains (%s)", r.Host, domains))
			continue
		}
		if seen[r.Host] {
			reject(errors.New("host listed twice in one view"))
			continue
		}
		clean := Route{Host: r.Host, Held: r.Held, Env: r.Env}
		if r.Held && len(r.Backends) > 0 {
			reject(errors.New("a held route has no backends"))
			continue
		}
		for _, b := range r.Backends {
			if err := checkBackend(b); err != nil {
				rejected = append(rejected, Rejection{Source: "backend", Env: view, Host: r.Host, Value: b.String(), Reason: err.Error()})
				continue
			}
			clean.Backends = append(clean.Backends, b)
		}
		slices.SortFunc(clean.Backends, compareBackend)
		clean.Backends = slices.Compact(clean.Backends)
		if !r.Held && len(clean.Backends) == 0 {
			reject(errors.New("served route without a valid backend"))
			continue
		}
		if len(clean.Backends) > maxRouteBackends {
			reject(fmt.Errorf("more than %d backends", maxRouteBackends))
			continue
		}
		seen[r.Host] = true
		out = append(out, clean)
	}
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.Host, b.Host) })
	return out, rejected
}

// Validate checks every field Render writes: env names, hosts, addresses,
// ports, and the order and uniqueness Sanitize establishes.
func (m *Model) Validate() error {
	if err := checkEnv(m.DefaultEnv); err != nil {
		return fmt.Errorf("default env: %w", err)
	}
	for i, c := range m.Clients {
		if err := cmp.Or(checkAddr(c.Addr), checkEnv(c.Env)); err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		if i > 0 && m.Clients[i-1].Addr.Compare(c.Addr) >= 0 {
			return fmt.Errorf("client %d (%s): not sorted or listed twice", i, c.Addr)
		}
	}
	for i, c := range m.CIDRs {
		if err := cmp.Or(checkPrefix(c.Prefix), checkEnv(c.Env)); err != nil {
			return fmt.Errorf("cidr %d: %w", i, err)
		}
		if i > 0 && compareCIDR(m.CIDRs[i-1], c) >= 0 {
			return fmt.Errorf("cidr %d (%s): not most specific first, or listed twice", i, c.Prefix)
		}
	}
	if err := validRoutes(m.Default); err != nil {
		return fmt.Errorf("default env %s: %w", m.DefaultEnv, err)
	}
	for i, e := range m.Envs {
		if err := checkEnv(e.Env); err != nil {
			return fmt.Errorf("env %d: %w", i, err)
		}
		if e.Env == m.DefaultEnv {
			return fmt.Errorf("env %d: the default env %s is listed among the other envs", i, e.Env)
		}
		if i > 0 && m.Envs[i-1].Env >= e.Env {
			return fmt.Errorf("env %d (%s): not sorted or listed twice", i, e.Env)
		}
		if err := validRoutes(e.Routes); err != nil {
			return fmt.Errorf("env %s: %w", e.Env, err)
		}
	}
	return nil
}

func validRoutes(routes []Route) error {
	for i, r := range routes {
		if err := cmp.Or(checkHost(r.Host), checkEnv(r.Env)); err != nil {
			return fmt.Errorf("route %d: %w", i, err)
		}
		if i > 0 && routes[i-1].Host >= r.Host {
			return fmt.Errorf("route %d (%s): not sorted or listed twice", i, r.Host)
		}
		switch {
		case r.Held && len(r.Backends) > 0:
			return fmt.Errorf("route %s: held with backends", r.Host)
		case !r.Held && len(r.Backends) == 0:
			return fmt.Errorf("route %s: served without backends", r.Host)
		case len(r.Backends) > maxRouteBackends:
			return fmt.Errorf("route %s: more than %d backends", r.Host, maxRouteBackends)
		}
		for j, b := range r.Backends {
			if err := checkBackend(b); err != nil {
				return fmt.Errorf("route %s: backend %d: %w", r.Host, j, err)
			}
			if j > 0 && compareBackend(r.Backends[j-1], b) >= 0 {
				return fmt.Errorf("route %s: backend %d: not sorted or listed twice", r.Host, j)
			}
		}
	}
	return nil
}

// checkHost accepts a lower-case RFC 1123 name: labels of 1 to 63 of
// [a-z0-9-], not starting or ending with '-', 253 bytes at most. It is
// deliberately written apart from the catalog's label parser: a second,
// independent check of everything written into Nginx's config.
func checkHost(host string) error {
	if host == "" {
		return errors.New("host is empty")
	}
	if len(host) > maxHostLen {
		return fmt.Errorf("host is longer than %d bytes", maxHostLen)
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > maxDNSLabel {
			return fmt.Errorf("host %q has an empty label or one longer than %d bytes", shown(host), maxDNSLabel)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host %q has a label starting or ending with '-'", shown(host))
		}
		if i := strings.IndexFunc(label, func(c rune) bool { return !isLowerAlnum(c) && c != '-' }); i >= 0 {
			return fmt.Errorf("host %q contains %q; only [a-z0-9.-] are allowed", shown(host), []rune(label[i:])[0])
		}
	}
	return nil
}

// checkEnv accepts 1 to 63 of [a-z0-9-], starting and ending with a letter
// or digit: what the catalog accepts as an env name.
func checkEnv(env string) error {
	if env == "" {
		return errors.New("env is empty")
	}
	if len(env) > maxEnvLen {
		return fmt.Errorf("env is longer than %d bytes", maxEnvLen)
	}
	if env[0] == '-' || env[len(env)-1] == '-' || strings.IndexFunc(env, func(c rune) bool { return !isLowerAlnum(c) && c != '-' }) >= 0 {
		return fmt.Errorf("env %q must match ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", shown(env))
	}
	return nil
}

func isLowerAlnum(c rune) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// checkAddr accepts a unicast address without a zone, IPv4 not mapped into
// IPv6, as Nginx's geo and proxy_pass take it.
func checkAddr(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return errors.New("address is not valid")
	case a.Zone() != "":
		return fmt.Errorf("address %s has a zone", a)
	case a.Is4In6():
		return fmt.Errorf("address %s is IPv4 mapped into IPv6", a)
	case a.IsUnspecified() || a.IsMulticast():
		return fmt.Errorf("address %s is not unicast", a)
	}
	return nil
}

func checkPrefix(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return errors.New("prefix is not valid")
	case p != p.Masked():
		return fmt.Errorf("prefix %s has host bits set", p)
	case p.Addr().Zone() != "" || p.Addr().Is4In6():
		return fmt.Errorf("prefix %s must be plain IPv4 or IPv6", p)
	}
	return nil
}

func checkBackend(b Backend) error {
	if err := checkAddr(b.Addr); err != nil {
		return err
	}
	if b.Port == 0 {
		return errors.New("backend port is 0")
	}
	return nil
}

func compareBackend(a, b Backend) int {
	return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
}

// compareCIDR orders prefixes most specific first, then by address.
func compareCIDR(a, b CIDREnv) int {
	return cmp.Or(cmp.Compare(b.Prefix.Bits(), a.Prefix.Bits()), a.Prefix.Addr().Compare(b.Prefix.Addr()))
}

// shown truncates an untrusted value for a Rejection or an error.
func shown(s string) string {
	if len(s) > maxShownValue {
		return s[:maxShownValue] + "..."
	}
	return s
}

// Domains are the DNS domains whose virtual hosts the controller publishes.
// A host is inside when it equals a domain or is below one. An empty
// Domains admits every host.
type Domains []string

// ParseDomains reads a comma-separated list of domains, such as
// "example.com,example.org".
func ParseDomains(list string) (Domains, error) {
	var out Domains
	for d := range strings.SplitSeq(list, ",") {
		d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
		if d == "" {
			continue
		}
		if err := checkHost(d); err != nil {
			return nil, fmt.Errorf("domain: %w", err)
		}
		out = append(out, d)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Contains reports whether host is one of the domains or below one.
func (d Domains) Contains(host string) bool {
	if len(d) == 0 {
		return true
	}
	for _, domain := range d {
		if host == domain || strings.HasSuffix(host, "."+domain) {
			return true
		}
	}
	return false
}

// String returns the domains comma-separated.
func (d Domains) String() string { return strings.Join(d, ",") }

// View returns what a client of env sees: the default env's routes with
// env's own differences laid over them, sorted by host.
func (m *Model) View(env string) []Route {
	var own []Route
	for _, e := range m.Envs {
		if e.Env == env {
			own = e.Routes
		}
	}
	out := make([]Route, 0, len(m.Default)+len(own))
	i, j := 0, 0
	for i < len(m.Default) || j < len(own) {
		switch {
		case j == len(own) || i < len(m.Default) && m.Default[i].Host < own[j].Host:
			out = append(out, m.Default[i])
			i++
		case i == len(m.Default) || own[j].Host < m.Default[i].Host:
			out = append(out, own[j])
			j++
		default: // the env's own route replaces the default's
			out = append(out, own[j])
			i++
			j++
		}
	}
	return out
}
