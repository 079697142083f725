package nginxctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/internal/poll"
)

// Source gives the controller its models; snapshot.go adapts the catalog's
// watcher to it.
type Source interface {
	// View returns the current model and what the catalog left out; false
	// while there is no view yet (before the first sync with Marathon).
	View() (View, bool)
	// Synced returns when the view was last confirmed current.
	Synced() time.Time
	// Watch calls changed whenever the view may have changed, until ctx
	// ends.
	Watch(ctx context.Context, changed func())
}

// View is one model with the apps the catalog refused, and the catalog
// snapshot it was built from: /v1/views asks it for the DNS names and the
// status page for every cell (nil when the source has no catalog).
type View struct {
	Model    Model
	Rejected []Rejection
	Snapshot *catalog.Snapshot
}

// ConfigApplier makes rendered configs live; *Applier is the one for a
// real Nginx.
type ConfigApplier interface {
	Apply(ctx context.Context, cfg Config) (changed bool, timing Timing, err error)
	Live() []byte
}

// Options configure a Controller. Source, Applier and Render are required.
type Options struct {
	Source  Source
	Applier ConfigApplier
	Render  RenderOptions
	Domains Domains // empty: every host
	Logger  *slog.Logger
	Pool    PoolStats // the IP pool the status page shows; nil: none

	WaitMin, WaitMax   time.Duration // batching window; defaults 1s, 5s
	RetryMin, RetryMax time.Duration // backoff after a failed apply; defaults 1s, 30s
	StaleAfter         time.Duration // /healthz fails when the view is older; default 2m

	// Registry gets the controller's metrics and is what /metrics serves,
	// so that other parts of the binary (the IP pool) can add theirs; nil
	// makes one.
	Registry *prometheus.Registry
}

// Defaults of Options.
const (
	DefaultWaitMin    = time.Second
	DefaultWaitMax    = 5 * time.Second
	DefaultRetryMin   = time.Second
	DefaultRetryMax   = 30 * time.Second
	DefaultStaleAfter = 2 * time.Minute
)

// Controller keeps Nginx's config in step with a Source: each due batch
// takes the current view through the stages model -> sanitized model ->
// text -> checked file -> running Nginx, and only then records it as live.
type Controller struct {
	opts    Options
	log     *slog.Logger
	batch   *Batch
	metrics *metrics
	started time.Time
	state   atomic.Pointer[state]
}

// state is what the API reports; replaced whole after every sync.
type state struct {
	model      Model
	snapshot   *catalog.Snapshot // the catalog's view model was built from; nil before the first
	rejected   []Rejection
	generation string              // last generation verified live
	appliedAt  time.Time           // when it was verified
	applyErr   error               // the last apply's error; nil after a success
	note       string              // why the last sync applied nothing, if it did not
	syncedAt   time.Time           // when the last sync with a view ran
	result     string              // its result: a reload result label, "invalid" or "kept"
	index      func() *statusIndex // the status page's lists of snapshot, built once on first use
}

