package watcher

import (
	"encoding/json"
	"net/netip"
	"runtime"
	"strconv"
)

func jsonUnmarshal(body string, v any) error { return json.Unmarshal([]byte(body), v) }

func itoa(i int) string { return strconv.Itoa(i) }

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// liveNow returns the bytes and objects on the heap after two
// collections: what is still reachable, and what the collector marks.
func liveNow() (bytes, objects float64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc), float64(ms.HeapObjects)
}
