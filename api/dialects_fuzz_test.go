package api_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The dialects' decoders under the same promise as Boost's own (see
// fuzz_test.go): a 4xx JSON error, or what was accepted applied by every
// projection on every database, and no trusted event from a publishable
// key. Seeds: every body the real client libraries were recorded sending
// (compat/wire), and hostile kin of them.

var segmentPaths = []string{"/v1/batch", "/v1/b", "/v1/track", "/v1/t", "/v1/i", "/v1/page", "/v1/screen", "/v1/alias", "/v1/group"}

var posthogPaths = []string{"/batch/", "/e/", "/i/v0/e/", "/capture/", "/i/v1/analytics/events"}

// seedCaptures adds every captured body sent to one of paths as a seed.
func seedCaptures(f *testing.F, paths []string) {
	for _, cs := range captures(f) {
		for _, c := range cs {
			for i, p := range paths {
				if strings.SplitN(c.URL, "?", 2)[0] != p {
					continue
				}
				body, _ := base64.StdEncoding.DecodeString(c.BodyBase64)
				ct, enc := "", ""
				for j := 0; j+1 < len(c.RawHeaders); j += 2 {
					switch strings.ToLower(c.RawHeaders[j]) {
					case "content-type":
						ct = c.RawHeaders[j+1]
					case "content-encoding":
						enc = c.RawHeaders[j+1]
					}
				}
				f.Add(uint8(i), string(body), ct, enc, true)
			}
		}
	}
}

func fuzzDialect(f *testing.F, paths []string) {
	e := startEdge(f)
	f.Fuzz(func(t *testing.T, route uint8, body, contentType, encoding string, secret bool) {
		path := paths[int(route)%len(paths)]
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		if contentType != "" && !strings.ContainsAny(contentType, "\r\n\x00") {
			req.Header.Set("Content-Type", contentType)
		}
		if encoding != "" && !strings.ContainsAny(encoding, "\r\n\x00") {
			req.Header.Set("Content-Encoding", encoding)
		}
		req.SetBasicAuth(e.key(secret), "")
		status, b := e.doReq(0, req)
		e.judge(t, path+" "+body, status, b)
	})
}

func FuzzSegment(f *testing.F) {
	seedCaptures(f, segmentPaths)
	for _, s := range []string{
		`{"batch":[{"type":"page","userId":"u","name":"\u0000","properties":{}}]}`,
		`{"batch":[{"type":"group","userId":"u","groupId":"\u200b","traits":{"a":1}}]}`,
		`{"batch":[{"type":"alias","userId":"u","previousId":"u"}]}`,
		`{"batch":[{"type":"identify","anonymousId":"a","traits":{"plan":"pro"}}]}`,
		`{"batch":[{"type":"track","event":"purchase","userId":"u","properties":{"orderId":"o","amount":1999.0000000000002,"currency":"EUR"}}]}`,
		`{"batch":[{"type":"track","event":"p\u0443rchase","userId":"u","properties":{"orderId":"o","amount":1,"currency":"EUR"}}]}`,
		`{"batch":[{"type":"track","event":"x","userId":null,"anonymousId":"a","originalTimestamp":"0001-01-01T00:00:00Z"}]}`,
		`{"batch":[{"type":"screen","userId":"u","name":"S","category":"C","properties":{"name":{"nested":true}}}]}`,
		`{"batch":[{"type":"track","event":"x","userId":"u","integrations":{"\ud800":true}}]}`,
		`{"type":"page","userId":"u","properties":{"path":"/"}}`,
	} {
		for i := range segmentPaths {
			f.Add(uint8(i), s, "application/json", "", false)
		}
	}
	fuzzDialect(f, segmentPaths)
}

func FuzzPostHog(f *testing.F) {
	seedCaptures(f, posthogPaths)
	for _, s := range []string{
		`{"batch":[{"event":"$identify","distinct_id":"u","properties":{"$anon_distinct_id":"\u0000"},"$set":{"a":1}}]}`,
		`{"batch":[{"event":"$create_alias","properties":{"distinct_id":"u","alias":"u"}}]}`,
		`{"batch":[{"event":"x","distinct_id":"u","uuid":"","timestamp":"2026-12-04T20:17:20.797851644+01:00"}]}`,
		`{"batch":[{"event":"x","properties":{"distinct_id":5}}]}`,
		`{"batch":[{"event":"x","distinct_id":"u","$set_once":{"k\u0000":1}}]}`,
		`[{"event":"x","properties":{"distinct_id":"u","token":"t"}}]`,
		`{"event":"purchase","distinct_id":"u","properties":{"orderId":"o","amount":12.5,"currency":"EUR"}}`,
		`data=eyJiYXRjaCI6W3siZXZlbnQiOiJ4IiwiZGlzdGluY3RfaWQiOiJ1In1dfQ`,
		"data=%%%",
		`{"created_at":"9999-12-31T23:59:59Z","batch":[{"event":"x","distinct_id":"u"}]}`,
	} {
		for i := range posthogPaths {
			f.Add(uint8(i), s, "application/x-www-form-urlencoded", "", false)
			f.Add(uint8(i), s, "text/plain", "", true)
		}
	}
	fuzzDialect(f, posthogPaths)
}
