package watcher

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxListSize bounds an apps list read from Marathon or a file; a real
// list of 10,000 apps is tens of megabytes.
const maxListSize = 512 << 20

// appsPath is the full list go-marathon's Applications asks for, with the
// query as its url.Values.Encode gives it.
const appsPath = "/v2/apps?embed=apps.tasks"

// listApps does the full list's GET as go-marathon v0.7.1 would (same URL,
// headers and auth, over the session's client and transport, so with its
// deadline and lifetime) and decodes the body as it arrives, skipping the
// elements the index holds. go-marathon only hands out the body decoded
// into its full structs, the cost this avoids. Members are tried in turn,
// from the one that last answered, past transport errors and 5xx replies,
// as go-marathon fails over.
func (w *Watcher) listApps(s *session, index *printIndex) ([]listedApp, error) {
	members := strings.Split(w.url, ",")
	client := s.transport.client()
	var errs []error
	for n := range members {
		i := (w.listMember + n) % len(members)
		list, retry, err := w.listFrom(client, members[i], index)
		if err == nil {
			w.listMember = i
			return list, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", members[i], err))
		if !retry {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// listFrom lists from one member; retry says whether another member may
// answer instead.
func (w *Watcher) listFrom(client *http.Client, member string, index *printIndex) (list []listedApp, retry bool, err error) {
	path := appsPath
	if w.cfg.Token != "" {
		path = "/marathon" + path
	}
	req, err := http.NewRequest(http.MethodGet, member+path, nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if w.cfg.Token != "" {
		req.Header.Set("Authorization", "token="+w.cfg.Token)
	}
	if w.cfg.User != "" {
		req.SetBasicAuth(w.cfg.User, w.cfg.Password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, true, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, resp.StatusCode >= 500, fmt.Errorf("HTTP %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	body := &limitedBody{r: resp.Body, left: maxListSize}
	list, err = decodeAppsSized(body, index, len(w.known.apps))
	if body.left < 0 {
		err = fmt.Errorf("apps list larger than %d bytes", maxListSize)
	}
	return list, false, err
}

// limitedBody reads at most left bytes, and sets left below zero when the
// body goes on past them.
type limitedBody struct {
	r    io.Reader
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, io.ErrUnexpectedEOF
	}
	return n, err
}
