package watcher

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// leakOptions ignores exactly the goroutines go-marathon v0.7.1 cannot stop:
// AddEventsListener starts a reader goroutine over an eventsource stream
// that nothing ever closes (RemoveEventsListener leaves it open, MARATHON.md
// §1.5 item 4; the client has no Close and does not expose the stream).
// Once the watcher stops, its transport fails every request at once, so
// these two sleep in eventsource's doubling backoff and hold no connection;
// every other goroutine (HTTP connections, /ping health checks, our own)
// must be gone.
var leakOptions = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/gambol99/go-marathon.(*marathonClient).registerSSESubscription.func1"),
	goleak.IgnoreAnyFunction("github.com/donovanhide/eventsource.(*Stream).stream"),
}

// leakGrace is how long goroutines get to end after a watcher stops.
// go-marathon's /ping health check of a member marked down sleeps 5 s
// between pings; the stopped watcher's transport answers the next ping so
// that it ends, which takes up to that long.
const leakGrace = 8 * time.Second

// findLeaks polls goleak.Find until no unexpected goroutine is left or
// leakGrace has passed.
func findLeaks(extra ...goleak.Option) error {
	opts := append(append([]goleak.Option(nil), leakOptions...), extra...)
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
