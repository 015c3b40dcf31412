// Package https_test checks the edge as a public HTTPS entrypoint: it gets
// its certificate from a real ACME server (pebble, in the test process) and
// serves HTTPS over HTTP/2 and HTTP/3, all on loopback.
package https_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/swarmedge/swarmedge/integration/edge"
	"github.com/swarmedge/swarmedge/integration/testsupport"
)

// siteName is the edge's public name. Only pebble's validation authority
// resolves it (through the test's DNS server); the test's clients dial
// 127.0.0.1 and send the name as SNI and Host.
const siteName = "edge.swarmedge.test"

// issuanceTimeout bounds the first certificate: account, order, challenge,
// finalize; about a second here, far longer on a loaded machine.
const issuanceTimeout = time.Minute

// storedCertificateTimeout bounds loading the stored certificate after a
// restart (milliseconds when idle), generous for a loaded machine: that no
// new order was placed is what shows the stored one was used, read from
// the ACME server's order counter, not from timing.
const storedCertificateTimeout = 20 * time.Second

// edgeCaddyfile is the edge's config: a site name and where its ACME
// server is. %[1]s and %[2]s are the directory URL and the PEM file that the
// directory's TLS certificate verifies against; %[3]s turns off the
// challenge type not under test.
const edgeCaddyfile = `{
	admin {{.AdminAddr}}
	default_bind 127.0.0.1
	http_port {{.HTTPPort}}
	https_port {{.HTTPSPort}}
	acme_ca %[1]s
	acme_ca_root %[2]s
	sonyflake {
		machine_id 7
	}
}
` + siteName + ` {
	tls {
		issuer acme {
			%[3]s
		}
	}
` + siteRoutes + `}
`

// siteRoutes is what the site serves: a request ID on every response, the
// ID endpoint at /id, "hello" elsewhere.
const siteRoutes = `	request_id
	sonyflake /id
	respond "hello"
`

// TestHTTPSWithACMECertificate runs the edge's whole HTTPS life once per
// ACME challenge type: the edge offers only that type, and the ACME server
// can reach the edge only on that type's port (the other port it is given
// is a free one nothing listens on), so issuance proves the type works.
func TestHTTPSWithACMECertificate(t *testing.T) {
	t.Run("http-01", func(t *testing.T) {
		node := edge.NewNode(t)
		acme := startACMEServer(t, testsupport.StartDNS(t, map[string]net.IP{siteName: net.IPv4(127, 0, 0, 1)}), node.HTTPPort, edge.FreePort(t))
		testHTTPSLife(t, node, acme, "disable_tlsalpn_challenge")
	})
	t.Run("tls-alpn-01", func(t *testing.T) {
		node := edge.NewNode(t)
		acme := startACMEServer(t, testsupport.StartDNS(t, map[string]net.IP{siteName: net.IPv4(127, 0, 0, 1)}), edge.FreePort(t), node.HTTPSPort)
		testHTTPSLife(t, node, acme, "disable_http_challenge")
	})
}

