// Command oakbox is the program of oak's test image (FROM scratch, built
// by the tests): a backend that names itself, and a probe that asks from
// inside a container what the container's own resolver and network give.
//
//	oakbox [serve] [-listen :8080]   HTTP: every path answers "<name>\n",
//	                                 name = $NAME, else $MARATHON_APP_ID;
//	                                 /health and /ready answer "ok"
//	oakbox probe resolve NAME...     one line per name: "NAME ADDR[,ADDR]"
//	                                 or "NAME error: ..."
//	oakbox probe get [-connect HOST:PORT] URL...
//	                                 one line per URL: "URL STATUS BODY" or
//	                                 "URL error: ..."; -connect sends the
//	                                 request there, Host still the URL's
//	                                 (as curl --connect-to: a proxy's view)
//	oakbox exit CODE                 exits with CODE (a crashing task)
//
// Names are resolved with Go's own resolver (the binary is static), which
// reads /etc/resolv.conf as Docker writes it from --dns.
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
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	args := os.Args[1:]
	mode := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		mode, args = args[0], args[1:]
	}
	var err error
	switch mode {
	case "serve":
		err = serve(args)
	case "probe":
		err = probe(os.Stdout, args)
	case "exit":
		code := 1
		if len(args) > 0 {
			code, _ = strconv.Atoi(args[0])
		}
		os.Exit(code)
	default:
		err = fmt.Errorf("unknown mode %q (serve, probe, exit)", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "oakbox:", err)
		os.Exit(2)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", ":8080", "address to serve HTTP on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	name := os.Getenv("NAME")
	if name == "" {
		name = os.Getenv("MARATHON_APP_ID")
	}
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("/health", ok)
	mux.HandleFunc("/ready", ok)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, name) })
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// probe runs "resolve NAME..." or "get URL..." and prints one line per
// argument. It fails only on a bad command; lookups that fail are lines.
func probe(out io.Writer, args []string) error {
	if len(args) < 2 {
		return errors.New("usage: probe resolve NAME | probe get [-connect HOST:PORT] URL (more than one may follow)")
	}
	resolver := &net.Resolver{PreferGo: true}
	dialer := &net.Dialer{Resolver: resolver}
	dial := dialer.DialContext
	if args[0] == "get" && args[1] == "-connect" && len(args) > 3 {
		to := args[2]
		dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, to)
		}
		args = append([]string{"get"}, args[3:]...)
	}
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true},
	}
	for _, arg := range args[1:] {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var line string
		switch args[0] {
		case "resolve":
			addrs, err := resolver.LookupHost(ctx, arg)
			slices.Sort(addrs)
			line = strings.Join(addrs, ",")
			if err != nil {
				line = "error: " + err.Error()
			}
		case "get":
			line = get(ctx, client, arg)
		default:
			cancel()
			return fmt.Errorf("unknown probe %q (resolve, get)", args[0])
		}
		cancel()
		fmt.Fprintln(out, arg, line)
	}
	return nil
}

func get(ctx context.Context, client *http.Client, url string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "error: " + err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "error: " + err.Error()
	}
	return strconv.Itoa(resp.StatusCode) + " " + strings.TrimSpace(string(body))
}
