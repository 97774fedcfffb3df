package httpapi

import (
	"mime"
	"net/http"
)

// JSONContent reports whether the request declares a JSON body:
// Content-Type application/json, with any parameters. The API and the
// signal endpoints answer 415 otherwise.
func JSONContent(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}
