// Package ipam is oak's IP pool: fixed addresses on a Docker bridge network,
// sticky per Marathon app, cooled down before reuse, never given twice, and
// reconciled with Marathon, which records which app runs on which address.
// See README.md.
package ipam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/prometheus/client_golang/prometheus"
)

// Errors of the pool's operations; the API maps each to a status.
var (
	ErrExhausted  = errors.New("the pool has no free address (every address is allocated or cooling down)")
	ErrNotFound   = errors.New("the app has no allocation")
	ErrRebuilding = errors.New("the pool is rebuilding from Marathon; try again after its first reconcile")
	ErrClosed     = errors.New("the pool is closed")
)

// Result says how an allocation request was answered.
type Result string

// Results of Allocate, also the label values of oak_ipam_allocations_total.
const (
	ResultNew       Result = "new"       // a free address, bound to the app now
	ResultExisting  Result = "existing"  // the app's own address
	ResultRestored  Result = "restored"  // the app's address taken back from cooldown
	ResultExhausted Result = "exhausted" // no address free
	ResultRefused   Result = "refused"   // rebuilding, closed, store failure or cancelled
)

// Pool is an open IP pool. Every change goes through one writer goroutine,
// which applies concurrent requests together and acknowledges them after
// one synced bbolt transaction; readers see a go-memdb snapshot of what is
// durable.
type Pool struct {
	cfg      Config
	size     int
	log      *slog.Logger
	now      func() time.Time
	maxBatch int

	store *store
	view  *memdb.MemDB

	requests  chan *request
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	rebuilding atomic.Bool
	conflicts  atomic.Pointer[[]Conflict] // the last reconcile's
	allocs     *prometheus.CounterVec

	// Owned by the writer.
	free    []netip.Addr         // never-held addresses, in address order
	missing map[string]time.Time // app → the first observation that missed it
}

// Option changes how Open sets up a pool.
type Option func(*options)

type options struct {
	log       *slog.Logger
	reg       prometheus.Registerer
	now       func() time.Time
	maxBatch  int
	noSync    bool
	assumeNew bool
}

// WithLogger sets the pool's logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegistry registers the pool's oak_ipam_* metrics on reg.
func WithRegistry(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithClock sets the clock for allocations and releases (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithMaxBatch caps how many requests share one transaction (default 256);
// 1 makes every request its own transaction.
func WithMaxBatch(n int) Option { return func(o *options) { o.maxBatch = max(n, 1) } }

// WithoutSync skips fsync. Changes survive a process crash but not a power
// loss: for tests and benchmarks that are not about durability.
func WithoutSync() Option { return func(o *options) { o.noSync = true } }

// AssumeNew starts a pool whose store is empty with every address free
// instead of rebuilding from Marathon: for a pool that never ran before.
// It has no effect on a store that already holds a pool.
func AssumeNew() Option { return func(o *options) { o.assumeNew = true } }

// Open opens (or creates) the pool's store at path. A store that holds no
// complete pool makes a pool that is rebuilding: it refuses changes until
// the first Reconcile, which adopts what Marathon runs and holds every other
// address in cooldown.
func Open(path string, cfg Config, opts ...Option) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pool config: %w", err)
	}
	o := options{log: slog.Default(), now: time.Now, maxBatch: 256}
	for _, opt := range opts {
		opt(&o)
	}
	st, err := openStore(path, o.noSync)
	if err != nil {
		return nil, err
	}
	p, err := newPool(st, cfg, o)
	if err != nil {
		st.close()
		return nil, err
	}
	return p, nil
}