// New returns a Controller that does nothing until Run.
func New(opts Options) (*Controller, error) {
	if opts.Source == nil || opts.Applier == nil {
		return nil, errors.New("nginxctl: Source and Applier are required")
	}
	if err := opts.Render.Check(); err != nil {
		return nil, fmt.Errorf("nginxctl: %w", err)
	}
	setDefault(&opts.WaitMin, DefaultWaitMin)
	setDefault(&opts.WaitMax, DefaultWaitMax)
	setDefault(&opts.RetryMin, DefaultRetryMin)
	setDefault(&opts.RetryMax, DefaultRetryMax)
	setDefault(&opts.StaleAfter, DefaultStaleAfter)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Controller{
		opts:    opts,
		log:     opts.Logger,
		batch:   NewBatch(opts.WaitMin, opts.WaitMax),
		metrics: newMetrics(opts.Registry),
		started: time.Now(),
	}
	c.state.Store(&state{generation: liveGeneration(opts.Applier.Live()), note: errNoView.Error()})
	return c, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Run syncs until ctx ends, then returns nil. The first sync is due at
// once; later ones follow the batching window. A failed sync is tried
// again with backoff while the previous config stays live.
func (c *Controller) Run(ctx context.Context) error {
	go c.opts.Source.Watch(ctx, c.batch.Mark)
	failures := 0
	var retry *time.Timer
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for first := true; ; first = false {
		if !first { // the first sync is not a change: it does not start a batch
			marks := c.batch.Wait(ctx)
			if ctx.Err() != nil {
				return nil
			}
			c.metrics.batchSize.Observe(float64(marks))
		}
		err := c.sync(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			failures = 0
			continue
		}
		failures++
		delay := poll.Backoff(failures, c.opts.RetryMin, c.opts.RetryMax)
		c.log.Error("nginx config not applied; the previous one stays live", "err", err, "attempt", failures, "retry_in", delay.Round(time.Millisecond))
		if retry != nil {
			retry.Stop()
		}
		retry = time.AfterFunc(delay, c.batch.Mark)
	}
}

// sync takes the current view through every stage once.
func (c *Controller) sync(ctx context.Context) error {
	prev := c.state.Load()
	view, ok := c.opts.Source.View()
	if !ok {
		return nil // nothing is rendered from a missing view
	}
	start := time.Now()
	model, rejected, err := view.Model.Sanitize(c.opts.Domains)
	if err == nil {
		err = model.Validate() // Sanitize's output must pass; Render checks again
	}
	c.metrics.validate.Observe(time.Since(start).Seconds())
	rejected = slices.Concat(view.Rejected, rejected)
	c.metrics.setRejected(rejected)
	next := &state{model: model, snapshot: view.Snapshot, rejected: rejected, generation: prev.generation, appliedAt: prev.appliedAt,
		syncedAt: time.Now(), result: "invalid", index: sync.OnceValue(func() *statusIndex { return newStatusIndex(view.Snapshot) })}
	if err != nil {
		next.applyErr = err
		c.state.Store(next)
		return err
	}

	start = time.Now()
	cfg, err := Render(&model, c.opts.Render)
	c.metrics.render.Observe(time.Since(start).Seconds())
	if err != nil {
		next.applyErr = err
		c.state.Store(next)
		return err
	}

	live := c.opts.Applier.Live()
	if model.Empty() && !bytes.Equal(live, cfg.Text) && liveGeneration(live) != waitingGeneration && len(live) > 0 {
		next.note = "the view routes nothing; the live config is kept rather than emptied"
		next.model, next.result = prev.model, "kept"
		c.state.Store(next)
		c.log.Warn("refusing to replace a live config with an empty view")
		return nil
	}

	changed, timing, err := c.opts.Applier.Apply(ctx, cfg)
	if err != nil {
		var ae *ApplyError
		result := "error"
		if errors.As(err, &ae) {
			result = string(ae.Stage)
		}
		c.metrics.reloads.WithLabelValues(result).Inc()
		c.metrics.applyFailing.Set(1)
		next.applyErr, next.result = err, result
		c.state.Store(next)
		return err
	}
	c.metrics.applyFailing.Set(0)
	c.metrics.routes.Set(float64(model.Routes()))
	c.metrics.configBytes.Set(float64(len(cfg.Text)))
	next.generation, next.result = cfg.Generation, "unchanged"
	if changed {
		now := time.Now()
		next.appliedAt, next.result = now, "ok"
		c.metrics.reloads.WithLabelValues("ok").Inc()
		c.metrics.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
		c.metrics.check.Observe(timing.Check.Seconds())
		c.metrics.reload.Observe(timing.Reload.Seconds())
		c.log.Info("nginx config applied", "generation", cfg.Generation, "routes", model.Routes(),
			"bytes", len(cfg.Text), "rejected", len(rejected), "check", timing.Check, "reload", timing.Reload)
	} else {
		c.metrics.reloads.WithLabelValues("unchanged").Inc()
	}
	c.state.Store(next)
	return nil
}
