package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

func (m measurement) summary() string {
	return fmt.Sprintf("%s: %8.0f qps, avg %s p50 %s p99 %s, lost %d, server CPU %.0f%% (%0.f q/CPU-s), rcodes %s",
		m.kind(), m.res.qps, ms(m.res.avg), opt(m, m.res.p50), opt(m, m.res.p99), m.res.lost, 100*m.cpuShare(), m.perCPU(), m.res.rcodes)
}

// kind names the run: a throughput round, or the fixed-rate latency run.
func (m measurement) kind() string {
	if m.round == 0 {
		return fmt.Sprintf("latency @%d/s", m.rate)
	}
	return fmt.Sprintf("round %d", m.round)
}

// opt is a percentile, or "-" for runs without per-query latencies.
func opt(m measurement, d time.Duration) string {
	if m.res.samples == 0 {
		return "-"
	}
	return ms(d)
}

// noerror is the share of NOERROR answers among completed queries.
func (m measurement) noerror() float64 {
	f := strings.Fields(m.res.rcodes)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "NOERROR" && m.res.completed > 0 {
			return float64(leadingInt(f[i+1])) / float64(m.res.completed)
		}
	}
	return 0
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// report is the result table and the figures derived from it.
type report struct {
	cfg  config
	topo *topology
	runs []measurement
	mem  []memorySample
	load string // /proc/loadavg at the end: other work on the machine
}

func newReport(cfg config, topo *topology, runs []measurement, mem []memorySample) *report {
	load, _ := os.ReadFile("/proc/loadavg")
	return &report{cfg: cfg, topo: topo, runs: runs, mem: mem, load: strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " ")}
}

