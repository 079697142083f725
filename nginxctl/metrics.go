package nginxctl

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are one controller's collectors, in the registry /metrics serves.
type metrics struct {
	registry     *prometheus.Registry
	reloads      *prometheus.CounterVec // by result: ok, unchanged, <Stage>
	lastSuccess  prometheus.Gauge
	applyFailing prometheus.Gauge
	batchSize    prometheus.Histogram
	render       prometheus.Histogram
	validate     prometheus.Histogram
	check        prometheus.Histogram
	reload       prometheus.Histogram
	rejected     *prometheus.GaugeVec // by source
	routes       prometheus.Gauge
	configBytes  prometheus.Gauge
}

func newMetrics(registry *prometheus.Registry) *metrics {
	if registry == nil {
		registry = prometheus.NewRegistry()
	}
	const ns, sub = "oak", "nginx"
	durations := prometheus.ExponentialBuckets(0.0005, 2, 16) // 0.5 ms .. 16 s
	m := &metrics{
		registry: registry,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "reloads_total",
			Help: "Config applies by result: ok (reloaded and verified), unchanged, or the stage that failed.",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "last_reload_success_timestamp_seconds",
			Help: "When Nginx was last verified to serve a newly applied config.",
		}),
		applyFailing: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "apply_failing",
			Help: "1 while the last apply failed (the config before it is still live).",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "batch_size",
			Help:    "Catalog changes taken together into one render.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		render: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "render_duration_seconds",
			Help: "Time to render the model as Nginx config.", Buckets: durations,
		}),
		validate: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "validate_duration_seconds",
			Help: "Time to build, sanitize and validate the model from a snapshot.", Buckets: durations,
		}),
		check: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "check_duration_seconds",
			Help: "Time nginx -t takes on a candidate config.", Buckets: durations,
		}),
		reload: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "reload_duration_seconds",
			Help: "Time from the reload signal to Nginx serving the new generation.", Buckets: durations,
		}),
		rejected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "rejected",
			Help: "Items left out of the config, by source: app (labels the catalog refused), route, backend, client, cidr, env.",
		}, []string{"source"}),
		routes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "routes",
			Help: "Routes in the live config: the default env's plus each env's own.",
		}),
		configBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "config_bytes",
			Help: "Size of the live rendered config.",
		}),
	}
	m.registry.MustRegister(m.reloads, m.lastSuccess, m.applyFailing, m.batchSize, m.render, m.validate,
		m.check, m.reload, m.rejected, m.routes, m.configBytes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, result := range []string{"ok", "unchanged", string(StageWrite), string(StageCheck), string(StageReload), string(StageVerify)} {
		m.reloads.WithLabelValues(result)
	}
	return m
}

// setRejected replaces the rejected gauges with counts of rejections.
func (m *metrics) setRejected(rejections []Rejection) {
	counts := map[string]int{"app": 0, "route": 0, "backend": 0, "client": 0, "cidr": 0, "env": 0}
	for _, r := range rejections {
		counts[r.Source]++
	}
	for source, n := range counts {
		m.rejected.WithLabelValues(source).Set(float64(n))
	}
}
