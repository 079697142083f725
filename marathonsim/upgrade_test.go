package marathonsim

import (
	"context"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"
)

// TestUpgradeStrategyKillsFirst: with minimumHealthCapacity 0 and
// maximumOverCapacity 0 (what a fixed address needs) an upgrade kills the
// old task and starts the new one only once the old is gone, so the two
// never run at once; the default strategy starts the new one first.
func TestUpgradeStrategyKillsFirst(t *testing.T) {
	tests := []struct {
		name        string
		strategy    *marathon.UpgradeStrategy
		wantOverlap bool
	}{
		{"0/0: kill first", &marathon.UpgradeStrategy{MinimumHealthCapacity: new(0.0), MaximumOverCapacity: new(0.0)}, false},
		{"default: start first", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fast()
			opts.KillDelay = 100 * time.Millisecond // the window in which both would be listed
			f := start(t, opts)
			app := marathon.NewDockerApplication().Name("/fixed").Count(1)
			if tt.strategy != nil {
				app.SetUpgradeStrategy(*tt.strategy)
			}
			if _, err := f.client.CreateApplication(app); err != nil {
				t.Fatal(err)
			}
			f.settle(t)
			app.AddEnv("V", "2")
			if _, err := f.client.UpdateApplication(app, false); err != nil {
				t.Fatal(err)
			}
			overlap := false
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for {
				look, stop := context.WithTimeout(ctx, time.Millisecond)
				err := f.sim.Settle(look)
				stop()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("no settle: %+v", f.sim.State())
				}
				for _, a := range f.sim.State().Apps {
					if len(a.Tasks) > 1 {
						overlap = true
					}
				}
			}
			if overlap != tt.wantOverlap {
				t.Errorf("old and new task listed at once: %v, want %v", overlap, tt.wantOverlap)
			}
			if st := f.sim.State(); len(st.Apps) != 1 || len(st.Apps[0].Tasks) != 1 || st.Apps[0].Tasks[0].State != stateRunning {
				t.Errorf("after the upgrade: %+v", st.Apps)
			}
		})
	}
}
