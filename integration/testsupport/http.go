package testsupport

import (
	"io"
	"net/http"
	"testing"
)

// Do sends a request with client (http.DefaultClient when nil) and returns
// the response with its body read; a request that gets no response fails t.
func Do(t testing.TB, client *http.Client, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp, string(body)
}

// Get is Do for a plain GET.
func Get(t testing.TB, client *http.Client, url string) (*http.Response, string) {
	t.Helper()
	return Do(t, client, http.MethodGet, url, nil)
}
