package marathon

import (
	"context"
	"testing"
)

// runCounter is a source that records how often it runs and whether its
// context ended.
type runCounter struct {
	fakeSource
	runs    chan struct{}
	stopped chan struct{}
}

func (r *runCounter) Run(ctx context.Context) error {
	r.runs <- struct{}{}
	<-ctx.Done()
	close(r.stopped)
	return nil
}

// TestSharedSourceLifecycle: the blocks sharing a source start it once and
// the first shutdown stops it and waits for it.
func TestSharedSourceLifecycle(t *testing.T) {
	source := &runCounter{runs: make(chan struct{}, 2), stopped: make(chan struct{})}
	shared := newSharedSource(source, t.Name())
	shared.start()
	shared.start() // a second block's OnStartup
	<-source.runs
	shared.stop()
	select {
	case <-source.stopped:
	default:
		t.Fatal("stop returned before Run ended")
	}
	shared.stop() // a second block's OnShutdown
	if len(source.runs) != 0 {
		t.Errorf("Run started %d more times", len(source.runs))
	}

	never := newSharedSource(&fakeSource{}, t.Name())
	never.stop() // OnShutdown after a failed startup
}

// TestRegistryAcrossReload plays caddy's reload order: the new instance
// reserves and starts its sources before the old one releases them. A
// source both configurations have runs on, once; one only the old had
// stops; one only the new has starts. A reload that fails after the new
// instance's setup leaves holds that prune drops.
func TestRegistryAcrossReload(t *testing.T) {
	live := map[*holder]bool{}
	registry := newSourceRegistry(func(h *holder) bool { return live[h] })
	type started struct {
		source *runCounter
		shared *sharedSource
	}
	reserve := func(h *holder, key sourceKey) started {
		t.Helper()
		var made *runCounter
		shared, err := registry.reserve(key, h, func() (*sharedSource, error) {
			made = &runCounter{runs: make(chan struct{}, 2), stopped: make(chan struct{})}
			return newSharedSource(made, string(key)), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		shared.start()
		if made == nil {
			made = shared.source.(*runCounter)
		} else {
			<-made.runs
		}
		return started{made, shared}
	}
	running := func(s started) bool {
		select {
		case <-s.source.stopped:
			return false
		default:
			return true
		}
	}

	old := &holder{}
	live[old] = true
	kept := reserve(old, "kept")
	reserve(old, "kept") // a second block of the same instance
	dropped := reserve(old, "dropped")

	next := &holder{}
	live[next] = true
	if again := reserve(next, "kept"); again.shared != kept.shared {
		t.Fatal("the new instance got a new source for an unchanged configuration")
	}
	added := reserve(next, "added")
	registry.release(old) // the old instance's OnShutdown, after the new one's OnStartup
	if !running(kept) || len(kept.source.runs) != 0 {
		t.Error("the unchanged source stopped or ran again across the reload")
	}
	if running(dropped) {
		t.Error("the source only the old configuration had still runs")
	}
	if !running(added) {
		t.Error("the new source does not run")
	}

	failed := &holder{} // a reload that fails after setup: no OnShutdown
	live[failed] = true
	orphan := reserve(failed, "orphan")
	reserve(failed, "kept")
	delete(live, failed) // caddy drops the failed instance from its list
	registry.prune()     // the running instance's OnRestartFailed
	if running(orphan) {
		t.Error("the failed instance's source still runs")
	}
	if !running(kept) {
		t.Error("the failed reload stopped a source the running instance holds")
	}

	registry.release(next)
	if running(kept) || running(added) || registry.size() != 0 {
		t.Errorf("sources left after the last release: %d", registry.size())
	}
}

func TestSourceLabel(t *testing.T) {
	for _, tc := range []struct {
		opts options
		want string
	}{
		{options{file: "/data/apps.json"}, "file:///data/apps.json"},
		{options{endpoints: []string{"http://m1:8080", "https://user:secret@m2:8443"}}, "http://m1:8080,https://m2:8443"},
	} {
		if got := sourceLabel(tc.opts); got != tc.want {
			t.Errorf("sourceLabel = %q, want %q", got, tc.want)
		}
	}
}
