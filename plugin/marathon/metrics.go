package marathon

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/watcher"
)

// Outcomes of a query, the "outcome" label of requestCount.
const (
	outcomeOwn         = "own"         // the client's own env served the name
	outcomeFallback    = "fallback"    // an env further down the chain served it
	outcomeDown        = "down"        // registered in the chain, no live backend: NXDOMAIN, never fallthrough
	outcomeMiss        = "miss"        // no env in the chain has the name: NXDOMAIN
	outcomeFallthrough = "fallthrough" // no env has the name, handed to the next plugin
	outcomeNoData      = "nodata"      // empty non-terminal, or a reverse name of a known address with another type
	outcomeReverse     = "reverse"     // PTR for a known address
	outcomeMeta        = "meta"        // SOA/NS at the apex, _env TXT, ns.dns.<zone>
	outcomeServfail    = "servfail"    // no snapshot yet (before the first full sync)
)

// noEnv is the env label of queries answered before any env was chosen.
const noEnv = "-"

var (
	requestCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "requests_total",
		Help:      "Queries in the plugin's zones, by the client's env and by outcome (own, fallback, down, miss, fallthrough, nodata, reverse, meta, servfail).",
	}, []string{"server", "env", "outcome"})

	syncAge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "sync_age_seconds",
		Help:      "Seconds since the last successful sync with Marathon (or file load); before the first, seconds since the source started.",
	}, []string{"source"})

	snapshotApps = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "snapshot_apps",
		Help:      "Apps in the snapshot being served.",
	}, []string{"source"})

	snapshotTasks = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "snapshot_tasks",
		Help:      "Running tasks in the snapshot being served.",
	}, []string{"source"})

	rejectedApps = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "rejected_apps",
		Help:      "Apps left out of the snapshot because their labels do not validate.",
	}, []string{"source"})

	streamReconnects = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "stream_reconnects_total",
		Help:      "Reconnections of the Marathon event stream after the first connection.",
	}, []string{"source"})
)

// requestCounters hands out requestCount's counters from a map the query
// path reads without a lock, so that counting a query costs one lookup
// rather than hashing its labels under the CounterVec's lock. The map is
// copied on write; it grows when a server, env or outcome is new, and
// prune drops the envs that are gone. The zero value is ready to use.
type requestCounters struct {
	mu       sync.Mutex // serializes writers
	counters atomic.Pointer[map[counterKey]prometheus.Counter]
	keep     map[string]bool // envs the configuration names; never pruned
}

type counterKey struct{ server, env, outcome string }

// inc counts one query.
func (c *requestCounters) inc(server, env, outcome string) {
	key := counterKey{server, env, outcome}
	if m := c.counters.Load(); m != nil {
		if counter, ok := (*m)[key]; ok {
			counter.Inc()
			return
		}
	}
	c.add(key).Inc()
}

// add returns the counter of key, adding it to the map.
func (c *requestCounters) add(key counterKey) prometheus.Counter {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.counters.Load()
	if old != nil {
		if counter, ok := (*old)[key]; ok {
			return counter
		}
	}
	m := make(map[counterKey]prometheus.Counter, 1+len(ptrMap(old)))
	maps.Copy(m, ptrMap(old))
	counter := requestCount.WithLabelValues(key.server, key.env, key.outcome)
	m[key] = counter
	c.counters.Store(&m)
	return counter
}

// prune drops the counters and the requests_total series of envs that are
// neither kept nor live: feature envs come and go, and each would otherwise
// leave its series behind for good. Another handler on the same server
// that still counts such an env (it reads another source) starts its
// series again from zero.
func (c *requestCounters) prune(live func(env string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := ptrMap(c.counters.Load())
	var gone []counterKey
	for key := range old {
		if !c.keep[key.env] && !live(key.env) {
			gone = append(gone, key)
		}
	}
	if len(gone) == 0 {
		return
	}
	m := maps.Clone(old)
	for _, key := range gone {
		delete(m, key)
		requestCount.DeleteLabelValues(key.server, key.env, key.outcome)
	}
	c.counters.Store(&m)
}

// configuredEnvs are the envs a handler's configuration names, whose series
// stay while no app runs in them: the default env, fallback parents, the
// envs of CIDR rules and the pinned env; and noEnv.
func configuredEnvs(opts options, policy *catalog.Policy) map[string]bool {
	keep := map[string]bool{noEnv: true, policy.DefaultEnv(): true}
	for _, r := range opts.policy.Fallback {
		keep[r.Parent] = true
	}
	for _, r := range opts.policy.CIDRs {
		keep[r.Env] = true
	}
	if opts.pinnedEnv != "" {
		keep[opts.pinnedEnv] = true
	}
	return keep
}

func ptrMap(m *map[counterKey]prometheus.Counter) map[counterKey]prometheus.Counter {
	if m == nil {
		return nil
	}
	return *m
}

// statusSampler copies a source's Status into the gauges of one source.
type statusSampler struct {
	label      string
	started    time.Time
	reconnects uint64            // Status.Reconnects already added to streamReconnects
	pruned     *catalog.Snapshot // the snapshot the counters were last pruned for
}

func newStatusSampler(label string, started time.Time) *statusSampler {
	return &statusSampler{label: label, started: started}
}

// sample records st as seen at now.
func (s *statusSampler) sample(st watcher.Status, now time.Time) {
	since := st.LastSync
	if since.IsZero() {
		since = s.started
	}
	syncAge.WithLabelValues(s.label).Set(now.Sub(since).Seconds())
	snapshotApps.WithLabelValues(s.label).Set(float64(st.Apps))
	snapshotTasks.WithLabelValues(s.label).Set(float64(st.Tasks))
	rejectedApps.WithLabelValues(s.label).Set(float64(st.Rejected))
	if st.Reconnects > s.reconnects {
		streamReconnects.WithLabelValues(s.label).Add(float64(st.Reconnects - s.reconnects))
		s.reconnects = st.Reconnects
	}
}

// pruneEnvs drops, once per new snapshot, the request series of the envs
// that have no app in it from the counters of the handlers that read it.
func (s *statusSampler) pruneEnvs(snapshot *catalog.Snapshot, readers []*requestCounters) {
	if snapshot == nil || snapshot == s.pruned {
		return
	}
	s.pruned = snapshot
	envs := snapshot.Envs()
	live := func(env string) bool {
		_, found := slices.BinarySearch(envs, env)
		return found
	}
	for _, c := range readers {
		c.prune(live)
	}
}
