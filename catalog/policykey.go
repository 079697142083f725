package catalog

import (
	"cmp"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Key returns a canonical form of p: policies with equal keys read the
// same labels, put every client in the same env and give every env the
// same chain, however their configurations were spelled. Consumers that
// share one watcher between configurations key it on this.
//
// Rules that cannot change a chain are left out: a rule whose pattern is
// shadowed by an earlier one (the same pattern, or a literal name an
// earlier glob matches), and trailing rules whose parent is the default
// env, which every env falls back to anyway. CIDR rules are in match order.
func (p *Policy) Key() string {
	var rules []FallbackRule
	for i, r := range p.rules {
		if !shadowed(r.Pattern, p.rules[:i]) {
			rules = append(rules, r)
		}
	}
	for len(rules) > 0 && rules[len(rules)-1].Parent == p.defaultEnv {
		rules = rules[:len(rules)-1]
	}

	var b strings.Builder
	b.WriteString("labels=")
	b.WriteString(strconv.Quote(p.labels.Prefix))
	b.WriteString(" default=")
	b.WriteString(strconv.Quote(p.defaultEnv))
	for _, r := range rules {
		b.WriteString(" fallback=")
		b.WriteString(strconv.Quote(r.Pattern))
		b.WriteString("->")
		b.WriteString(strconv.Quote(r.Parent))
	}
	// Most specific first, as they match; prefixes of one length are
	// disjoint, so their order among themselves is made canonical.
	cidrs := slices.SortedFunc(slices.Values(p.cidrs), func(a, b CIDRRule) int {
		if d := b.Prefix.Bits() - a.Prefix.Bits(); d != 0 {
			return d
		}
		return a.Prefix.Addr().Compare(b.Prefix.Addr())
	})
	for _, r := range cidrs {
		b.WriteString(" cidr=")
		b.WriteString(r.Prefix.String())
		b.WriteString("->")
		b.WriteString(strconv.Quote(r.Env))
	}
	pools := slices.SortedFunc(slices.Values(p.pools), func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), a.Bits()-b.Bits())
	})
	for _, pool := range slices.Compact(pools) {
		b.WriteString(" pool=")
		b.WriteString(pool.String())
	}
	b.WriteString(" allow=")
	b.WriteString(strconv.Itoa(int(p.allow)))
	return b.String()
}

// shadowed reports whether no env can reach a rule with pattern past the
// earlier rules: an earlier rule has the same pattern, or the pattern is a
// literal name that an earlier glob matches.
func shadowed(pattern string, earlier []FallbackRule) bool {
	literal := !strings.ContainsAny(pattern, `*?[\`)
	for _, r := range earlier {
		if r.Pattern == pattern {
			return true
		}
		if matched, _ := path.Match(r.Pattern, pattern); literal && matched {
			return true
		}
	}
	return false
}
