package watcher

import (
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	jsonv1 "github.com/go-json-experiment/json/v1"
)

// statusScanCases are status_update_event bodies and whether the scan takes
// them (the others go to jsonv1). FuzzStatusUpdate seeds with them too.
var statusScanCases = []struct {
	name, data string
	taken      bool
}{
	{"the simulator's", `{"appId":"/shop/web","eventType":"status_update_event","host":"10.0.0.5","ipAddresses":[{"ipAddress":"10.200.0.7","protocol":"IPv4"}],"message":"","ports":[31000,31001],"slaveId":"agent-1","taskId":"shop_web.1","taskStatus":"TASK_RUNNING","timestamp":"2017-07-19T17:34:41.967Z","version":"2017-07-19T17:34:41.967Z"}`, true},
	{"whitespace between tokens", " {\n\t\"appId\" : \"/a\" ,\r\n \"ports\" : [ 1 , 2 ] , \"ipAddresses\" : [ { } ] }\n", true},
	{"empty arrays", `{"appId":"/a","ports":[],"ipAddresses":[]}`, true},
	{"other scalars", `{"n":-1.5e+3,"z":0,"t":true,"f":false,"s":"x","appId":"/a"}`, true},
	{"no members", `{}`, true},
	{"a negative port", `{"ports":[-1,0,65536]}`, true},
	{"an escape", `{"appId":"/a","message":"say \"hi\""}`, false},
	{"non-ASCII", `{"appId":"/a","message":"café"}`, false},
	{"names in another case", `{"APPID":"/a","TaskStatus":"TASK_RUNNING","ipaddresses":[{"IPADDRESS":"::1"}]}`, true},
	{"a field in two cases", `{"appId":"/a","APPID":"/b"}`, false},
	{"an ipAddress in two cases", `{"ipAddresses":[{"ipAddress":"1.1.1.1","IPaddress":"2.2.2.2"}]}`, false},
	{"a name with an underscore", `{"app_id":"/a"}`, false},
	{"a repeated field", `{"appId":"/a","appId":"/b"}`, false},
	{"a repeated ipAddress", `{"ipAddresses":[{"ipAddress":"1.1.1.1","ipAddress":"2.2.2.2"}]}`, false},
	{"null", `{"appId":null}`, false},
	{"null among the others", `{"message":null}`, false},
	{"a nested unknown member", `{"appId":"/a","extra":{"x":1}}`, false},
	{"a fraction for a port", `{"ports":[1.0]}`, false},
	{"nineteen digits", `{"ports":[1234567890123456789]}`, false},
	{"a number for a string", `{"appId":1}`, false},
	{"a leading zero", `{"n":01}`, false},
	{"a control character in a string", "{\"appId\":\"/a\x01\"}", false},
	{"a tab in a string", "{\"appId\":\"/a\tb\"}", false},
	{"a newline in a string, after others", "{\n\"n\": 1,\n\"host\":\"a\nb\"}", false},
	{"an escape that keeps the string whole", `{"appId":"/a\nb","host":"agent-one"}`, false},
	{"an escape in the last bytes", `{"host":"agent-one","appId":"/abc\n"}`, false},
	{"non-ASCII in the last bytes", `{"appId":"/abcdefgh"}` + "\xc3", false},
	{"a trailing comma", `{"appId":"/a",}`, false},
	{"two values", `{}{}`, false},
	{"not an object", `["appId"]`, false},
	{"cut off", `{"appId":"/a"`, false},
}

func TestScanStatusUpdate(t *testing.T) {
	for _, tc := range statusScanCases {
		t.Run(tc.name, func(t *testing.T) {
			got, taken := scanStatusUpdate([]byte(tc.data))
			if taken != tc.taken {
				t.Fatalf("taken = %v, want %v", taken, tc.taken)
			}
			if !taken {
				return
			}
			var want statusUpdate
			if err := jsonv1.Unmarshal([]byte(tc.data), &want); err != nil {
				t.Fatalf("jsonv1: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("scanned %#v\njsonv1  %#v", got, want)
			}
		})
	}
}

// TestScanTakesMarathonsEvents: the status updates of Marathon's own
// example stream (its docs' events.txt) take the fast path, so that it
// serves the events that come by the thousand and is not a path only
// tests take.
func TestScanTakesMarathonsEvents(t *testing.T) {
	body, err := os.ReadFile("../testdata/marathon/marathon-docs/events.txt")
	if err != nil {
		t.Fatal(err)
	}
	events, err := readAll(strings.NewReader(string(body)), maxEventBytes)
	if err != io.EOF {
		t.Fatalf("reading the events: %v", err)
	}
	n := 0
	for _, e := range events {
		if e.name != statusUpdateEvent {
			continue
		}
		n++
		if _, ok := scanStatusUpdate([]byte(e.data)); !ok {
			t.Errorf("left to jsonv1: %s", e.data)
		}
		checkStatusUpdate(t, []byte(e.data))
	}
	if n == 0 {
		t.Fatal("no status_update_event in events.txt")
	}
}

// TestScanKnowsEveryField: each of statusUpdate's JSON names is a field
// the scan reads, so that a field added to statusUpdate cannot be skipped
// by the scan as an unknown member while jsonv1 fills it.
func TestScanKnowsEveryField(t *testing.T) {
	typ := reflect.TypeFor[statusUpdate]()
	if typ.NumField() != statusFields {
		t.Fatalf("statusUpdate has %d fields, the scan reads %d", typ.NumField(), statusFields)
	}
	for i := range typ.NumField() {
		tag := typ.Field(i).Tag.Get("json")
		if statusField(tag) < 0 {
			t.Errorf("the scan does not read %q", tag)
		}
	}
	if addr := reflect.TypeFor[ipAddress](); addr.NumField() != 1 || addr.Field(0).Tag.Get("json") != "ipAddress" {
		t.Errorf("ipAddress has fields the scan does not read: %v", addr)
	}
}
