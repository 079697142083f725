package watcher

import (
	"errors"
	"fmt"
	"sync"
	"time"

	marathon "github.com/gambol99/go-marathon"

	"github.com/oakdns/oak/catalog"
)

// step syncs what is pending.
func (w *Watcher) step(s *session) error {
	updates := w.pending.takeTasks()
	apps, full := w.pending.take(w.cfg.MaxPartial)
	var err error
	if full || !w.Ready() {
		w.known.bury(updates) // the list covers the rest
		err = w.fullSync(s)
	} else {
		refetch, changed := w.known.plan(apps, updates)
		if len(refetch) > w.cfg.MaxPartial {
			// Apps of task updates past the batch size wait for the next.
			w.pending.mark(refetch[w.cfg.MaxPartial:], false)
			refetch = refetch[:w.cfg.MaxPartial]
		}
		switch {
		case w.partialTooBig(len(refetch)):
			err = w.fullSync(s)
		case len(refetch) > 0 || len(changed) > 0:
			err = w.partialSync(s, refetch, changed)
		}
	}
	return err
}

// partialTooBig says when one list is cheaper than n single GETs: when n is
// a large share of a small cluster.
func (w *Watcher) partialTooBig(n int) bool {
	current := w.snapshot.Load()
	if current == nil {
		return false
	}
	stats := current.Stats()
	return n > fetchParallelism && 2*n > stats.Apps+stats.Rejected
}

// fullSync lists every app with its tasks and publishes a snapshot that
// follows the list alone, so that apps and tasks missing from it
// disappear. The first sync builds; later ones apply the apps that changed.
func (w *Watcher) fullSync(s *session) error {
	start := time.Now()
	current := w.snapshot.Load()
	if current == nil {
		w.known.prints.clear() // a build needs every app decoded
	}
	list, err := w.listApps(s, w.known.prints)
	if err != nil {
		return fmt.Errorf("full sync: %w", err)
	}
	if next := w.known.follow(current, w.cfg.Policy, list); next != nil {
		w.publish(next)
	}
	w.synced("full", len(list), start)
	return nil
}

// partialSync refetches the dirty apps (a 404 means the app is gone) and
// publishes one snapshot for the batch, with the apps changed by task
// updates (none of which is refetched). On any error nothing is published;
// the caller falls back to a full resync.
func (w *Watcher) partialSync(s *session, ids []string, changed []catalog.App) error {
	start := time.Now()
	current := w.snapshot.Load()
	var upserts []catalog.App
	var removes []string
	if len(ids) > 0 {
		var err error
		upserts, removes, err = fetchApps(s.client, ids)
		if err != nil {
			return fmt.Errorf("partial sync of %d apps: %w", len(ids), err)
		}
	}
	// After a full resync, the updates that came during it make one large
	// batch: it is applied and committed in paced slices too.
	pace := newPacer(elementStride)
	w.publish(w.known.apply(current, append(upserts, changed...), removes, &pace))
	w.known.commit(upserts, changed, removes, &pace)
	if len(ids) == 0 {
		w.status.applied()
		w.log.Debug("marathon task updates applied", "apps", len(changed), "took", time.Since(start))
		return nil
	}
	w.synced("partial", len(ids)+len(changed), start)
	return nil
}

// fetchApps gets apps by id, fetchParallelism at a time.
func fetchApps(client marathon.Marathon, ids []string) (upserts []catalog.App, removes []string, err error) {
	type result struct {
		id   string
		app  *marathon.Application
		gone bool
		err  error
	}
	results := make([]result, len(ids))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(fetchParallelism, len(ids)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := &results[i]
				r.id = ids[i]
				r.app, r.err = client.ApplicationBy(ids[i], &marathon.GetAppOpts{Embed: []string{"app.tasks"}})
				var apiErr *marathon.APIError
				if errors.As(r.err, &apiErr) && apiErr.ErrCode == marathon.ErrCodeNotFound {
					r.gone, r.err = true, nil
				} else if r.err == nil && r.app == nil {
					r.err = fmt.Errorf("app %s: empty response", ids[i])
				}
			}
		}()
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()

	for _, r := range results {
		switch {
		case r.err != nil:
			return nil, nil, fmt.Errorf("app %s: %w", r.id, r.err)
		case r.gone:
			removes = append(removes, r.id)
		default:
			upserts = append(upserts, appOf(r.app))
		}
	}
	return upserts, removes, nil
}

func (w *Watcher) synced(kind string, apps int, start time.Time) {
	if w.status.success(time.Now()) {
		w.log.Info("marathon reachable again", "sync", kind)
	}
	w.log.Debug("marathon sync", "kind", kind, "apps", apps, "took", time.Since(start))
}
