package api

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// readIngestBody reads an ingestion body however the dialects' clients
// encode it, and returns the JSON:
//
//   - gzip when Content-Encoding says so, and also when it does not but the
//     body starts with gzip's magic bytes (posthog-js sends gzip as
//     text/plain and says nothing);
//   - a form whose data field is base64 JSON (posthog-js beacons and
//     ?compression=base64); RudderStack labels its gzip'd JSON as a form,
//     so a "form" whose body is JSON is JSON;
//   - anything else as it is (text/plain beacons carry JSON too).
//
// Both the body as sent and as decoded are bounded by maxIngestBody.
func readIngestBody(w http.ResponseWriter, r *http.Request) ([]byte, *Error) {
	raw, e := readBounded(http.MaxBytesReader(w, r.Body, maxIngestBody))
	if e != nil {
		return nil, e
	}
	switch strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))) {
	case "", "identity":
	case "gzip":
		if len(raw) < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
			return nil, errBadRequest("", "body is not valid gzip (Content-Encoding: gzip)")
		}
	default:
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_encoding",
			Message: "Content-Encoding must be gzip or absent"}
	}
	body, e := gunzipped(raw)
	if e != nil {
		return nil, e
	}
	if isForm(r) && !startsJSON(body) {
		if body, e = formData(body); e != nil {
			return nil, e
		}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errBadRequest("", "request body is empty; expected a JSON object")
	}
	return body, nil
}

var errBodyTooLarge = &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
	Message: fmt.Sprintf("request body exceeds %d bytes", maxIngestBody)}

func readBounded(rd io.Reader) ([]byte, *Error) {
	b, err := io.ReadAll(io.LimitReader(rd, maxIngestBody+1))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || len(b) > maxIngestBody {
		return nil, errBodyTooLarge
	}
	if err != nil {
		return nil, errBadRequest("", "reading body: %v", err)
	}
	return b, nil
}

// gunzipped returns b decompressed when it is gzip (by its magic bytes,
// whatever the headers said), else b.
func gunzipped(b []byte) ([]byte, *Error) {
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		return b, nil
	}
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, errBadRequest("", "body is not valid gzip: %v", err)
	}
	defer gz.Close()
	out, e := readBounded(gz)
	if e != nil && e != errBodyTooLarge {
		return nil, errBadRequest("", "body is not valid gzip")
	}
	return out, e
}

func isForm(r *http.Request) bool {
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	return strings.HasPrefix(ct, "application/x-www-form-urlencoded")
}

func startsJSON(b []byte) bool {
	t := bytes.TrimSpace(b)
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// formData reads a form's data field: base64 (standard or URL alphabet,
// padded or not) of JSON, possibly gzip'd.
func formData(b []byte) ([]byte, *Error) {
	form, err := url.ParseQuery(string(b))
	if err != nil || !form.Has("data") {
		return nil, errBadRequest("data", "a form body must carry the events as data=<base64 JSON>")
	}
	s := strings.TrimRight(strings.TrimSpace(form.Get("data")), "=")
	var decoded []byte
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if decoded, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		if startsJSON([]byte(s)) {
			return []byte(s), nil // data=<JSON>, as older PostHog clients send
		}
		return nil, errBadRequest("data", "data must be base64 of JSON")
	}
	return gunzipped(decoded)
}

// headerKey returns the API key from x-api-key, Authorization: Bearer, or
// Authorization: Basic with the key as the user name and an empty password
// (Segment's and RudderStack's write key).
func headerKey(r *http.Request) string {
	if k := strings.TrimSpace(r.Header.Get("X-Api-Key")); k != "" {
		return k
	}
	auth := r.Header.Get("Authorization")
	if t, ok := strings.CutPrefix(auth, "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	if user, _, ok := r.BasicAuth(); ok {
		return strings.TrimSpace(user)
	}
	return ""
}
