// Package marathon is a CoreDNS plugin that serves per-environment views of
// the apps running on Marathon: a name resolves to the backends of the first
// env in the client's fallback chain that runs it. It answers from an
// immutable catalog snapshot kept up to date by a watcher, so the query
// path makes no request and takes no lock.
package marathon

import (
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"

	"github.com/oakdns/oak/watcher"
)

// Marathon is the plugin handler.
type Marathon struct {
	Next plugin.Handler

	zones     []string // normalized zones, reverse zones included
	pinnedEnv string   // "" = env of the client address
	ttl       uint32
	fall      fall.F
	source    watcher.Source
	counters  requestCounters
	clients   clientMemo
}

// Name implements the plugin.Handler interface.
func (m *Marathon) Name() string { return pluginName }
