package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/gamify/boost/app"
)

// Error is the body of every non-2xx answer:
// {"error": {"code": "...", "message": "...", "field": "..."}}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// RetryAfter, in seconds, is sent as a Retry-After header on 429/503.
	RetryAfter int `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// fromApp answers a use case's error: each kind its status, the field and
// message as the use case put them.
func fromApp(err error) *Error {
	var e *app.Error
	if !errors.As(err, &e) {
		return errUnavailable("the service")
	}
	out := &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: e.Message, Field: e.Field,
		RetryAfter: int(math.Ceil(e.RetryAfter.Seconds()))}
	switch e.Kind {
	case app.Invalid:
		out.Status, out.Code = http.StatusBadRequest, "invalid_request"
	case app.Unauthorized:
		out.Status, out.Code = http.StatusUnauthorized, "unauthorized"
	case app.Forbidden:
		out.Status, out.Code = http.StatusForbidden, "forbidden"
	case app.NotFound:
		out.Status, out.Code = http.StatusNotFound, "not_found"
	case app.Conflict:
		out.Status, out.Code = http.StatusConflict, "conflict"
	case app.RateLimited:
		out.Status, out.Code = http.StatusTooManyRequests, "rate_limited"
	default:
		out.RetryAfter = max(out.RetryAfter, 2)
	}
	if e.Code != "" {
		out.Code = e.Code
	}
	return out
}

func errBadRequest(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Field: field,
		Message: fmt.Sprintf(format, args...)}
}

func errNotFound(what, id string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("%s %s not found", what, id)}
}

func errUnavailable(what string) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", RetryAfter: 2,
		Message: what + " is unavailable; retry shortly"}
}

// writeJSON encodes v before it writes the status, so a value that cannot
// be encoded is a 500 naming the fault instead of a 2xx with an empty body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(true)
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		status = http.StatusInternalServerError
		_ = enc.Encode(map[string]*Error{"error": {Code: "internal", Message: "the answer could not be encoded: " + err.Error()}})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, e *Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}

// maxAdminBody bounds management request bodies; they are a few names.
const maxAdminBody = 64 << 10

// decodeBody reads a JSON object into v. Unknown fields are ignored; a
// field of the wrong type is named in the error.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) *Error {
	r.Body = http.MaxBytesReader(w, r.Body, maxAdminBody)
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
				Message: fmt.Sprintf("request body exceeds %d bytes", maxAdminBody)}
		}
		return errBadRequest("", "reading request body: %v", err)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return errBadRequest("", "request body is empty; expected a JSON object")
	}
	if err := json.Unmarshal(data, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return errBadRequest(typeErr.Field, "%s must be a %s, not %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
		case errors.As(err, &typeErr):
			return errBadRequest("", "request body must be a JSON object, not %s", typeErr.Value)
		case errors.As(err, &syntaxErr):
			return errBadRequest("", "request body is not valid JSON (at byte %d): %v", syntaxErr.Offset, err)
		default:
			return errBadRequest("", "request body is not valid JSON: %v", err)
		}
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	default:
		return "number"
	}
}