// testHTTPSLife starts the edge, waits for its certificate, checks what
// clients see over HTTP, HTTP/2 and HTTP/3, then restarts the edge on the
// same storage and checks that it serves the stored certificate without
// ordering another.
func testHTTPSLife(t *testing.T, node *edge.Node, acme *acmeServer, disableOtherChallenge string) {
	caddyfile := fmt.Sprintf(edgeCaddyfile, acme.directoryURL, acme.tlsRootFile, disableOtherChallenge)
	first, err := node.Start(t, caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	live := time.Now()
	cert := waitForCertificate(t, node.HTTPSPort, acme.issuerRoots, issuanceTimeout)
	t.Logf("certificate served %v after the config went live; serial %x", time.Since(live).Round(time.Millisecond), cert.SerialNumber)
	// The order counter must see this first order, or the restart check
	// below would prove nothing.
	orders := acme.newOrders.Load()
	if orders == 0 {
		t.Fatal("the edge serves a certificate from the ACME server's CA, but the server saw no new order")
	}

	clients := newClients(acme.issuerRoots)
	assertRedirectToHTTPS(t, clients.noFollow, node)
	assertRequestIDs(t, clients.h2, "HTTP/2.0", node)
	assertRequestIDs(t, clients.h3, "HTTP/3.0", node)
	clients.close()

	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := node.Start(t, caddyfile); err != nil {
		t.Fatal(err)
	}
	// Caddy loads stored certificates in the background (ManageAsync), so
	// the first handshakes may find none yet; loading takes milliseconds.
	reloaded := waitForCertificate(t, node.HTTPSPort, acme.issuerRoots, storedCertificateTimeout)
	if reloaded.SerialNumber.Cmp(cert.SerialNumber) != 0 {
		t.Errorf("after restart the edge serves certificate %x, want the stored %x", reloaded.SerialNumber, cert.SerialNumber)
	}
	if n := acme.newOrders.Load(); n != orders {
		t.Errorf("the restarted edge placed %d new orders; want it to reuse the stored certificate", n-orders)
	}
}

// waitForCertificate polls the edge's HTTPS port until it completes a TLS
// handshake for siteName with a certificate that verifies against roots, and
// returns that certificate. Until issuance (or loading from storage)
// finishes Caddy has none to offer.
func waitForCertificate(t *testing.T, httpsPort int, roots *x509.CertPool, timeout time.Duration) *x509.Certificate {
	t.Helper()
	var cert *x509.Certificate
	err := testsupport.Poll("a verifiable certificate for "+siteName, timeout, func() (bool, string) {
		var err error
		cert, err = handshake(httpsPort, roots)
		return err == nil, fmt.Sprint(err)
	})
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// handshake connects to the edge as a client of siteName that trusts only
// roots, and returns the edge's leaf certificate.
func handshake(httpsPort int, roots *x509.CertPool) (*x509.Certificate, error) {
	dialer := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: time.Second},
		Config:    &tls.Config{ServerName: siteName, RootCAs: roots},
	}
	conn, err := dialer.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(httpsPort)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// clients reach siteName at 127.0.0.1 (on the URL's port) and trust only
// the given roots.
type clients struct {
	noFollow *http.Client // shows redirects instead of following them
	h2, h3   *http.Client
	tcp      *http.Transport
	quic     *http3.Transport
}

func newClients(roots *x509.CertPool) *clients {
	tlsConfig := &tls.Config{RootCAs: roots}
	dialer := &net.Dialer{Timeout: time.Second}
	tcp := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
		TLSClientConfig:   tlsConfig,
		ForceAttemptHTTP2: true,
	}
	udp := &http3.Transport{
		TLSClientConfig: tlsConfig,
		Dial: func(ctx context.Context, addr string, tlsConf *tls.Config, conf *quic.Config) (*quic.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return quic.DialAddrEarly(ctx, net.JoinHostPort("127.0.0.1", port), tlsConf, conf)
		},
	}
	return &clients{
		noFollow: &http.Client{Transport: tcp, Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		h2:   &http.Client{Transport: tcp, Timeout: 5 * time.Second},
		h3:   &http.Client{Transport: udp, Timeout: 5 * time.Second},
		tcp:  tcp,
		quic: udp,
	}
}

// close drops kept-alive connections, which would otherwise hold up the
// edge's graceful stop.
func (c *clients) close() {
	c.tcp.CloseIdleConnections()
	c.quic.Close()
}

// assertRedirectToHTTPS checks that plain HTTP answers with a permanent
// redirect to the same path and query over HTTPS. The redirect names no
// port: Caddy takes https_port for the port it listens on behind a mapping
// from the public 443 (as a published Swarm port would be), not the one
// clients use.
func assertRedirectToHTTPS(t *testing.T, client *http.Client, node *edge.Node) {
	t.Helper()
	resp, err := client.Get(fmt.Sprintf("http://%s:%d/some/path?q=1", siteName, node.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := fmt.Sprintf("https://%s/some/path?q=1", siteName)
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("HTTP GET: %d Location %q; want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

// assertRequestIDs checks, over the protocol the client speaks, that a
// response carries a request ID and that the ID endpoint answers with the
// ID of its own request. Over HTTP/2 it also checks that HTTP/3 is offered.
func assertRequestIDs(t *testing.T, client *http.Client, proto string, node *edge.Node) {
	t.Helper()
	base := fmt.Sprintf("https://%s:%d", siteName, node.HTTPSPort)

	resp, body := get(t, client, base+"/", proto)
	if body != "hello" {
		t.Errorf("%s GET /: body %q, want %q", proto, body, "hello")
	}
	if _, err := strconv.ParseUint(resp.Header.Get("X-Request-ID"), 10, 64); err != nil {
		t.Errorf("%s GET /: X-Request-ID %q is not a decimal ID", proto, resp.Header.Get("X-Request-ID"))
	}
	if proto == "HTTP/2.0" {
		want := fmt.Sprintf(`h3=":%d"`, node.HTTPSPort)
		if altSvc := resp.Header.Get("Alt-Svc"); !strings.Contains(altSvc, want) {
			t.Errorf("Alt-Svc %q does not offer %s", altSvc, want)
		}
	}

	resp, body = get(t, client, base+"/id", proto)
	var minted struct {
		ID uint64 `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &minted); err != nil || minted.ID == 0 {
		t.Fatalf("%s GET /id: %q is not an ID object (%v)", proto, body, err)
	}
	if header := resp.Header.Get("X-Request-ID"); header != strconv.FormatUint(minted.ID, 10) {
		t.Errorf("%s GET /id: served ID %d, but the request's X-Request-ID is %q", proto, minted.ID, header)
	}
}

// get fetches url, expecting 200 over proto, and returns the response and
// its body.
func get(t *testing.T, client *http.Client, url, proto string) (*http.Response, string) {
	t.Helper()
	resp, body := testsupport.Get(t, client, url)
	if resp.StatusCode != http.StatusOK || resp.Proto != proto {
		t.Fatalf("GET %s: %d over %s; want 200 over %s", url, resp.StatusCode, resp.Proto, proto)
	}
	return resp, body
}
