package watcher

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// leakGrace is how long goroutines get to end after a watcher stops.
// go-marathon's /ping health check of a member marked down sleeps 5 s
// between pings; the stopped watcher's transport answers the next ping so
// that it ends, which takes up to that long.
const leakGrace = 8 * time.Second

// findLeaks polls goleak.Find until no unexpected goroutine is left or
// leakGrace has passed. Nothing is ignored: the watcher's event stream is
// its own and ends with it, and so must go-marathon's REST goroutines.
func findLeaks(opts ...goleak.Option) error {
	deadline := time.Now().Add(leakGrace)
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestMain(m *testing.M) {
	if os.Getenv(clockWriterEnv) != "" {
		writeClock() // a child of BenchmarkResyncDelay
		return
	}
	code := m.Run()
	if code == 0 {
		if err := findLeaks(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