func newPool(st *store, cfg Config, o options) (*Pool, error) {
	records, subnet, err := st.load()
	if err != nil {
		return nil, fmt.Errorf("pool store: %w", err)
	}
	if subnet.IsValid() && subnet != cfg.Subnet {
		return nil, fmt.Errorf("pool store holds subnet %s but the config says %s; use another store file for another pool", subnet, cfg.Subnet)
	}
	view, err := memdb.NewMemDB(schema)
	if err != nil {
		return nil, err
	}
	txn := view.Txn(true)
	held := make(map[netip.Addr]bool, len(records))
	for _, r := range records {
		if err := txn.Insert(table, r); err != nil {
			txn.Abort()
			return nil, err
		}
		held[r.Addr] = true
		if reason := cfg.Reserved(r.Addr); reason != "" && r.State == Allocated {
			o.log.Warn("ipam: an allocated address is no longer in the pool; it stays bound until released", "app", r.App, "addr", r.Addr, "reason", reason)
		}
	}
	txn.Commit()
	p := &Pool{
		cfg: cfg, log: o.log, now: o.now, maxBatch: o.maxBatch, store: st, view: view,
		requests: make(chan *request, o.maxBatch), stop: make(chan struct{}), done: make(chan struct{}),
		missing: map[string]time.Time{},
	}
	for _, a := range cfg.Addresses() {
		p.size++
		if !held[a] {
			p.free = append(p.free, a)
		}
	}
	if !subnet.IsValid() {
		if o.assumeNew {
			if err := st.commit(nil, cfg.Subnet); err != nil {
				return nil, fmt.Errorf("pool store: %w", err)
			}
		} else {
			p.rebuilding.Store(true)
			o.log.Info("ipam: the pool's store is empty; rebuilding from Marathon at the first reconcile", "subnet", cfg.Subnet)
		}
	}
	if err := p.registerMetrics(o.reg); err != nil {
		return nil, err
	}
	go p.run()
	return p, nil
}

// Close stops the writer, once every request it took is answered, and
// closes the store.
func (p *Pool) Close() error {
	p.closeOnce.Do(func() {
		close(p.stop)
		<-p.done
		p.closeErr = p.store.close()
	})
	return p.closeErr
}

// Config returns the pool's configuration.
func (p *Pool) Config() Config { return p.cfg }

// Allocate returns app's address: its own when it has one (or had one that
// is still cooling down), else a free one bound to it from now on. It
// returns once the change is durable. Concurrent calls for one app get one
// address. The app id is not checked here; see ParseAppID.
func (p *Pool) Allocate(ctx context.Context, app string) (Allocation, Result, error) {
	type answer struct {
		a Allocation
		r Result
	}
	v, err := p.submit(ctx, func(w *writeTx) (any, error) {
		a, r, err := w.allocate(app)
		return answer{a, r}, err
	})
	ans, _ := v.(answer)
	if err != nil && ans.r == "" {
		ans.r = ResultRefused
	}
	p.allocs.WithLabelValues(string(ans.r)).Inc()
	return ans.a, ans.r, err
}

// Release puts app's address into cooldown; it is reused only after
// Config.Cooldown (by app itself at any time). It returns the cooling
// record once it is durable, or ErrNotFound.
func (p *Pool) Release(ctx context.Context, app string) (Allocation, error) {
	v, err := p.submit(ctx, func(w *writeTx) (any, error) { return w.release(app) })
	a, _ := v.(Allocation)
	return a, err
}

// Get returns app's allocation (state Allocated) if it has one.
func (p *Pool) Get(app string) (Allocation, bool) {
	next := iterate(p.view, "app", app)
	for a := next(); a != nil; a = next() {
		if a.State == Allocated {
			return *a, true
		}
	}
	return Allocation{}, false
}

// iterate walks the records of index (matching args) in a fresh read
// transaction.
func iterate(view *memdb.MemDB, index string, args ...any) func() *Allocation {
	it, err := view.Txn(false).Get(table, index, args...)
	if err != nil {
		return func() *Allocation { return nil }
	}
	return func() *Allocation {
		obj := it.Next()
		if obj == nil {
			return nil
		}
		return obj.(*Allocation)
	}
}

