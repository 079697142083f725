package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	marathon "github.com/gambol99/go-marathon"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/internal/poll"
)

// Defaults for the zero values of Config.
const (
	DefaultResync         = 5 * time.Minute
	DefaultBatchWindow    = 15 * time.Millisecond
	DefaultMaxPartial     = 256
	DefaultRetryMin       = 250 * time.Millisecond
	DefaultRetryMax       = 10 * time.Second
	DefaultRequestTimeout = 30 * time.Second
	DefaultStreamFailover = 15 * time.Second
	DefaultStreamIdle     = 30 * time.Second
)

// fetchParallelism bounds concurrent GET /v2/apps/{id} of a partial sync.
const fetchParallelism = 8

// maxDirty bounds the dirty set's memory: past it, one full resync covers
// every pending app. App ids come from events, which are untrusted.
const maxDirty = 1 << 16

// Config configures a Watcher. Only Endpoints and Policy are required.
type Config struct {
	Endpoints []string // Marathon masters, http(s)://host:port
	User      string   // basic auth user (optional)
	Password  string   // basic auth password (optional)
	Token     string   // DC/OS token (optional)
	Policy    *catalog.Policy
	Resync    time.Duration // periodic full resync, default 5m (README: what it costs Marathon)
	Logger    *slog.Logger  // nil = discard

	// BatchWindow is how long the first dirty mark waits for more before
	// the batch is synced; default 15ms.
	BatchWindow time.Duration
	// MaxPartial is the most dirty apps refetched in one batch (one
	// snapshot); more are worked off in further batches. Default 256.
	MaxPartial int
	// RetryMin and RetryMax bound the jittered exponential backoff after a
	// failed sync; defaults 250ms and 10s.
	RetryMin, RetryMax time.Duration
	// RequestTimeout bounds one REST exchange, body included (never the
	// event stream); default 30s.
	RequestTimeout time.Duration
	// StreamFailover is how long the event stream may stay down, when
	// there are several Endpoints, before it tries the other masters; until
	// then it reconnects to the master it was following. Default 15s.
	StreamFailover time.Duration
	// StreamIdle is how long the event stream may bring nothing, not even
	// a heartbeat, before the watcher takes the connection for dead and
	// reconnects (whose full resync covers what was missed). Marathon
	// sends a heartbeat every 10s; default 30s.
	StreamIdle time.Duration
}

// Watcher follows Marathon and publishes catalog snapshots. Create it with
// New, start it with Run; all other methods are safe for concurrent use.
type Watcher struct {
	cfg       Config
	endpoints []string // Config.Endpoints without a trailing slash
	url       string   // go-marathon's comma-joined member list
	log       *slog.Logger
	pending   *dirtySet
	known     *knownApps  // owned by the sync loop (step); never read elsewhere
	problems  *problemLog // owned by the sync loop, which publishes
	// listMember is the member that last answered a full list (sync loop).
	listMember int
	status     statusBook
	started    atomic.Bool

	snapshot atomic.Pointer[catalog.Snapshot]
	ready    atomic.Bool

	changedMu sync.Mutex
	changed   chan struct{} // closed and replaced on every publish
}

// New validates cfg and returns a Watcher that does nothing until Run.
func New(cfg Config) (*Watcher, error) {
	if cfg.Policy == nil {
		return nil, errors.New("watcher: no policy")
	}
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("watcher: no Marathon endpoint")
	}
	for _, e := range cfg.Endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("watcher: endpoint %q: want http(s)://host:port", e)
		}
		if strings.Contains(e, ",") {
			return nil, fmt.Errorf("watcher: endpoint %q: one URL per entry", e)
		}
	}
	if (cfg.User == "") != (cfg.Password == "") {
		return nil, errors.New("watcher: basic auth needs both user and password")
	}
	// Zero means the default; a negative value is a mistake (a negative
	// Resync would reach time.NewTicker, which panics).
	for _, d := range []struct {
		name  string
		value *time.Duration
		def   time.Duration
	}{
		{"Resync", &cfg.Resync, DefaultResync}, {"BatchWindow", &cfg.BatchWindow, DefaultBatchWindow},
		{"RetryMin", &cfg.RetryMin, DefaultRetryMin}, {"RetryMax", &cfg.RetryMax, DefaultRetryMax},
		{"RequestTimeout", &cfg.RequestTimeout, DefaultRequestTimeout}, {"StreamFailover", &cfg.StreamFailover, DefaultStreamFailover},
		{"StreamIdle", &cfg.StreamIdle, DefaultStreamIdle},
	} {
		if *d.value < 0 {
			return nil, fmt.Errorf("watcher: %s is %v; want a positive duration, or zero for the default", d.name, *d.value)
		}
		setDefault(d.value, d.def)
	}
	if cfg.MaxPartial < 0 {
		return nil, fmt.Errorf("watcher: MaxPartial is %d; want a positive number, or zero for the default", cfg.MaxPartial)
	}
	setDefault(&cfg.MaxPartial, DefaultMaxPartial)
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = cfg.RetryMin
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	endpoints := make([]string, len(cfg.Endpoints))
	for i, e := range cfg.Endpoints {
		// A trailing slash would give go-marathon "//v2/apps" (§1.1).
		endpoints[i] = strings.TrimRight(e, "/")
	}
	return &Watcher{
		cfg:       cfg,
		endpoints: endpoints,
		url:       strings.Join(endpoints, ","),
		log:       cfg.Logger,
		pending:   newDirtySet(maxDirty),
		known:     newKnownApps(),
		problems:  newProblemLog(cfg.Logger),
		changed:   make(chan struct{}),
	}, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Snapshot returns the current snapshot: nil before the first full sync,
