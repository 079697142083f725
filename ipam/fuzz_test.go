package ipam

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// checkCanonicalID fails unless id is an absolute app id that parses to
// itself and holds only Marathon's characters.
func checkCanonicalID(t *testing.T, id string) {
	t.Helper()
	if again, err := ParseAppID(id); err != nil || again != id {
		t.Fatalf("ParseAppID(%q) = %q, %v; want it unchanged", id, again, err)
	}
	if !strings.HasPrefix(id, "/") || strings.HasSuffix(id, "/") || strings.Contains(id, "//") || len(id) > MaxAppIDLength {
		t.Fatalf("%q is not a clean absolute id", id)
	}
	for _, seg := range strings.Split(id[1:], "/") {
		if seg == "." || seg == ".." {
			t.Fatalf("%q has a relative segment", id)
		}
	}
	if strings.Trim(id, "abcdefghijklmnopqrstuvwxyz0123456789-./") != "" {
		t.Fatalf("%q has characters outside Marathon's", id)
	}
}

func FuzzParseAppID(f *testing.F) {
	for _, s := range []string{"/team/app1", "team/app1", "/a.b-c/d", "/", "", "/../x", "/a//b", "/A", "/a-", "/a..b", "/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		out, err := ParseAppID(id)
		if err != nil {
			return
		}
		checkCanonicalID(t, out)
		if out != id && out != "/"+id {
			t.Fatalf("ParseAppID(%q) = %q changed more than the leading slash", id, out)
		}
	})
}

func FuzzDecodeAllocationRequest(f *testing.F) {
	for _, s := range []string{`{"app":"/team/app1"}`, `{"app":"x"}`, `{"app":"/a","ip":"1"}`, `{"app":`, `{"app":"/a"} {}`, `[]`, `null`, `{"APP":"/a"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		app, err := DecodeAllocationRequest(bytes.NewReader(body))
		if err != nil {
			if statusOf(err) != 400 {
				t.Fatalf("error %v has status %d, want 400", err, statusOf(err))
			}
			return
		}
		checkCanonicalID(t, app)
	})
}

func FuzzDecodeAppDefinition(f *testing.F) {
	cfg := testConfig(f, 24)
	for _, s := range []string{
		webApp,
		`{"id":"/a","instances":1,"upgradeStrategy":{"minimumHealthCapacity":0},"unreachableStrategy":"disabled","container":{"docker":{"image":"x","parameters":[{"key":"net","value":"oak-test"}]}}}`,
		`{"id":"/a","instances":2,"container":{"docker":{"image":"x"}}}`,
		`{"id":"/a","container":{"docker":{"image":"x","network":"HOST"}}}`,
		`{"id":"/a","unreachableStrategy":{"inactiveAfterSeconds":1}}`,
		`{"id":"/a","networks":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		def, err := DecodeAppDefinition(bytes.NewReader(body), cfg)
		if err != nil {
			if statusOf(err) != 400 {
				t.Fatalf("error %v has status %d, want 400", err, statusOf(err))
			}
			return
		}
		checkCanonicalID(t, def.ID)
		us := def.UpgradeStrategy
		if *def.Instances > 1 || *def.Instances < 0 || *us.MinimumHealthCapacity != 0 || *us.MaximumOverCapacity != 0 ||
			string(def.UnreachableStrategy) != `"disabled"` || def.Container.Docker == nil || def.Container.Type != "DOCKER" {
			t.Fatalf("accepted a definition a fixed address cannot run: %s", body)
		}
		// What it accepted, it accepts again unchanged.
		again, err := json.Marshal(def)
		if err != nil {
			t.Fatal(err)
		}
		def2, err := DecodeAppDefinition(bytes.NewReader(again), cfg)
		if err != nil {
			t.Fatalf("its own output %s is refused: %v", again, err)
		}
		if out2, _ := json.Marshal(def2); !bytes.Equal(out2, again) {
			t.Fatalf("not stable:\n%s\n%s", again, out2)
		}
	})
}

func FuzzReadSpec(f *testing.F) {
	for _, s := range []string{
		`{"subnet":"10.199.45.0/24","gateway":"10.199.45.200","aux-address":["DefaultGatewayIPv4=10.199.45.1"]}`,
		`{"subnet":"10.1.0.0/30","gateway":"10.1.0.1","exclude":["10.1.0.2"]}`,
		`{"subnet":"10.1.0.0/24","gateway":"10.1.0.1","ip-range":"10.1.0.128/25","exclude":["10.1.0.2-10.1.0.9","10.1.0.16/28"],"cooldown":"1s"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		spec, err := ReadSpec(bytes.NewReader(body))
		if err != nil {
			return
		}
		cfg, err := spec.Parse()
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
		addrs := cfg.Addresses()
		if len(addrs) == 0 {
			t.Fatal("accepted an empty pool")
		}
		for _, a := range addrs {
			if reason := cfg.Reserved(a); reason != "" || a == cfg.Gateway || (cfg.DockerRange.IsValid() && cfg.DockerRange.Contains(a)) {
				t.Fatalf("%s is in the pool but reserved: %q", a, reason)
			}
		}
	})
}
