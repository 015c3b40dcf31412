package sonyflake

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// idRequest is what a request asks of the endpoint.
type idRequest struct {
	count int
	batch bool // count was given: answer a JSON array even for one ID
	text  bool
}

// parseIDRequest reads the query (format, count) and the Accept header; a
// non-empty reason says why the request is refused.
func parseIDRequest(r *http.Request) (req idRequest, reason string) {
	req = idRequest{count: 1, text: prefersText(r.Header.Values("Accept"))}
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

// prefersText reports whether the Accept header ranks text/plain strictly
// above application/json. As RFC 9110 section 12.5.1 says, each type takes
// the q-value of the most specific media range that matches it, and q=0
// means "not acceptable"; a type no range matches is not acceptable either.
// JSON wins ties and is the answer without an Accept header. Malformed
// elements are skipped.
func prefersText(accept []string) bool {
	var text, json rangeMatch
	for _, value := range accept {
		for element := range strings.SplitSeq(value, ",") {
			mediaType, subtype, q, ok := parseMediaRange(element)
			if !ok {
				continue
			}
			text.consider(mediaType, subtype, q, "text", "plain")
			json.consider(mediaType, subtype, q, "application", "json")
		}
	}
	return text.q > json.q
}

// rangeMatch is the most specific media range seen so far that matches one
// media type, and its q-value in thousandths.
type rangeMatch struct {
	specificity int // 0: none yet, 1: */*, 2: type/*, 3: type/subtype
	q           int
}

// consider takes the range mediaType/subtype into account for the type
// want/wantSub. Of equally specific ranges, the highest q counts.
func (m *rangeMatch) consider(mediaType, subtype string, q int, want, wantSub string) {
	specificity := 0
	switch {
	case mediaType == "*" && subtype == "*":
		specificity = 1
	case !strings.EqualFold(mediaType, want):
		return
	case subtype == "*":
		specificity = 2
	case strings.EqualFold(subtype, wantSub):
		specificity = 3
	default:
		return
	}
	if specificity > m.specificity || specificity == m.specificity && q > m.q {
		m.specificity, m.q = specificity, q
	}
}

// parseMediaRange reads one element of an Accept header: "type/subtype",
// optional parameters, and the q-value in thousandths (1000 when absent).
func parseMediaRange(element string) (mediaType, subtype string, q int, ok bool) {
	mediaRange, params, _ := strings.Cut(element, ";")
	mediaType, subtype, found := strings.Cut(strings.TrimSpace(mediaRange), "/")
	if !found || !httpguts.ValidHeaderFieldName(mediaType) || !httpguts.ValidHeaderFieldName(subtype) ||
		mediaType == "*" && subtype != "*" {
		return "", "", 0, false
	}
	q = 1000
	for param := range strings.SplitSeq(params, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(param), "=")
		if !strings.EqualFold(name, "q") {
			continue
		}
		if q, ok = parseQValue(value); !ok {
			return "", "", 0, false
		}
		break // parameters after q are accept-ext, not media type parameters
	}
	return mediaType, subtype, q, true
}

// parseQValue parses an RFC 9110 qvalue, "0" to "1" with at most three
// decimals, into thousandths.
func parseQValue(s string) (int, bool) {
	if s == "" || s[0] != '0' && s[0] != '1' {
		return 0, false
	}
	whole, fraction, _ := strings.Cut(s, ".")
	if len(whole) != 1 || len(fraction) > 3 {
		return 0, false
	}
	q := int(whole[0]-'0') * 1000
	for i, scale := 0, 100; i < len(fraction); i, scale = i+1, scale/10 {
		c := fraction[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		q += int(c-'0') * scale
	}
	if q > 1000 {
		return 0, false
	}
	return q, true
}
