// Command oak-demo runs oak's main job on the seed's topology, on one machine:
// it starts bin/marathon-sim (standing in for Marathon) and bin/coredns (with
// the marathon plugin and corefile-examples/demo.Corefile), deploys the
// seed's integration and feature environments through the Marathon API, and
// shows with real DNS queries what a container of each environment sees. It
// then deletes the feature environment's redis1 on Marathon and shows the
// fallback to the integration environment's redis1.
//
// Containers are played by source addresses on loopback: a query from
// 127.0.1.10 comes from the integration env's app, one from 127.0.2.10 from
// the feature env's app. With -hold (the default) everything keeps running
// for your own dig queries until Ctrl-C.
//
// It refuses to start when one of its ports is taken (another demo, say),
// and keeps its children's logs in one run folder that it names at start and
// removes at exit (kept with -keep-logs, or when the demo fails).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	marathon "github.com/gambol99/go-marathon"
	"github.com/miekg/dns"

	"github.com/oakdns/oak/internal/poll"
	"github.com/oakdns/oak/internal/proc"
	"github.com/oakdns/oak/internal/seed"
)

func main() {
	bin := flag.String("bin", "bin", "directory holding coredns and marathon-sim")
	corefile := flag.String("corefile", "corefile-examples/demo.Corefile", "Corefile for bin/coredns")
	simAddr := flag.String("marathon", "127.0.0.1:18080", "listen address of the Marathon simulator")
	dnsPort := flag.Int("dns-port", 1053, "port bin/coredns listens on, UDP and TCP, on all addresses")
	hold := flag.Bool("hold", true, "keep running after the show until Ctrl-C")
	keepLogs := flag.Bool("keep-logs", false, "keep the run folder with the children's logs at exit")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := checkPorts(*simAddr, *dnsPort); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	logs, err := os.MkdirTemp("", "oak-demo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	fmt.Printf("== Logs of this run in %s\n", logs)
	err = run(ctx, *bin, *corefile, *simAddr, *dnsPort, *hold, logs)
	failed := err != nil && !errors.Is(err, context.Canceled)
	if *keepLogs || failed {
		fmt.Printf("== Logs kept in %s\n", logs)
	} else {
		_ = os.RemoveAll(logs)
	}
	if failed {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// checkPorts refuses ports the demo needs that something already holds:
// the simulator's TCP address, and CoreDNS's port for UDP and TCP on every
// address (it binds the wildcard address). Without it a second demo would
// drive the first one's simulator, and CoreDNS, which binds with
// SO_REUSEPORT, would share its port.
func checkPorts(simAddr string, dnsPort int) error {
	dnsAddr := fmt.Sprintf(":%d", dnsPort)
	for _, p := range []struct{ what, network, addr string }{
		{"the Marathon simulator's", "tcp", simAddr},
		{"CoreDNS's UDP", "udp", dnsAddr},
		{"CoreDNS's TCP", "tcp", dnsAddr},
	} {
		var probe io.Closer
		var err error
		if p.network == "udp" {
			probe, err = net.ListenPacket(p.network, p.addr)
		} else {
			probe, err = net.Listen(p.network, p.addr)
		}
		if err != nil {
			return fmt.Errorf("%s port %s is already in use (another demo running? choose other ports with -marathon and -dns-port): %w", p.what, p.addr, err)
		}
		probe.Close()
	}
	return nil
}

func run(ctx context.Context, bin, corefile, simAddr string, dnsPort int, hold bool, logs string) (err error) {
	// A child that dies (a port of the Corefile taken, say) ends the demo
	// at once, naming its log, rather than leaving it waiting.
	ctx, died := context.WithCancelCause(ctx)
	defer func() {
		if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
	}()
	// Stopping a child is no death: end ctx first.
	stop := func(p *proc.Proc) {
		died(nil)
		p.Stop(stopGrace)
	}
	marathonURL := "http://" + simAddr
	sim, err := startChild(ctx, died, filepath.Join(bin, "marathon-sim"), logs, nil, "-listen", simAddr)
	if err != nil {
		return err
	}
	defer stop(sim)
	dnsd, err := startChild(ctx, died, filepath.Join(bin, "coredns"), logs, []string{"MARATHON_URL=" + marathonURL},
		"-conf", corefile, "-dns.port", fmt.Sprint(dnsPort))
	if err != nil {
		return err
	}
	defer stop(dnsd)

	cfg := marathon.NewDefaultConfig()
	cfg.URL = marathonURL
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 10 * time.Second}}
	// Wait for the simulator before go-marathon sees it: go-marathon marks a
	// member that refuses a connection down for its 5 s ping cycle.
	if err := poll.Until(ctx, "the Marathon simulator", pollLimit, pollInterval, func() error {
		resp, err := cfg.HTTPClient.Get(marathonURL + "/ping")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}); err != nil {
		return err
	}
	client, err := marathon.NewClient(cfg)
	if err != nil {
		return err
	}

	fmt.Printf("== Marathon (simulated) at %s: deploying the seed's environments\n", marathonURL)
	for _, a := range seed.Topology() {
		env := a.Env
		if env == "" {
			env = seed.Integration + " (default)"
		}
		fmt.Printf("   %-24s env=%-24s names=%-24s ip=%s\n", a.ID, env, a.Names, a.IP)
	}
	if err := seed.Deploy(client, "OAK_", 30*time.Second); err != nil {
		return err
	}

	server := fmt.Sprintf("127.0.0.1:%d", dnsPort)
	fmt.Printf("== CoreDNS with the marathon plugin at %s (%s)\n", server, corefile)
	if err := poll.Until(ctx, "CoreDNS's first sync", pollLimit, pollInterval, func() error {
		_, rcode, err := query(server, "", "db1.db.example.com", dns.TypeA)
		if err == nil && rcode != dns.RcodeSuccess {
			err = fmt.Errorf("rcode %s", dns.RcodeToString[rcode])
		}
		return err
	}); err != nil {
		return err
	}

	clients := []struct{ label, addr string }{
		{"integration app", seed.IntegrationClient},
		{"feature-login app", seed.FeatureClient},
	}
	names := []string{"app1.example.com", "redis1.db.example.com", "db1.db.example.com", "mq1.mq.example.com", "zk1.zk.example.com"}
	show := func() error {
		for _, c := range clients {
			env, _, err := query(server, c.addr, "_env.example.com", dns.TypeTXT)
			if err != nil {
				return err
			}
			fmt.Printf("   container %s (%s) sees %s\n", c.addr, c.label, strings.Join(env, " "))
			for _, name := range names {
				addrs, rcode, err := query(server, c.addr, name, dns.TypeA)
				if err != nil {
					return err
				}
				answer := strings.Join(addrs, " ")
				if rcode != dns.RcodeSuccess {
					answer = dns.RcodeToString[rcode]
				}
				fmt.Printf("      %-24s -> %s\n", name, answer)
			}
		}
		return nil
	}
	if err := show(); err != nil {
		return err
	}

	fmt.Println("== Deleting /feature-login/redis1 on Marathon: the feature env falls back to integration's redis1")
	if _, err := client.DeleteApplication("/feature-login/redis1", false); err != nil {
		return err
	}
	if err := poll.Until(ctx, "the fallback", pollLimit, pollInterval, func() error {
		addrs, _, err := query(server, seed.FeatureClient, "redis1.db.example.com", dns.TypeA)
		if err == nil && !slices.Equal(addrs, []string{"10.199.45.21"}) {
			err = fmt.Errorf("still %v", addrs)
		}
		return err
	}); err != nil {
		return err
	}
	if err := show(); err != nil {
		return err
	}
	if path, err := exec.LookPath("dig"); err == nil {
		args := []string{"-b", seed.FeatureClient, "@127.0.0.1", "-p", fmt.Sprint(dnsPort), "+noall", "+answer", "redis1.db.example.com"}
		fmt.Printf("== dig %s\n", strings.Join(args, " "))
		out, _ := exec.CommandContext(ctx, path, args...).CombinedOutput()
		fmt.Print(string(out))
	}

	if !hold {
		return nil
	}
	fmt.Printf("== Running until Ctrl-C. Try: dig -b %s @127.0.0.1 -p %d redis1.db.example.com\n", seed.FeatureClient, dnsPort)
	<-ctx.Done()
	fmt.Println("== stopping")
	return ctx.Err()
}

// query asks server for name/qtype from source address from ("" = any) and
// returns the answers' data.
func query(server, from, name string, qtype uint16) ([]string, int, error) {
	c := &dns.Client{Timeout: 2 * time.Second}
	if from != "" {
		c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(m, server)
	if err != nil {
		return nil, 0, err
	}
	var out []string
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.TXT:
			out = append(out, rr.Txt...)
		}
	}
	if qtype == dns.TypeA {
		slices.Sort(out)
	}
	return out, r.Rcode, nil
}

// How the demo waits for its processes and for Marathon's changes to show.
const (
	pollLimit    = 60 * time.Second
	pollInterval = 100 * time.Millisecond
	stopGrace    = 5 * time.Second // for each process to end on SIGINT
)

// startChild starts a process of the demo; its output goes to a log file
// in the run folder logs, so the show stays readable. If it exits before
// ctx ends, died is called with an error naming the log.
func startChild(ctx context.Context, died context.CancelCauseFunc, path, logs string, env []string, args ...string) (*proc.Proc, error) {
	logFile, err := os.Create(filepath.Join(logs, filepath.Base(path)+".log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p, err := proc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("start %s (run `make build` first): %w", path, err)
	}
	fmt.Printf("   started %s (pid %d, log %s)\n", path, cmd.Process.Pid, logFile.Name())
	go func() {
		select {
		case <-p.Done():
			_, err := p.Exited()
			died(fmt.Errorf("%s exited early (%v); see %s", filepath.Base(path), err, logFile.Name()))
		case <-ctx.Done():
		}
	}()
	return p, nil
}
