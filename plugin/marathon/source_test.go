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
	shared := &sharedSource{source: source, label: t.Name()}
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

	never := &sharedSource{source: &fakeSource{}}
	never.stop() // OnShutdown after a failed startup
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
