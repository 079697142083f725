package ipam

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	sizeDesc      = prometheus.NewDesc("oak_ipam_size", "Addresses the pool may hand out.", nil, nil)
	allocatedDesc = prometheus.NewDesc("oak_ipam_allocated", "Addresses bound to an app.", nil, nil)
	coolingDesc   = prometheus.NewDesc("oak_ipam_cooling", "Released addresses still cooling down.", nil, nil)
	freeDesc      = prometheus.NewDesc("oak_ipam_free", "Addresses ready to hand out.", nil, nil)
	conflictsDesc = prometheus.NewDesc("oak_ipam_conflicts", "Conflicts the last reconcile with Marathon found.", nil, nil)
)

// registerMetrics sets up oak_ipam_allocations_total and, on reg, the
// gauges counted from the index at each scrape.
func (p *Pool) registerMetrics(reg prometheus.Registerer) error {
	p.allocs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "oak_ipam_allocations_total",
		Help: "Allocation requests by result (new, existing, restored, exhausted, refused).",
	}, []string{"result"})
	for _, r := range []Result{ResultNew, ResultExisting, ResultRestored, ResultExhausted, ResultRefused} {
		p.allocs.WithLabelValues(string(r))
	}
	if reg == nil {
		return nil
	}
	if err := reg.Register(p.allocs); err != nil {
		return err
	}
	return reg.Register(poolCollector{p})
}

type poolCollector struct{ p *Pool }

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{sizeDesc, allocatedDesc, coolingDesc, freeDesc, conflictsDesc} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.p.Stats()
	for d, v := range map[*prometheus.Desc]int{
		sizeDesc: s.Size, allocatedDesc: s.Allocated, coolingDesc: s.Cooling, freeDesc: s.Free, conflictsDesc: len(s.Conflicts),
	} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
}
