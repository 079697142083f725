package marathon

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coredns/caddy"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/watcher"
)

// sampleEvery is how often the source's status is copied into the metrics.
const sampleEvery = time.Second

// sourceKey identifies a source by what it serves: endpoints, credentials,
// resync period and the policy's canonical form (catalog.Policy.Key), so
// that blocks whose policies only differ in spelling share one watcher.
type sourceKey string

func sourceKeyOf(opts options, policy *catalog.Policy) sourceKey {
	return sourceKey(fmt.Sprintf("%q %q %q %q %q %s %s", opts.endpoints, opts.file, opts.user, opts.password, opts.token, opts.resync, policy.Key()))
}

// sources is the process's registry of sources. A reload builds a new caddy
// instance, whose storage starts empty; a source that must carry its view
// and its event stream from the old instance into the new one needs an
// owner that outlives both, and this is it: the plugin's one piece of
// package-level state.
var sources = newSourceRegistry(inCaddyInstance)

// holder is one caddy instance's claim on sources. The blocks of an
// instance share it (it lives in the instance's storage), so an instance
// holds a source once however many blocks read it.
type holder struct{ _ byte }

type holderKey struct{}

// holderOf returns the holder of c's caddy instance.
func holderOf(c *caddy.Controller) *holder {
	if h, ok := c.Get(holderKey{}).(*holder); ok {
		return h
	}
	h := &holder{}
	c.Set(holderKey{}, h)
	return h
}

// inCaddyInstance reports whether h belongs to an instance caddy still
// runs or is starting. Restart adds the new instance to caddy's list before
// its setup and removes it when it fails; Stop removes the old one.
func inCaddyInstance(h *holder) bool {
	for _, inst := range caddy.Instances() {
		inst.StorageMu.RLock()
		owner := inst.Storage[holderKey{}]
		inst.StorageMu.RUnlock()
		if owner == h {
			return true
		}
	}
	return false
}

// sourceRegistry counts the holders of each running source. CoreDNS's
// reload (caddy's Instance.Restart) sets up the new instance and runs its
// OnStartup before the old instance's OnShutdown, so a source whose
// configuration did not change gains its new holder before it loses the
// old one and runs on, its snapshot served throughout. A restart that fails
// after the new instance's setup never runs that instance's OnShutdown;
// its holds are dropped when the old instance's OnRestartFailed prunes
// holders whose instance is gone (alive), and on every reserve.
type sourceRegistry struct {
	alive   func(*holder) bool
	mu      sync.Mutex
	running map[sourceKey]*sharedSource
}

func newSourceRegistry(alive func(*holder) bool) *sourceRegistry {
	return &sourceRegistry{alive: alive, running: make(map[sourceKey]*sharedSource)}
}

// reserve returns the source registered under key, held by h, making it
// with create when there is none. It does not start it.
func (r *sourceRegistry) reserve(key sourceKey, h *holder, create func() (*sharedSource, error)) (*sharedSource, error) {
	defer r.prune()
	r.mu.Lock()
	defer r.mu.Unlock()
	shared, ok := r.running[key]
	if !ok {
		var err error
		if shared, err = create(); err != nil {
			return nil, err
		}
		shared.key = key
		r.running[key] = shared
	}
	shared.holders[h] = struct{}{}
	return shared, nil
}

// release drops h's holds and stops the sources nobody holds any more.
func (r *sourceRegistry) release(h *holder) {
	r.drop(func(x *holder) bool { return x == h })
}

// prune drops the holds of instances that are gone.
func (r *sourceRegistry) prune() {
	r.drop(func(x *holder) bool { return !r.alive(x) })
}

func (r *sourceRegistry) drop(gone func(*holder) bool) {
	var unheld []*sharedSource
	r.mu.Lock()
	for key, shared := range r.running {
		for h := range shared.holders {
			if gone(h) {
				delete(shared.holders, h)
			}
		}
		if len(shared.holders) == 0 {
			delete(r.running, key)
			unheld = append(unheld, shared)
		}
	}
	r.mu.Unlock()
	for _, shared := range unheld {
		shared.stop()
	}
}

// size is the number of registered sources.
func (r *sourceRegistry) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.running)
}

// sharedSource is one watcher.Source and the goroutines that run it. It is
// started by the first OnStartup of the blocks that hold it and stopped
// when the registry drops its last holder; both are idempotent.
type sharedSource struct {
	key     sourceKey
	source  watcher.Source
	label   string               // value of the metrics' "source" label
	holders map[*holder]struct{} // guarded by the registry's mu

	startOnce sync.Once
	stopOnce  sync.Once
	cancel    context.CancelFunc
	done      sync.WaitGroup

	counters sync.Map // *requestCounters of the handlers reading the source -> struct{}
}

func newSharedSource(source watcher.Source, label string) *sharedSource {
	return &sharedSource{source: source, label: label, holders: make(map[*holder]struct{})}
}

// newSource builds the watcher for opts: a FileSource for a file://
// endpoint, else a Marathon watcher.
func newSource(opts options, policy *catalog.Policy) (watcher.Source, error) {
	logger := slog.New(newLogHandler(log))
	if opts.file != "" {
		return watcher.NewFile(opts.file, policy, logger), nil
	}
	return watcher.New(watcher.Config{
		Endpoints: opts.endpoints,
		User:      opts.user,
		Password:  opts.password,
		Token:     opts.token,
		Policy:    policy,
		Resync:    opts.resync,
		Logger:    logger,
	})
}

// sourceLabel names a source in metrics without credentials.
func sourceLabel(opts options) string {
	if opts.file != "" {
		return "file://" + opts.file
	}
	hosts := make([]string, 0, len(opts.endpoints))
	for _, endpoint := range opts.endpoints {
		if u, err := url.Parse(endpoint); err == nil {
			u.User = nil
			endpoint = u.String()
		}
		hosts = append(hosts, endpoint)
	}
	return strings.Join(hosts, ",")
}

// start runs the source and its metrics sampler until stop.
func (s *sharedSource) start() {
	s.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s.cancel = cancel
		started := time.Now()
		s.done.Add(2)
		go func() {
			defer s.done.Done()
			if err := s.source.Run(ctx); err != nil && ctx.Err() == nil {
				log.Errorf("source %s stopped: %v", s.label, err)
			}
		}()
		go func() {
			defer s.done.Done()
			sampler := newStatusSampler(s.label, started)
			ticker := time.NewTicker(sampleEvery)
			defer ticker.Stop()
			for {
				sampler.sample(s.source.Status(), time.Now())
				sampler.pruneEnvs(s.source.Snapshot(), s.readers())
				select {
				case <-ctx.Done():
					return
				case <-ticker.C:
				}
			}
		}()
	})
}

// stop cancels the source and waits for its goroutines to end.
func (s *sharedSource) stop() {
	s.stopOnce.Do(func() {
		if s.cancel == nil {
			return // never started
		}
		s.cancel()
		s.done.Wait()
	})
}

// read and unread register the request counters of a handler that
// answers from this source, so that the series of envs that are gone from
// its snapshots can be dropped.
func (s *sharedSource) read(c *requestCounters)   { s.counters.Store(c, struct{}{}) }
func (s *sharedSource) unread(c *requestCounters) { s.counters.Delete(c) }

func (s *sharedSource) readers() []*requestCounters {
	var out []*requestCounters
	s.counters.Range(func(k, _ any) bool {
		out = append(out, k.(*requestCounters))
		return true
	})
	return out
}
