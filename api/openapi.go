package api

import (
	_ "embed"
	"net/http"
)

// openapiDoc is the OpenAPI 3.1 document of every route this server
// serves (TestOpenAPIDocumentsEveryRoute ties them together;
// compat/node/test/openapi.test.mjs validates it and sends each of its
// examples to a running Boost).
//
//go:embed openapi.json
var openapiDoc []byte

// OpenAPI returns the document.
func OpenAPI() []byte { return openapiDoc }

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Access-Control-Allow-Origin", "*") // API explorers load it from elsewhere
	_, _ = w.Write(openapiDoc)
}