// List returns the records in state (all records when state is empty), in
// address order.
func (p *Pool) List(state State) []Allocation {
	var out []Allocation
	next := iterate(p.view, "id")
	for a := next(); a != nil; a = next() {
		if state == "" || a.State == state {
			out = append(out, *a)
		}
	}
	return out
}

// Stats is the pool's state at one moment.
type Stats struct {
	Subnet     netip.Prefix
	Size       int // addresses the pool may hand out
	Allocated  int
	Cooling    int // still cooling down now
	Free       int // free or done cooling
	Rebuilding bool
	Conflicts  []Conflict // found by the last reconcile
}

// Stats counts the pool's addresses by state, as of now.
func (p *Pool) Stats() Stats {
	s := Stats{Subnet: p.cfg.Subnet, Size: p.size, Rebuilding: p.rebuilding.Load()}
	now := p.now()
	next := iterate(p.view, "id")
	for a := next(); a != nil; a = next() {
		if p.cfg.Reserved(a.Addr) != "" {
			continue
		}
		switch {
		case a.State == Allocated:
			s.Allocated++
		case a.Until.After(now):
			s.Cooling++
		}
	}
	s.Free = s.Size - s.Allocated - s.Cooling
	if c := p.conflicts.Load(); c != nil {
		s.Conflicts = *c
	}
	return s
}

// request is one change for the writer; apply runs in the writer.
type request struct {
	ctx   context.Context
	apply func(*writeTx) (any, error)
	reply chan response
}

type response struct {
	v   any
	err error
}

func (p *Pool) submit(ctx context.Context, apply func(*writeTx) (any, error)) (any, error) {
	r := &request{ctx: ctx, apply: apply, reply: make(chan response, 1)}
	select {
	case p.requests <- r:
	case <-p.stop:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case res := <-r.reply:
		return res.v, res.err
	case <-p.done:
		select {
		case res := <-r.reply:
			return res.v, res.err
		default:
			return nil, ErrClosed
		}
	case <-ctx.Done():
		// The change may still be made; allocations are sticky, so a retry
		// gets the same address.
		return nil, ctx.Err()
	}
}

// run is the writer: it takes what requests are waiting (up to maxBatch),
// applies them in one transaction and answers them after its commit.
func (p *Pool) run() {
	defer close(p.done)
	for {
		var batch []*request
		select {
		case r := <-p.requests:
			batch = append(batch, r)
		case <-p.stop:
			p.drain()
			return
		}
	more:
		for len(batch) < p.maxBatch {
			select {
			case r := <-p.requests:
				batch = append(batch, r)
			default:
				break more
			}
		}
		p.apply(batch)
	}
}

// drain refuses what was queued when Close came.
func (p *Pool) drain() {
	for {
		select {
		case r := <-p.requests:
			r.reply <- response{err: ErrClosed}
		default:
			return
		}
	}
}

func (p *Pool) apply(batch []*request) {
	w := &writeTx{p: p, txn: p.view.Txn(true), now: p.now()}
	results := make([]response, len(batch))
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i].err = err
			continue
		}
		w.at = w.now
		results[i].v, results[i].err = r.apply(w)
	}
	if len(w.changes) > 0 || w.complete.IsValid() {
		if err := p.store.commit(w.changes, w.complete); err != nil {
			w.txn.Abort()
			p.free = append(w.popped, p.free...)
			p.log.Error("ipam: pool store commit failed; the batch is refused", "requests", len(batch), "err", err)
			for i := range results {
				if results[i].err == nil {
					results[i] = response{err: fmt.Errorf("pool store: %w", err)}
				}
			}
			p.answer(batch, results)
			return
		}
		if w.complete.IsValid() {
			p.rebuilding.Store(false)
		}
	}
	w.txn.Commit()
	for _, publish := range w.onCommit {
		publish()
	}
	p.answer(batch, results)
}

func (p *Pool) answer(batch []*request, results []response) {
	for i, r := range batch {
		r.reply <- results[i]
	}
}

