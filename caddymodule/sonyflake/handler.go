package sonyflake

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Handler{})
}

const (
	// endpointMaxWait bounds the wait for IDs: past it the endpoint answers
	// 503 (demand far above the ceiling, or the clock far behind the last
	// ID) rather than hold the request.
	endpointMaxWait = time.Second

	// maxCount is the largest batch one request may ask for.
	maxCount = 1000
)

// Handler is the ID endpoint, a drop-in for the titpetric/sonyflake
// service: GET, HEAD and POST answer a fresh Sonyflake ID from the sonyflake
// app, as JSON {"id":…,"machine-id":…,"msb":0,"sequence":…,"time":…}, or
// as a decimal line with ?format=text or Accept: text/plain. ?count=N
// (1 to 1000) answers N IDs: a JSON array, or N lines. It has no settings.
type Handler struct {
	app *App
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.sonyflake",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision attaches the handler to the config's sonyflake app.
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := sonyflakeApp(ctx)
	if err != nil {
		return err
	}
	h.app = app
	return nil
}

// Header values shared by every response; nothing appends to them in place.
var (
	jsonContentType = []string{"application/json"}
	textContentType = []string{"text/plain; charset=utf-8"}
	noStore         = []string{"no-store"}
	allowedMethods  = []string{"GET, HEAD, POST"}
)

// responseBuffers are reused across requests so that the IDs and the body
// cost no allocation per request.
type responseBuffers struct {
	ids  []int64
	body []byte
}

var bufferPool = sync.Pool{New: func() any {
	return &responseBuffers{ids: make([]int64, 0, 1), body: make([]byte, 0, 128)}
}}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	hdr := w.Header()
	hdr["Cache-Control"] = noStore
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		hdr["Allow"] = allowedMethods
		writeLine(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: use GET, HEAD or POST")
		return nil
	}
	req, reason := parseIDRequest(r)
	if reason != "" {
		writeLine(w, http.StatusBadRequest, reason)
		return nil
	}

	buf := bufferPool.Get().(*responseBuffers)
	defer bufferPool.Put(buf)
	ids, l, err := h.ids(r, buf.ids[:0], req.count)
	buf.ids = ids
	if err != nil {
		// Declared here, not on the success path: errors.As moves wait to
		// the heap.
		var wait *waitError
		if !errors.As(err, &wait) {
			return caddyhttp.Error(http.StatusInternalServerError, err)
		}
		hdr["Retry-After"] = []string{strconv.FormatInt(int64((wait.Wait+time.Second-1)/time.Second), 10)}
		writeLine(w, http.StatusServiceUnavailable, fmt.Sprintf("no ID available within %s: demand is above the format's ceiling, or the clock is behind the last ID issued", endpointMaxWait))
		return nil
	}

	body := buf.body[:0]
	if req.text {
		hdr["Content-Type"] = textContentType
		for _, id := range ids {
			body = append(strconv.AppendInt(body, id, 10), '\n')
		}
	} else {
		hdr["Content-Type"] = jsonContentType
		body = appendJSON(body, l, ids, req.batch)
	}
	buf.body = body
	hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, err = w.Write(body)
	}
	return err
}

// ids appends count IDs to dst: first the one request_id minted for this
// request, if any, then fresh ones. It returns the layout they are in.
func (h *Handler) ids(r *http.Request, dst []int64, count int) ([]int64, layout, error) {
	m, ok := caddyhttp.GetVar(r.Context(), mintedIDVar).(mintedID)
	switch {
	case !ok:
		return h.app.mintN(dst, count, endpointMaxWait)
	case count == 1:
		return append(dst, m.id), m.layout, nil
	}
	ids, l, err := h.app.mintN(append(dst, m.id), count-1, endpointMaxWait)
	if err == nil && l != m.layout { // reloaded since request_id: one layout per answer
		return h.app.mintN(dst, count, endpointMaxWait)
	}
	return ids, l, err
}

// idRequest is what a request asks of the endpoint.
type idRequest struct {
	count int
	batch bool // count was given: answer a JSON array even for one ID
	text  bool
}

// parseIDRequest reads the query (format, count) and the Accept header; a
// non-empty reason says why the request is refused.
func parseIDRequest(r *http.Request) (req idRequest, reason string) {
	accept := r.Header.Get("Accept")
	req = idRequest{count: 1, text: strings.Contains(accept, "text/plain") && !strings.Contains(accept, "json")}
	if r.URL.RawQuery == "" {
		return req, ""
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return req, "malformed query string: " + err.Error()
	}
	if values, ok := query["format"]; ok {
		if len(values) != 1 {
			return req, "format: give it once"
		}
		switch values[0] {
		case "json":
			req.text = false
		case "text":
			req.text = true
		default:
			return req, fmt.Sprintf("format %q: want json or text", values[0])
		}
	}
	if values, ok := query["count"]; ok {
		if len(values) != 1 {
			return req, "count: give it once"
		}
		n, err := strconv.Atoi(values[0])
		if err != nil || n < 1 || n > maxCount {
			return req, fmt.Sprintf("count %q: want a whole number from 1 to %d", values[0], maxCount)
		}
		req.count, req.batch = n, true
	}
	return req, ""
}

// appendJSON appends the IDs in titpetric/sonyflake's shape (the keys in
// the order its json.Marshal of a map wrote them, no trailing newline): one
// object, or an array of them for a batch.
func appendJSON(b []byte, l layout, ids []int64, batch bool) []byte {
	if batch {
		b = append(b, '[')
	}
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		p := l.decompose(id)
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, p.ID, 10)
		b = append(b, `,"machine-id":`...)
		b = strconv.AppendInt(b, p.MachineID, 10)
		b = append(b, `,"msb":`...)
		b = strconv.AppendInt(b, p.MSB, 10)
		b = append(b, `,"sequence":`...)
		b = strconv.AppendInt(b, p.Sequence, 10)
		b = append(b, `,"time":`...)
		b = strconv.AppendInt(b, p.Time, 10)
		b = append(b, '}')
	}
	if batch {
		b = append(b, ']')
	}
	return b
}

// writeLine answers status with a one-line plain-text reason.
func writeLine(w http.ResponseWriter, status int, line string) {
	hdr := w.Header()
	hdr["Content-Type"] = textContentType
	hdr["Content-Length"] = []string{strconv.Itoa(len(line) + 1)}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(line + "\n"))
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
