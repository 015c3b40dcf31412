package sonyflake

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/swarmedge/swarmedge/caddymodule/internal/metrics"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/net/http/httpguts"
)

func init() {
	caddy.RegisterModule(RequestID{})
}

const (
	// defaultRequestIDHeader is the header that carries the ID when none is
	// configured.
	defaultRequestIDHeader = "X-Request-ID"

	// requestIDVar is the var (placeholder {http.vars.request_id}) and the
	// access log field that hold the request's ID.
	requestIDVar = "request_id"

	// mintedIDVar holds the mintedID this request's ID was minted as, so the ID
	// endpoint can serve it instead of spending a second ID. Unset when the
	// ID was an incoming one that was kept.
	mintedIDVar = "sonyflake.minted_id"

	// maxIncomingIDLength bounds a kept incoming ID.
	maxIncomingIDLength = 128
)

// RequestID gives each request an ID from the sonyflake app: a decimal
// Sonyflake ID, set on the request header (so reverse_proxy sends it
// upstream) and on the response header, stored as the var request_id
// (placeholder {http.vars.request_id}) and added to the access log as the
// field request_id.
//
// The response carries the edge's value only: a value of that header sent by
// an upstream is replaced, and error responses (e.g. reverse_proxy's 502 and
// 503) carry it too.
//
// An incoming header of that name is replaced, so clients cannot choose the
// IDs that end up in logs, unless trust_incoming is set: then an incoming
// value is kept when the request comes from one of the server's
// trusted_proxies and the header has exactly one value of 1 to 128
// characters of [A-Za-z0-9._:-].
//
// Stamping never waits for an ID longer than about one time unit of the
// sonyflake app. When demand exceeds the format's ceiling (2^sequence_bits
// IDs per time unit) or the clock is far behind the last ID, the request is
// served without an ID: no header (an incoming one is still removed), no
// var, no log field. Such requests are counted in the metric
// swarmedge_request_id_requests_total{result="unavailable"} and logged at
// warn level, at most once per second per handler.
//
// A request already stamped (e.g. by request_id in both a route and
// handle_errors) keeps its ID.
type RequestID struct {
	// The header that carries the ID, on the request and on the response.
	// Default: X-Request-ID.
	Header string `json:"header,omitempty"`

	// Keep an incoming ID from the server's trusted_proxies (see above)
	// instead of replacing it.
	TrustIncoming bool `json:"trust_incoming,omitempty"`

	header  string // canonical form of Header
	maxWait time.Duration
	app     *App
	logger  *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (RequestID) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.request_id",
		New: func() caddy.Module { return new(RequestID) },
	}
}

// Provision attaches the handler to the config's sonyflake app.
func (h *RequestID) Provision(ctx caddy.Context) error {
	app, err := sonyflakeApp(ctx)
	if err != nil {
		return err
	}
	h.attach(app, ctx.Logger())
	return metrics.Register(ctx.GetMetricsRegistry(), requestIDMetrics.results)
}

// attach applies the defaults and binds the handler to app.
func (h *RequestID) attach(app *App, logger *zap.Logger) {
	h.header = http.CanonicalHeaderKey(cmp.Or(h.Header, defaultRequestIDHeader))
	h.app = app
	h.maxWait = app.layout.unit
	// Unavailable IDs come in bursts of up to thousands per second: one
	// line a second says so, the metric counts them all.
	h.logger = logger.WithOptions(zap.WrapCore(func(core zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(core, time.Second, 1, 0)
	}))
}

// Validate checks the header name.
func (h *RequestID) Validate() error {
	return checkRequestIDHeader(cmp.Or(h.Header, defaultRequestIDHeader))
}

// messageHeaders are the headers that frame the message, route it, or
// concern only the hop they are sent on (RFC 9110 section 7.6.1, RFC 9112):
// an ID written into one of them would break the message or be dropped by
// the next hop.
var messageHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Upgrade": true, "Te": true, "Trailer": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Proxy-Authenticate": true, "Proxy-Authorization": true,
}

