package catalog

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseLabels(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		want   AppLabels
	}{
		{"none", nil, AppLabels{}},
		{"other labels ignored", map[string]string{"HAPROXY_GROUP": "x", "OAK_OTHER": "y"}, AppLabels{}},
		{"env", map[string]string{"OAK_ENV": " feature-login "}, AppLabels{Env: "feature-login"}},
		{
			"names lower-cased, trailing dot stripped, trimmed, deduped, sorted",
			map[string]string{"OAK_NAMES": "Redis1.DB.example.com., a.example.com , redis1.db.example.com"},
			AppLabels{Names: []string{"a.example.com", "redis1.db.example.com"}},
		},
		{"single label name", map[string]string{"OAK_NAMES": "db"}, AppLabels{Names: []string{"db"}}},
		{"63-char label", map[string]string{"OAK_NAMES": strings.Repeat("a", 63) + ".com"}, AppLabels{Names: []string{strings.Repeat("a", 63) + ".com"}}},
		{"ipv4", map[string]string{"OAK_IP": "10.199.45.23"}, AppLabels{IP: netip.MustParseAddr("10.199.45.23")}},
		{"ipv4-mapped is unmapped", map[string]string{"OAK_IP": "::ffff:10.0.0.1"}, AppLabels{IP: netip.MustParseAddr("10.0.0.1")}},
		{"ipv6", map[string]string{"OAK_IP": "2001:db8::1"}, AppLabels{IP: netip.MustParseAddr("2001:db8::1")}},
		{
			"http",
			map[string]string{"OAK_HTTP": "b.example.com:8080, A.example.com,b.example.com:8080"},
			AppLabels{HTTP: []VHost{{Host: "a.example.com"}, {Host: "b.example.com", Port: 8080}}},
		},
		{
			"ports",
			map[string]string{"OAK_PORTS": "http:80, dns:53/udp,dns:53/tcp,Admin:65535/TCP"},
			AppLabels{Ports: []Port{{"admin", 65535, "tcp"}, {"dns", 53, "tcp"}, {"dns", 53, "udp"}, {"http", 80, "tcp"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LabelSchema{}.Parse(tc.labels)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseLabelsRejects(t *testing.T) {
	tests := []struct {
		key, value string
	}{
		{"OAK_ENV", ""},
		{"OAK_ENV", "Staging"},
		{"OAK_ENV", "-x"},
		{"OAK_ENV", "x-"},
		{"OAK_ENV", "a_b"},
		{"OAK_ENV", "a.b"},
		{"OAK_ENV", strings.Repeat("a", 64)},
		{"OAK_NAMES", ""},
		{"OAK_NAMES", " "},
		{"OAK_NAMES", "a,,b"},
		{"OAK_NAMES", "a,"},
		{"OAK_NAMES", "*.example.com"},
		{"OAK_NAMES", "_srv.example.com"},
		{"OAK_NAMES", "a b.example.com"},
		{"OAK_NAMES", "a..example.com"},
		{"OAK_NAMES", "."},
		{"OAK_NAMES", "example.com.."},
		{"OAK_NAMES", "-a.example.com"},
		{"OAK_NAMES", "a-.example.com"},
		{"OAK_NAMES", strings.Repeat("a", 64) + ".com"},
		{"OAK_NAMES", strings.Repeat("abcdefghi.", 26)},
		{"OAK_NAMES", "a;b.example.com"},
		{"OAK_NAMES", "a}.example.com"},
		{"OAK_NAMES", "exämple.com"},
		{"OAK_NAMES", "a\nb.example.com"},
		{"OAK_IP", ""},
		{"OAK_IP", "10.0.0"},
		{"OAK_IP", "fe80::1%eth0"},
		{"OAK_IP", "0.0.0.0"},
		{"OAK_IP", "::"},
		{"OAK_IP", "224.0.0.1"},
		{"OAK_IP", "ff02::1"},
		{"OAK_IP", "10.0.0.1,10.0.0.2"},
		{"OAK_HTTP", "a.example.com:0"},
		{"OAK_HTTP", "a.example.com:65536"},
		{"OAK_HTTP", "a.example.com:-1"},
		{"OAK_HTTP", "a.example.com:+80"},
		{"OAK_HTTP", "a.example.com:"},
		{"OAK_HTTP", "[::1]:80"},
		{"OAK_HTTP", "a.example.com:80:90"},
		{"OAK_HTTP", "a.example.com;"},
		{"OAK_HTTP", "a.example.com,,b.example.com"},
		{"OAK_PORTS", "http"},
		{"OAK_PORTS", ":80"},
		{"OAK_PORTS", "http:0"},
		{"OAK_PORTS", "http:70000"},
		{"OAK_PORTS", "http:80/sctp"},
		{"OAK_PORTS", "http:80/"},
		{"OAK_PORTS", "a.b:80"},
		{"OAK_PORTS", "_http:80"},
		{"OAK_PORTS", "http:80,"},
		{"OAK_NAMES", strings.Repeat("a.", 5000)},
	}
	for _, tc := range tests {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			_, err := LabelSchema{}.Parse(map[string]string{tc.key: tc.value, "OAK_ENV_OK": "x"})
			var le *LabelError
			if !errors.As(err, &le) {
				t.Fatalf("Parse(%s=%q) = %v, want a *LabelError", tc.key, tc.value, err)
			}
			if le.Label != tc.key || le.Reason == "" || !strings.Contains(err.Error(), tc.key) {
				t.Errorf("LabelError %+v does not name label %s with a reason", le, tc.key)
			}
		})
	}
}

func TestLabelSchemaPrefix(t *testing.T) {
	got, err := LabelSchema{Prefix: "DNS_"}.Parse(map[string]string{"DNS_NAMES": "a.example.com", "OAK_NAMES": "bad name"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Names, []string{"a.example.com"}) {
		t.Errorf("names = %v", got.Names)
	}
}

func TestLabelErrorTruncatesValue(t *testing.T) {
	_, err := LabelSchema{}.Parse(map[string]string{"OAK_NAMES": strings.Repeat("_", 1000)})
	var le *LabelError
	if !errors.As(err, &le) || len(le.Value) > maxErrorValue+3 {
		t.Fatalf("got %v", err)
	}
}

func TestValidEnvName(t *testing.T) {
	for _, ok := range []string{"integration", "a", "0", "feature-login", "a1-b2", strings.Repeat("z", 63)} {
		if err := ValidEnvName(ok); err != nil {
			t.Errorf("ValidEnvName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "A", "a_b", "a b", "a.b", "a*", strings.Repeat("z", 64)} {
		if err := ValidEnvName(bad); err == nil {
			t.Errorf("ValidEnvName(%q) = nil, want error", bad)
		}
	}
}
