// Package dockertest holds what oak's tests against the machine's real
// Docker engine share: the engine's client (skip without one, fail when
// CI=true), a private subnet no network uses, images built locally from
// the project's own Go programs, and commands run inside containers.
package dockertest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/oakdns/oak/internal/testutil"
)

// Require returns a client of the machine's Docker engine, closed after the
// test; without an engine the test is skipped, or fails when CI=true.
func Require(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err = cli.Ping(ctx); err == nil {
			cli.NegotiateAPIVersion(ctx)
			t.Cleanup(func() { cli.Close() })
			return cli
		}
		cli.Close()
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("a Docker engine is required (CI=true): %v", err)
	}
	t.Skipf("skipping: no Docker engine answers (%v); start one to run this test", err)
	return nil
}

// UnusedSubnet picks a random 10.2xx.y.0/24 that no Docker network, host
// route or host address overlaps.
func UnusedSubnet(t testing.TB, cli *client.Client) netip.Prefix {
	t.Helper()
	var taken []netip.Prefix
	nets, err := cli.NetworkList(context.Background(), network.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		for _, c := range n.IPAM.Config {
			if p, err := netip.ParsePrefix(c.Subnet); err == nil {
				taken = append(taken, p)
			}
		}
	}
	routes, err := hostRoutes()
	if err != nil {
		t.Fatalf("reading the host's routes: %v", err)
	}
	taken = append(taken, routes...)
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			taken = append(taken, p)
		}
	}
	for range 50 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + rand.IntN(56)), byte(rand.IntN(256)), 0}), 24)
		free := true
		for _, q := range taken {
			// The default route overlaps everything; only on-link and
			// specific routes make a subnet busy.
			if q.Bits() > 0 && q.Overlaps(p) {
				free = false
			}
		}
		if free {
			return p
		}
	}
	t.Fatal("no unused 10.2xx.y.0/24 found")
	return netip.Prefix{}
}

// hostRoutes reads the IPv4 routing table's destinations.
func hostRoutes() ([]netip.Prefix, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []netip.Prefix
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		dst, err1 := hex.DecodeString(fields[1])
		mask, err2 := hex.DecodeString(fields[7])
		if err1 != nil || err2 != nil || len(dst) != 4 || len(mask) != 4 {
			continue
		}
		// The kernel prints them in host (little-endian) byte order.
		ones, _ := net.IPMask(binary.BigEndian.AppendUint32(nil, binary.LittleEndian.Uint32(mask))).Size()
		addr := netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, binary.LittleEndian.Uint32(dst))))
		out = append(out, netip.PrefixFrom(addr, ones).Masked())
	}
	return out, sc.Err()
}

// Suffix is a random hex string that keeps one test's names (networks,
// bridges, containers, tags) apart from another's.
func Suffix() string { return fmt.Sprintf("%06x", rand.IntN(1<<24)) }

// GoImage builds the Go main package pkg (an import path) as a static
// binary and an image FROM scratch that runs it, tagged repo:test-<random>
// and removed after the test. It returns the tag.
func GoImage(t testing.TB, cli *client.Client, pkg, repo string) string {
	t.Helper()
	name := filepath.Base(pkg)
	dockerfile := fmt.Sprintf("FROM scratch\nCOPY %s /%s\nENTRYPOINT [\"/%s\"]\n", name, name, name)
	return BuildImage(t, cli, repo, map[string][]byte{"Dockerfile": []byte(dockerfile), name: StaticBinary(t, pkg)})
}

// StaticBinary builds the Go main package pkg (an import path) with
// CGO_ENABLED=0 and returns the program.
func StaticBinary(t testing.TB, pkg string) []byte {
	t.Helper()
	goTool := testutil.RequireTool(t, "go")
	bin := filepath.Join(t.TempDir(), "app")
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	program, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return program
}

// BuildImage builds an image from a context of files (paths to contents,
// a Dockerfile among them; every file executable, as programs, libraries
// and the dynamic loader need), tagged repo:test-<random> and removed
// after the test. It returns the tag.
func BuildImage(t testing.TB, cli *client.Client, repo string, files map[string][]byte) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	tag := repo + ":test-" + Suffix()
	resp, err := cli.ImageBuild(context.Background(), &buf, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		t.Fatalf("docker build %s: %v", tag, err)
	}
	defer resp.Body.Close()
	t.Cleanup(func() {
		if _, err := cli.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("removing image %s: %v", tag, err)
		}
	})
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("docker build %s output: %v", tag, err)
		}
		if msg.Error != "" {
			t.Fatalf("docker build %s: %s", tag, msg.Error)
		}
	}
	return tag
}

// Exec runs cmd inside a running container (docker exec) and returns its
// standard output; a non-zero exit is an error carrying standard error.
func Exec(ctx context.Context, cli *client.Client, containerID string, cmd ...string) (string, error) {
	created, err := cli.ContainerExecCreate(ctx, containerID, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return "", fmt.Errorf("docker exec %v: %w", cmd, err)
	}
	attached, err := cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return "", fmt.Errorf("docker exec %v: %w", cmd, err)
	}
	defer attached.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, attached.Reader); err != nil {
		return "", fmt.Errorf("docker exec %v: reading output: %w", cmd, err)
	}
	info, err := cli.ContainerExecInspect(ctx, created.ID)
	if err != nil {
		return "", fmt.Errorf("docker exec %v: %w", cmd, err)
	}
	if info.ExitCode != 0 {
		return stdout.String(), fmt.Errorf("docker exec %v: exit %d: %s", cmd, info.ExitCode, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