// writeTx is the writer's view of one batch: a go-memdb write transaction
// and the changes the bbolt transaction will make.
type writeTx struct {
	p        *Pool
	txn      *memdb.Txn
	now      time.Time // the batch's clock
	at       time.Time // the current request's clock
	changes  []change
	popped   []netip.Addr // taken from p.free, given back if the commit fails
	complete netip.Prefix
	onCommit []func()
}

func (w *writeTx) put(a *Allocation) {
	if err := w.txn.Insert(table, a); err != nil {
		panic(fmt.Sprintf("ipam: index insert: %v", err)) // only a schema bug can fail
	}
	w.changes = append(w.changes, change{addr: a.Addr, put: a})
}

func (w *writeTx) record(addr netip.Addr) *Allocation {
	obj, err := w.txn.First(table, "id", addr)
	if err != nil || obj == nil {
		return nil
	}
	return obj.(*Allocation)
}

// appRecords returns app's allocated record and its latest cooling one.
func (w *writeTx) appRecords(app string) (allocated, cooling *Allocation) {
	it, err := w.txn.Get(table, "app", app)
	if err != nil {
		return nil, nil
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		a := obj.(*Allocation)
		switch {
		case a.State == Allocated:
			allocated = a
		case cooling == nil || a.Since.After(cooling.Since):
			cooling = a
		}
	}
	return allocated, cooling
}

func (w *writeTx) allocate(app string) (Allocation, Result, error) {
	if w.p.rebuilding.Load() {
		return Allocation{}, ResultRefused, ErrRebuilding
	}
	held, cooling := w.appRecords(app)
	if held != nil {
		return *held, ResultExisting, nil
	}
	if cooling != nil && w.p.cfg.Reserved(cooling.Addr) == "" {
		a := &Allocation{Addr: cooling.Addr, App: app, State: Allocated, Since: w.at}
		w.put(a)
		return *a, ResultRestored, nil
	}
	addr, ok := w.takeFree()
	if !ok {
		return Allocation{}, ResultExhausted, ErrExhausted
	}
	a := &Allocation{Addr: addr, App: app, State: Allocated, Since: w.at}
	w.put(a)
	return *a, ResultNew, nil
}

// takeFree returns a never-held address, else the one whose cooldown ended
// first.
func (w *writeTx) takeFree() (netip.Addr, bool) {
	for len(w.p.free) > 0 {
		a := w.p.free[0]
		w.p.free = w.p.free[1:]
		w.popped = append(w.popped, a)
		if w.record(a) == nil {
			return a, true
		}
	}
	for {
		it, err := w.txn.LowerBound(table, "until", time.Unix(0, 0))
		if err != nil {
			return netip.Addr{}, false
		}
		obj := it.Next()
		if obj == nil {
			return netip.Addr{}, false
		}
		a := obj.(*Allocation)
		if a.Until.After(w.at) {
			return netip.Addr{}, false
		}
		if w.p.cfg.Reserved(a.Addr) == "" {
			return a.Addr, true
		}
		// Left the pool when its config changed: forget it.
		if err := w.txn.Delete(table, a); err != nil {
			panic(fmt.Sprintf("ipam: index delete: %v", err))
		}
		w.changes = append(w.changes, change{addr: a.Addr})
	}
}

func (w *writeTx) release(app string) (Allocation, error) {
	if w.p.rebuilding.Load() {
		return Allocation{}, ErrRebuilding
	}
	held, _ := w.appRecords(app)
	if held == nil {
		return Allocation{}, ErrNotFound
	}
	return w.cool(held, app), nil
}

// cool puts held's address into cooldown, remembering app as its last
// owner.
func (w *writeTx) cool(held *Allocation, app string) Allocation {
	a := &Allocation{Addr: held.Addr, App: app, State: Cooling, Since: w.at, Until: w.at.Add(w.p.cfg.Cooldown)}
	w.put(a)
	delete(w.p.missing, app)
	return *a
}