// then never nil. The snapshot is immutable.
func (w *Watcher) Snapshot() *catalog.Snapshot { return w.snapshot.Load() }

// Ready reports whether the first full sync has been published.
func (w *Watcher) Ready() bool { return w.ready.Load() }

// Resync asks for a full resync as soon as possible. It does not block.
func (w *Watcher) Resync() { w.pending.mark(nil, true) }

// Status returns the watcher's current status.
func (w *Watcher) Status() Status { return w.status.read(w.snapshot.Load()) }

// Changed returns a channel that is closed when a snapshot newer than the
// current one is published, for consumers that re-render on change.
func (w *Watcher) Changed() <-chan struct{} {
	w.changedMu.Lock()
	defer w.changedMu.Unlock()
	return w.changed
}

func (w *Watcher) publish(s *catalog.Snapshot) {
	w.problems.report(s)
	w.snapshot.Store(s)
	w.ready.Store(true)
	w.changedMu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.changedMu.Unlock()
}

// newSession makes the go-marathon client (REST only), whose every
// connection ends with parent.
func (w *Watcher) newSession(parent context.Context) (*session, error) {
	tr := newTransport(parent, w.cfg.RequestTimeout, fetchParallelism)
	client, err := marathon.NewClient(marathon.Config{
		URL:               w.url,
		HTTPBasicAuthUser: w.cfg.User,
		HTTPBasicPassword: w.cfg.Password,
		DCOSToken:         w.cfg.Token,
		LogOutput:         debugLog(w.log),
		HTTPClient:        tr.client(),
	})
	if err != nil {
		return nil, fmt.Errorf("watcher: %w", err)
	}
	return &session{client: client, transport: tr}, nil
}

// session is the go-marathon client and its transport.
type session struct {
	client    marathon.Marathon
	transport *transport
}

// Run follows Marathon until ctx is done, then stops its goroutines and
// returns nil. It returns an error only if it cannot start. A Watcher runs
// once. Errors from Marathon never end Run: they are retried with backoff
// while the last snapshot stays published.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("watcher: Run called twice")
	}
	life, stop := context.WithCancel(ctx)
	defer stop()

	s, err := w.newSession(life)
	if err != nil {
		return err
	}
	w.log.Info("marathon watcher starting", "endpoints", w.url, "resync", w.cfg.Resync)

	var stream sync.WaitGroup
	stream.Go(func() { w.runStream(life, s.transport.streamClient()) })
	w.loop(life, s)
	stop()
	stream.Wait()
	s.transport.close()
	w.log.Info("marathon watcher stopped")
	return nil
}

// loop is the one place that decides when to sync: a dirty mark (a
// batching window after the first mark of the batch), the resync period, or
// the end of a backoff. Syncs run one at a time; marks made meanwhile form
// the next batch, so a storm costs at most one sync per window or per sync.
func (w *Watcher) loop(ctx context.Context, s *session) {
	resync := time.NewTicker(w.cfg.Resync)
	defer resync.Stop()
	retry := time.NewTimer(0) // the first sync is immediate
	defer retry.Stop()
	backingOff := true
	failures := 0
	w.pending.mark(nil, true)

	for {
		var kick <-chan struct{}
		var retryC <-chan time.Time
		if backingOff {
			retryC = retry.C // marks wait for the backoff to end
		} else {
			kick = w.pending.kick
		}
		select {
		case <-ctx.Done():
			return
		case <-resync.C:
			w.pending.mark(nil, true)
			continue // acted on through kick (or at the end of the backoff)
		case <-retryC:
			backingOff = false
		case <-kick:
			if !poll.Sleep(ctx, time.Until(w.pending.batchDue(w.cfg.BatchWindow))) {
				return
			}
		}

		err := w.step(s)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			failures = 0
			continue
		}
		failures++
		w.status.failure(err)
		w.pending.mark(nil, true) // whatever failed, a full resync covers it
		// go-marathon answers ErrMarathonDown without a request until its own
		// /ping loop (every 5 s) revives a member, so early retries are cheap.
		delay := poll.Backoff(failures, w.cfg.RetryMin, w.cfg.RetryMax)
		w.log.Warn(w.failureMessage(), "err", err, "attempt", failures, "retry_in", delay.Round(time.Millisecond))
		retry.Reset(delay)
		backingOff = true
	}
}

// failureMessage says what a failed sync leaves served.
func (w *Watcher) failureMessage() string {
	if w.snapshot.Load() == nil {
		return "marathon sync failed; no view yet, nothing is served until a sync succeeds"
	}
	return "marathon sync failed; keeping the last view"
}

func (w *Watcher) streamUp() {
	if w.status.stream(true) {
		w.log.Info("marathon event stream reconnected")
	} else {
		w.log.Info("marathon event stream connected")
	}
	// Events published while the stream was down are lost for good
	// (Marathon has no replay), and the REST list must come after the
	// stream is up so that nothing falls between them.
	w.pending.mark(nil, true)
}

func (w *Watcher) streamDown(err error, news bool) {
	w.status.stream(false)
	level := slog.LevelDebug
	if news {
		level = slog.LevelWarn
	}
	w.log.Log(context.Background(), level, "marathon event stream down; reconnecting, the resync after it covers the gap", "err", err)
}
