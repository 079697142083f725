package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// memory is one server's memory at a moment.
type memory struct {
	heapInuse int64 // runtime.MemStats.HeapInuse (go_memstats_heap_inuse_bytes)
	rss       int64 // VmRSS (process_resident_memory_bytes)
}

// memorySample is both servers' memory after lists full resyncs had been
// answered by the simulator.
type memorySample struct {
	lists   int64
	servers map[string]memory
}

// readMemory samples every server: HeapInuse from CoreDNS's pprof plugin
// (the heap profile's MemStats trailer), RSS from /proc.
func readMemory(ctx context.Context, servers map[string]*server, simURL string) (memorySample, error) {
	lists, err := fullLists(ctx, simURL)
	if err != nil {
		return memorySample{}, err
	}
	out := memorySample{lists: lists, servers: map[string]memory{}}
	for name, s := range servers {
		var m memory
		if m.heapInuse, err = heapInuse(ctx, s.pprof); err != nil {
			return out, fmt.Errorf("%s heap: %w", name, err)
		}
		if m.rss, err = rss(s.proc.Cmd.Process.Pid); err != nil {
			return out, fmt.Errorf("%s RSS: %w", name, err)
		}
		out.servers[name] = m
	}
	return out, nil
}

func heapInuse(ctx context.Context, addr string) (int64, error) {
	body, err := get(ctx, "http://"+addr+"/debug/pprof/heap?debug=1")
	if err != nil {
		return 0, err
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapInuse = "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no HeapInuse in the heap profile")
}

// rss is VmRSS of pid in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// fullLists is the full lists (GET /v2/apps?embed=apps.tasks) the
// simulator has answered: one per marathon full resync.
func fullLists(ctx context.Context, simURL string) (int64, error) {
	body, err := get(ctx, simURL+"/_sim/stats")
	if err != nil {
		return 0, err
	}
	defer body.Close()
	var st struct {
		FullLists int64 `json:"fullLists"`
	}
	if err := json.NewDecoder(body).Decode(&st); err != nil {
		return 0, fmt.Errorf("simulator stats: %w", err)
	}
	return st.FullLists, nil
}

// get returns the body of a 200 answer to GET url.
func get(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp.Body, nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
