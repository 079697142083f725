package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	marathon "github.com/gambol99/go-marathon"
)

// Churn operations.
const (
	// churnKill is DELETE /v2/apps/{id}/tasks (go-marathon
	// KillApplicationTasks, no scale): the app's task dies and Marathon
	// launches a replacement on the same fixed IP. The catalog sees the app
	// lose its backend and get it back (two changes per app), through
	// status_update_event and a refetch of the app.
	churnKill = "kill"
	// churnPut is PUT /v2/apps/{id}?force=true toggling an alias in
	// OAK_NAMES: a config change, so names are re-indexed and the task is
	// restarted by a deployment.
	churnPut = "put"
)

// churn changes apps on the simulator through go-marathon at a fixed rate.
// The names dnsperf asks for keep their answers (a killed app is briefly
// without a live task, then back on its fixed IP).
type churn struct {
	client  marathon.Marathon
	apps    []benchApp
	op      string // churnKill or churnPut
	rate    int    // changes per second
	workers int    // concurrent requests
}

// churnResult is what the driver managed to do.
type churnResult struct {
	wanted, done, failed, skipped int64
	elapsed                       time.Duration
	firstErr                      error
}

func (r churnResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.done) / r.elapsed.Seconds()
}

func newMarathonClient(url string) (marathon.Marathon, error) {
	cfg := marathon.NewDefaultConfig()
	cfg.URL = url
	cfg.HTTPClient = &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 256,
		},
	}
	return marathon.NewClient(cfg)
}

// run changes apps until ctx ends: every tick of 10 ms it hands rate/100
// changes to the workers. A change the workers cannot take at once (the
// simulator is behind) is skipped and counted, so the pace never drifts and
// the achieved rate is reported as it was.
func (c churn) run(ctx context.Context) churnResult {
	const tick = 10 * time.Millisecond
	perTick := max(1, c.rate/int(time.Second/tick))
	work := make(chan int, c.workers)
	var res churnResult
	var errOnce sync.Once
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	order := rand.New(rand.NewPCG(1, 2)).Perm(len(c.apps))
	revs := make([]atomic.Int32, len(c.apps))
	for range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				rev := revs[i].Add(1)
				if err := c.change(c.apps[i], rev); err != nil {
					failed.Add(1)
					errOnce.Do(func() { res.firstErr = err })
					continue
				}
				done.Add(1)
			}
		}()
	}
	start := time.Now()
	t := time.NewTicker(tick)
	next := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
			for range perTick {
				res.wanted++
				select {
				case work <- order[next%len(order)]:
					next++
				default:
					res.skipped++
				}
			}
		}
	}
	t.Stop()
	close(work)
	wg.Wait()
	res.elapsed = time.Since(start)
	res.done, res.failed = done.Load(), failed.Load()
	return res
}

// change changes app a once (rev counts its changes).
func (c churn) change(a benchApp, rev int32) error {
	if c.op == churnKill {
		if _, err := c.client.KillApplicationTasks(a.ID, nil); err != nil {
			return fmt.Errorf("kill tasks of %s: %w", a.ID, err)
		}
		return nil
	}
	def := a.appDefinition()
	app := marathon.NewDockerApplication().Name(a.ID).CPU(def.CPUs).Memory(def.Mem).Count(def.Instances)
	app.Container.Docker.Container(def.Container.Docker.Image).Host()
	for _, p := range def.Container.Docker.Parameters {
		app.Container.Docker.AddParameter(p.Key, p.Value)
	}
	labels := def.Labels
	if rev%2 == 1 {
		labels["OAK_NAMES"] = a.Name + ",alias-" + a.Name
	}
	app.Labels = &labels
	if _, err := c.client.UpdateApplication(app, true); err != nil {
		return fmt.Errorf("PUT %s: %w", a.ID, err)
	}
	return nil
}
