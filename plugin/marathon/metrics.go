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

// outcome is what became of a query: the "outcome" label of requestCount.
type outcome uint8

// The outcomes of a query.
const (
	outcomeOwn         outcome = iota // the client's own env served the name
	outcomeFallback                   // an env further down the chain served it
	outcomeDown                       // registered in the chain, no live backend: NXDOMAIN, never fallthrough
	outcomeMiss                       // no env in the chain has the name: NXDOMAIN
	outcomeFallthrough                // no env has the name, handed to the next plugin
	outcomeNoData                     // empty non-terminal, or a reverse name of a known address with another type
	outcomeReverse                    // PTR for a known address
	outcomeMeta                       // SOA/NS at the apex, _env TXT, ns.dns.<zone>
	outcomeServfail                   // no snapshot yet (before the first full sync)
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"own", "fallback", "down", "miss", "fallthrough", "nodata", "reverse", "meta", "servfail"}

// String returns the outcome's label value.
func (o outcome) String() string { return outcomeNames[o] }

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

// requestCounters hands out requestCount's counters, one envCounters per
// server and env, from a map the query path reads without a lock, so that
// counting a query costs one lookup of two strings rather than hashing its
// labels under the CounterVec's lock. The map is copied on write; it grows
// when a server or env is new, and prune drops the envs that are gone. The
// zero value is ready to use.
type requestCounters struct {
	mu   sync.Mutex // serializes writers
	envs atomic.Pointer[map[envKey]*envCounters]
	keep map[string]bool // envs the configuration names; never pruned
}

type envKey struct{ server, env string }

// envCounters are one server's counters of one env, by outcome; each is
// looked up in requestCount when it first counts.
type envCounters struct {
	key       envKey
	owner     *requestCounters
	gone      bool // pruned; under owner.mu
	byOutcome [numOutcomes]atomic.Pointer[counterRef]
}

type counterRef struct{ prometheus.Counter }

// count counts one query with outcome o.
func (e *envCounters) count(o outcome) {
	if ref := e.byOutcome[o].Load(); ref != nil {
		ref.Inc()
		return
	}
	e.owner.mu.Lock()
	defer e.owner.mu.Unlock()
	if e.gone {
		// Pruned while the query ran: its env has no app any more, and a
		// series made now would outlive the prune.
		return
	}
	ref := e.byOutcome[o].Load()
	if ref == nil {
		ref = &counterRef{requestCount.WithLabelValues(e.key.server, e.key.env, o.String())}
		e.byOutcome[o].Store(ref)
	}
	ref.Inc()
}

// inc counts one query.
func (c *requestCounters) inc(server, env string, o outcome) { c.of(server, env).count(o) }

// of returns the counters of env on server.
func (c *requestCounters) of(server, env string) *envCounters {
	key := envKey{server, env}
	if m := c.envs.Load(); m != nil {
		if e, ok := (*m)[key]; ok {
			return e
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.envs.Load()
	if old != nil {
		if e, ok := (*old)[key]; ok {
			return e
		}
	}
	m := make(map[envKey]*envCounters, 1+len(ptrMap(old)))
	maps.Copy(m, ptrMap(old))
	e := &envCounters{key: key, owner: c}
	m[key] = e
	c.envs.Store(&m)
	return e
}

// prune drops the counters and the requests_total series of envs that are
// neither kept nor live: feature envs come and go, and each would otherwise
// leave its series behind for good. Another handler on the same server
// that still counts such an env (it reads another source) starts its
// series again from zero.
func (c *requestCounters) prune(live func(env string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := ptrMap(c.envs.Load())
	var gone []envKey
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
		old[key].gone = true
		for o := range numOutcomes {
			if old[key].byOutcome[o].Load() != nil {
				requestCount.DeleteLabelValues(key.server, key.env, o.String())
			}
		}
		delete(m, key)
	}
	c.envs.Store(&m)
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

func ptrMap(m *map[envKey]*envCounters) map[envKey]*envCounters {
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
