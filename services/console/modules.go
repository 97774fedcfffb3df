package console

import (
	"bytes"
	"net/http"
	"net/url"
)

// Some pages show what a module keeps (the signals module's decisions,
// the GitHub module's follow-ups). The console asks the module's own API
// route in-process, with the caller's request (headers, cookies, address),
// so the module decides what this caller may see, as it does for the API.

// ask sends a GET for path?q to a module's route h as the caller of r,
// and returns the answer's status and body.
func ask(r *http.Request, h http.Handler, path string, q url.Values) (int, []byte) {
	inner := r.Clone(r.Context())
	inner.Method, inner.URL, inner.RequestURI, inner.Body = http.MethodGet, &url.URL{Path: path, RawQuery: q.Encode()}, "", http.NoBody
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	h.ServeHTTP(rec, inner)
	return rec.status, rec.body.Bytes()
}

// recorder holds a module's answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }
func (r *recorder) WriteHeader(code int)        { r.status = code }
