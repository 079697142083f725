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

// sourceKey keys a sharedSource in the caddy instance's storage. Server
// blocks whose blocks describe the same source (same endpoints, credentials,
// resync and policy) share one watcher: one event stream to Marathon and
// one snapshot in memory, however many pinned server blocks read it.
type sourceKey string

// sharedSource is one watcher.Source and the goroutines that run it. It is
// started by the first OnStartup of the blocks that share it and stopped by
// the first OnShutdown; both are idempotent.
type sharedSource struct {
	source watcher.Source
	label  string // value of the metrics' "source" label

	startOnce sync.Once
	stopOnce  sync.Once
	cancel    context.CancelFunc
	done      sync.WaitGroup
}

// sharedSourceFor returns the source described by opts, creating it on
// first use in this caddy instance (a reload gets a new instance).
func sharedSourceFor(c *caddy.Controller, opts options, policy *catalog.Policy) (*sharedSource, error) {
	key := sourceKey(fmt.Sprintf("%q %q %q %q %q %s %#v", opts.endpoints, opts.file, opts.user, opts.password, opts.token, opts.resync, opts.policy))
	if shared, ok := c.Get(key).(*sharedSource); ok {
		return shared, nil
	}
	source, err := newSource(opts, policy)
	if err != nil {
		return nil, err
	}
	shared := &sharedSource{source: source, label: sourceLabel(opts)}
	c.Set(key, shared)
	return shared, nil
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
