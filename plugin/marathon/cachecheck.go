package marathon

import (
	"fmt"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin/cache"

	"github.com/miekg/dns"
)

// errCacheMixesEnvs explains why a server block is refused.
const errCacheMixesEnvs = "marathon: cache in the same server block as env_from_client would mix environments; pin `env` or remove cache"

// checkCache refuses a `cache` that would serve one env's answer to another.
// The stock cache keys entries on name, type and flags, never on the client,
// so it is only safe when the block is pinned to one env or when the cache
// covers none of the plugin's zones. It must run after the plugin chain is
// compiled (OnStartup), when Config.Handler can see the other plugins.
func checkCache(cfg *dnsserver.Config, opts options) error {
	if opts.pinnedEnv != "" {
		return nil
	}
	h := cfg.Handler("cache")
	if h == nil {
		return nil
	}
	if c, ok := h.(*cache.Cache); ok && !zonesOverlap(c.Zones, opts.zones) {
		return nil
	}
	return fmt.Errorf("%s: %s", opts.where, errCacheMixesEnvs)
}

// zonesOverlap reports whether some zone of a is equal to, above or below
// some zone of b.
func zonesOverlap(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if dns.IsSubDomain(x, y) || dns.IsSubDomain(y, x) {
				return true
			}
		}
	}
	return false
}