// checkRequestIDHeader returns an error unless name is a valid HTTP header
// name that neither frames nor routes the message.
func checkRequestIDHeader(name string) error {
	switch {
	case strings.HasPrefix(name, ":"):
		return fmt.Errorf("request_id: header %q is an HTTP/2 pseudo-header, which only the protocol sets", name)
	case !httpguts.ValidHeaderFieldName(name):
		return fmt.Errorf("request_id: header %q is not a valid HTTP header name", name)
	case messageHeaders[http.CanonicalHeaderKey(name)]:
		return fmt.Errorf("request_id: header %q frames or routes the message, or is hop-by-hop: choose another name, e.g. %s", name, defaultRequestIDHeader)
	}
	return nil
}

// ServeHTTP stamps the request and calls next.
func (h *RequestID) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	ctx := r.Context()
	if caddyhttp.GetVar(ctx, requestIDVar) != nil { // stamped already: one request, one ID
		return next.ServeHTTP(w, r)
	}
	id, kept := h.incomingID(r)
	if kept {
		requestIDMetrics.kept.Inc()
	} else {
		minted, err := h.app.stamp(h.maxWait)
		if err != nil {
			requestIDMetrics.unavailable.Inc()
			delete(r.Header, h.header)
			if c := h.logger.Check(zapcore.WarnLevel, "request served without a request ID: no Sonyflake ID available within one time unit"); c != nil {
				c.Write(zap.Error(err))
			}
			return next.ServeHTTP(w, r)
		}
		requestIDMetrics.minted.Inc()
		caddyhttp.SetVar(ctx, mintedIDVar, minted)
		id = strconv.FormatInt(minted.id, 10)
	}
	caddyhttp.SetVar(ctx, requestIDVar, id)
	if extra, ok := ctx.Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		extra.Add(zap.String(requestIDVar, id))
	}

	// One allocation holds the wrapper and both header values; request and
	// response get their own value slice because header handlers may
	// replace values in place.
	sw := &requestIDWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, header: h.header}
	sw.requestValue[0], sw.responseValue[0] = id, id
	r.Header[h.header] = sw.requestValue[:]
	// Set before next so that it is there also when an error response is
	// written further up the chain, which bypasses sw.
	w.Header()[h.header] = sw.responseValue[:]
	return next.ServeHTTP(sw, r)
}

// incomingID returns the request's own ID when trust_incoming allows to
// keep it.
func (h *RequestID) incomingID(r *http.Request) (string, bool) {
	if !h.TrustIncoming {
		return "", false
	}
	values := r.Header[h.header]
	if len(values) != 1 || !validIncomingID(values[0]) {
		return "", false
	}
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	return values[0], trusted
}

// validIncomingID reports whether id is 1 to 128 characters of
// [A-Za-z0-9._:-]: safe in headers and logs.
func validIncomingID(id string) bool {
	if len(id) == 0 || len(id) > maxIncomingIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// requestIDWriter restores the edge's ID on the response header when the
// header is written: reverse_proxy adds the upstream's headers to ours,
// which would give the header two values. A header removed after stamping
// (e.g. `header -X-Request-ID`) stays removed.
type requestIDWriter struct {
	caddyhttp.ResponseWriterWrapper
	header        string
	requestValue  [1]string
	responseValue [1]string
	wroteHeader   bool
}

// WriteHeader restores the ID, then writes the header.
func (w *requestIDWriter) WriteHeader(status int) {
	w.restoreID(status)
	w.ResponseWriter.WriteHeader(status)
}

// Write restores the ID before an implicit 200.
func (w *requestIDWriter) Write(b []byte) (int, error) {
	w.restoreID(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// ReadFrom restores the ID before an implicit 200; the embedded ReadFrom
// would bypass Write.
func (w *requestIDWriter) ReadFrom(src io.Reader) (int64, error) {
	w.restoreID(http.StatusOK)
	return w.ResponseWriterWrapper.ReadFrom(src)
}

// restoreID sets the header back to the edge's value once, before the
// final (non-1xx) header goes out.
func (w *requestIDWriter) restoreID(status int) {
	if w.wroteHeader {
		return
	}
	h := w.ResponseWriter.Header()
	if _, ok := h[w.header]; ok {
		h[w.header] = w.responseValue[:]
	}
	w.wroteHeader = status >= 200
}

// Interface guards
var (
	_ caddy.Provisioner           = (*RequestID)(nil)
	_ caddy.Validator             = (*RequestID)(nil)
	_ caddyhttp.MiddlewareHandler = (*RequestID)(nil)
	_ http.ResponseWriter         = (*requestIDWriter)(nil)
	_ io.ReaderFrom               = (*requestIDWriter)(nil)
)
