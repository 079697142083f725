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
	httpAddr := flag.String("http", "127.0.0.1:1080", "where Nginx (managed by bin/nginxctl) serves the virtual hosts")
	apiAddr := flag.String("nginxctl", "127.0.0.1:18090", "bin/nginxctl's HTTP API (/v1/views, /healthz, /metrics)")
	hold := flag.Bool("hold", true, "keep running after the show until Ctrl-C")
	keepLogs := flag.Bool("keep-logs", false, "keep the run folder with the children's logs at exit")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := demo{bin: *bin, corefile: *corefile, simAddr: *simAddr, dnsPort: *dnsPort, httpAddr: *httpAddr, apiAddr: *apiAddr, hold: *hold}
	if err := checkPorts(d.ports()); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	logs, err := os.MkdirTemp("", "oak-demo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	fmt.Printf("== Logs of this run in %s\n", logs)
	d.logs = logs
	err = run(ctx, d)
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

// port is one address the demo listens on.
type port struct{ what, network, addr string }

// ports lists the addresses the demo's processes listen on: the
// simulator's, CoreDNS's port for UDP and TCP on every address (it binds
// the wildcard address), and those of the Nginx half.
func (d demo) ports() []port {
	dnsAddr := fmt.Sprintf(":%d", d.dnsPort)
	return []port{
		{"the Marathon simulator's", "tcp", d.simAddr},
		{"CoreDNS's UDP", "udp", dnsAddr},
		{"CoreDNS's TCP", "tcp", dnsAddr},
		{"Nginx's", "tcp", d.httpAddr},
		{"nginxctl's", "tcp", d.apiAddr},
		{"Nginx's control", "tcp", controlAddr},
		{"integration app1's", "tcp", seed.IntegrationClient + ":8080"},
		{"feature-login app1's", "tcp", seed.FeatureClient + ":8080"},
	}
}

// checkPorts refuses ports that something already holds. Without it a
// second demo would drive the first one's simulator, and CoreDNS, which
// binds with SO_REUSEPORT, would share its port.
func checkPorts(ports []port) error {
	for _, p := range ports {
		var probe io.Closer
		var err error
		if p.network == "udp" {
			probe, err = net.ListenPacket(p.network, p.addr)
		} else {
			probe, err = net.Listen(p.network, p.addr)
		}
		if err != nil {
			return fmt.Errorf("%s port %s is already in use (another demo running? choose other ports with -marathon, -dns-port, -http and -nginxctl): %w", p.what, p.addr, err)
		}
		probe.Close()
	}
	return nil
}

// controlAddr is where Nginx serves its config generation to nginxctl.
const controlAddr = "127.0.0.1:18091"

// demo is the demo's configuration.
type demo struct {
	bin, corefile, simAddr string
	dnsPort                int
	httpAddr, apiAddr      string
	hold                   bool
	logs                   string // the run folder
}

func run(ctx context.Context, d demo) (err error) {
	bin, corefile, simAddr, dnsPort, hold, logs := d.bin, d.corefile, d.simAddr, d.dnsPort, d.hold, d.logs
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

	// The Nginx half: the two app1 containers' web servers, played here on
	// their fixed addresses, and bin/nginxctl configured from the same
	// Corefile as CoreDNS.
	nginx, nginxErr := exec.LookPath("nginx")
	if nginxErr == nil {
		for _, b := range []struct{ addr, name string }{
			{seed.IntegrationClient + ":8080", "integration/app1"},
			{seed.FeatureClient + ":8080", "feature-login/app1"},
		} {
			closeBackend, err := serveBackend(b.addr, b.name)
			if err != nil {
				return err
			}
			defer closeBackend()
		}
		ctl, err := startChild(ctx, died, filepath.Join(bin, "nginxctl"), logs, []string{"MARATHON_URL=" + marathonURL},
			"-corefile", corefile, "-nginx", nginx, "-nginx-dir", filepath.Join(logs, "nginx"), "-nginx-start",
			"-http", d.httpAddr, "-control", controlAddr, "-listen", d.apiAddr, "-domains", "example.com",
			"-wait-min", "200ms", "-wait-max", "1s")
		if err != nil {
			return err
		}
		defer stop(ctl)
	}

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

	if nginxErr == nil {
		fmt.Printf("== Nginx managed by bin/nginxctl at %s (API %s)\n", d.httpAddr, d.apiAddr)
		if err := poll.Until(ctx, "nginxctl's first config", pollLimit, pollInterval, func() error {
			_, err := httpGet(seed.FeatureClient, d.httpAddr, "app1.example.com", "feature-login/app1")
			return err
		}); err != nil {
			return err
		}
	} else {
		fmt.Println("== nginx is not installed: skipping the Nginx half (apt-get install nginx, then make demo again)")
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
			if nginxErr == nil {
				for _, host := range []string{"app1.example.com", "nosuch.example.com"} {
					answer, err := httpGet(c.addr, d.httpAddr, host, "")
					if err != nil {
						return err
					}
					fmt.Printf("      %-24s -> %s\n", "http://"+host+"/", answer)
				}
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
	if nginxErr == nil {
		fmt.Printf("   and: curl --interface %s -H 'Host: app1.example.com' http://%s/\n", seed.FeatureClient, d.httpAddr)
		fmt.Printf("   and: curl -s 'http://%s/v1/views?env=%s'\n", d.apiAddr, seed.FeatureLogin)
	}
	<-ctx.Done()
	fmt.Println("== stopping")
	return ctx.Err()
}

// serveBackend plays an app's web server at addr: it answers every request
// with name. It returns the function that stops it.
func serveBackend(addr, name string) (func(), error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, name)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return func() { _ = srv.Close() }, nil
}

// httpGet asks Nginx at server for host from the source address from and
// returns "STATUS BODY"; with want set, an error unless the body is want.
func httpGet(from, server, host, want string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext,
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequest(http.MethodGet, "http://"+server+"/", nil)
	if err != nil {
		return "", err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil {
		return "", err
	}
	if want != "" && string(body) != want {
		return "", fmt.Errorf("got %d %q", resp.StatusCode, body)
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body))), nil
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
