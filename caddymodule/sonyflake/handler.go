package sonyflake

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
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
//
// Each client address (an IPv6 client: its /64) may have at most 2,000 IDs
// in flight at once; a request past that share is answered 429 with
// Retry-After, so one client's batches cannot lock others out.
type Handler struct {
	app    *App
	shares *clientShares
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
	h.shares = newClientShares(clientShareIDs, maxClients)
	return nil
}

// responseHeaders holds one response's header values. Each header gets its
// own slice: a handler further up (e.g. a deferred `header` that replaces a
// value) may change a value in place, which on a slice shared by all
// responses would change every later response and race with concurrent ones.
// One allocation serves the three headers of every answer.
type responseHeaders struct {
	cacheControl, contentType, contentLength [1]string
}

// newResponseHeaders sets Cache-Control on w, each value in its own slice.
func newResponseHeaders(w http.ResponseWriter) *responseHeaders {
	rh := &responseHeaders{cacheControl: [1]string{"no-store"}}
	w.Header()["Cache-Control"] = rh.cacheControl[:]
	return rh
}

// setBody sets Content-Type and Content-Length for a body of n bytes.
func (rh *responseHeaders) setBody(w http.ResponseWriter, contentType string, n int) {
	rh.contentType[0], rh.contentLength[0] = contentType, strconv.Itoa(n)
	hdr := w.Header()
	hdr["Content-Type"] = rh.contentType[:]
	hdr["Content-Length"] = rh.contentLength[:]
}

const (
	jsonContentType = "application/json"
	textContentType = "text/plain; charset=utf-8"
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
	rh := newResponseHeaders(w)
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		w.Header()["Allow"] = []string{"GET, HEAD, POST"}
		writeLine(w, rh, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: use GET, HEAD or POST")
		return nil
	}
	req, reason := parseIDRequest(r)
	if reason != "" {
		writeLine(w, rh, http.StatusBadRequest, reason)
		return nil
	}

	client := clientOf(r)
	if refusal := h.shares.acquire(client, req.count); refusal != nil {
		w.Header()["Retry-After"] = []string{"1"}
		writeLine(w, rh, refusal.status, refusal.reason)
		return nil
	}
	buf := bufferPool.Get().(*responseBuffers)
	defer bufferPool.Put(buf)
	batch, err := h.ids(r, buf.ids[:0], req.count)
	h.shares.release(client, req.count)
	buf.ids = batch.ids
	if err != nil {
		// Declared here, not on the success path: errors.As moves wait to
		// the heap.
		var wait *waitError
		if !errors.As(err, &wait) {
			return caddyhttp.Error(http.StatusInternalServerError, err)
		}
		w.Header()["Retry-After"] = []string{strconv.FormatInt(int64((wait.Wait+time.Second-1)/time.Second), 10)}
		writeLine(w, rh, http.StatusServiceUnavailable, fmt.Sprintf("no ID available within %s: demand is above the format's ceiling, or the clock is behind the last ID issued", endpointMaxWait))
		return nil
	}

	body := buf.body[:0]
	contentType := jsonContentType
	if req.text {
		contentType = textContentType
		for _, id := range batch.ids {
			body = append(strconv.AppendInt(body, id, 10), '\n')
		}
	} else {
		body = appendJSON(body, batch, req.batch)
	}
	buf.body = body
	rh.setBody(w, contentType, len(body))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, err = w.Write(body)
	}
	return err
}

// idBatch is the IDs of one answer and the layouts they were minted in: the
// first may be the one request_id minted, possibly before a reload changed
// the layout.
type idBatch struct {
	ids         []int64
	firstLayout layout // of ids[0]
	restLayout  layout // of ids[1:]
}

// layoutOf returns the layout ids[i] was minted in.
func (b *idBatch) layoutOf(i int) layout {
	if i == 0 {
		return b.firstLayout
	}
	return b.restLayout
}

// ids appends count IDs to dst: first the one request_id minted for this
// request, if any, then fresh ones.
func (h *Handler) ids(r *http.Request, dst []int64, count int) (idBatch, error) {
	if stamped, ok := caddyhttp.GetVar(r.Context(), mintedIDVar).(mintedID); ok {
		batch := idBatch{ids: append(dst, stamped.id), firstLayout: stamped.layout, restLayout: stamped.layout}
		if count == 1 {
			return batch, nil
		}
		var err error
		batch.ids, batch.restLayout, err = h.app.mintN(batch.ids, count-1, endpointMaxWait)
		return batch, err
	}
	ids, l, err := h.app.mintN(dst, count, endpointMaxWait)
	return idBatch{ids: ids, firstLayout: l, restLayout: l}, err
}

// appendJSON appends the IDs in titpetric/sonyflake's shape (the keys in
// the order its json.Marshal of a map wrote them, no trailing newline): one
// object, or an array of them for a batch.
func appendJSON(b []byte, ids idBatch, batch bool) []byte {
	if batch {
		b = append(b, '[')
	}
	for i, id := range ids.ids {
		if i > 0 {
			b = append(b, ',')
		}
		p := ids.layoutOf(i).decompose(id)
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
func writeLine(w http.ResponseWriter, rh *responseHeaders, status int, line string) {
	rh.setBody(w, textContentType, len(line)+1)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(line + "\n"))
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
