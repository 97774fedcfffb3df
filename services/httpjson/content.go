package httpjson

import (
	"mime"
	"net/http"
)

// JSONContent reports whether the request declares a JSON body:
// Content-Type application/json, with any parameters. The API and the
// signal endpoints answer 415 otherwise.
func JSONContent(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "application/json" {
		return true // what most senders send, without parsing
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}
