package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/oakdns/oak/internal/proc"
)

// load is how dnsperf drives a server.
type load struct {
	dnsperf     string
	taskset     string
	cpu         string // taskset -c
	server      string // -s
	port        int    // -p
	source      string // -a: the client address the catalog classifies
	queries     string // -d
	clients     int    // -c
	outstanding int    // -q
	rate        int    // -Q when > 0
	verbose     bool   // -v: every query's latency, for percentiles
}

// result is one dnsperf run.
type result struct {
	sent, completed, lost int
	rcodes                string  // "NOERROR 100.00%"
	qps                   float64 // Queries per second
	avg, min, max, stddev time.Duration
	p50, p90, p99, p999   time.Duration // from the -v per-query lines
	samples               int           // queries with a latency (-v)
}

// run runs dnsperf for d and parses its statistics and, with verbose, every
// query's latency. -v costs dnsperf about half its rate, so throughput runs
// go without it and the percentiles come from a separate run at a fixed rate
// (-Q) that both servers sustain. dnsperf runs in its own process group so that it is
// killed when ctx ends.
func (l load) run(ctx context.Context, d time.Duration) (result, error) {
	args := []string{"-c", l.cpu, l.dnsperf,
		"-s", l.server, "-p", strconv.Itoa(l.port), "-a", l.source,
		"-d", l.queries, "-l", strconv.Itoa(int(d.Seconds())),
		"-c", strconv.Itoa(l.clients), "-q", strconv.Itoa(l.outstanding),
		"-t", "2",
	}
	if l.rate > 0 {
		args = append(args, "-Q", strconv.Itoa(l.rate))
	}
	if l.verbose {
		args = append(args, "-v")
	}
	cmd := exec.Command(l.taskset, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	var stderr proc.Output
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return result{}, fmt.Errorf("start dnsperf: %w", err)
	}
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		case <-stopped:
		}
	}()
	res, perr := parseDnsperf(stdout)
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return result{}, ctx.Err()
	}
	if werr != nil {
		return result{}, fmt.Errorf("dnsperf: %v\n%s", werr, tail(stderr.String(), 10))
	}
	if perr != nil {
		return result{}, fmt.Errorf("dnsperf output: %v\n%s", perr, tail(stderr.String(), 10))
	}
	return res, nil
}

// parseDnsperf reads dnsperf -v output: one line per query
// ("> NOERROR name A 0.000123"), then the statistics block.
func parseDnsperf(r io.Reader) (result, error) {
	var res result
	var lat []float64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "> ") {
			f := strings.Fields(line)
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				lat = append(lat, v)
			}
			continue
		}
		key, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "Queries sent":
			res.sent = leadingInt(val)
		case "Queries completed":
			res.completed = leadingInt(val)
		case "Queries lost":
			res.lost = leadingInt(val)
		case "Response codes":
			res.rcodes = val
		case "Queries per second":
			res.qps, _ = strconv.ParseFloat(val, 64)
		case "Average Latency (s)":
			// "0.000961 (min 0.000041, max 0.005617)"
			var a, mn, mx float64
			if _, err := fmt.Sscanf(val, "%g (min %g, max %g)", &a, &mn, &mx); err == nil {
				res.avg, res.min, res.max = seconds(a), seconds(mn), seconds(mx)
			}
		case "Latency StdDev (s)":
			v, _ := strconv.ParseFloat(val, 64)
			res.stddev = seconds(v)
		}
	}
	if err := sc.Err(); err != nil {
		return res, err
	}
	if res.qps == 0 {
		return res, fmt.Errorf("no \"Queries per second\" in the statistics")
	}
	slices.Sort(lat)
	res.samples = len(lat)
	res.p50, res.p90, res.p99, res.p999 = quantile(lat, 0.5), quantile(lat, 0.9), quantile(lat, 0.99), quantile(lat, 0.999)
	return res, nil
}

func leadingInt(s string) int {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

func seconds(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }

// quantile of sorted values (nearest rank).
func quantile(sorted []float64, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return seconds(sorted[i])
}
