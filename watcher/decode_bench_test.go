package watcher

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"fmt"
	"os"

	marathon "github.com/gambol99/go-marathon"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
	goccy "github.com/goccy/go-json"
	"github.com/oakdns/oak/catalog"
)

// realisticBody is n copies of the recorded Marathon 1.5 app (its id and
// task ids made distinct): the fields of a real list, which the simulator's
// list (appsJSON) lacks.
func realisticBody(b *testing.B, n int) []byte {
	raw, err := os.ReadFile("../testdata/marathon/marathon-lb/marathon15_apps.json")
	if err != nil {
		b.Fatal(err)
	}
	var doc struct{ Apps []json.RawMessage }
	if err := json.Unmarshal(raw, &doc); err != nil {
		b.Fatal(err)
	}
	app := string(doc.Apps[0])
	var buf bytes.Buffer
	buf.WriteString(`{"apps":[`)
	for i := range n {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(strings.ReplaceAll(app, "pywebserver", fmt.Sprintf("pywebserver%d", i)))
	}
	buf.WriteString(`]}`)
	return buf.Bytes()
}

// BenchmarkDecodeCandidates decodes a 10,000-app list into []catalog.App
// with each candidate decoder, in one run: go-marathon's decode (the
// baseline), encoding/json into the lean types (whole body, or streamed
// element by element), encoding/json/v2 as github.com/go-json-experiment/json
// ships it (in encoding/json's v1 semantics, and in its own), goccy/go-json,
// and the chosen path (decodeApps: jsontext reads each element's bytes,
// json/v2's v1 API decodes them), also with every element unchanged, when
// it only hashes them. "tokens-only" reads every element's bytes and
// decodes nothing: the floor of any streaming decoder.
func BenchmarkDecodeCandidates(b *testing.B) {
	bodies := []struct {
		name string
		body []byte
	}{{"sim", appsJSON(10000, 3)}, {"marathon15", realisticBody(b, 10000)}}
	for _, bd := range bodies {
		body := bd.body
		k := newKnownApps()
		first, err := decodeApps(bytes.NewReader(body), k.prints)
		if err != nil {
			b.Fatal(err)
		}
		k.follow(nil, testPolicy(b), first)
		unchanged := k.prints
		cands := []struct {
			name string
			fn   func() ([]catalog.App, error)
		}{
			{"gomarathon", func() ([]catalog.App, error) {
				var l marathon.Applications
				err := json.Unmarshal(body, &l)
				return appsOf(l.Apps), err
			}},
			{"v1-unmarshal-lean", func() ([]catalog.App, error) {
				var l struct {
					Apps []leanApp `json:"apps"`
				}
				err := json.Unmarshal(body, &l)
				return conv(l.Apps), err
			}},
			{"v1-stream-lean", func() ([]catalog.App, error) {
				dec := json.NewDecoder(bytes.NewReader(body))
				dec.Token()
				dec.Token()
				dec.Token()
				var out []leanApp
				for dec.More() {
					out = append(out, leanApp{})
					if err := dec.Decode(&out[len(out)-1]); err != nil {
						return nil, err
					}
				}
				return conv(out), nil
			}},
			{"v2v1opts-stream-lean", func() ([]catalog.App, error) {
				var out []leanApp
				err := eachElement(body, func(dec *jsontext.Decoder) error {
					out = append(out, leanApp{})
					return jsonv2.UnmarshalDecode(dec, &out[len(out)-1], jsonv1.DefaultOptionsV1())
				}, jsonv1.DefaultOptionsV1())
				return conv(out), err
			}},
			{"v2-stream-lean", func() ([]catalog.App, error) {
				var out []leanApp
				err := eachElement(body, func(dec *jsontext.Decoder) error {
					out = append(out, leanApp{})
					return jsonv2.UnmarshalDecode(dec, &out[len(out)-1])
				})
				return conv(out), err
			}},
			{"jsontext-raw+v1-unmarshal", func() ([]catalog.App, error) {
				var out []leanApp
				err := eachElement(body, func(dec *jsontext.Decoder) error {
					raw, err := dec.ReadValue()
					if err != nil {
						return err
					}
					out = append(out, leanApp{})
					return json.Unmarshal(raw, &out[len(out)-1])
				}, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
				return conv(out), err
			}},
			{"chosen:decodeApps", func() ([]catalog.App, error) {
				list, err := decodeApps(bytes.NewReader(body), nil)
				return appsOfList(list), err
			}},
			{"chosen:decodeApps-all-unchanged", func() ([]catalog.App, error) {
				_, err := decodeApps(bytes.NewReader(body), unchanged)
				return nil, err
			}},
			{"tokens-only", func() ([]catalog.App, error) {
				return nil, eachElement(body, func(dec *jsontext.Decoder) error {
					_, err := dec.ReadValue()
					return err
				}, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
			}},
			{"goccy-unmarshal-lean", func() ([]catalog.App, error) {
				var l struct {
					Apps []leanApp `json:"apps"`
				}
				err := goccy.Unmarshal(body, &l)
				return conv(l.Apps), err
			}},
		}
		for _, c := range cands {
			b.Run(bd.name+"/"+c.name, func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					apps, err := c.fn()
					if err != nil && err != io.EOF {
						b.Fatal(err)
					}
					_ = apps
				}
			})
		}
	}
}

func conv(l []leanApp) []catalog.App {
	out := make([]catalog.App, len(l))
	for i := range l {
		out[i] = l[i].app()
	}
	return out
}

// eachElement streams body's "apps" array (the first name of its object)
// with jsontext, calling decode to read each element.
func eachElement(body []byte, decode func(*jsontext.Decoder) error, opts ...jsontext.Options) error {
	dec := jsontext.NewDecoder(bytes.NewReader(body), opts...)
	for range 3 { // {, "apps", [
		if _, err := dec.ReadToken(); err != nil {
			return err
		}
	}
	for dec.PeekKind() != ']' {
		if err := decode(dec); err != nil {
			return err
		}
	}
	return nil
}
