// Command coredns is CoreDNS v1.15.0 with oak's marathon plugin and the
// stock plugins an operator of oak needs.
package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	// Stock plugins, each registering its directive.
	_ "github.com/coredns/coredns/plugin/acl"
	_ "github.com/coredns/coredns/plugin/any"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/bufsize"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/cancel"
	_ "github.com/coredns/coredns/plugin/chaos"
	_ "github.com/coredns/coredns/plugin/debug"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/file"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/header"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metadata"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/minimal"
	_ "github.com/coredns/coredns/plugin/nsid"
	_ "github.com/coredns/coredns/plugin/pprof"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/rewrite"
	_ "github.com/coredns/coredns/plugin/root"
	_ "github.com/coredns/coredns/plugin/template"
	_ "github.com/coredns/coredns/plugin/timeouts"
	_ "github.com/coredns/coredns/plugin/view"
	_ "github.com/coredns/coredns/plugin/whoami"

	_ "github.com/oakdns/oak/plugin/marathon"
)

func main() {
	directives, err := withMarathon(dnsserver.Directives)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dnsserver.Directives = directives
	coremain.Run()
}

// withMarathon returns CoreDNS's directive order with "marathon" inserted
// right before "hosts", at the head of the data plugins.
//
// A plugin sees the effects of every plugin before it in this list, so the
// slot must be:
//   - after rewrite (names are rewritten before the lookup), acl (blocked
//     clients never reach the catalog) and cache (cache sits in front of the
//     data plugins; see the plugin's README on why cache and env_from_client
//     do not mix), and after header, dnssec, minimal and template, which
//     wrap or pre-empt the answers of data plugins as they do for hosts;
//   - before hosts, file, the other data plugins, loop and forward, so that
//     `fallthrough` hands names that no env serves to them, e.g. `forward`
//     to the production resolver.
//
// view is listed last in CoreDNS's order but takes no part in the chain: it
// selects a server block before any plugin runs, so marathon is "after
// view" whatever its slot.
func withMarathon(stock []string) ([]string, error) {
	if slices.Contains(stock, "marathon") {
		return stock, nil
	}
	at := slices.Index(stock, "hosts")
	if at < 0 {
		return nil, fmt.Errorf("coredns: directive %q not found; cannot place marathon", "hosts")
	}
	return slices.Insert(slices.Clone(stock), at, "marathon"), nil
}