// mean of f over the throughput runs of server.
func (r *report) mean(server string, f func(measurement) float64) float64 {
	sum, n := 0.0, 0
	for _, m := range r.runs {
		if m.server == server && m.round > 0 {
			sum += f(m)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

func qps(m measurement) float64    { return m.res.qps }
func perCPU(m measurement) float64 { return m.perCPU() }

type figure struct {
	name       string
	value, aim float64 // no goal when aim is 0
	note       string
	atMost     bool // the goal is value <= aim, not >= aim
}

func (r *report) figures() []figure {
	hostsQPS, marQPS := r.mean("hosts", qps), r.mean("marathon", qps)
	ratios := r.roundRatios("")
	figs := []figure{
		{"marathon / hosts QPS", marQPS / hostsQPS, 1.0, fmt.Sprintf("%.0f / %.0f, mean of %d interleaved rounds", marQPS, hostsQPS, r.cfg.rounds), false},
		{"marathon / hosts QPS, median round", median(ratios), 1.0, fmt.Sprintf("per round %s; each round runs the two servers back to back, so drift of the machine's speed cancels best here", formatRatios(ratios)), false},
		{"marathon / hosts queries per server CPU-second", r.mean("marathon", perCPU) / r.mean("hosts", perCPU), 1.0, "robust to other load on the server CPU", false},
	}
	if hostsP99, marP99 := r.latencyP99("hosts"), r.latencyP99("marathon"); hostsP99 > 0 && marP99 > 0 {
		figs = append(figs, figure{"marathon / hosts p99 at the fixed rate", float64(marP99) / float64(hostsP99), 2.0,
			fmt.Sprintf("%s / %s at %d/s; resyncs in marathon's run: see the table", ms(marP99), ms(hostsP99), r.cfg.latencyQPS), true})
	}
	if churnQPS := r.mean("marathon+churn", qps); churnQPS > 0 {
		var churnRatios []float64
		var cr *churnResult
		for _, m := range r.runs {
			if m.server == "marathon+churn" && m.round > 0 {
				churnRatios = append(churnRatios, m.perCPU()/r.mean("marathon", perCPU))
				cr = m.churn
			}
		}
		achieved := ""
		if cr != nil {
			achieved = fmt.Sprintf("; churn (%s) achieved %.0f changes/s (asked %d/s), %d failed, %d skipped",
				r.cfg.churnOp, cr.rate(), r.cfg.churnRate, cr.failed, cr.skipped)
		}
		figs = append(figs, figure{"marathon under churn / idle QPS", churnQPS / marQPS, 0.9,
			fmt.Sprintf("%.0f / %.0f, means of %d and %d rounds%s", churnQPS, marQPS, len(churnRatios), r.cfg.rounds, achieved), false})
		// dnsperf shares its CPU with the simulator and the churn
		// driver, so under churn it may not keep the server busy (see
		// "server CPU"); per CPU-second the server's own cost shows.
		marChurn := r.mean("marathon+churn", perCPU) / r.mean("marathon", perCPU)
		figs = append(figs, figure{"marathon under churn / idle queries per server CPU-second", marChurn, 0.9,
			fmt.Sprintf("%.0f / %.0f; per churn round %s", r.mean("marathon+churn", perCPU), r.mean("marathon", perCPU), formatRatios(churnRatios)), false})
		// The control: hosts, which does not follow Marathon, under the
		// same churn. What it loses is the load CPU's doing (dnsperf slowed
		// by the simulator and the churn driver), not the server's work.
		if hostsChurn := r.mean("hosts+churn", perCPU); hostsChurn > 0 {
			control := hostsChurn / r.mean("hosts", perCPU)
			figs = append(figs,
				figure{"control: hosts under the same churn / idle, per CPU-second", control, 0,
					fmt.Sprintf("%.0f / %.0f; hosts follows no Marathon, so this is the rig's share", hostsChurn, r.mean("hosts", perCPU)), false},
				figure{"marathon's churn ratio over the control's", marChurn / control, 0,
					"per server CPU-second, the rig's share divided out: what marathon's own work under churn leaves", false})
		}
	}
	if after := r.roundRatios(afterChurn); len(after) > 0 {
		figs = append(figs, figure{"marathon / hosts QPS after the churn, median round", median(after), 0,
			fmt.Sprintf("per round %s; %.3f before the churn: the difference is what the view the churn rewrote costs the queries", formatRatios(after), median(ratios)), false})
	}
	return append(figs, r.followFigures()...)
}

// followFigures are what following Marathon costs the marathon server when
// it answers no queries: its CPU time while hosts was measured, idle (the
// resyncs alone) and under churn.
func (r *report) followFigures() []figure {
	var figs []figure
	for _, run := range []struct{ server, name string }{
		{"hosts", "marathon following an idle Marathon, no queries of its own: share of a core"},
		{"hosts+churn", "marathon following the churn, no queries of its own: share of a core"},
	} {
		var cpu, wall time.Duration
		var changes float64
		for _, m := range r.runs {
			if m.server == run.server && m.round > 0 {
				cpu += m.followCPU
				wall += m.wall
				if m.churn != nil {
					changes += m.churn.rate() * m.wall.Seconds()
				}
			}
		}
		if wall <= 0 {
			continue
		}
		note := fmt.Sprintf("%s of CPU in %s of hosts' runs, on the CPU hosts is loading (CPU time is counted in 10 ms ticks)", cpu.Round(10*time.Millisecond), wall.Round(time.Second))
		if changes > 0 {
			note += fmt.Sprintf("; %.0f µs per change, at the churn's mean rate", float64(cpu.Microseconds())/changes)
		}
		figs = append(figs, figure{name: run.name, value: cpu.Seconds() / wall.Seconds(), note: note})
	}
	return figs
}

// roundRatios is marathon's QPS over hosts' in each idle round: before
// the churn (suffix "") or after it (afterChurn).
func (r *report) roundRatios(suffix string) []float64 {
	hosts := map[int]float64{}
	for _, m := range r.runs {
		if m.server == "hosts"+suffix && m.round > 0 {
			hosts[m.round] = m.res.qps
		}
	}
	var out []float64
	for _, m := range r.runs {
		if m.server == "marathon"+suffix && m.round > 0 && hosts[m.round] > 0 {
			out = append(out, m.res.qps/hosts[m.round])
		}
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func formatRatios(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, " ")
}

func verdict(f figure) string {
	switch {
	case f.aim == 0:
		return "no goal"
	case f.atMost && f.value <= f.aim, !f.atMost && f.value >= f.aim:
		return "met"
	case f.atMost:
		return "ABOVE GOAL"
	}
	return "BELOW GOAL"
}

// goal is a figure's goal as the report writes it.
func goal(f figure) string {
	if f.atMost {
		return fmt.Sprintf("<= %.1f", f.aim)
	}
	return fmt.Sprintf(">= %.1f", f.aim)
}

// latencyP99 is server's p99 in its idle fixed-rate run, 0 without one.
func (r *report) latencyP99(server string) time.Duration {
	for _, m := range r.runs {
		if m.server == server && m.rate > 0 && m.res.samples > 0 {
			return m.res.p99
		}
	}
	return 0
}

func (r *report) rows() [][]string {
	rows := [][]string{{"server", "run", "QPS", "avg", "p50", "p90", "p99", "p99.9", "max", "lost", "NOERROR", "server CPU", "queries/CPU-s", "resyncs in run"}}
	for _, m := range r.runs {
		rows = append(rows, []string{
			m.server, m.kind(), fmt.Sprintf("%.0f", m.res.qps),
			ms(m.res.avg), opt(m, m.res.p50), opt(m, m.res.p90), opt(m, m.res.p99), opt(m, m.res.p999), ms(m.res.max),
			fmt.Sprint(m.res.lost), fmt.Sprintf("%.2f%%", 100*m.noerror()), fmt.Sprintf("%.0f%%", 100*m.cpuShare()), fmt.Sprintf("%.0f", m.perCPU()),
			fmt.Sprint(m.resyncs),
		})
	}
	return rows
}

func (r *report) setup() string {
	return fmt.Sprintf("%d names in %d envs (%d integration, %d feature envs x %d); client %s (app of %s, env_from_client); "+
		"queries alternate %d own-env names and %d fallback names; dnsperf -c %d -q %d, %s warm-up + %s per throughput run, "+
		"percentiles from a %s run at a fixed -Q with -v; marathon resync every %s; churn: %s at %d/s by %d go-marathon workers; "+
		"server taskset -c %s GOMAXPROCS=1; dnsperf, marathon-sim (GOMAXPROCS=1) and churn driver on CPU %s; %d CPUs (%s), load avg at end %s",
		numApps, numEnvs, numIntegration, numFeature, appsPerFeature, r.topo.client, featureEnv(clientEnvIndex),
		len(r.topo.own), len(r.topo.parent), r.cfg.clients, r.cfg.outstanding, r.cfg.warmup, r.cfg.duration,
		r.cfg.latencyRun, r.cfg.resync, r.cfg.churnOp, r.cfg.churnRate, r.cfg.workers,
		r.cfg.serverCPU, r.cfg.loadCPU, cpuCount(), runtime.GOARCH, r.load)
}

func (r *report) text() string {
	var b strings.Builder
	rows := r.rows()
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], len(c))
		}
	}
	for _, row := range rows {
		for i, c := range row {
			if i == 0 {
				fmt.Fprintf(&b, "%-*s", width[i], c)
			} else {
				fmt.Fprintf(&b, "  %*s", width[i], c)
			}
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	for _, f := range r.figures() {
		if f.aim == 0 {
			fmt.Fprintf(&b, "%-48s %6.3f  (%s)  %s\n", f.name, f.value, verdict(f), f.note)
			continue
		}
		fmt.Fprintf(&b, "%-48s %6.3f  (goal %s: %s)  %s\n", f.name, f.value, goal(f), verdict(f), f.note)
	}
	for _, line := range r.memoryLines() {
		fmt.Fprintf(&b, "%s\n", line)
	}
	fmt.Fprintf(&b, "\nsetup: %s\n", r.setup())
	return b.String()
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### bench-dns results (%s)\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	rows := r.rows()
	for i, row := range rows {
		fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
		if i == 0 {
			b.WriteString("|" + strings.Repeat("---|", len(row)) + "\n")
		}
	}
	b.WriteString("\n| figure | value | goal | |\n|---|---|---|---|\n")
	for _, f := range r.figures() {
		g := verdict(f)
		if f.aim > 0 {
			g = fmt.Sprintf("%s (%s)", goal(f), verdict(f))
		}
		fmt.Fprintf(&b, "| %s | %.3f | %s | %s |\n", f.name, f.value, g, f.note)
	}
	b.WriteString("\n")
	for _, line := range r.memoryLines() {
		fmt.Fprintf(&b, "- %s\n", line)
	}
	fmt.Fprintf(&b, "\nSetup: %s.\n", r.setup())
	return b.String()
}

// cpuCount is the machine's CPUs (this process is pinned to one, so
// runtime.NumCPU would say 1).
func cpuCount() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return 0
	}
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		var lo, hi int
		if c, _ := fmt.Sscanf(part, "%d-%d", &lo, &hi); c == 2 {
			n += hi - lo + 1
		} else {
			n++
		}
	}
	return n
}

// memoryLines gives each memory sample: both servers' heap in use and RSS,
// and how many full resyncs marathon had made since its first sync.
func (r *report) memoryLines() []string {
	if len(r.mem) == 0 {
		return nil
	}
	var out []string
	for _, m := range r.mem {
		line := fmt.Sprintf("memory after %d full resyncs since the first sync:", m.lists-r.mem[0].lists)
		for _, name := range []string{"hosts", "marathon"} {
			s := m.servers[name]
			line += fmt.Sprintf(" %s heap in use %s, RSS %s;", name, mib(s.heapInuse), mib(s.rss))
		}
		out = append(out, strings.TrimSuffix(line, ";"))
	}
	return out
}
